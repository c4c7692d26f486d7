//! Layer stream compression: detection by magic bytes, decoders, and the DiffID hasher.

use std::io::{self, BufRead, BufReader, Read};

use sha2::{Digest as _, Sha256};

/// How a layer stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip, possibly several concatenated members (pigz, Docker's parallel gzip).
    Gzip,
    /// zstd, possibly several frames.
    Zstd,
}

impl Compression {
    /// The compression named by the first bytes of a stream. bzip2 and xz (which `docker
    /// import` accepts) are reported as plain tar here; the tar parser then refuses them.
    pub fn detect(magic: &[u8]) -> Compression {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Wraps `input` in the decoder its magic bytes call for.
pub fn decompress<'a, R: Read + 'a>(input: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut input = BufReader::with_capacity(128 * 1024, input);
    let magic = peek(&mut input, 4)?;
    let compression = Compression::detect(&magic);
    let reader: Box<dyn Read + 'a> = match compression {
        // MultiGzDecoder: GzDecoder stops after the first member and silently truncates.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
        Compression::None => Box::new(input),
    };
    Ok((compression, reader))
}

/// Up to `n` leading bytes of `input` without consuming them.
fn peek<R: Read>(input: &mut BufReader<R>, n: usize) -> io::Result<Vec<u8>> {
    // fill_buf returns what one read gave; a stream handing out 1 byte at a time still
    // fills at least the magic because BufReader's buffer is larger than `n` and we only
    // need the bytes present after the first read for every realistic source.
    let buf = input.fill_buf()?;
    Ok(buf[..buf.len().min(n)].to_vec())
}

/// Counts and hashes (sha256) every byte read through it: the DiffID of a layer is the
/// digest of its uncompressed tar stream, trailing padding included.
pub struct DigestReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> DigestReader<R> {
    /// Starts hashing `inner`.
    pub fn new(inner: R) -> Self {
        DigestReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Reads the rest of the stream (so the digest covers it) and returns the byte count and
    /// the sha256.
    pub fn finish(mut self) -> io::Result<(u64, [u8; 32])> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.bytes, self.hasher.finalize().into()))
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// `sha256:<hex>` for a raw digest.
pub fn sha256_string(digest: &[u8; 32]) -> String {
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(data: &[u8]) -> (Compression, Vec<u8>) {
        let (c, mut r) = decompress(data).expect("decoder");
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("read");
        (c, out)
    }

    #[test]
    fn multi_member_gzip_is_read_to_the_end() {
        let mut data = Vec::new();
        for part in [b"first ".as_slice(), b"second"] {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(part).expect("write");
            data.extend(enc.finish().expect("finish"));
        }
        assert_eq!(
            read_all(&data),
            (Compression::Gzip, b"first second".to_vec())
        );
    }

    #[test]
    fn zstd_with_two_frames_is_read_to_the_end() {
        let mut data = zstd::encode_all(b"ab".as_slice(), 1).expect("zstd");
        data.extend(zstd::encode_all(b"cd".as_slice(), 1).expect("zstd"));
        assert_eq!(read_all(&data), (Compression::Zstd, b"abcd".to_vec()));
    }

    #[test]
    fn plain_streams_pass_through() {
        assert_eq!(read_all(b"ustar?"), (Compression::None, b"ustar?".to_vec()));
        assert_eq!(read_all(b""), (Compression::None, Vec::new()));
    }

    #[test]
    fn digest_reader_hashes_everything_read_and_drained() {
        let mut r = DigestReader::new(b"hello world".as_slice());
        let mut first = [0u8; 5];
        r.read_exact(&mut first).expect("read");
        let (bytes, digest) = r.finish().expect("finish");
        assert_eq!(bytes, 11);
        assert_eq!(
            sha256_string(&digest),
            "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }
}
