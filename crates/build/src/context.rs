//! The build context: a directory with `.dockerignore` applied, COPY/ADD source lookup with
//! Go's `filepath.Match` wildcards, and the content digest used in history and cache keys
//! (moby's tarsum of every entry: path, mode, owner, size, type, link target, content;
//! mtime ignored).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_dockerfile::dockerignore::PatternMatcher;
use sha2::{Digest as _, Sha256};

use crate::context_tar::{ContextHeaders, ContextTar, EntryKind};
use crate::tarsum;
use crate::BuildError;

/// A directory whose files COPY/ADD read: the context, or a stage's or image's tree.
#[derive(Debug, Clone)]
pub struct SourceRoot {
    pub root: PathBuf,
    ignore: Option<PatternMatcher>,
    /// The context still as its tar: lookups and hashes read the index, and `root` is
    /// written only by [`SourceRoot::materialize`].
    tar: Option<Arc<ContextTar>>,
    /// The uploaded headers of a context extracted at `root` (digests come from them).
    headers: Option<Arc<ContextHeaders>>,
}

/// One matched source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Path relative to the source root.
    pub rel: String,
    pub path: PathBuf,
    pub is_dir: bool,
}

impl SourceRoot {
    /// The context at `root`, reading its `.dockerignore` (the Dockerfile and the
    /// .dockerignore are never excluded, as Docker's CLI keeps them).
    pub fn context(root: &Path, dockerfile: &str) -> Result<SourceRoot, BuildError> {
        let ignore = match std::fs::read_to_string(root.join(".dockerignore")) {
            Ok(text) => Some(
                PatternMatcher::from_dockerignore(&text, Some(dockerfile))
                    .map_err(|e| BuildError::Context(e.to_string()))?,
            ),
            Err(_) => None,
        };
        Ok(SourceRoot {
            root: root.to_path_buf(),
            ignore,
            tar: None,
            headers: None,
        })
    }

    /// [`SourceRoot::context`] for a context extracted from an upload whose headers were
    /// recorded.
    pub fn context_extracted(
        root: &Path,
        dockerfile: &str,
        headers: Arc<ContextHeaders>,
    ) -> Result<SourceRoot, BuildError> {
        Ok(SourceRoot {
            headers: Some(headers),
            ..SourceRoot::context(root, dockerfile)?
        })
    }

    /// The context as an indexed tar that [`SourceRoot::materialize`] extracts into
    /// `root` (an empty directory) when a step needs its files on disk.
    pub fn context_tar(
        root: &Path,
        dockerfile: &str,
        tar: Arc<ContextTar>,
    ) -> Result<SourceRoot, BuildError> {
        let found = tar.lstat(&tar.resolve(".dockerignore")).cloned();
        let ignore = match found {
            Some(entry) if entry.kind == EntryKind::File => Some(
                PatternMatcher::from_dockerignore(
                    &String::from_utf8_lossy(tar.content(&entry)),
                    Some(dockerfile),
                )
                .map_err(|e| BuildError::Context(e.to_string()))?,
            ),
            _ => None,
        };
        Ok(SourceRoot {
            root: root.to_path_buf(),
            ignore,
            tar: Some(tar),
            headers: None,
        })
    }

    /// The root with its files on disk (extracting a context tar the first time).
    pub fn materialize(&self) -> Result<&Path, BuildError> {
        if let Some(tar) = &self.tar {
            tar.extract(&self.root).map_err(BuildError::Context)?;
        }
        Ok(&self.root)
    }

    /// The context's tar while it is one (COPY/ADD copy from it without extracting it,
    /// `copy_tar.rs`).
    pub fn tar(&self) -> Option<&ContextTar> {
        self.tar.as_deref()
    }

    /// An image or stage tree: nothing is ignored.
    pub fn tree(root: &Path) -> SourceRoot {
        SourceRoot {
            root: root.to_path_buf(),
            ignore: None,
            tar: None,
            headers: None,
        }
    }

    pub fn is_ignored(&self, rel: &str) -> bool {
        self.ignore
            .as_ref()
            .is_some_and(|m| !rel.is_empty() && m.matches_or_parent_matches(rel))
    }

    /// The sources `pattern` names (`COPY failed: ...` texts as Docker's classic builder).
    pub fn resolve(&self, pattern: &str) -> Result<Vec<Source>, BuildError> {
        let clean = clean(pattern);
        if clean.contains("..") && clean.split('/').any(|c| c == "..") {
            return Err(BuildError::Copy(format!(
                "forbidden path outside the build context: {pattern} ()"
            )));
        }
        if has_wildcard(&clean) {
            let mut out = Vec::new();
            self.walk("", &mut |rel, path, is_dir| {
                if glob_match(&clean, rel) {
                    out.push(Source {
                        rel: rel.to_string(),
                        path: path.to_path_buf(),
                        is_dir,
                    });
                    false
                } else {
                    true
                }
            });
            if out.is_empty() {
                return Err(BuildError::Copy("no source files were specified".into()));
            }
            // In filepath.Walk's order: by path component, so `a/x` before `a-b/x`.
            out.sort_by(|a, b| a.rel.split('/').cmp(b.rel.split('/')));
            return Ok(out);
        }
        let missing = || {
            BuildError::Copy(format!(
                "file not found in build context or excluded by .dockerignore: stat {}: file does not exist",
                if clean.is_empty() { "." } else { &clean }
            ))
        };
        if self.is_ignored(&clean) {
            return Err(missing());
        }
        let path = self.in_scope(&clean).ok_or_else(missing)?;
        let is_dir = match &self.tar {
            Some(tar) => {
                let rel = self.rel_of(&path);
                tar.lstat(&rel).ok_or_else(missing)?.kind == EntryKind::Dir
            }
            None => std::fs::metadata(&path).map_err(|_| missing())?.is_dir(),
        };
        Ok(vec![Source {
            rel: clean,
            path,
            is_dir,
        }])
    }

    /// `rel` as a host path inside the root, every symlink on the way (the last one's too)
    /// followed as if the root were `/`, as moby's `FollowSymlinkInScope` resolves COPY
    /// sources: a context link to `/etc` reads the context's `etc`, never the host's. None
    /// when a link chain is too long to resolve.
    fn in_scope(&self, rel: &str) -> Option<PathBuf> {
        if let Some(tar) = &self.tar {
            let resolved = tar.resolve(&format!("{rel}/."));
            let mut current = String::new();
            for part in resolved.split('/').filter(|p| !p.is_empty()) {
                if !current.is_empty() {
                    current.push('/');
                }
                current.push_str(part);
                if tar
                    .lstat(&current)
                    .is_some_and(|e| e.kind == EntryKind::Symlink)
                {
                    return None;
                }
            }
            return Some(self.root.join(resolved));
        }
        let path = crate::copy::resolve_in_root(&self.root, &format!("{rel}/."));
        let below = path.strip_prefix(&self.root).ok()?;
        let mut current = self.root.clone();
        for part in below.components() {
            current.push(part);
            if std::fs::symlink_metadata(&current).is_ok_and(|m| m.file_type().is_symlink()) {
                return None;
            }
        }
        Some(path)
    }

    /// Visits every non-ignored entry below `rel`; `visit` returns whether to descend.
    pub fn walk(&self, rel: &str, visit: &mut dyn FnMut(&str, &Path, bool) -> bool) {
        let Some(dir) = self.in_scope(rel) else {
            return;
        };
        if let Some(tar) = &self.tar {
            let dir_rel = self.rel_of(&dir);
            for name in tar.children(&dir_rel) {
                let child = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                if self.is_ignored(&child) {
                    continue;
                }
                let path = dir.join(name);
                let is_dir = tar
                    .lstat(&self.rel_of(&path))
                    .is_some_and(|e| e.kind == EntryKind::Dir);
                if visit(&child, &path, is_dir) && is_dir {
                    self.walk(&child, visit);
                }
            }
            return;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().to_string();
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if self.is_ignored(&child) {
                continue;
            }
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if visit(&child, &entry.path(), is_dir) && is_dir {
                self.walk(&child, visit);
            }
        }
    }

    /// `file:<sha>` or `dir:<sha>` of one source, as Docker's classic builder names
    /// sources in history and cache keys: a file's tarsum (moby's `remotecontext`
    /// `NewFileHash`, see [`tarsum`]); a directory's is the sha256 of the sorted tarsums of
    /// itself (unless it is the root) and everything below it (links followed, see
    /// [`SourceRoot::followed_sum`]), joined by `,`. Entries are named by their path below
    /// the root after symlinks, as moby's contexts name them.
    pub fn source_hash(&self, source: &Source) -> Result<String, BuildError> {
        let rel = self.rel_of(&source.path);
        if !source.is_dir {
            return Ok(format!("file:{}", self.entry_sum(&rel, &source.path)?));
        }
        let mut sums = Vec::new();
        if !rel.is_empty() {
            sums.push(self.entry_sum(&rel, &source.path)?);
        }
        let mut failed = None;
        self.walk(&source.rel, &mut |_, path, _| {
            match self.followed_sum(path) {
                Ok(sum) => sums.push(sum),
                Err(e) => failed = Some(e),
            }
            true
        });
        if let Some(e) = failed {
            return Err(e);
        }
        sums.sort_unstable();
        Ok(format!(
            "dir:{:x}",
            Sha256::digest(sums.join(",").as_bytes())
        ))
    }

    /// What an entry met walking a directory source adds to its digest: moby hashes each
    /// path with every symlink followed inside the root, so a link counts as what it
    /// points to (a directory as its own entry only), and a link to nothing as its path.
    fn followed_sum(&self, path: &Path) -> Result<String, BuildError> {
        let rel = self.rel_of(path);
        let target = match &self.tar {
            Some(tar) => {
                if !tar
                    .lstat(&rel)
                    .is_some_and(|e| e.kind == EntryKind::Symlink)
                {
                    return self.entry_sum(&rel, path);
                }
                let target = tar.resolve(&format!("{rel}/."));
                // The root has no header of its own in the upload.
                let found = !target.is_empty()
                    && tar
                        .lstat(&target)
                        .is_some_and(|e| e.kind != EntryKind::Symlink);
                found.then(|| self.root.join(&target))
            }
            None => {
                if !std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                    return self.entry_sum(&rel, path);
                }
                let target = crate::copy::resolve_in_root(&self.root, &format!("{rel}/."));
                let found =
                    std::fs::symlink_metadata(&target).is_ok_and(|m| !m.file_type().is_symlink());
                found.then_some(target)
            }
        };
        match target {
            Some(target) => self.entry_sum(&self.rel_of(&target), &target),
            None => Ok(rel),
        }
    }

    /// The tarsum of the entry at `rel` (`path` on disk); for a context still in its tar,
    /// of the header the client sent, as dockerd tarsums the upload.
    fn entry_sum(&self, rel: &str, path: &Path) -> Result<String, BuildError> {
        if let Some(headers) = &self.headers {
            // A directory the upload only implies has no tarsum: moby names it by its path.
            let Some(header) = headers.get(rel) else {
                return Ok(rel.to_string());
            };
            return file_sum(header, header.has_content().then_some(path));
        }
        let Some(tar) = &self.tar else {
            return disk_sum(rel, path);
        };
        let entry = tar.lstat(rel).ok_or_else(|| BuildError::Io {
            op: format!("reading {}", path.display()),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        // A directory the tar only implies has no tarsum: moby names it by its path.
        let Some(header) = &entry.header else {
            return Ok(rel.to_string());
        };
        let content = match entry.kind {
            EntryKind::File if header.has_content() => tar.content(entry),
            _ => &[],
        };
        Ok(tarsum::sum(header, content))
    }

    /// The tarsum of the file at `path` named `name` (an ADD download, which moby hashes
    /// by its file name in the download directory).
    pub fn named_file_hash(name: &str, path: &Path) -> Result<String, BuildError> {
        Ok(format!("file:{}", disk_sum(name, path)?))
    }

    /// A host path below the root as the tar index names it.
    pub(crate) fn rel_of(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .map(|p| p.to_string_lossy().trim_end_matches('/').to_string())
            .unwrap_or_default()
    }
}

/// The tarsum of the entry at `path` on disk, named `rel`.
fn disk_sum(rel: &str, path: &Path) -> Result<String, BuildError> {
    let io = |e| BuildError::Io {
        op: format!("reading {}", path.display()),
        source: e,
    };
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    let file_type = meta.file_type();
    use std::os::unix::fs::FileTypeExt as _;
    let (typeflag, link) = if file_type.is_symlink() {
        let link = std::fs::read_link(path).map_err(io)?;
        (b'2', link.to_string_lossy().into_owned())
    } else if file_type.is_dir() {
        (b'5', String::new())
    } else if file_type.is_file() {
        (b'0', String::new())
    } else if file_type.is_char_device() {
        (b'3', String::new())
    } else if file_type.is_block_device() {
        (b'4', String::new())
    } else {
        (b'6', String::new())
    };
    let device = file_type.is_char_device() || file_type.is_block_device();
    let mut xattrs = Vec::new();
    if !file_type.is_symlink() {
        let mut value = vec![0u8; 256];
        if let Ok(n) = rustix::fs::lgetxattr(path, "security.capability", &mut value) {
            value.truncate(n);
            xattrs.push(("security.capability".to_string(), value));
        }
    }
    let header = tarsum::Header {
        name: if file_type.is_dir() && !rel.ends_with('/') {
            format!("{rel}/")
        } else {
            rel.to_string()
        },
        mode: u64::from(meta.mode() & 0o7777),
        uid: meta.uid().into(),
        gid: meta.gid().into(),
        size: if file_type.is_file() { meta.len() } else { 0 },
        typeflag,
        link,
        devmajor: if device {
            rustix::fs::major(meta.rdev()).into()
        } else {
            0
        },
        devminor: if device {
            rustix::fs::minor(meta.rdev()).into()
        } else {
            0
        },
        xattrs,
    };
    file_sum(&header, file_type.is_file().then_some(path))
}

/// The tarsum of `header` followed by the content of the file at `content` (none: no
/// content).
fn file_sum(header: &tarsum::Header, content: Option<&Path>) -> Result<String, BuildError> {
    let mut hasher = tarsum::hasher(header);
    if let Some(path) = content {
        let io = |e| BuildError::Io {
            op: format!("reading {}", path.display()),
            source: e,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        std::io::copy(&mut file, &mut hasher).map_err(io)?;
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// A context-relative path without `./`, leading `/` or trailing `/`.
pub fn clean(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    parts.join("/")
}

fn has_wildcard(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// Go's `filepath.Match`: `*` and `?` never match `/`, `[...]` classes with `^`/`!`.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches_at(&p, &n)
}

fn matches_at(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => {
            let rest = &p[1..];
            let mut i = 0;
            loop {
                if matches_at(rest, &n[i..]) {
                    return true;
                }
                if i >= n.len() || n[i] == '/' {
                    return false;
                }
                i += 1;
            }
        }
        Some('?') => !n.is_empty() && n[0] != '/' && matches_at(&p[1..], &n[1..]),
        Some('[') => {
            let Some(c) = n.first() else {
                return false;
            };
            let Some(end) = p.iter().skip(1).position(|&c| c == ']').map(|i| i + 1) else {
                return false;
            };
            let class = &p[1..end];
            let (negate, class) = match class.first() {
                Some('^') | Some('!') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut found = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    found |= class[i] <= *c && *c <= class[i + 2];
                    i += 3;
                } else {
                    found |= class[i] == *c;
                    i += 1;
                }
            }
            found != negate && *c != '/' && matches_at(&p[end + 1..], &n[1..])
        }
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && matches_at(&p[2..], &n[1..]),
        Some(c) => n.first() == Some(c) && matches_at(&p[1..], &n[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_go_filepath_match() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "dir/a.txt"));
        assert!(glob_match("dir/*.txt", "dir/a.txt"));
        assert!(glob_match("file?.rs", "file1.rs"));
        assert!(glob_match("[a-c]*", "beta"));
        assert!(!glob_match("[^a-c]*", "beta"));
    }

    #[test]
    fn dockerignore_hides_files_from_sources_and_wildcards() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "*.log\nsecret/\n").unwrap();
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("b.log"), "b").unwrap();
        std::fs::create_dir(dir.path().join("secret")).unwrap();
        std::fs::write(dir.path().join("secret/key"), "k").unwrap();
        let ctx = SourceRoot::context(dir.path(), "Dockerfile").unwrap();
        assert!(ctx.resolve("b.log").is_err());
        assert!(ctx.resolve("secret/key").is_err());
        let all: Vec<String> = ctx
            .resolve("*")
            .unwrap()
            .into_iter()
            .map(|s| s.rel)
            .collect();
        assert_eq!(all, vec![".dockerignore", "a.txt"]);
        let err = ctx.resolve("missing").unwrap_err().to_string();
        assert!(err.contains("file not found in build context or excluded by .dockerignore"));
    }

    #[test]
    fn symlinks_in_sources_resolve_inside_the_root_never_on_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::os::unix::fs::symlink("/etc", root.join("hostetc")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/passwd", root.join("up")).unwrap();
        std::fs::create_dir(root.join("real")).unwrap();
        std::fs::write(root.join("real/f"), "in context").unwrap();
        std::os::unix::fs::symlink("/real", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let ctx = SourceRoot::context(root, "Dockerfile").unwrap();
        for outside in ["hostetc/passwd", "hostetc", "up", "loop"] {
            let err = ctx.resolve(outside).unwrap_err().to_string();
            assert!(
                err.contains("file not found in build context"),
                "{outside}: {err}"
            );
        }
        let source = ctx.resolve("abs/f").unwrap().remove(0);
        assert_eq!(source.path, root.join("real/f"));
        let linked = ctx.resolve("abs").unwrap().remove(0);
        assert!(linked.is_dir && linked.path == root.join("real"));
        assert_eq!(
            ctx.source_hash(&linked).unwrap(),
            ctx.source_hash(&ctx.resolve("real").unwrap().remove(0))
                .unwrap(),
            "a linked directory hashes its in-context target"
        );
    }

    #[test]
    fn source_hash_follows_content_and_mode_not_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "one").unwrap();
        let ctx = SourceRoot::tree(dir.path());
        let source = ctx.resolve("f").unwrap().remove(0);
        let first = ctx.source_hash(&source).unwrap();
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(ctx.source_hash(&source).unwrap(), first);
        std::fs::write(&file, "two").unwrap();
        assert_ne!(ctx.source_hash(&source).unwrap(), first);
        assert!(first.starts_with("file:"));
    }

    #[test]
    fn a_directory_digest_counts_each_link_as_what_it_points_to() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("d/sub")).unwrap();
        std::fs::write(root.join("d/f"), "f").unwrap();
        std::fs::write(root.join("d/sub/g"), "g").unwrap();
        std::os::unix::fs::symlink("f", root.join("d/to-file")).unwrap();
        std::os::unix::fs::symlink("/d/sub", root.join("d/to-dir")).unwrap();
        std::os::unix::fs::symlink("nothing", root.join("d/dangling")).unwrap();
        let ctx = SourceRoot::tree(root);
        let sum = |rel: &str| disk_sum(rel, &root.join(rel)).unwrap();
        let mut sums = [
            sum("d"),
            sum("d/f"),
            sum("d/f"),
            "d/dangling".to_string(),
            sum("d/sub"),
            sum("d/sub"),
            sum("d/sub/g"),
        ];
        sums.sort();
        let want = format!("dir:{:x}", Sha256::digest(sums.join(",").as_bytes()));
        let source = ctx.resolve("d").unwrap().remove(0);
        assert_eq!(ctx.source_hash(&source).unwrap(), want);
        let linked = ctx.resolve("d/to-file").unwrap().remove(0);
        assert_eq!(
            ctx.source_hash(&linked).unwrap(),
            format!("file:{}", sum("d/f"))
        );
    }
}
