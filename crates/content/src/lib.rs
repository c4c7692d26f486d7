//! berth's content-addressed blob store: blobs by digest under one root, ingests that
//! stream, resume and commit atomically after verification, leases that protect content
//! in flight, and a mark-and-sweep garbage collector over caller-defined references.
//!
//! Synchronous std I/O with a blocking API; async callers use `spawn_blocking`. It does
//! not know image formats (the caller tells GC what a blob references), does not talk to
//! registries, and keeps no index beyond the filesystem itself: a crash at any instant
//! leaves a store that opens and loses nothing committed.

mod durable;
mod error;
mod gc;
mod lease;
mod sink;
mod store;
mod writer;

#[cfg(test)]
mod testing;

pub use error::{BoxError, ContentError, ContentErrorKind};
pub use gc::{GcOptions, GcReport};
pub use lease::{Lease, MAX_LEASE_ID_LEN};
pub use sink::{FileSinkFactory, Sink, SinkFactory};
pub use store::{BlobInfo, BlobReader, Store};
pub use writer::{Committed, Expected, IngestStatus, Writer, MAX_REFERENCE_LEN};
