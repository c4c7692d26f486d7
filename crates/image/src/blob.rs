//! Small helpers over berth-content for this crate: store bytes or a stream as a blob and
//! read a bounded blob back.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_content::{Committed, ContentError, Expected, Store};
use berth_oci::Digest;

static INGESTS: AtomicU64 = AtomicU64::new(0);

/// A unique ingest reference for blobs whose digest is not known up front.
pub fn ingest_reference(purpose: &str) -> String {
    let n = INGESTS.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("berth-image-{purpose}-{}-{nanos}-{n}", std::process::id())
}

/// Stores `bytes` (or finds them already stored).
pub fn put(store: &Store, bytes: &[u8]) -> Result<Committed, ContentError> {
    put_with(store, bytes, false)
}

/// [`put`] with the blob directory's fsync left to [`Store::sync_blob_dirs`]
/// (`berth_content::Writer::defer_dir_sync`).
pub fn put_deferred(store: &Store, bytes: &[u8]) -> Result<Committed, ContentError> {
    put_with(store, bytes, true)
}

fn put_with(store: &Store, bytes: &[u8], defer: bool) -> Result<Committed, ContentError> {
    let digest = Digest::sha256_of(bytes);
    if store.contains(&digest) {
        return Ok(Committed {
            digest,
            size: bytes.len() as u64,
            already_existed: true,
        });
    }
    let mut writer = store.writer(&ingest_reference("put"), Expected::none())?;
    if defer {
        writer.defer_dir_sync();
    }
    writer.append(bytes)?;
    writer.commit(Expected::exact(digest, bytes.len() as u64))
}

/// Error of [`put_stream`]: reading the source or writing the store.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("reading the source")]
    Read(#[source] io::Error),
    #[error(transparent)]
    Content(#[from] ContentError),
}

/// Streams `input` into the store, verifying against `expected` if given.
pub fn put_stream(
    store: &Store,
    input: &mut dyn Read,
    purpose: &str,
    expected: Expected,
) -> Result<Committed, StreamError> {
    put_stream_with(store, input, purpose, expected, false)
}

/// [`put_stream`] with the blob directory's fsync left to [`Store::sync_blob_dirs`].
pub fn put_stream_deferred(
    store: &Store,
    input: &mut dyn Read,
    purpose: &str,
    expected: Expected,
) -> Result<Committed, StreamError> {
    put_stream_with(store, input, purpose, expected, true)
}

fn put_stream_with(
    store: &Store,
    input: &mut dyn Read,
    purpose: &str,
    expected: Expected,
    defer: bool,
) -> Result<Committed, StreamError> {
    let mut writer = store.writer(&ingest_reference(purpose), Expected::none())?;
    if defer {
        writer.defer_dir_sync();
    }
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = writer.abort();
                return Err(StreamError::Read(e));
            }
        };
        writer.append(&buf[..n])?;
    }
    Ok(writer.commit(expected)?)
}

/// Reads a blob of at most `limit` bytes into memory.
pub fn read_bounded(store: &Store, digest: &Digest, limit: usize) -> Result<Vec<u8>, BoundedError> {
    let info = store.info(digest)?;
    if info.size > limit as u64 {
        return Err(BoundedError::TooLarge {
            digest: digest.clone(),
            size: info.size,
            limit,
        });
    }
    Ok(store.read_to_vec(digest)?)
}

/// Error of [`read_bounded`].
#[derive(Debug, thiserror::Error)]
pub enum BoundedError {
    #[error("blob {digest} is {size} bytes, more than the {limit} bytes allowed here")]
    TooLarge {
        digest: Digest,
        size: u64,
        limit: usize,
    },
    #[error(transparent)]
    Content(#[from] ContentError),
}
