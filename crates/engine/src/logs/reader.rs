//! The blocking side of [`super::read`]: finds the rotated files, seeks to the tail by
//! reading backwards, decodes entries forwards, and follows the live file across rotation
//! (rename to `<path>.1`, or truncation in place when `max-file` is 1).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_shim::logfile::rotated_name;
use serde::Deserialize;
use tokio::sync::mpsc::Sender;

use super::{LogEntry, LogError, LogOptions, LogStreamKind};

/// How often a follower looks for new data.
const POLL: Duration = Duration::from_millis(100);
/// Backwards-read chunk when seeking the tail.
const CHUNK: u64 = 64 * 1024;

/// Flags set by the async side.
pub struct Signals {
    /// The caller's stop future completed: drain and end.
    pub stopped: Arc<AtomicBool>,
    /// The stream was dropped: end now.
    pub dropped: Arc<AtomicBool>,
}

/// Whether to keep reading.
#[derive(PartialEq)]
enum Flow {
    Continue,
    End,
}

struct Emitter<'a> {
    options: &'a LogOptions,
    sender: &'a Sender<Result<LogEntry, LogError>>,
}

#[derive(Deserialize)]
struct JsonLine {
    log: String,
    stream: String,
    time: String,
    #[serde(default)]
    attrs: Option<BTreeMap<String, String>>,
}

impl Emitter<'_> {
    /// Decodes one json-file line and sends it if the filters keep it. A line that does not
    /// decode (torn by a crash) is skipped, as it holds no complete message.
    fn emit(&self, raw: &[u8]) -> Flow {
        let Ok(line) = serde_json::from_slice::<JsonLine>(raw) else {
            return Flow::Continue;
        };
        let Some((seconds, nanos)) = berth_api::time::parse_rfc3339(&line.time) else {
            return Flow::Continue;
        };
        let time_nanos = seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(nanos));
        if self.options.until.is_some_and(|until| time_nanos > until) {
            return Flow::End;
        }
        if self.options.since.is_some_and(|since| time_nanos < since) {
            return Flow::Continue;
        }
        let stream = match line.stream.as_str() {
            "stdout" if self.options.stdout => LogStreamKind::Stdout,
            "stderr" if self.options.stderr => LogStreamKind::Stderr,
            _ => return Flow::Continue,
        };
        let entry = LogEntry {
            stream,
            line: line.log.into_bytes(),
            time_nanos,
            attrs: line.attrs.unwrap_or_default(),
        };
        match self.sender.blocking_send(Ok(entry)) {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::End,
        }
    }
}

/// An open log file read forwards, with the bytes of an incomplete last line kept aside.
struct Cursor {
    path: PathBuf,
    file: File,
    inode: u64,
    offset: u64,
    pending: Vec<u8>,
}

impl Cursor {
    fn open(path: &Path, offset: u64) -> Result<Cursor, LogError> {
        let io = |source| LogError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let inode = file.metadata().map_err(io)?.ino();
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        Ok(Cursor {
            path: path.to_path_buf(),
            file,
            inode,
            offset,
            pending: Vec::new(),
        })
    }

    fn seek(&mut self, offset: u64) -> Result<(), LogError> {
        self.file
            .seek(SeekFrom::Start(offset))
            .map_err(|source| LogError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.offset = offset;
        self.pending.clear();
        Ok(())
    }

    /// Emits every complete line available now.
    fn drain(&mut self, emitter: &Emitter) -> Result<Flow, LogError> {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = self.file.read(&mut buffer).map_err(|source| LogError::Io {
                path: self.path.clone(),
                source,
            })?;
            if n == 0 {
                return Ok(Flow::Continue);
            }
            self.offset += n as u64;
            self.pending.extend_from_slice(&buffer[..n]);
            let mut start = 0;
            while let Some(nl) = self.pending[start..].iter().position(|&b| b == b'\n') {
                if emitter.emit(&self.pending[start..start + nl]) == Flow::End {
                    return Ok(Flow::End);
                }
                start += nl + 1;
            }
            self.pending.drain(..start);
        }
    }
}

/// Opens the log's files, newest first (`<path>`, `<path>.1`, ...), and returns them oldest
/// first. Open handles pin each file, so a rotation during the scan loses nothing: a file
/// seen twice (renamed between two opens) is kept once, and the scan stops after two missing
/// names in a row (a rename in flight leaves at most one gap).
fn open_all(path: &Path) -> Result<Vec<Cursor>, LogError> {
    let mut files: Vec<Cursor> = Vec::new();
    let mut misses = 0;
    let mut n = 0;
    while misses < 2 {
        match Cursor::open(&rotated_name(path, n), 0) {
            Ok(cursor) => {
                misses = 0;
                if !files.iter().any(|f| f.inode == cursor.inode) {
                    files.push(cursor);
                }
            }
            Err(LogError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                misses += 1
            }
            Err(e) => return Err(e),
        }
        n += 1;
    }
    files.reverse();
    Ok(files)
}

/// Where the last `lines` entries start: (index into `files`, byte offset).
fn tail_start(files: &mut [Cursor], lines: usize) -> Result<(usize, u64), LogError> {
    let mut wanted = lines;
    for (index, cursor) in files.iter_mut().enumerate().rev() {
        let path = cursor.path.clone();
        let io = |source| LogError::Io {
            path: path.clone(),
            source,
        };
        let file = &mut cursor.file;
        let size = file.metadata().map_err(io)?.len();
        if wanted == 0 {
            return Ok((index, size));
        }
        // The last `wanted` lines start after the (wanted+1)-th newline from the end.
        let mut end = size;
        let mut seen = 0usize;
        while end > 0 {
            let start = end.saturating_sub(CHUNK);
            let mut chunk = vec![0u8; (end - start) as usize];
            file.seek(SeekFrom::Start(start)).map_err(io)?;
            file.read_exact(&mut chunk).map_err(io)?;
            for (i, &byte) in chunk.iter().enumerate().rev() {
                if byte == b'\n' {
                    seen += 1;
                    if seen > wanted {
                        return Ok((index, start + i as u64 + 1));
                    }
                }
            }
            end = start;
        }
        wanted -= seen.min(wanted);
        if wanted == 0 {
            return Ok((index, 0));
        }
    }
    Ok((0, 0))
}

/// Reads, and follows when asked; errors go to the stream.
pub fn run(
    path: &Path,
    options: &LogOptions,
    signals: &Signals,
    sender: &Sender<Result<LogEntry, LogError>>,
) {
    let emitter = Emitter { options, sender };
    if let Err(error) = read_all(path, options, signals, &emitter) {
        let _ = sender.blocking_send(Err(error));
    }
}

fn read_all(
    path: &Path,
    options: &LogOptions,
    signals: &Signals,
    emitter: &Emitter,
) -> Result<(), LogError> {
    let mut files = open_all(path)?;
    while files.is_empty() {
        // The container has not written yet; a follower waits for the file.
        if !options.follow
            || signals.dropped.load(Ordering::Relaxed)
            || signals.stopped.load(Ordering::Relaxed)
        {
            return Ok(());
        }
        std::thread::sleep(POLL);
        files = open_all(path)?;
    }
    let (first, offset) = match options.tail {
        Some(lines) => tail_start(&mut files, lines)?,
        None => (0, 0),
    };
    let mut cursor = None;
    for (index, mut next) in files.into_iter().enumerate().skip(first) {
        next.seek(if index == first { offset } else { 0 })?;
        if next.drain(emitter)? == Flow::End {
            return Ok(());
        }
        cursor = Some(next);
    }
    if !options.follow {
        return Ok(());
    }
    let mut cursor = match cursor {
        Some(cursor) => cursor,
        None => Cursor::open(path, 0)?,
    };
    follow(path, options, signals, emitter, &mut cursor)
}

fn follow(
    path: &Path,
    options: &LogOptions,
    signals: &Signals,
    emitter: &Emitter,
    cursor: &mut Cursor,
) -> Result<(), LogError> {
    loop {
        if signals.dropped.load(Ordering::Relaxed) {
            return Ok(());
        }
        // Seen before the last drain, so everything written before the stop is read.
        let stopping = signals.stopped.load(Ordering::Relaxed);
        if cursor.drain(emitter)? == Flow::End {
            return Ok(());
        }
        if let Some(next) = rotated(path, cursor, emitter)? {
            *cursor = next;
            continue;
        }
        if stopping || options.until.is_some_and(|until| now_nanos() > until) {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
}

/// Handles a rotation seen at `path`: returns the cursor on the live file after emitting
/// every file between the one being read and it; or rewinds after a truncation.
fn rotated(
    path: &Path,
    cursor: &mut Cursor,
    emitter: &Emitter,
) -> Result<Option<Cursor>, LogError> {
    let live = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(_) => return Ok(None),
    };
    if live.ino() == cursor.inode {
        if live.len() < cursor.offset {
            // Truncated in place (max-file 1): start over at its beginning.
            cursor
                .file
                .seek(SeekFrom::Start(0))
                .map_err(|source| LogError::Io {
                    path: cursor.path.clone(),
                    source,
                })?;
            cursor.offset = 0;
            cursor.pending.clear();
        }
        return Ok(None);
    }
    // Renamed away: what was written to it before the rename is read first.
    if cursor.drain(emitter)? == Flow::End {
        return Ok(None);
    }
    // Several rotations may have happened since the last poll: read every file newer
    // than ours, then continue with the live one.
    let files = open_all(path)?;
    let start = files
        .iter()
        .position(|f| f.inode == cursor.inode)
        .map_or(0, |p| p + 1);
    let mut newer: Vec<Cursor> = files.into_iter().skip(start).collect();
    let live = newer.pop();
    for mut between in newer {
        if between.drain(emitter)? == Flow::End {
            return Ok(None);
        }
    }
    Ok(live)
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
