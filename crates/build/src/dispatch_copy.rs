//! COPY and ADD (moby's `performCopy`): sources from the context, a finished stage or an
//! image, heredoc bodies (`COPY <<EOF /path`: a file of that name, mode 0644 as BuildKit
//! makes it) and, for ADD, URLs (downloaded through the worker: mode 0600, mtime from
//! `Last-Modified`, `--checksum` verified); the `file:<sha>`/`dir:<sha>`/`multi:<sha>`
//! history text that is also what makes the cache key follow the files' content; the copy
//! into a fresh layer.

use std::os::unix::fs::PermissionsExt;

use berth_dockerfile::instructions::SourceContent;
use sha2::{Digest as _, Sha256};

use crate::context::{Source, SourceRoot};
use crate::copy::{self, CopyOptions};
use crate::dispatch::{normalize_workdir, Env, Say, StageState};
use crate::worker::LayerGuard;
use crate::BuildError;

/// A COPY or ADD after expansion.
pub struct CopySpec {
    pub name: &'static str,
    pub sources: Vec<String>,
    /// Heredoc bodies (`COPY <<EOF /path`), already expanded.
    pub contents: Vec<SourceContent>,
    /// ADD `--checksum` of a URL source.
    pub checksum: String,
    pub dest: String,
    pub chown: String,
    pub chmod: String,
    /// ADD: local archives are extracted.
    pub extract: bool,
    /// `--from`: the image (or stage result) to read from.
    pub source_image: Option<String>,
    /// ADD `--keep-git-dir` of a Git source.
    pub keep_git_dir: bool,
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://") || is_git(source)
}

/// What BuildKit takes for a Git repository (see [`crate::git::parse`]).
fn is_git(source: &str) -> bool {
    crate::git::parse(source).is_some()
}

fn parse_chmod(chmod: &str) -> Result<Option<u32>, BuildError> {
    if chmod.is_empty() {
        return Ok(None);
    }
    u32::from_str_radix(chmod, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .map(Some)
        .ok_or_else(|| BuildError::Copy(format!("invalid chmod parameter: {chmod}")))
}

pub fn copy(
    state: &mut StageState,
    env: &Env,
    say: Say,
    spec: &CopySpec,
) -> Result<(), BuildError> {
    if spec.name == "COPY" && spec.sources.iter().any(|s| is_url(s)) {
        return Err(BuildError::Copy("source can't be a URL for COPY".into()));
    }
    if !spec.checksum.is_empty() && !spec.sources.iter().all(|s| is_url(s) && !is_git(s)) {
        return Err(BuildError::Copy(
            "checksum can't be specified for non-HTTP(S) sources".into(),
        ));
    }
    let scratch = env.worker.scratch_dir()?;
    let inline = SourceRoot::tree(scratch.path());
    let mut extra = heredoc_sources(scratch.path(), &spec.contents)?;
    // A Git checkout is identified by its commit, not by its files: a kept `.git` differs
    // between two fetches of the same commit (index stamps), and BuildKit caches by commit.
    let mut identities: Vec<(usize, String)> = Vec::new();
    for (n, url) in spec.sources.iter().filter(|s| is_url(s)).enumerate() {
        match crate::git::parse(url) {
            Some(git_ref) => {
                let slot = scratch.path().join(format!("git-{n}"));
                let checkout = crate::git::checkout(&git_ref, spec.keep_git_dir, &slot)?;
                identities.push((
                    extra.len(),
                    format!(
                        "git:{}:{}:{}",
                        checkout.commit, git_ref.subdir, spec.keep_git_dir
                    ),
                ));
                let rel = checkout
                    .tree
                    .strip_prefix(scratch.path())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                extra.push((
                    Source {
                        rel,
                        path: checkout.tree,
                        is_dir: true,
                    },
                    None,
                ));
            }
            None => extra.push(download(env, scratch.path(), n, url, &spec.checksum)?),
        }
    }
    let chmod = parse_chmod(&spec.chmod)?;
    let patterns: Vec<&String> = spec.sources.iter().filter(|s| !is_url(s)).collect();
    // `COPY --from=<image id>` hashed before: the memo answers without mounting the image
    // (its files are resolved again only when the step misses the cache).
    let memo_key = spec
        .source_image
        .as_ref()
        .filter(|image| image.starts_with("sha256:"))
        .map(|image| format!("{image}\0{}", join_patterns(&patterns)));
    let remembered = memo_key
        .as_ref()
        .and_then(|k| env.worker.copy_from_hashes(k));
    let found = match remembered {
        Some(hashes) => Found {
            _mount: None,
            tree: None,
            resolved: None,
            hashes,
        },
        None => {
            let found = find_sources(env, spec, &patterns)?;
            if let Some(key) = &memo_key {
                env.worker.remember_copy_from_hashes(key, &found.hashes);
            }
            found
        }
    };
    if found.hashes.len() + extra.len() > 1 && !spec.dest.ends_with('/') {
        return Err(BuildError::Copy(format!(
            "When using {} with more than one source file, the destination must be a directory and end with a /",
            spec.name
        )));
    }
    let mut hashes = found.hashes.clone();
    // The file name a heredoc or URL gives is part of what lands in the layer.
    for (index, (source, _)) in extra.iter().enumerate() {
        if let Some((_, identity)) = identities.iter().find(|(i, _)| *i == index) {
            hashes.push(format!("dir:{:x}", Sha256::digest(identity.as_bytes())));
            continue;
        }
        if !source.is_dir {
            // A download: moby hashes it by its file name in the download directory.
            let name = source.rel.rsplit('/').next().unwrap_or_default();
            hashes.push(SourceRoot::named_file_hash(name, &source.path)?);
            continue;
        }
        let content = inline.source_hash(source)?;
        let both = Sha256::digest(format!("\0{content}").as_bytes());
        hashes.push(format!("dir:{both:x}"));
    }
    let hash = match hashes.as_slice() {
        [one] => one.clone(),
        many => format!("multi:{:x}", Sha256::digest(many.join(",").as_bytes())),
    };
    let chown_comment = if spec.chown.is_empty() {
        String::new()
    } else {
        format!("--chown={}", spec.chown)
    };
    let comment = format!("{} {chown_comment}{hash} in {} ", spec.name, spec.dest);
    let dest = if spec.dest.starts_with('/') {
        spec.dest.clone()
    } else {
        let mut d = normalize_workdir(&state.config.working_dir, &spec.dest);
        if spec.dest.ends_with('/') || spec.dest == "." {
            d.push('/');
        }
        d
    };
    let cc = state.config.with_comment_string(&comment);
    state.commit(env, say, cc, |state| {
        let guard = LayerGuard {
            worker: env.worker,
            key: env.worker.prepare(&state.image)?,
        };
        let root = env.worker.layer_root(&guard.key)?;
        // An image's tree is mounted now if the memo spared that before.
        let found = match found.resolved {
            Some(_) => found,
            None => find_sources(env, spec, &patterns)?,
        };
        let sources = found.tree.as_ref().unwrap_or(env.context);
        let resolved = found.resolved.unwrap_or_default();
        let (uid, gid) = copy::parse_chown(&root, &spec.chown)?;
        let options = CopyOptions {
            uid,
            gid,
            chmod,
            extract: spec.extract,
        };
        // A context still in memory is copied from its tar's bytes: extracting it first
        // wrote every file of the context twice (and created and deleted them all), even
        // for a step copying one file.
        match sources.tar() {
            Some(tar) => {
                crate::copy_tar::copy_sources(&root, sources, tar, &resolved, &dest, options)?
            }
            None => {
                sources.materialize()?;
                copy::copy_sources(&root, &resolved, &dest, options)?;
            }
        }
        for (source, mtime) in &extra {
            let options = CopyOptions {
                extract: false,
                ..options
            };
            copy::copy_sources(&root, std::slice::from_ref(source), &dest, options)?;
            if let Some(mtime) = mtime {
                set_mtime(&root, &dest, source, *mtime)?;
            }
        }
        let key = guard.key.clone();
        std::mem::forget(guard);
        Ok(Some((key, String::new())))
    })
}

/// COPY/ADD's local sources: in the context, or in `--from`'s image tree (mounted while
/// `mount` lives).
struct Found<'a> {
    /// Held, not read: the image stays mounted while `tree` is read.
    _mount: Option<LayerGuard<'a>>,
    tree: Option<SourceRoot>,
    resolved: Option<Vec<Source>>,
    hashes: Vec<String>,
}

fn join_patterns(patterns: &[&String]) -> String {
    patterns
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join("\0")
}

/// Resolves and hashes the local `patterns` of `spec`.
fn find_sources<'a>(
    env: &Env<'a>,
    spec: &CopySpec,
    patterns: &[&String],
) -> Result<Found<'a>, BuildError> {
    let mount = match &spec.source_image {
        Some(image) => Some(LayerGuard {
            worker: env.worker,
            key: env.worker.mount_image(image)?,
        }),
        None => None,
    };
    let tree = match &mount {
        Some(guard) => Some(SourceRoot::tree(&env.worker.layer_root(&guard.key)?)),
        None => None,
    };
    let sources = tree.as_ref().unwrap_or(env.context);
    let mut resolved = Vec::new();
    for pattern in patterns {
        resolved.extend(sources.resolve(pattern)?);
    }
    let hashes = resolved
        .iter()
        .map(|s| sources.source_hash(s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Found {
        _mount: mount,
        tree,
        resolved: Some(resolved),
        hashes,
    })
}

/// Writes each heredoc body as a file named after its delimiter (mode 0644).
fn heredoc_sources(
    dir: &std::path::Path,
    contents: &[SourceContent],
) -> Result<Vec<(Source, Option<i64>)>, BuildError> {
    let mut out = Vec::new();
    for (n, content) in contents.iter().enumerate() {
        let name = content.path.trim_start_matches('/');
        let name = name.rsplit('/').next().unwrap_or(name);
        if name.is_empty() || name == "." || name == ".." {
            return Err(BuildError::Copy(format!(
                "invalid heredoc name {:?}",
                content.path
            )));
        }
        let slot = dir.join(format!("heredoc-{n}"));
        let path = slot.join(name);
        let io = |source| BuildError::Io {
            op: format!("writing the heredoc {name}"),
            source,
        };
        std::fs::create_dir_all(&slot).map_err(io)?;
        std::fs::write(&path, &content.data).map_err(io)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).map_err(io)?;
        out.push((
            Source {
                rel: format!("heredoc-{n}/{name}"),
                path,
                is_dir: false,
            },
            None,
        ));
    }
    Ok(out)
}

/// The file name ADD gives a download: the URL path's last segment (BuildKit's fallback
/// without a Content-Disposition header), `__unnamed__` when it has none.
fn url_file_name(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = rest
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .split_once('/')
        .map(|(_, p)| p)
        .unwrap_or_default();
    match path.rsplit('/').next() {
        Some(name) if !name.is_empty() && name != "." && name != ".." => name.to_string(),
        _ => "__unnamed__".to_string(),
    }
}

/// Downloads one ADD URL (mode 0600, as Docker gives remote files) and checks `--checksum`.
fn download(
    env: &Env,
    dir: &std::path::Path,
    n: usize,
    url: &str,
    checksum: &str,
) -> Result<(Source, Option<i64>), BuildError> {
    let name = url_file_name(url);
    let slot = dir.join(format!("url-{n}"));
    let path = slot.join(&name);
    let io = |source| BuildError::Io {
        op: format!("downloading {url}"),
        source,
    };
    std::fs::create_dir_all(&slot).map_err(io)?;
    let got = env.worker.download(url, &path)?;
    if !checksum.is_empty() {
        let body = std::fs::read(&got.path).map_err(io)?;
        let actual = format!("sha256:{:x}", Sha256::digest(&body));
        let expected = checksum.to_ascii_lowercase();
        if !expected.starts_with("sha256:") {
            return Err(BuildError::Copy(format!(
                "unsupported digest algorithm in checksum {checksum} (sha256 is supported)"
            )));
        }
        if actual != expected {
            return Err(BuildError::Copy(format!(
                "digest mismatch {checksum}: {actual}"
            )));
        }
    }
    std::fs::set_permissions(&got.path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok((
        Source {
            rel: format!("url-{n}/{name}"),
            path: got.path,
            is_dir: false,
        },
        got.last_modified,
    ))
}

/// Sets a downloaded file's mtime to its `Last-Modified` in the layer.
fn set_mtime(
    root: &std::path::Path,
    dest: &str,
    source: &Source,
    mtime: i64,
) -> Result<(), BuildError> {
    let name = source.rel.rsplit('/').next().unwrap_or_default();
    let dest_dir = copy::resolve_in_root(root, &format!("{dest}/."));
    let target = if dest.ends_with('/') || dest_dir.is_dir() {
        dest_dir.join(name)
    } else {
        copy::resolve_in_root(root, dest)
    };
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime.max(0) as u64);
    let io = |source| BuildError::Io {
        op: format!("setting the mtime of {}", target.display()),
        source,
    };
    let file = std::fs::File::options()
        .write(true)
        .open(&target)
        .map_err(io)?;
    file.set_modified(time).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_come_from_the_url_path() {
        assert_eq!(url_file_name("http://h:8/a/b/tool.tgz?x=1#f"), "tool.tgz");
        assert_eq!(url_file_name("https://example.com/"), "__unnamed__");
        assert_eq!(url_file_name("https://example.com"), "__unnamed__");
    }

    #[test]
    fn git_sources_are_told_apart_from_files() {
        assert!(is_git("https://github.com/moby/moby.git#v1"));
        assert!(is_git("git@github.com:moby/moby.git"));
        assert!(!is_git("https://example.com/file.tar.gz"));
    }
}
