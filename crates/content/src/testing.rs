//! Test fixtures shared by this crate's unit tests: temp stores, a toy manifest format
//! for GC, and sinks that fail like a full disk or a broken device.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::Arc;

use berth_oci::Digest;

use crate::error::BoxError;
use crate::sink::{Sink, SinkFactory};
use crate::store::{BlobReader, Store};
use crate::writer::Expected;

/// A scratch directory, on tmpfs when there is one: these tests check what the store
/// does, not how fast the disk syncs, and fsync on a shared disk is slow.
pub(crate) fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("tempdir")
}

pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = scratch_dir();
    let store = Store::open(dir.path().join("content")).expect("open store");
    (dir, store)
}

/// Commits `bytes` under a reference derived from their digest and returns the digest.
pub(crate) fn put(store: &Store, bytes: &[u8]) -> Digest {
    let digest = Digest::sha256_of(bytes);
    let mut writer = store
        .writer(&format!("put-{digest}"), Expected::none())
        .expect("writer");
    writer.append(bytes).expect("append");
    writer
        .commit(Expected::exact(digest.clone(), bytes.len() as u64))
        .expect("commit")
        .digest
}

/// A toy manifest: `index` on the first line, then one child digest per line.
pub(crate) fn index_of(children: &[&Digest]) -> Vec<u8> {
    let mut out = b"index\n".to_vec();
    for child in children {
        out.extend_from_slice(format!("{child}\n").as_bytes());
    }
    out
}

/// GC's "children of this blob" for the toy format.
pub(crate) fn toy_children(
    _digest: &Digest,
    reader: &mut BlobReader,
) -> Result<Vec<Digest>, BoxError> {
    let mut text = String::new();
    if reader.read_to_string(&mut text).is_err() {
        return Ok(Vec::new());
    }
    let mut lines = text.lines();
    if lines.next() != Some("index") {
        return Ok(Vec::new());
    }
    lines
        .map(|line| Digest::parse(line).map_err(BoxError::from))
        .collect()
}

/// Sinks that accept `capacity` bytes in total, then fail every write with `errno`
/// (ENOSPC for a full disk); `fail_sync` makes fsync fail with EIO.
pub(crate) struct FailingSinks {
    pub(crate) capacity: u64,
    pub(crate) errno: i32,
    pub(crate) fail_sync: bool,
}

impl FailingSinks {
    pub(crate) fn disk_full_after(capacity: u64) -> Arc<FailingSinks> {
        Arc::new(FailingSinks {
            capacity,
            errno: libc::ENOSPC,
            fail_sync: false,
        })
    }
}

struct FailingSink {
    file: File,
    remaining: u64,
    errno: i32,
    fail_sync: bool,
}

impl SinkFactory for FailingSinks {
    fn sink(&self, file: File) -> Box<dyn Sink> {
        Box::new(FailingSink {
            file,
            remaining: self.capacity,
            errno: self.errno,
            fail_sync: self.fail_sync,
        })
    }
}

impl Write for FailingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.remaining == 0 && !buf.is_empty() {
            return Err(io::Error::from_raw_os_error(self.errno));
        }
        let n = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let written = self.file.write(&buf[..n])?;
        self.remaining -= written as u64;
        Ok(written)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Sink for FailingSink {
    fn sync(&mut self) -> io::Result<()> {
        if self.fail_sync {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        self.file.sync_all()
    }
}
