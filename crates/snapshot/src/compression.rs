//! Layer stream compression: detection by magic bytes, decoders, and the DiffID hasher.

use std::io::{self, BufReader, Read};

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
    let (compression, decoder) = Decoder::new(input)?;
    Ok((compression, Box::new(decoder)))
}

/// A layer stream's decoder; `Send` whenever the input is, so it can run on its own thread.
pub enum Decoder<R: Read> {
    /// gzip, every member (MultiGzDecoder: GzDecoder stops after the first member and
    /// silently truncates).
    Gzip(Box<flate2::read::MultiGzDecoder<BufReader<Sniffed<R>>>>),
    /// zstd, every frame.
    Zstd(zstd::stream::read::Decoder<'static, BufReader<Sniffed<R>>>),
    /// Not compressed.
    Plain(Sniffed<R>),
}

/// The input with its sniffed magic bytes put back in front.
pub type Sniffed<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

impl<R: Read> Decoder<R> {
    /// Sniffs the first bytes of `input` (reading until 4 bytes or EOF, however the source
    /// splits its reads) and builds the matching decoder.
    pub fn new(mut input: R) -> io::Result<(Compression, Self)> {
        let mut magic = Vec::with_capacity(4);
        (&mut input).take(4).read_to_end(&mut magic)?;
        let compression = Compression::detect(&magic);
        let input = io::Cursor::new(magic).chain(input);
        let decoder = match compression {
            Compression::Gzip => Decoder::Gzip(Box::new(flate2::read::MultiGzDecoder::new(
                BufReader::with_capacity(128 * 1024, input),
            ))),
            Compression::Zstd => Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(
                BufReader::with_capacity(128 * 1024, input),
            )?),
            Compression::None => Decoder::Plain(input),
        };
        Ok((compression, decoder))
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
            Decoder::Plain(d) => d.read(buf),
        }
    }
}

/// Reads chunks that a decoder thread sends (see [`spawn_pump`]).
pub(crate) struct ChannelReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The decoder thread finished: end of stream.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Runs `reader` on a scoped thread, handing its output over in 256 KiB chunks through a
/// small bounded queue: decompression then overlaps with writing files, the way
/// `tar -xz` overlaps with its `gzip` child. The thread stops when the reader side is dropped.
pub(crate) fn spawn_pump<'scope, R: Read + Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    mut reader: R,
) -> ChannelReader {
    const CHUNK: usize = 256 * 1024;
    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(8);
    scope.spawn(move || loop {
        let mut chunk = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match reader.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        if filled == 0 {
            return;
        }
        chunk.truncate(filled);
        if tx.send(Ok(chunk)).is_err() {
            return;
        }
    });
    ChannelReader {
        rx,
        chunk: Vec::new(),
        pos: 0,
    }
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

    /// Hands out one byte per read, like a slow network stream.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            if buf.is_empty() {
                return Ok(0);
            }
            buf[0] = *first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn magic_bytes_are_found_when_the_source_returns_one_byte_per_read() {
        let data = zstd::encode_all(b"slow".as_slice(), 1).expect("zstd");
        let (c, mut r) = decompress(Trickle(&data)).expect("decoder");
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("read");
        assert_eq!((c, out), (Compression::Zstd, b"slow".to_vec()));
    }

    #[test]
    fn pumped_streams_arrive_whole_and_errors_pass_through() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let out = std::thread::scope(|scope| {
            let mut r = spawn_pump(scope, data.as_slice());
            let mut out = Vec::new();
            r.read_to_end(&mut out).expect("read");
            out
        });
        assert_eq!(out, data);
        let (_, gz) = Decoder::new(&[0x1f, 0x8b, 0, 0, 0][..]).expect("gzip header start");
        let err = std::thread::scope(|scope| {
            let mut r = spawn_pump(scope, gz);
            let mut out = Vec::new();
            r.read_to_end(&mut out).expect_err("corrupt gzip")
        });
        assert!(!err.to_string().is_empty());
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
