//! The build context: a directory with `.dockerignore` applied, COPY/ADD source lookup with
//! Go's `filepath.Match` wildcards, and the content digest used in history and cache keys
//! (path, mode, size, content and link target of every file; mtime and owner ignored).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_dockerfile::dockerignore::PatternMatcher;
use sha2::{Digest as _, Sha256};

use crate::context_tar::{ContextTar, EntryKind};
use crate::BuildError;

/// A directory whose files COPY/ADD read: the context, or a stage's or image's tree.
#[derive(Debug, Clone)]
pub struct SourceRoot {
    pub root: PathBuf,
    ignore: Option<PatternMatcher>,
    /// The context still as its tar: lookups and hashes read the index, and `root` is
    /// written only by [`SourceRoot::materialize`].
    tar: Option<Arc<ContextTar>>,
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
            out.sort_by(|a, b| a.rel.cmp(&b.rel));
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

    /// `file:<sha>` or `dir:<sha>` of one source, as the classic builder names sources.
    pub fn source_hash(&self, source: &Source) -> Result<String, BuildError> {
        let mut hasher = Sha256::new();
        if source.is_dir {
            let mut failed = None;
            self.walk(&source.rel, &mut |rel, path, _| {
                let inner = rel.strip_prefix(&source.rel).unwrap_or(rel);
                if let Err(e) = self.hash_entry(&mut hasher, inner, path) {
                    failed = Some(e);
                }
                true
            });
            if let Some(e) = failed {
                return Err(e);
            }
            Ok(format!("dir:{:x}", hasher.finalize()))
        } else {
            self.hash_entry(&mut hasher, "", &source.path)?;
            Ok(format!("file:{:x}", hasher.finalize()))
        }
    }

    /// A host path below the root as the tar index names it.
    pub(crate) fn rel_of(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .map(|p| p.to_string_lossy().trim_end_matches('/').to_string())
            .unwrap_or_default()
    }

    /// [`hash_entry`] from the tar index when there is one: the same bytes in the same
    /// order as from the extracted files.
    fn hash_entry(&self, hasher: &mut Sha256, rel: &str, path: &Path) -> Result<(), BuildError> {
        let Some(tar) = &self.tar else {
            return hash_entry(hasher, rel, path);
        };
        let entry = tar
            .lstat(&self.rel_of(path))
            .ok_or_else(|| BuildError::Io {
                op: format!("reading {}", path.display()),
                source: std::io::ErrorKind::NotFound.into(),
            })?;
        hasher.update(rel.as_bytes());
        hasher.update([0]);
        hasher.update(entry.mode.to_be_bytes());
        match entry.kind {
            EntryKind::Symlink => hasher.update(entry.link.as_bytes()),
            EntryKind::File => {
                let content = tar.content(entry);
                hasher.update((content.len() as u64).to_be_bytes());
                hasher.update(content);
            }
            EntryKind::Dir => {}
        }
        hasher.update([0]);
        Ok(())
    }
}

fn hash_entry(hasher: &mut Sha256, rel: &str, path: &Path) -> Result<(), BuildError> {
    let io = |e| BuildError::Io {
        op: format!("reading {}", path.display()),
        source: e,
    };
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    hasher.update(rel.as_bytes());
    hasher.update([0]);
    hasher.update(meta.mode().to_be_bytes());
    if meta.file_type().is_symlink() {
        hasher.update(
            std::fs::read_link(path)
                .map_err(io)?
                .as_os_str()
                .as_encoded_bytes(),
        );
    } else if meta.is_file() {
        hasher.update(meta.len().to_be_bytes());
        let mut file = std::fs::File::open(path).map_err(io)?;
        std::io::copy(&mut file, hasher).map_err(io)?;
    }
    hasher.update([0]);
    Ok(())
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
}
