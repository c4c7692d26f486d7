//! Test-only builders of layer tars (raw headers allowed, so hostile names survive) and a
//! sandbox with a sentinel directory next to the target root.

use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

/// Builds a tar in memory, one raw GNU header per entry.
pub(crate) struct LayerTar {
    builder: tar::Builder<Vec<u8>>,
}

pub(crate) fn raw_header(
    name: &[u8],
    kind: EntryType,
    size: u64,
    link: &[u8],
    mode: u32,
) -> Header {
    let mut h = Header::new_gnu();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    h
}

impl LayerTar {
    pub(crate) fn new() -> Self {
        LayerTar {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    pub(crate) fn header(&mut self, header: &Header, data: &[u8]) -> &mut Self {
        self.builder.append(header, data).expect("append to memory");
        self
    }

    pub(crate) fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let h = raw_header(
            name.as_bytes(),
            EntryType::Regular,
            data.len() as u64,
            b"",
            0o644,
        );
        self.header(&h, data)
    }

    pub(crate) fn file_mode(
        &mut self,
        name: &str,
        data: &[u8],
        mode: u32,
        mtime: u64,
    ) -> &mut Self {
        let mut h = raw_header(
            name.as_bytes(),
            EntryType::Regular,
            data.len() as u64,
            b"",
            mode,
        );
        h.set_mtime(mtime);
        h.set_cksum();
        self.header(&h, data)
    }

    pub(crate) fn dir(&mut self, name: &str, mode: u32, mtime: u64) -> &mut Self {
        let mut h = raw_header(name.as_bytes(), EntryType::Directory, 0, b"", mode);
        h.set_mtime(mtime);
        h.set_cksum();
        self.header(&h, b"")
    }

    pub(crate) fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let h = raw_header(
            name.as_bytes(),
            EntryType::Symlink,
            0,
            target.as_bytes(),
            0o777,
        );
        self.header(&h, b"")
    }

    pub(crate) fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let h = raw_header(
            name.as_bytes(),
            EntryType::Link,
            0,
            target.as_bytes(),
            0o644,
        );
        self.header(&h, b"")
    }

    pub(crate) fn node(
        &mut self,
        name: &str,
        kind: EntryType,
        major: u32,
        minor: u32,
    ) -> &mut Self {
        let mut h = raw_header(name.as_bytes(), kind, 0, b"", 0o666);
        h.set_device_major(major)
            .expect("gnu header has device fields");
        h.set_device_minor(minor)
            .expect("gnu header has device fields");
        h.set_cksum();
        self.header(&h, b"")
    }

    pub(crate) fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        self.builder
            .append_pax_extensions(records.iter().map(|(k, v)| (*k, *v)))
            .expect("append to memory");
        self
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        self.builder.finish().expect("finish");
        self.builder.get_ref().clone()
    }
}

/// A temp dir holding `root/` (the apply target) and `outside/passwd` (a sentinel that no
/// apply may touch).
pub(crate) struct Sandbox {
    _dir: tempfile::TempDir,
    pub(crate) root: PathBuf,
    pub(crate) outside: PathBuf,
}

impl Sandbox {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&root).expect("mkdir root");
        std::fs::create_dir(&outside).expect("mkdir outside");
        std::fs::write(outside.join("passwd"), b"secret").expect("write sentinel");
        Sandbox {
            _dir: dir,
            root,
            outside,
        }
    }

    /// Fails unless `outside/` still holds exactly `passwd` = `secret`.
    pub(crate) fn assert_outside_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(&self.outside)
            .expect("read outside")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("passwd")],
            "outside/ changed"
        );
        let meta = std::fs::symlink_metadata(self.outside.join("passwd")).expect("lstat sentinel");
        assert!(meta.is_file(), "sentinel replaced");
        assert_eq!(
            std::fs::read(self.outside.join("passwd")).expect("read"),
            b"secret"
        );
        let parent = self.outside.parent().expect("has parent");
        let mut top: Vec<_> = std::fs::read_dir(parent)
            .expect("read sandbox")
            .map(|e| e.expect("entry").file_name())
            .collect();
        top.sort();
        assert_eq!(
            top,
            vec![std::ffi::OsString::from("outside"), "root".into()],
            "sandbox changed"
        );
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

pub(crate) fn lstat(p: &Path) -> Option<std::fs::Metadata> {
    std::fs::symlink_metadata(p).ok()
}
