//! The seam between an ingest writer and the disk: where ingest bytes go and how they are
//! made durable. The store uses the ingest file itself; tests substitute sinks that fail
//! the way a full disk or a dying device does, without needing a small filesystem.

use std::fs::File;
use std::io::{self, Write};

/// Destination of one ingest's bytes.
pub trait Sink: Write + Send {
    /// Makes everything written so far durable (fsync).
    fn sync(&mut self) -> io::Result<()>;
}

impl Sink for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_all()
    }
}

/// Makes the sink for an ingest from its opened data file (positioned at its end).
pub trait SinkFactory: Send + Sync {
    fn sink(&self, file: File) -> Box<dyn Sink>;
}

/// The real thing: bytes go straight to the ingest file.
#[derive(Debug, Default, Clone, Copy)]
pub struct FileSinkFactory;

impl SinkFactory for FileSinkFactory {
    fn sink(&self, file: File) -> Box<dyn Sink> {
        Box::new(file)
    }
}
