//! The uploaded context as tar-rs can read it. The docker CLI ends a context it rewrote (a
//! Dockerfile from outside the context or from stdin added under a generated name, moby's
//! `ReplaceFileTarWrapper`) right after the last entry's data: no block padding, no
//! end-of-archive blocks. Go's tar reader takes that end of data as the end of the
//! archive; tar-rs fails skipping the missing padding. [`BlockPadded`] pads the stream
//! with zeros to a whole block at its end, and an entry whose data reaches into those
//! zeros (a tar cut inside a file's data, which Go refuses too) is refused.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use berth_build::context_tar::ContextHeaders;

const BLOCK: u64 = 512;

/// `inner`, then zeros up to the next 512-byte boundary.
pub struct BlockPadded<R> {
    inner: R,
    read: u64,
    /// Zeros still to give once `inner` ended.
    padding: Option<u64>,
    /// The length of `inner` once it ended (`u64::MAX` until then).
    length: Arc<AtomicU64>,
}

impl<R: Read> BlockPadded<R> {
    pub fn new(inner: R) -> BlockPadded<R> {
        BlockPadded {
            inner,
            read: 0,
            padding: None,
            length: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }

    /// The unpadded length, known once the stream ended (`u64::MAX` before).
    pub fn length(&self) -> Arc<AtomicU64> {
        self.length.clone()
    }
}

impl<R: Read> Read for BlockPadded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.padding.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 {
                self.read += n as u64;
                return Ok(n);
            }
            self.length.store(self.read, Ordering::SeqCst);
            self.padding = Some((BLOCK - self.read % BLOCK) % BLOCK);
        }
        let left = self.padding.unwrap_or(0);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        buf[..n].fill(0);
        self.padding = Some(left - n as u64);
        Ok(n)
    }
}

/// The error for an entry whose data ends after the uploaded bytes.
pub fn cut_short(name: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("unexpected EOF in the data of {name}"),
    )
}

/// Extracts `archive` into `dest` as tar's `unpack` does (directories last), refusing an
/// entry whose data runs past `length` (the unpadded upload); returns the entries' headers
/// (the COPY digests are tarsums of them).
pub fn unpack<R: Read>(
    archive: &mut tar::Archive<R>,
    dest: &Path,
    length: &AtomicU64,
) -> std::io::Result<ContextHeaders> {
    let mut headers = ContextHeaders::default();
    berth_build::copy::unpack_dirs_last(
        archive,
        dest,
        |entry| headers.record(entry),
        |entry, _| {
            let end = entry.raw_file_position() + entry.size();
            if end > length.load(Ordering::SeqCst) {
                return Err(cut_short(&String::from_utf8_lossy(&entry.path_bytes())));
            }
            Ok(())
        },
    )?;
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of `files`, cut right after the last file's data (what the docker CLI sends
    /// with a Dockerfile added) when `cut`, else whole.
    fn tar_of(files: &[(&str, &[u8])], cut: Option<usize>) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut end = 0;
        for (name, data) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(1);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
            end = builder.get_ref().len()
                - (BLOCK as usize - data.len() % BLOCK as usize) % BLOCK as usize;
        }
        let mut data = builder.into_inner().unwrap();
        if let Some(less) = cut {
            data.truncate(end - less);
        }
        data
    }

    fn unpacked(data: Vec<u8>) -> std::io::Result<tempfile::TempDir> {
        let padded = BlockPadded::new(&data[..]);
        let length = padded.length();
        let mut archive = tar::Archive::new(padded);
        let dir = tempfile::tempdir().unwrap();
        unpack(&mut archive, dir.path(), &length)?;
        Ok(dir)
    }

    #[test]
    fn a_context_ending_at_its_last_data_byte_is_whole() {
        let files: &[(&str, &[u8])] = &[("a", b"first"), (".dockerfile.x", b"FROM scratch\n")];
        let dir = unpacked(tar_of(files, Some(0))).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join(".dockerfile.x")).unwrap(),
            b"FROM scratch\n"
        );
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"first");
        let dir = unpacked(tar_of(files, None)).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"first");
    }

    #[test]
    fn a_context_cut_inside_data_is_refused() {
        let files: &[(&str, &[u8])] = &[("a", b"first"), ("b", b"FROM scratch\n")];
        let err = unpacked(tar_of(files, Some(3))).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    }
}
