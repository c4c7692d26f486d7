//! COPY/ADD from a context still held as its tar ([`ContextTar`]): each source is written
//! into the layer straight from the tar's bytes, giving the tree that extracting the
//! context and copying from the extracted files (`copy.rs`) gave — the same names, modes,
//! owners, file mtimes (the tar header's, as extraction set them), symlinks as symlinks,
//! hard links as copies of their target — without writing the context to disk first.
//!
//! Destinations resolve in the layer exactly as in `copy.rs` (shared helpers). The index
//! holds only what extraction would produce (anything else made the engine extract the
//! context up front), so every source it resolved is an entry here.

use std::io::Write as _;
use std::path::Path;

use crate::context::{Source, SourceRoot};
use crate::context_tar::{ContextTar, EntryKind, TarEntry};
use crate::copy::{self, io, CopyOptions};
use crate::BuildError;

/// [`copy::copy_sources`] for `sources` resolved in `context`, whose tar is `tar`.
pub fn copy_sources(
    root: &Path,
    context: &SourceRoot,
    tar: &ContextTar,
    sources: &[Source],
    dest: &str,
    options: CopyOptions,
) -> Result<(), BuildError> {
    let dest_is_dir_hint = dest.ends_with('/');
    let dest_exists_dir = copy::resolve_in_root(root, &format!("{dest}/.")).is_dir();
    for source in sources {
        let rel = context.rel_of(&source.path);
        if source.is_dir {
            let target = copy::dir_target(root, dest, options)?;
            copy_dir_contents(tar, &rel, &target, options)?;
        } else if let Some(archive) = options.extract.then(|| archive(tar, &rel)).flatten() {
            let target = copy::mkdir_all(root, dest, 0, 0)?;
            let reader: Box<dyn std::io::Read> = if archive.starts_with(&[0x1f, 0x8b]) {
                Box::new(flate2::read::MultiGzDecoder::new(archive))
            } else {
                Box::new(archive)
            };
            copy::unpack_archive(reader, &target)
                .map_err(io(format!("extracting {}", source.path.display())))?;
        } else {
            let to = copy::file_target(
                root,
                source,
                dest,
                dest_is_dir_hint || dest_exists_dir,
                options,
            )?;
            copy_entry(tar, &rel, &to, options)?;
        }
    }
    Ok(())
}

/// The bytes of the archive ADD extracts for the source at `rel`: a file that starts as a
/// gzip stream or a tar. A symlink (a wildcard matches links themselves) is followed inside
/// the context; the extracted path followed it on the host, so a link out of the context
/// read a host file there — here it reads the context's file of that name, as
/// [`SourceRoot::resolve`] follows the links of named sources.
fn archive<'t>(tar: &'t ContextTar, rel: &str) -> Option<&'t [u8]> {
    let entry = tar.lstat(&tar.resolve(&format!("{rel}/.")))?;
    if entry.kind != EntryKind::File {
        return None;
    }
    let content = tar.content(entry);
    copy::is_archive_head(&content[..content.len().min(512)]).then_some(content)
}

/// The entries below the directory `rel` copied into `to`, by name order. As the copy from
/// the extracted directory did, `.dockerignore` does not apply inside a copied directory
/// (the CLI leaves ignored files out of the context it sends).
fn copy_dir_contents(
    tar: &ContextTar,
    rel: &str,
    to: &Path,
    options: CopyOptions,
) -> Result<(), BuildError> {
    for name in tar.children(rel) {
        let child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        copy_entry(tar, &child, &to.join(name), options)?;
    }
    Ok(())
}

/// Copies the entry at `rel` (recursively for directories) to the host path `to`.
fn copy_entry(
    tar: &ContextTar,
    rel: &str,
    to: &Path,
    options: CopyOptions,
) -> Result<(), BuildError> {
    let entry = tar.lstat(rel).ok_or_else(|| BuildError::Io {
        op: format!("stat {rel} in the build context"),
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    copy::clear_target(to, entry.kind == EntryKind::Dir);
    let op = |what: &str| format!("{what} {}", to.display());
    match entry.kind {
        EntryKind::Symlink => {
            std::os::unix::fs::symlink(&entry.link, to).map_err(io(op("symlink")))?
        }
        EntryKind::Dir => {
            if !to.is_dir() {
                std::fs::create_dir(to).map_err(io(op("mkdir")))?;
            }
            copy_dir_contents(tar, rel, to, options)?;
        }
        EntryKind::File => write_file(tar, entry, to).map_err(io(op("write")))?,
    }
    copy::set_owner_and_mode(to, entry.kind == EntryKind::Symlink, entry.mode, options)
}

/// A new file at `to` with the entry's content and mtime (best effort, as the copy from
/// the extracted file set it).
fn write_file(tar: &ContextTar, entry: &TarEntry, to: &Path) -> std::io::Result<()> {
    let mut file = std::fs::File::create(to)?;
    file.write_all(tar.content(entry))?;
    let secs = std::time::Duration::from_secs(entry.mtime.unsigned_abs());
    let mtime = if entry.mtime >= 0 {
        std::time::UNIX_EPOCH.checked_add(secs)
    } else {
        std::time::UNIX_EPOCH.checked_sub(secs)
    };
    if let Some(mtime) = mtime {
        let _ = file.set_modified(mtime);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::sync::Arc;

    /// One path of a copied tree as `lstat` and a read see it.
    #[derive(Debug, PartialEq)]
    struct Node {
        path: String,
        mode: u32,
        uid: u32,
        gid: u32,
        /// Files and symlinks (a directory's size follows its history, not its entries).
        size: Option<u64>,
        content: Vec<u8>,
        link: String,
        /// Files: directories and symlinks are made at copy time on both paths.
        mtime: Option<i64>,
    }

    fn snapshot(root: &Path, rel: &str, out: &mut Vec<Node>) {
        let mut names: Vec<_> = std::fs::read_dir(root.join(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        for name in names {
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let host = root.join(&path);
            let meta = std::fs::symlink_metadata(&host).unwrap();
            let kind = meta.file_type();
            out.push(Node {
                path: path.clone(),
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
                size: (!kind.is_dir()).then_some(meta.len()),
                content: if kind.is_file() {
                    std::fs::read(&host).unwrap()
                } else {
                    Vec::new()
                },
                link: if kind.is_symlink() {
                    std::fs::read_link(&host).unwrap().display().to_string()
                } else {
                    String::new()
                },
                mtime: kind.is_file().then(|| meta.mtime()),
            });
            if kind.is_dir() {
                snapshot(root, &path, out);
            }
        }
    }

    /// A layer with something to merge into or replace: a directory with a file and a
    /// subdirectory, and a symlink to it.
    fn layer() -> tempfile::TempDir {
        let layer = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(layer.path().join("existing/app")).unwrap();
        std::fs::write(layer.path().join("existing/a.txt"), "old").unwrap();
        // A fixed mtime: the two layers a case compares are made at different instants.
        std::fs::File::options()
            .write(true)
            .open(layer.path().join("existing/a.txt"))
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
            .unwrap();
        std::os::unix::fs::symlink("/existing", layer.path().join("lnk")).unwrap();
        layer
    }

    /// `COPY`/`ADD` cases: sources, destination, `--chmod`, ADD.
    const CASES: &[(&[&str], &str, Option<u32>, bool)] = &[
        (&["."], "/existing/", None, false),
        (&["."], "/fresh", None, false),
        (&["src"], "/app", None, false),
        (&["src/"], "/existing/app/", None, false),
        (&["./src/a.txt"], "/existing/", None, false),
        (&["src/a.txt"], "/renamed", None, false),
        (&["src/a.txt"], "/existing", None, false),
        (&["src/a.txt"], "/existing/a.txt", None, false),
        (&["src/a.txt"], "/lnk/via/", None, false),
        (&["src/*"], "/w/", None, false),
        (&["src/*.txt", "run.sh", "setuid"], "/multi/", None, false),
        (&["*"], "/all/", None, false),
        (&["s?c/a.*"], "/q/", None, false),
        (&["src/*/deep"], "/d/", None, false),
        (&["hard", "src/sub/hardlink"], "/h/", None, false),
        (&["abs"], "/abs", None, false),
        (&["abs/a.txt"], "/x/", None, false),
        (&["rel"], "/r", None, false),
        (&["implicit"], "/imp", None, false),
        (&["implicit/dir/f"], "/imp2/", None, false),
        (&["empty"], "/e", None, false),
        (&["empty"], "/existing/e/", None, false),
        (&["run.sh"], "/bin/", Some(0o750), false),
        (&["src"], "/c", Some(0o4711), false),
        (&["pkg.tar.gz"], "/copied/", None, false),
        (&["pkg.tar.gz"], "/x/", None, true),
        (&["src/plain.tar"], "/y", None, true),
        (&["pkg.link"], "/l/", None, true),
        (&["*.link", "*.gz"], "/wl/", None, true),
        (&["src"], "/added", Some(0o700), true),
        (&["."], "/whole/", None, true),
        (&["run.sh"], "/a/", None, true),
    ];

    #[test]
    fn copy_from_the_tar_writes_the_tree_extract_then_copy_wrote() {
        let tar = Arc::new(
            ContextTar::new(crate::context_tar::tests::context_tar())
                .unwrap()
                .unwrap(),
        );
        let extracted = tempfile::tempdir().unwrap();
        let old = SourceRoot::context_tar(extracted.path(), "Dockerfile", tar.clone()).unwrap();
        old.materialize().unwrap();
        let in_memory = tempfile::tempdir().unwrap();
        let new = SourceRoot::context_tar(in_memory.path(), "Dockerfile", tar.clone()).unwrap();
        let me = std::fs::metadata("/proc/self").unwrap();
        let mut untouched = Vec::new();
        snapshot(layer().path(), "", &mut untouched);
        let mut owners = vec![(me.uid(), me.gid())];
        if me.uid() == 0 {
            owners.push((4321, 8765));
        }
        for (uid, gid) in owners {
            for (patterns, dest, chmod, extract) in CASES {
                let case = format!("{patterns:?} -> {dest} chmod {chmod:?} add {extract} {uid}");
                let options = CopyOptions {
                    uid,
                    gid,
                    chmod: *chmod,
                    extract: *extract,
                };
                let sources = |root: &SourceRoot| -> Vec<Source> {
                    patterns
                        .iter()
                        .flat_map(|p| root.resolve(p).unwrap())
                        .collect()
                };
                let (want, got) = (layer(), layer());
                let copied_old = copy::copy_sources(want.path(), &sources(&old), dest, options);
                let copied_new =
                    copy_sources(got.path(), &new, &tar, &sources(&new), dest, options);
                // Without root, making a destination directory (owned by root) fails alike.
                let text = |r: Result<(), BuildError>, root: &Path| {
                    r.map_err(|e| e.to_string().replace(&root.display().to_string(), "<root>"))
                };
                let copied = text(copied_old, want.path());
                assert_eq!(copied, text(copied_new, got.path()), "{case}");
                let (mut want_tree, mut got_tree) = (Vec::new(), Vec::new());
                snapshot(want.path(), "", &mut want_tree);
                snapshot(got.path(), "", &mut got_tree);
                if copied.is_ok() {
                    assert_ne!(want_tree, untouched, "{case} copied something");
                }
                for (w, g) in want_tree.iter().zip(&got_tree) {
                    assert_eq!(w, g, "{case}");
                }
                assert_eq!(want_tree.len(), got_tree.len(), "{case}");
            }
        }
        assert!(
            std::fs::read_dir(in_memory.path())
                .unwrap()
                .next()
                .is_none(),
            "the copies from the tar wrote nothing into the context directory"
        );
    }
}
