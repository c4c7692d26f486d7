//! A build context kept as its tar in memory with an index of its entries, so COPY/ADD
//! sources resolve and hash (the cache key) and are copied into layers (`copy_tar.rs`)
//! without writing the context to disk; it is extracted once, only for a step that needs
//! the files themselves (`RUN --mount=type=bind` of the context).
//!
//! The index models only what extraction would produce from plain tars (files, directories,
//! symlinks, hard links to earlier files): anything else (devices, fifos, `..` paths, a path
//! below a file or symlink, the same path twice) makes [`ContextTar::new`] answer `None`, and
//! the caller extracts the context up front as before.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use crate::tarsum;

const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

/// What an entry is after extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// One extracted path as `lstat` would see it (mode with its file-type bits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    pub kind: EntryKind,
    pub mode: u32,
    /// The content's position in the tar (files).
    data: (usize, usize),
    /// The link target (symlinks).
    pub link: String,
    /// The mtime extraction gives a file (seconds; the header's, 0 read as 1 as the tar
    /// crate writes it); a hard link has its target's.
    pub mtime: i64,
    /// The entry's own header as the client sent it, which dockerd tarsums for the COPY
    /// digest (None for a directory the tar only implies).
    pub header: Option<Box<tarsum::Header>>,
}

/// The tar's bytes: read into memory, or a spooled file mapped read-only.
enum Backing {
    Owned(Vec<u8>),
    Mapped(Mapped),
}

impl std::ops::Deref for Backing {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Backing::Owned(data) => data,
            Backing::Mapped(mapped) => mapped.bytes(),
        }
    }
}

/// A read-only private mapping of a whole file.
struct Mapped {
    ptr: *mut std::ffi::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and never changed after creation; sharing `&[u8]` views
// of it between threads is as safe as sharing a `Vec<u8>`'s.
unsafe impl Send for Mapped {}
// SAFETY: as above: only shared reads.
unsafe impl Sync for Mapped {}

impl Mapped {
    fn new(file: &std::fs::File) -> std::io::Result<Mapped> {
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| std::io::Error::other("the context is too large to map"))?;
        if len == 0 {
            return Ok(Mapped {
                ptr: std::ptr::null_mut(),
                len: 0,
            });
        }
        // SAFETY: a fresh mapping at an address the kernel chooses; the file is the build's
        // private spool (unlinked by the caller, written by nobody once mapped), so its
        // pages cannot change or vanish under the mapping.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ,
                rustix::mm::MapFlags::PRIVATE,
                file,
                0,
            )
        }?;
        Ok(Mapped { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: the mapping made in `new`, unmapped once; no view outlives `self`.
            let _ = unsafe { rustix::mm::munmap(self.ptr, self.len) };
        }
    }
}

/// The context tar (uncompressed) and its index.
pub struct ContextTar {
    data: Backing,
    entries: BTreeMap<String, TarEntry>,
    /// Child names of each directory (`""` is the root), sorted as `read_dir` + sort.
    children: BTreeMap<String, BTreeSet<String>>,
    extracted: OnceLock<Result<(), String>>,
}

impl std::fmt::Debug for ContextTar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextTar")
            .field("bytes", &self.data.len())
            .field("entries", &self.entries.len())
            .finish()
    }
}

/// The umask extraction's implicit parent directories get (`create_dir_all`).
fn process_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// The path tar's `unpack_in` writes an entry to, relative to the destination; None for
/// a path it would refuse (`..`).
fn entry_rel(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(s) => parts.push(s.to_str()?.to_string()),
            std::path::Component::ParentDir => return None,
            _ => {}
        }
    }
    Some(parts.join("/"))
}

/// The entries and directory listings of `data`; None when it holds something the index
/// does not model.
fn index(data: &[u8]) -> std::io::Result<Option<(Entries, Children)>> {
    let implicit_dir = S_IFDIR | (0o777 & !process_umask());
    let mut entries: BTreeMap<String, TarEntry> = BTreeMap::new();
    let mut explicit: BTreeSet<String> = BTreeSet::new();
    let mut children: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    children.insert(String::new(), BTreeSet::new());
    let mut archive = tar::Archive::new(data);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type() == tar::EntryType::XGlobalHeader {
            continue;
        }
        let raw = raw_header(&mut entry)?;
        let header = entry.header();
        let kind = header.entry_type();
        let Some(rel) = entry_rel(&entry.path()?) else {
            return Ok(None);
        };
        if rel.is_empty() {
            // `./`: extraction skips it, the context directory keeps its own mode.
            continue;
        }
        let mode = header.mode()? & 0o7777;
        // tar's `unpack` sets a file's times from the header, 0 taken as 1 (and none when
        // the field does not parse: not modelled).
        let mtime = match header.mtime() {
            Ok(0) => 1,
            Ok(secs) => secs as i64,
            Err(_) => return Ok(None),
        };
        let link = || -> std::io::Result<Option<String>> {
            Ok(entry
                .link_name()?
                .and_then(|l| l.to_str().map(str::to_string)))
        };
        // tar's `unpack` makes a directory of a pre-POSIX file entry whose name ends in `/`.
        let old_style_dir = header.as_ustar().is_none() && entry.path_bytes().ends_with(b"/");
        let indexed = match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous if old_style_dir => {
                return Ok(None)
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => TarEntry {
                kind: EntryKind::File,
                mode: S_IFREG | mode,
                data: (entry.raw_file_position() as usize, entry.size() as usize),
                link: String::new(),
                mtime,
                header: None,
            },
            tar::EntryType::Directory => TarEntry {
                kind: EntryKind::Dir,
                mode: S_IFDIR | mode,
                data: (0, 0),
                link: String::new(),
                mtime,
                header: None,
            },
            tar::EntryType::Symlink => match link()? {
                Some(target) => TarEntry {
                    kind: EntryKind::Symlink,
                    mode: S_IFLNK | 0o777,
                    data: (0, 0),
                    link: target,
                    mtime,
                    header: None,
                },
                None => return Ok(None),
            },
            tar::EntryType::Link => {
                let target = link()?.and_then(|l| entry_rel(Path::new(&l)));
                match target.and_then(|t| entries.get(&t)) {
                    Some(e) if e.kind == EntryKind::File => e.clone(),
                    _ => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        let mut indexed = indexed;
        indexed.header = Some(Box::new(raw));
        if !explicit.insert(rel.clone()) {
            return Ok(None);
        }
        // Parents: implicit ones are made by extraction; a file or link on the way
        // would make extraction fail or write through it.
        let mut parent = String::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            children
                .entry(parent.clone())
                .or_default()
                .insert(part.to_string());
            if i + 1 == parts.len() {
                break;
            }
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            match entries.get(&parent) {
                Some(e) if e.kind != EntryKind::Dir => return Ok(None),
                Some(_) => {}
                None => {
                    entries.insert(
                        parent.clone(),
                        TarEntry {
                            kind: EntryKind::Dir,
                            mode: implicit_dir,
                            data: (0, 0),
                            link: String::new(),
                            mtime: 0,
                            header: None,
                        },
                    );
                }
            }
        }
        if let Some(old) = entries.get(&rel) {
            // An implicit directory made explicit keeps its children.
            if old.kind == EntryKind::Dir && indexed.kind != EntryKind::Dir {
                return Ok(None);
            }
        }
        if indexed.kind == EntryKind::Dir {
            children.entry(rel.clone()).or_default();
        }
        entries.insert(rel, indexed);
    }
    Ok(Some((entries, children)))
}

/// The fields of `entry`'s header tarsum reads, as Go's tar reader gives them: the name
/// and link as written (PAX and GNU long names applied), a V7 regular file's type `0` (`5`
/// when its name ends in `/`), xattrs from PAX `SCHILY.xattr.` records.
pub fn raw_header<R: std::io::Read>(
    entry: &mut tar::Entry<'_, R>,
) -> std::io::Result<tarsum::Header> {
    let mut xattrs = Vec::new();
    let (mut uid, mut gid) = (None, None);
    if let Some(pax) = entry.pax_extensions()? {
        for record in pax.flatten() {
            let (Ok(key), value) = (record.key(), record.value_bytes()) else {
                continue;
            };
            let number = || std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                xattrs.push((name.to_string(), value.to_vec()));
            } else if key == "uid" {
                uid = number();
            } else if key == "gid" {
                gid = number();
            }
        }
    }
    xattrs.sort();
    let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let link = entry
        .link_name_bytes()
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .unwrap_or_default();
    let header = entry.header();
    let typeflag = match header.entry_type().as_byte() {
        0 if name.ends_with('/') => b'5',
        0 => b'0',
        other => other,
    };
    Ok(tarsum::Header {
        mode: header.mode().map(u64::from).unwrap_or_default(),
        uid: uid.unwrap_or_else(|| header.uid().unwrap_or_default()),
        gid: gid.unwrap_or_else(|| header.gid().unwrap_or_default()),
        size: entry.size(),
        typeflag,
        link,
        devmajor: header
            .device_major()
            .ok()
            .flatten()
            .map(u64::from)
            .unwrap_or_default(),
        devminor: header
            .device_minor()
            .ok()
            .flatten()
            .map(u64::from)
            .unwrap_or_default(),
        xattrs,
        name,
    })
}

/// The headers of a context extracted to disk (too big to keep in memory, or a tar the
/// index does not model), by the path extraction wrote: the COPY digests of its files come
/// from these, as from an indexed tar's. The first header of a path counts, as moby's
/// tarsum lookup takes the first.
#[derive(Debug, Default)]
pub struct ContextHeaders(std::collections::HashMap<String, tarsum::Header>);

impl ContextHeaders {
    /// Records `entry`'s header (before it is extracted); entries extraction skips (`..`)
    /// are left out.
    pub fn record<R: std::io::Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
    ) -> std::io::Result<()> {
        if entry.header().entry_type() == tar::EntryType::XGlobalHeader {
            return Ok(());
        }
        let Some(rel) = entry_rel(&entry.path()?) else {
            return Ok(());
        };
        if rel.is_empty() || self.0.contains_key(&rel) {
            return Ok(());
        }
        let header = raw_header(entry)?;
        self.0.insert(rel, header);
        Ok(())
    }

    pub fn get(&self, rel: &str) -> Option<&tarsum::Header> {
        self.0.get(rel)
    }
}

type Entries = BTreeMap<String, TarEntry>;
type Children = BTreeMap<String, BTreeSet<String>>;

impl ContextTar {
    /// Indexes `data` (an uncompressed tar); `Ok(Err(data))` gives it back when it holds
    /// something the index does not model, an error when it is not a valid tar.
    pub fn new(data: Vec<u8>) -> std::io::Result<Result<ContextTar, Vec<u8>>> {
        match index(&data)? {
            Some((entries, children)) => Ok(Ok(ContextTar {
                data: Backing::Owned(data),
                entries,
                children,
                extracted: OnceLock::new(),
            })),
            None => Ok(Err(data)),
        }
    }

    /// Indexes the tar in `file` (a context too big to read into memory, spooled to a
    /// file nobody else writes), mapped read-only; `Ok(None)` when it holds something the
    /// index does not model.
    pub fn map(file: &std::fs::File) -> std::io::Result<Option<ContextTar>> {
        let mapped = Mapped::new(file)?;
        Ok(
            index(mapped.bytes())?.map(|(entries, children)| ContextTar {
                data: Backing::Mapped(mapped),
                entries,
                children,
                extracted: OnceLock::new(),
            }),
        )
    }

    /// The entry at `rel` (no symlink followed); the root is a directory.
    pub fn lstat(&self, rel: &str) -> Option<&TarEntry> {
        static ROOT: TarEntry = TarEntry {
            kind: EntryKind::Dir,
            mode: S_IFDIR | 0o755,
            data: (0, 0),
            link: String::new(),
            mtime: 0,
            header: None,
        };
        if rel.is_empty() {
            return Some(&ROOT);
        }
        self.entries.get(rel)
    }

    /// Where the last file data ends in the tar (0 without files).
    pub fn data_end(&self) -> usize {
        self.entries
            .values()
            .map(|e| e.data.0.saturating_add(e.data.1))
            .max()
            .unwrap_or(0)
    }

    /// A file's content.
    pub fn content(&self, entry: &TarEntry) -> &[u8] {
        let (start, len) = entry.data;
        start
            .checked_add(len)
            .and_then(|end| self.data.get(start..end))
            .unwrap_or_default()
    }

    /// Names below the directory `rel`, sorted.
    pub fn children(&self, rel: &str) -> impl Iterator<Item = &String> {
        self.children.get(rel).into_iter().flatten()
    }

    /// `path` resolved as [`crate::copy::resolve_in_root`] resolves it on disk: every
    /// symlink but the last component's followed, inside the root.
    pub fn resolve(&self, path: &str) -> String {
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
            let mut candidate = resolved.clone();
            candidate.push(part.clone());
            let is_last = pending.is_empty();
            match self.lstat(&candidate.join("/")) {
                Some(e) if e.kind == EntryKind::Symlink && !is_last && links < 40 => {
                    links += 1;
                    if e.link.starts_with('/') {
                        resolved.clear();
                    }
                    for c in Path::new(&e.link).components().rev() {
                        match c {
                            std::path::Component::Normal(s) => {
                                pending.push(s.to_string_lossy().to_string())
                            }
                            std::path::Component::ParentDir => pending.push("..".into()),
                            _ => {}
                        }
                    }
                }
                _ => resolved.push(part),
            }
        }
        resolved.join("/")
    }

    /// Writes the context into `root` once (later calls wait for and repeat the first
    /// answer); the same extraction the engine did for every build before.
    pub fn extract(&self, root: &Path) -> Result<(), String> {
        self.extracted
            .get_or_init(|| {
                let mut archive = tar::Archive::new(&self.data[..]);
                archive.set_preserve_permissions(true);
                archive.set_overwrite(true);
                archive
                    .unpack(root)
                    .map_err(|e| format!("extracting the build context: {e}"))
            })
            .clone()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::context::SourceRoot;
    use sha2::{Digest as _, Sha256};
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    use std::sync::Arc;

    /// A tar.gz for ADD: a directory, an executable and a symlink, owned by the test's user
    /// (ADD keeps an archive's owners).
    fn archive_tar_gz() -> Vec<u8> {
        let me = std::fs::metadata("/proc/self").unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let mut entry = |kind: tar::EntryType, path: &str, mode: u32, data: &[u8]| {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(kind);
            header.set_size(data.len() as u64);
            header.set_mode(mode);
            header.set_mtime(1_600_000_000);
            header.set_uid(me.uid() as u64);
            header.set_gid(me.gid() as u64);
            if kind == tar::EntryType::Symlink {
                header.set_link_name("bin").unwrap();
            }
            header.set_cksum();
            builder.append_data(&mut header, path, data).unwrap();
        };
        entry(tar::EntryType::Directory, "pkg/", 0o750, b"");
        entry(tar::EntryType::Regular, "pkg/bin", 0o755, b"#!/bin/sh\n");
        entry(tar::EntryType::Symlink, "pkg/link", 0o777, b"");
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }

    /// A context with nested directories, modes, in- and out-of-context symlinks, hard
    /// links, an empty directory, archives, a .dockerignore'd file, files with and without
    /// an mtime and one whose parent directory has no entry, as a client could send it.
    pub(crate) fn context_tar() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/sub/deep")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join("src/a.txt"), "a").unwrap();
        std::fs::File::options()
            .write(true)
            .open(root.join("src/a.txt"))
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000))
            .unwrap();
        std::fs::write(root.join("pkg.tar.gz"), archive_tar_gz()).unwrap();
        let mut plain = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&archive_tar_gz()[..]),
            &mut plain,
        )
        .unwrap();
        std::fs::write(root.join("src/plain.tar"), plain).unwrap();
        symlink("pkg.tar.gz", root.join("pkg.link")).unwrap();
        std::fs::write(root.join("setuid"), "s").unwrap();
        std::fs::set_permissions(root.join("setuid"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
        std::fs::write(root.join("src/a.b"), "dot").unwrap();
        std::fs::write(root.join("src/sub/deep/x"), "x".repeat(3000)).unwrap();
        std::fs::write(root.join("run.sh"), "#!/bin/sh").unwrap();
        std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::set_permissions(root.join("src/sub"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        std::fs::hard_link(root.join("src/a.txt"), root.join("hard")).unwrap();
        std::fs::write(root.join("skip.log"), "ignored").unwrap();
        std::fs::write(root.join(".dockerignore"), "*.log\n").unwrap();
        std::fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        symlink("/src", root.join("abs")).unwrap();
        symlink("src/a.txt", root.join("rel")).unwrap();
        symlink("/etc", root.join("hostetc")).unwrap();
        symlink("../../../etc/passwd", root.join("up")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        builder.append_dir_all(".", root).unwrap();
        // A file whose parent directory has no entry of its own.
        let mut header = tar::Header::new_gnu();
        header.set_size(4);
        header.set_mode(0o640);
        header.set_cksum();
        builder
            .append_data(&mut header, "implicit/dir/f", &b"impl"[..])
            .unwrap();
        // A hard link whose own mode and mtime extraction ignores (it links the inode).
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Link);
        header.set_size(0);
        header.set_mode(0o600);
        header.set_mtime(5);
        builder
            .append_link(&mut header, "src/sub/hardlink", "src/a.b")
            .unwrap();
        builder.into_inner().unwrap()
    }

    const PATTERNS: &[&str] = &[
        ".",
        "src",
        "src/",
        "./src/a.txt",
        "src/*",
        "*.txt",
        "src/*/deep",
        "run.sh",
        "hard",
        "abs",
        "abs/a.txt",
        "rel",
        "hostetc",
        "hostetc/passwd",
        "up",
        "loop",
        "skip.log",
        "missing",
        "implicit",
        "implicit/dir/f",
        "src/sub/hardlink",
        "empty",
        "pkg.link",
        "*",
        "s?c/a.*",
        "../x",
    ];

    #[test]
    fn tar_digests_come_from_the_headers_the_client_sent() {
        let tar = Arc::new(ContextTar::new(context_tar()).unwrap().unwrap());
        let lazy = tempfile::tempdir().unwrap();
        let indexed = SourceRoot::context_tar(lazy.path(), "Dockerfile", tar).unwrap();
        let hash = |pattern: &str| {
            let source = indexed.resolve(pattern).unwrap().remove(0);
            indexed.source_hash(&source).unwrap()
        };
        let file_header = tarsum::Header {
            name: "implicit/dir/f".into(),
            mode: 0o640,
            size: 4,
            typeflag: b'0',
            ..tarsum::Header::default()
        };
        let f = tarsum::sum(&file_header, b"impl");
        assert_eq!(hash("implicit/dir/f"), format!("file:{f}"));
        // Directories the tar only implies are named by their path, as moby's context
        // answers for a path it has no tarsum of.
        let mut sums = ["implicit".to_string(), "implicit/dir".to_string(), f];
        sums.sort();
        let dir = Sha256::digest(sums.join(",").as_bytes());
        assert_eq!(hash("implicit"), format!("dir:{dir:x}"));
        // A hard link is its own header (type 1, no size, no content), not its target's.
        let link = tarsum::Header {
            name: "src/sub/hardlink".into(),
            mode: 0o600,
            typeflag: b'1',
            link: "src/a.b".into(),
            ..tarsum::Header::default()
        };
        assert_eq!(
            hash("src/sub/hardlink"),
            format!("file:{}", tarsum::sum(&link, b""))
        );
        // The mode as written, file-type bits and all (tar's builder keeps st_mode's).
        let me = std::fs::metadata("/proc/self").unwrap();
        let run = tarsum::Header {
            name: "run.sh".into(),
            mode: 0o100755,
            uid: me.uid().into(),
            gid: me.gid().into(),
            size: 9,
            typeflag: b'0',
            ..tarsum::Header::default()
        };
        assert_eq!(
            hash("run.sh"),
            format!("file:{}", tarsum::sum(&run, b"#!/bin/sh"))
        );
    }

    #[test]
    fn tar_index_resolves_and_digests_like_the_extracted_context() {
        let data = context_tar();
        let tar = Arc::new(ContextTar::new(data.clone()).unwrap().unwrap());
        let extracted = tempfile::tempdir().unwrap();
        let unindexed = ContextTar::new(data.clone()).unwrap().unwrap();
        unindexed.extract(extracted.path()).unwrap();
        let on_disk = SourceRoot::context(extracted.path(), "Dockerfile").unwrap();
        // The same files on disk with the upload's headers recorded, as berthd keeps a
        // context too big for memory: the digests are the index's.
        let mut headers = ContextHeaders::default();
        let mut archive = tar::Archive::new(&data[..]);
        for entry in archive.entries().unwrap() {
            headers.record(&mut entry.unwrap()).unwrap();
        }
        let with_headers =
            SourceRoot::context_extracted(extracted.path(), "Dockerfile", Arc::new(headers))
                .unwrap();
        let lazy = tempfile::tempdir().unwrap();
        let indexed = SourceRoot::context_tar(lazy.path(), "Dockerfile", tar).unwrap();
        let rel_path = |root: &Path, p: &Path| p.strip_prefix(root).unwrap().to_path_buf();
        for pattern in PATTERNS {
            let want = on_disk.resolve(pattern);
            let got = indexed.resolve(pattern);
            match (&want, &got) {
                (Ok(want), Ok(got)) => {
                    assert_eq!(want.len(), got.len(), "{pattern}");
                    for (w, g) in want.iter().zip(got) {
                        assert_eq!(w.rel, g.rel, "{pattern}");
                        assert_eq!(w.is_dir, g.is_dir, "{pattern}");
                        assert_eq!(
                            rel_path(extracted.path(), &w.path),
                            rel_path(lazy.path(), &g.path),
                            "{pattern}"
                        );
                        // Without the headers the digests differ by design: the
                        // index's come from them (tar's builder writes st_mode's
                        // file-type bits, which an lstat-made header drops).
                        assert_eq!(
                            with_headers.source_hash(w).unwrap(),
                            indexed.source_hash(g).unwrap(),
                            "digest of {pattern}"
                        );
                    }
                }
                (Err(w), Err(g)) => assert_eq!(w.to_string(), g.to_string(), "{pattern}"),
                _ => panic!("{pattern}: extracted {want:?}, indexed {got:?}"),
            }
        }
        assert!(
            std::fs::read_dir(lazy.path()).unwrap().next().is_none(),
            "resolving and hashing wrote nothing"
        );
        indexed.materialize().unwrap();
        assert_eq!(
            std::fs::read_to_string(lazy.path().join("implicit/dir/f")).unwrap(),
            "impl"
        );
    }

    #[test]
    fn a_mapped_spool_indexes_as_the_bytes_in_memory() {
        let data = context_tar();
        let mut spool = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut spool, &data).unwrap();
        let mapped = ContextTar::map(&spool).unwrap().unwrap();
        let owned = ContextTar::new(data).unwrap().unwrap();
        assert_eq!(mapped.entries, owned.entries);
        assert_eq!(mapped.children, owned.children);
        for entry in owned.entries.values() {
            assert_eq!(mapped.content(entry), owned.content(entry));
        }
        assert_eq!(mapped.data_end(), owned.data_end());
        let mut fifo = tar::Header::new_gnu();
        fifo.set_entry_type(tar::EntryType::Fifo);
        fifo.set_path("p").unwrap();
        fifo.set_mode(0o644);
        fifo.set_size(0);
        fifo.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&fifo, &[][..]).unwrap();
        let mut spool = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut spool, &builder.into_inner().unwrap()).unwrap();
        assert!(ContextTar::map(&spool).unwrap().is_none(), "not modelled");
        assert!(ContextTar::map(&tempfile::tempfile().unwrap())
            .unwrap()
            .is_some());
    }

    #[test]
    fn tars_the_index_does_not_model_are_given_back() {
        let entry = |kind: tar::EntryType, path: &str| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_size(0);
            header.set_mode(0o644);
            header.set_path(path).unwrap();
            header.set_cksum();
            header
        };
        let one = |headers: Vec<tar::Header>| {
            let mut builder = tar::Builder::new(Vec::new());
            for header in headers {
                builder.append(&header, &[][..]).unwrap();
            }
            builder.into_inner().unwrap()
        };
        let fifo = one(vec![entry(tar::EntryType::Fifo, "p")]);
        let twice = one(vec![
            entry(tar::EntryType::Regular, "f"),
            entry(tar::EntryType::Regular, "f"),
        ]);
        let mut link = entry(tar::EntryType::Symlink, "l");
        link.set_link_name("f").unwrap();
        link.set_cksum();
        let below_link = one(vec![link, entry(tar::EntryType::Regular, "l/x")]);
        for (name, data) in [("fifo", fifo), ("twice", twice), ("below", below_link)] {
            let back = ContextTar::new(data.clone()).unwrap().unwrap_err();
            assert_eq!(back, data, "{name}");
        }
        assert!(ContextTar::new(b"not a tar at all".repeat(40)).is_err());
    }
}
