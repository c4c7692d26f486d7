//! Reading a container's json-file log as berth-shim writes it (crates/shim/src/logfile.rs):
//! tail, since, until and follow across rotated files, as an async stream of entries; and
//! [`encode`] to the bytes `GET /containers/{id}/logs` sends (stdcopy frames or raw for a
//! TTY, with Docker's `timestamps` and `details` prefixes).
//!
//! The files are read on a blocking thread (polling every 100 ms when following, which
//! survives rotation by renaming and truncation); entries travel to the async side through a
//! bounded channel, so a slow client slows the reader instead of buffering the whole log.

pub mod driver;
mod encode;
mod reader;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use crate::error::ErrorKind;

pub use encode::{encode, EncodeOptions};

/// Which output of the container a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStreamKind {
    Stdout,
    Stderr,
}

/// One log message: a line with its `\n`, or a partial chunk of a longer line (berth-shim
/// and Docker split lines at 16 KiB) or the unterminated end of the output, without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: LogStreamKind,
    pub line: Vec<u8>,
    /// Unix nanoseconds.
    pub time_nanos: i64,
    /// Extra attributes (`--log-opt labels/env`); what `details` shows.
    pub attrs: BTreeMap<String, String>,
}

/// What to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    /// The last N entries (counted before the stream, since and until filters, as Docker).
    pub tail: Option<usize>,
    /// Unix nanoseconds: only entries at or after `since`.
    pub since: Option<i64>,
    /// Unix nanoseconds: only entries at or before `until`; following ends past it.
    pub until: Option<i64>,
    /// Keep reading new entries until stopped ([`read_until`]) or dropped.
    pub follow: bool,
}

/// Failures reading a log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("reading log file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LogError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// The entries of one read, oldest first. A `Stream` of `Result<LogEntry, LogError>`;
/// dropping it stops the reader.
pub struct LogStream {
    entries: mpsc::Receiver<Result<LogEntry, LogError>>,
    stop: Arc<AtomicBool>,
}

impl LogStream {
    /// The next entry, `None` at the end.
    pub async fn next(&mut self) -> Option<Result<LogEntry, LogError>> {
        self.entries.recv().await
    }
}

impl futures_core::Stream for LogStream {
    type Item = Result<LogEntry, LogError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.entries.poll_recv(cx)
    }
}

impl Drop for LogStream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// How many entries may wait for a slow reader.
const CHANNEL_CAPACITY: usize = 256;

/// Reads the json-file log at `path` (and its rotated files); with `follow`, until the
/// stream is dropped. Must be called inside a tokio runtime.
pub fn read(path: PathBuf, options: LogOptions) -> LogStream {
    read_until(path, options, std::future::pending())
}

/// [`read`], where following ends once `stop` completes (the container exited) and
/// everything written until then has been read.
pub fn read_until(
    path: PathBuf,
    options: LogOptions,
    stop: impl Future<Output = ()> + Send + 'static,
) -> LogStream {
    let (sender, entries) = mpsc::channel(CHANNEL_CAPACITY);
    let dropped = Arc::new(AtomicBool::new(false));
    let stopped = Arc::new(AtomicBool::new(false));
    // Ends with the reader (the sender side of `finished` is dropped when it returns).
    let (finished, reader_gone) = tokio::sync::oneshot::channel::<()>();
    if options.follow {
        let stopped = stopped.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop => stopped.store(true, Ordering::Relaxed),
                _ = reader_gone => {}
            }
        });
    }
    let signals = reader::Signals {
        stopped,
        dropped: dropped.clone(),
    };
    tokio::task::spawn_blocking(move || {
        reader::run(&path, &options, &signals, &sender);
        drop(finished);
    });
    LogStream {
        entries,
        stop: dropped,
    }
}

#[cfg(test)]
mod tests;
