//! Parallel gzip for pushing layers: the input is cut into fixed-size chunks, each chunk
//! becomes one gzip member compressed on its own thread, and the members are written in
//! order. RFC 1952 section 2.2 allows a gzip file to be a series of members, and every
//! reader a registry client uses (Go's compress/gzip reads multistream by default, as do
//! unpigz, zlib's gunzip and flate2's MultiGzDecoder) decompresses them as one stream, so
//! the DiffID (sha256 of the uncompressed tar) is unchanged. pigz does the same with a
//! shared dictionary; independent members cost about 0.1% of size at 1 MiB per chunk.
//! Each member is compressed whole by libdeflate (a chunk is in memory anyway, and
//! libdeflate's whole-buffer compressor needs less than half of zlib's CPU for the same
//! bytes: `push.rs`, [`super::push::PUSH_LEVEL`]).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;

use libdeflater::{CompressionLvl, Compressor};

/// Bytes of input per gzip member.
pub const CHUNK: usize = 1 << 20;

/// What [`compress`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compressed {
    pub input_bytes: u64,
    pub output_bytes: u64,
}

/// Threads to use: the machine's cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Compresses `input` into `output` as gzip members of [`CHUNK`] bytes each, `threads`
/// compressing at once; at most `2 * threads` chunks are in memory at a time.
pub fn compress(
    input: &mut dyn Read,
    output: &mut dyn Write,
    level: u32,
    threads: usize,
) -> io::Result<Compressed> {
    let threads = threads.max(1);
    let (jobs_tx, jobs_rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(threads);
    let jobs_rx = Mutex::new(jobs_rx);
    let (done_tx, done_rx) = mpsc::channel::<(u64, io::Result<Vec<u8>>)>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (jobs, done) = (&jobs_rx, done_tx.clone());
            scope.spawn(move || worker(jobs, done, level));
        }
        drop(done_tx);
        let mut writer = InOrder::new(output);
        let result = feed(input, &jobs_tx, &done_rx, &mut writer);
        // Closing the job queue ends the workers; collect what they still finish.
        drop(jobs_tx);
        // On error the remaining members are dropped as the workers finish them.
        result.and_then(|input_bytes| {
            for (n, member) in done_rx.iter() {
                writer.put(n, member?)?;
            }
            writer.finish()?;
            Ok(Compressed {
                input_bytes,
                output_bytes: writer.written,
            })
        })
    })
}

/// Reads chunks and queues them, writing finished members as they come back; returns
/// the number of input bytes.
fn feed(
    input: &mut dyn Read,
    jobs: &mpsc::SyncSender<(u64, Vec<u8>)>,
    done: &Receiver<(u64, io::Result<Vec<u8>>)>,
    writer: &mut InOrder<'_>,
) -> io::Result<u64> {
    let (mut n, mut total) = (0u64, 0u64);
    loop {
        let chunk = read_chunk(input)?;
        if chunk.is_empty() {
            break;
        }
        total += chunk.len() as u64;
        jobs.send((n, chunk))
            .map_err(|_| io::Error::other("gzip workers stopped"))?;
        n += 1;
        while let Ok((i, member)) = done.try_recv() {
            writer.put(i, member?)?;
        }
    }
    if n == 0 {
        // An empty input still makes a valid (empty) gzip file.
        jobs.send((0, Vec::new()))
            .map_err(|_| io::Error::other("gzip workers stopped"))?;
    }
    Ok(total)
}

fn read_chunk(input: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut chunk = Vec::with_capacity(CHUNK);
    input.take(CHUNK as u64).read_to_end(&mut chunk)?;
    Ok(chunk)
}

fn worker(
    jobs: &Mutex<Receiver<(u64, Vec<u8>)>>,
    done: mpsc::Sender<(u64, io::Result<Vec<u8>>)>,
    level: u32,
) {
    // One compressor per thread: libdeflate allocates its tables per compressor.
    let mut compressor = CompressionLvl::new(level.clamp(1, 12) as i32)
        .map(Compressor::new)
        .unwrap_or_else(|_| Compressor::new(CompressionLvl::default()));
    loop {
        let job = jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok((n, chunk)) = job else { return };
        if done.send((n, member(&mut compressor, &chunk))).is_err() {
            return;
        }
    }
}

/// One gzip member holding `chunk`.
fn member(compressor: &mut Compressor, chunk: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = vec![0u8; compressor.gzip_compress_bound(chunk.len())];
    let len = compressor
        .gzip_compress(chunk, &mut out)
        .map_err(io::Error::other)?;
    out.truncate(len);
    Ok(out)
}

/// Writes members in chunk order, holding back those that finished early.
struct InOrder<'a> {
    output: &'a mut dyn Write,
    next: u64,
    held: BTreeMap<u64, Vec<u8>>,
    written: u64,
}

impl<'a> InOrder<'a> {
    fn new(output: &'a mut dyn Write) -> Self {
        InOrder {
            output,
            next: 0,
            held: BTreeMap::new(),
            written: 0,
        }
    }

    fn put(&mut self, n: u64, member: Vec<u8>) -> io::Result<()> {
        self.held.insert(n, member);
        while let Some(member) = self.held.remove(&self.next) {
            self.output.write_all(&member)?;
            self.written += member.len() as u64;
            self.next += 1;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if !self.held.is_empty() {
            return Err(io::Error::other("gzip member missing"));
        }
        self.output.flush()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use flate2::read::MultiGzDecoder;

    /// Docker's level (Go's `gzip.DefaultCompression`).
    const DEFAULT_LEVEL: u32 = 6;

    /// `len` bytes of text-like input (words from a small vocabulary, pseudo-random order).
    pub(in crate::image) fn words(len: usize) -> Vec<u8> {
        let vocabulary = ["layer", "blob", "digest", "snapshot", "manifest", "\n"];
        let mut out = Vec::with_capacity(len);
        let mut seed = 7u64;
        while out.len() < len {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            out.extend_from_slice(vocabulary[(seed >> 33) as usize % vocabulary.len()].as_bytes());
            out.push(b' ');
        }
        out.truncate(len);
        out
    }

    fn round_trip(input: &[u8], threads: usize) -> (Vec<u8>, Compressed) {
        let mut gz = Vec::new();
        let done = compress(&mut &input[..], &mut gz, DEFAULT_LEVEL, threads).expect("compress");
        assert_eq!(done.output_bytes, gz.len() as u64);
        let mut back = Vec::new();
        MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .expect("gunzip");
        (back, done)
    }

    #[test]
    fn members_decompress_to_the_input_in_order_whatever_the_thread_count() {
        let input = words(5 * CHUNK + 12_345);
        for threads in [1, 2, 4] {
            let (back, done) = round_trip(&input, threads);
            assert!(back == input, "{threads} threads changed the bytes");
            assert_eq!(done.input_bytes, input.len() as u64);
            assert!(
                done.output_bytes < input.len() as u64 / 2,
                "text compresses"
            );
        }
    }

    #[test]
    fn output_is_the_same_bytes_for_any_thread_count() {
        let input = words(3 * CHUNK + 1);
        let gz = |threads| {
            let mut out = Vec::new();
            compress(&mut &input[..], &mut out, DEFAULT_LEVEL, threads).expect("compress");
            out
        };
        assert!(
            gz(1) == gz(3),
            "reproducible: the same layer gets the same digest"
        );
    }

    #[test]
    fn empty_input_is_a_valid_empty_gzip_file() {
        let (back, done) = round_trip(b"", 2);
        assert!(back.is_empty());
        assert_eq!(done.input_bytes, 0);
        assert!(done.output_bytes > 0, "one empty member");
    }

    #[test]
    fn a_failing_output_is_reported_not_swallowed() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let input = words(2 * CHUNK);
        let error = compress(&mut &input[..], &mut Full, DEFAULT_LEVEL, 2).expect_err("full");
        assert_eq!(error.to_string(), "disk full");
    }
}
