//! Writing COPY/ADD sources into a layer as Docker's classic builder does: directories copy
//! their contents, a file goes into a destination ending in `/` (or an existing directory)
//! under its own name, everything is owned by the `--chown` identity (root by default),
//! `--chmod` sets modes, ADD extracts local tar archives. Every destination is resolved
//! inside the layer root (symlinks in the image cannot point the copy outside it).

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::context::Source;
use crate::BuildError;

/// Owner and mode applied to copied files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyOptions {
    pub uid: u32,
    pub gid: u32,
    pub chmod: Option<u32>,
    /// ADD: extract local archives.
    pub extract: bool,
}

pub(crate) fn io(op: String) -> impl Fn(std::io::Error) -> BuildError {
    move |source| BuildError::Io {
        op: op.clone(),
        source,
    }
}

/// Resolves `path` (absolute, inside the container) to a host path inside `root`, following
/// symlinks of every component but the last within the root.
pub fn resolve_in_root(root: &Path, path: &str) -> PathBuf {
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == "." {
            continue;
        }
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate: PathBuf = root.join(resolved.join("/")).join(&part);
        let is_last = pending.is_empty();
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() && !is_last && links < 40 => {
                links += 1;
                let Ok(target) = std::fs::read_link(&candidate) else {
                    resolved.push(part);
                    continue;
                };
                if target.is_absolute() {
                    resolved.clear();
                }
                for c in target.components().rev() {
                    if let Component::Normal(s) = c {
                        pending.push(s.to_string_lossy().to_string());
                    } else if c == Component::ParentDir {
                        pending.push("..".into());
                    }
                }
            }
            _ => resolved.push(part),
        }
    }
    root.join(resolved.join("/"))
}

/// Creates `path` and its missing parents inside `root` (mode 0755, owned by uid/gid).
pub fn mkdir_all(root: &Path, path: &str, uid: u32, gid: u32) -> Result<PathBuf, BuildError> {
    let mut current = String::new();
    for part in path.split('/').filter(|c| !c.is_empty()) {
        current.push('/');
        current.push_str(part);
        let host = resolve_in_root(root, &current);
        let host = if std::fs::symlink_metadata(&host).is_ok_and(|m| m.file_type().is_symlink()) {
            resolve_in_root(root, &format!("{current}/."))
        } else {
            host
        };
        if !host.exists() {
            std::fs::create_dir(&host).map_err(io(format!("mkdir {current}")))?;
            std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755))
                .map_err(io(format!("chmod {current}")))?;
            std::os::unix::fs::lchown(&host, Some(uid), Some(gid))
                .map_err(io(format!("chown {current}")))?;
        }
    }
    Ok(resolve_in_root(root, &format!("{path}/.")))
}

/// Copies `sources` to `dest` (absolute, `/`-terminated when it must be a directory).
pub fn copy_sources(
    root: &Path,
    sources: &[Source],
    dest: &str,
    options: CopyOptions,
) -> Result<(), BuildError> {
    let dest_is_dir_hint = dest.ends_with('/');
    let dest_exists_dir = resolve_in_root(root, &format!("{dest}/.")).is_dir();
    for source in sources {
        if source.is_dir {
            let target = dir_target(root, dest, options)?;
            copy_dir_contents(&source.path, &target, options)?;
        } else if options.extract && is_archive(&source.path) {
            let target = mkdir_all(root, dest, 0, 0)?;
            extract(&source.path, &target)?;
        } else {
            let to = file_target(
                root,
                source,
                dest,
                dest_is_dir_hint || dest_exists_dir,
                options,
            )?;
            copy_entry(&source.path, &to, options)?;
        }
    }
    Ok(())
}

/// The directory a source directory's contents are copied into, made when missing: its
/// missing parents as root's, itself (when new) as the copy's owner, as moby's
/// `copyDirectory` chowns the destination root only when it made it.
pub(crate) fn dir_target(
    root: &Path,
    dest: &str,
    options: CopyOptions,
) -> Result<PathBuf, BuildError> {
    let existed = resolve_in_root(root, &format!("{dest}/.")).is_dir();
    let target = mkdir_all(root, dest, 0, 0)?;
    if !existed {
        std::os::unix::fs::lchown(&target, Some(options.uid), Some(options.gid))
            .map_err(io(format!("chown {dest}")))?;
    }
    Ok(target)
}

/// Where a source that is not a directory lands, its parent made: `dest/<name>` when the
/// destination is a directory, else `dest` itself. Parents it makes are owned by the copy's
/// owner (`--chown`, else root), as moby's `copyFile` makes them.
pub(crate) fn file_target(
    root: &Path,
    source: &Source,
    dest: &str,
    into_dir: bool,
    options: CopyOptions,
) -> Result<PathBuf, BuildError> {
    let name = Path::new(&source.rel)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let file_dest = if into_dir {
        format!("{}/{name}", dest.trim_end_matches('/'))
    } else {
        dest.to_string()
    };
    let (parent, base) = file_dest
        .rsplit_once('/')
        .unwrap_or(("", file_dest.as_str()));
    let dir = mkdir_all(root, parent, options.uid, options.gid)?;
    Ok(dir.join(base))
}

/// Clears `to` for a copy: whatever is there goes, unless both are directories (merged).
pub(crate) fn clear_target(to: &Path, source_is_dir: bool) {
    if let Ok(existing) = std::fs::symlink_metadata(to) {
        if !(existing.is_dir() && source_is_dir) {
            let _ = if existing.is_dir() {
                std::fs::remove_dir_all(to)
            } else {
                std::fs::remove_file(to)
            };
        }
    }
}

/// Gives a copied entry the `--chown` owner, then its mode (`--chmod`, else the source's):
/// in that order, as chown clears set-id bits. Symlinks keep their mode.
pub(crate) fn set_owner_and_mode(
    to: &Path,
    is_symlink: bool,
    source_mode: u32,
    options: CopyOptions,
) -> Result<(), BuildError> {
    let op = |what: &str| format!("{what} {}", to.display());
    std::os::unix::fs::lchown(to, Some(options.uid), Some(options.gid)).map_err(io(op("chown")))?;
    if !is_symlink {
        let mode = options.chmod.unwrap_or(source_mode & 0o7777);
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
            .map_err(io(op("chmod")))?;
    }
    Ok(())
}

fn copy_dir_contents(src: &Path, dst: &Path, options: CopyOptions) -> Result<(), BuildError> {
    let entries = std::fs::read_dir(src).map_err(io(format!("reading {}", src.display())))?;
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        copy_entry(&entry.path(), &dst.join(entry.file_name()), options)?;
    }
    Ok(())
}

/// Copies one entry (recursively for directories) to the host path `to`.
fn copy_entry(from: &Path, to: &Path, options: CopyOptions) -> Result<(), BuildError> {
    let meta = std::fs::symlink_metadata(from).map_err(io(format!("stat {}", from.display())))?;
    let kind = meta.file_type();
    clear_target(to, kind.is_dir());
    let op = |what: &str| format!("{what} {}", to.display());
    if kind.is_symlink() {
        let target = std::fs::read_link(from).map_err(io(op("readlink")))?;
        std::os::unix::fs::symlink(target, to).map_err(io(op("symlink")))?;
    } else if kind.is_dir() {
        if !to.is_dir() {
            std::fs::create_dir(to).map_err(io(op("mkdir")))?;
        }
        copy_dir_contents(from, to, options)?;
    } else if kind.is_file() {
        std::fs::copy(from, to).map_err(io(op("copy")))?;
        let file = std::fs::File::options()
            .write(true)
            .open(to)
            .map_err(io(op("open")))?;
        if let Ok(modified) = meta.modified() {
            let _ = file.set_modified(modified);
        }
    } else {
        return Ok(());
    }
    set_owner_and_mode(to, kind.is_symlink(), meta.mode(), options)
}

/// Whether ADD would extract `path`: a tar, plain or gzip-compressed.
fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let n = file.read(&mut head).unwrap_or(0);
    is_archive_head(&head[..n])
}

/// Whether a file starting with `head` (its first 512 bytes or fewer) is an archive ADD
/// extracts: a gzip stream, or a tar whose first header has the `ustar` magic.
pub(crate) fn is_archive_head(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b]) || head.get(257..262) == Some(b"ustar")
}

fn extract(path: &Path, target: &Path) -> Result<(), BuildError> {
    let op = || format!("extracting {}", path.display());
    let mut file = std::fs::File::open(path).map_err(io(op()))?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(io(op()))?;
    let file = std::fs::File::open(path).map_err(io(op()))?;
    let reader: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    unpack_archive(reader, target).map_err(io(op()))
}

/// Unpacks an ADD archive (already decompressed) into `target` with its modes and owners.
/// Directories get their header's mtime last, once nothing more is written into them, as
/// moby's `Untar` does (tar's own `unpack` leaves them at the time of extraction).
pub(crate) fn unpack_archive(reader: impl Read, target: &Path) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_overwrite(true);
    if target.symlink_metadata().is_err() {
        std::fs::create_dir_all(target)?;
    }
    let target = &target
        .canonicalize()
        .unwrap_or_else(|_| target.to_path_buf());
    let mut times = Vec::new();
    unpack_dirs_last(
        &mut archive,
        target,
        |_| Ok(()),
        |entry, unpacked| {
            if unpacked && entry.header().entry_type() == tar::EntryType::Directory {
                if let (Ok(mtime), Some(rel)) =
                    (entry.header().mtime(), archive_rel(&entry.path()?))
                {
                    times.push((target.join(rel), mtime));
                }
            }
            Ok(())
        },
    )?;
    for (path, mtime) in times {
        let time = rustix::fs::Timespec {
            tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
            tv_nsec: 0,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            &path,
            &rustix::fs::Timestamps {
                last_access: time,
                last_modification: time,
            },
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    Ok(())
}

/// Extracts `archive` into `target` entry by entry as tar's `unpack` does: directories
/// after everything else, deepest first, so a read-only directory does not stop its
/// children from being written. `before` sees each entry in archive order before it is
/// extracted, `after` each one once extracted (with whether `unpack_in` wrote it).
pub fn unpack_dirs_last<R: Read>(
    archive: &mut tar::Archive<R>,
    target: &Path,
    mut before: impl FnMut(&mut tar::Entry<'_, R>) -> std::io::Result<()>,
    mut after: impl FnMut(&mut tar::Entry<'_, R>, bool) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut directories = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        before(&mut entry)?;
        if entry.header().entry_type() == tar::EntryType::Directory {
            directories.push(entry);
        } else {
            let unpacked = entry.unpack_in(target)?;
            after(&mut entry, unpacked)?;
        }
    }
    directories.sort_by(|a, b| b.path_bytes().cmp(&a.path_bytes()));
    for mut dir in directories {
        let unpacked = dir.unpack_in(target)?;
        after(&mut dir, unpacked)?;
    }
    Ok(())
}

/// Where tar's `unpack_in` puts an entry named `path`, relative to the destination
/// (None for a path it skips, one with `..`).
fn archive_rel(path: &Path) -> Option<PathBuf> {
    let mut rel = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(name) => rel.push(name),
            Component::ParentDir => return None,
            _ => {}
        }
    }
    Some(rel)
}

/// `--chown` resolved against the layer's /etc/passwd and /etc/group: `user[:group]`,
/// names or numbers; without a group the group is looked up by the user part (as the
/// classic builder does).
pub fn parse_chown(root: &Path, chown: &str) -> Result<(u32, u32), BuildError> {
    if chown.is_empty() {
        return Ok((0, 0));
    }
    let (user, group) = chown.split_once(':').unwrap_or((chown, chown));
    let uid = lookup_id(root, "/etc/passwd", user)
        .ok_or_else(|| BuildError::Copy(format!("unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}")))?;
    let gid = lookup_id(root, "/etc/group", group)
        .ok_or_else(|| BuildError::Copy(format!("unable to convert uid/gid chown string to host mapping: can't find gid for group {group}: no such group: {group}")))?;
    Ok((uid, gid))
}

fn lookup_id(root: &Path, file: &str, name: &str) -> Option<u32> {
    if let Ok(id) = name.parse::<u32>() {
        return Some(id);
    }
    let text = std::fs::read_to_string(resolve_in_root(root, file)).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let entry = fields.next()?;
        let id = fields.nth(1)?;
        (entry == name).then(|| id.parse().ok()).flatten()
    })
}

/// The host uid/gid of `path` (tests).
pub fn owner(path: &Path) -> Option<(u32, u32)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.uid(), m.gid()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::SourceRoot;

    #[test]
    fn symlinks_in_the_layer_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", root.path().join("escape")).unwrap();
        std::os::unix::fs::symlink("../../..", root.path().join("up")).unwrap();
        assert_eq!(
            resolve_in_root(root.path(), "/escape/passwd"),
            root.path().join("etc/passwd")
        );
        assert_eq!(resolve_in_root(root.path(), "/up/x"), root.path().join("x"));
    }

    #[test]
    fn file_goes_under_its_name_only_into_directories() {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::write(ctx.path().join("a.txt"), "a").unwrap();
        std::fs::create_dir_all(ctx.path().join("src/sub")).unwrap();
        std::fs::write(ctx.path().join("src/sub/b"), "b").unwrap();
        let sources = SourceRoot::tree(ctx.path());
        let root = tempfile::tempdir().unwrap();
        let opts = CopyOptions {
            uid: nix_uid(),
            gid: nix_gid(),
            chmod: None,
            extract: false,
        };
        let a = sources.resolve("a.txt").unwrap();
        copy_sources(root.path(), &a, "/dir/", opts).unwrap();
        copy_sources(root.path(), &a, "/renamed", opts).unwrap();
        copy_sources(root.path(), &sources.resolve("src").unwrap(), "/app", opts).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.path().join("dir/a.txt")).unwrap(),
            "a"
        );
        assert_eq!(
            std::fs::read_to_string(root.path().join("renamed")).unwrap(),
            "a"
        );
        // A directory copies its contents, not itself.
        assert_eq!(
            std::fs::read_to_string(root.path().join("app/sub/b")).unwrap(),
            "b"
        );
        assert!(!root.path().join("app/src").exists());
    }

    #[test]
    fn chmod_sets_the_mode_and_add_extracts_tars() {
        let ctx = tempfile::tempdir().unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o644);
        header.set_uid(nix_uid() as u64);
        header.set_gid(nix_gid() as u64);
        header.set_cksum();
        builder
            .append_data(&mut header, "inner/x", &b"hi"[..])
            .unwrap();
        std::fs::write(ctx.path().join("t.tar"), builder.into_inner().unwrap()).unwrap();
        std::fs::write(ctx.path().join("run.sh"), "#!/bin/sh").unwrap();
        let sources = SourceRoot::tree(ctx.path());
        let root = tempfile::tempdir().unwrap();
        let opts = CopyOptions {
            uid: nix_uid(),
            gid: nix_gid(),
            chmod: Some(0o700),
            extract: true,
        };
        copy_sources(
            root.path(),
            &sources.resolve("run.sh").unwrap(),
            "/bin/",
            opts,
        )
        .unwrap();
        let mode = std::fs::metadata(root.path().join("bin/run.sh"))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        copy_sources(
            root.path(),
            &sources.resolve("t.tar").unwrap(),
            "/opt",
            opts,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(root.path().join("opt/inner/x")).unwrap(),
            "hi"
        );
    }

    #[test]
    fn chown_names_resolve_in_the_layer() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "app:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(root.path().join("etc/group"), "staff:x:50:\napp:x:1000:\n").unwrap();
        assert_eq!(parse_chown(root.path(), "app").unwrap(), (1000, 1000));
        assert_eq!(parse_chown(root.path(), "app:staff").unwrap(), (1000, 50));
        assert_eq!(parse_chown(root.path(), "7:8").unwrap(), (7, 8));
        assert!(parse_chown(root.path(), "nobody").is_err());
    }

    fn nix_uid() -> u32 {
        std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(0)
    }

    fn nix_gid() -> u32 {
        std::fs::metadata("/proc/self")
            .map(|m| m.gid())
            .unwrap_or(0)
    }

    #[test]
    fn add_keeps_the_archives_directory_mtimes() {
        let me = std::fs::metadata("/proc/self").unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |kind: tar::EntryType, path: &str, mtime: u64, data: &[u8]| {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(kind);
            header.set_mode(if kind == tar::EntryType::Directory {
                0o755
            } else {
                0o644
            });
            header.set_mtime(mtime);
            header.set_uid(me.uid().into());
            header.set_gid(me.gid().into());
            header.set_size(data.len() as u64);
            header.set_cksum();
            builder.append_data(&mut header, path, data).unwrap();
        };
        add(tar::EntryType::Directory, "./", 1_500_000_000, b"");
        add(tar::EntryType::Directory, "pkg/", 1_600_000_000, b"");
        add(tar::EntryType::Directory, "pkg/bin/", 1_600_000_100, b"");
        add(tar::EntryType::Regular, "pkg/bin/tool", 1_600_000_200, b"x");
        add(tar::EntryType::Regular, "pkg/readme", 1_600_000_300, b"r");
        let data = builder.into_inner().unwrap();
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("opt");
        unpack_archive(&data[..], &target).unwrap();
        let mtime = |rel: &str| std::fs::metadata(target.join(rel)).unwrap().mtime();
        assert_eq!(mtime(""), 1_500_000_000, "the destination takes ./'s time");
        assert_eq!(mtime("pkg"), 1_600_000_000);
        assert_eq!(mtime("pkg/bin"), 1_600_000_100);
        assert_eq!(mtime("pkg/bin/tool"), 1_600_000_200);
        assert_eq!(std::fs::read(target.join("pkg/readme")).unwrap(), b"r");
    }
}
