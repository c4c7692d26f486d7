//! Layer apply: unpacks an OCI/Docker layer tar stream (plain, gzip, zstd) onto a directory,
//! resolving every entry inside it, and reports the layer's DiffID.
//!
//! Matches Docker's `archive.UnpackLayer` semantics (an existing path is replaced unless both
//! it and the entry are directories; missing parents are created 0755; directory mtimes are
//! set last) with the whiteout handling of its overlay2 driver or of its native differ.

mod entry;
pub(crate) mod metadata;
mod sparse;
pub(crate) mod whiteout;

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::compression::{sha256_string, spawn_pump, Compression, Decoder, DigestReader};
use crate::idmap::Ownership;
use crate::path::{CleanPath, PathError};
use crate::root::Root;

/// What a whiteout entry turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// The target is an overlay upper/lower dir: `.wh.<name>` becomes a 0/0 character device
    /// and `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory (needs root).
    Overlay,
    /// The target already holds the lower layers (flattened copy): whiteouts delete there.
    Native,
}

/// What happens to device nodes when the applier may not create them (no CAP_MKNOD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevicePolicy {
    /// Create them; failure is an error.
    Create,
    /// Create them where permitted; otherwise record them in [`ApplySummary::skipped`].
    SkipUnpermitted,
}

/// How to apply a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Overlay or native whiteouts.
    pub whiteouts: WhiteoutMode,
    /// Ownership of created entries.
    pub ownership: Ownership,
    /// Device node handling.
    pub devices: DevicePolicy,
}

impl ApplyOptions {
    /// Root applying into an overlay snapshot: every bit of metadata kept.
    pub fn overlay() -> Self {
        ApplyOptions {
            whiteouts: WhiteoutMode::Overlay,
            ownership: Ownership::Preserve,
            devices: DevicePolicy::Create,
        }
    }

    /// Root applying into a flattened copy.
    pub fn native() -> Self {
        ApplyOptions {
            whiteouts: WhiteoutMode::Native,
            ..Self::overlay()
        }
    }

    /// Any user applying into a flattened copy: ownership left alone, device nodes that
    /// cannot be created are skipped and listed.
    pub fn unprivileged() -> Self {
        ApplyOptions {
            whiteouts: WhiteoutMode::Native,
            ownership: Ownership::Ignore,
            devices: DevicePolicy::SkipUnpermitted,
        }
    }
}

/// Why an entry was not (fully) applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A device node the applier may not create ([`DevicePolicy::SkipUnpermitted`]).
    Device,
    /// An extended attribute the filesystem or the applier's privileges refused (Docker
    /// ignores these too: ENOTSUP and EPERM).
    Xattr(String),
    /// aufs metadata (`.wh..wh.plnk` and friends), meaningless outside aufs.
    AufsMetadata,
}

/// An entry not applied, or applied without some of its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    /// The entry's name as the tar spells it.
    pub entry: String,
    /// Why.
    pub reason: SkipReason,
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplySummary {
    /// Compression detected on the input.
    pub compression: Compression,
    /// Entries in the tar (extension headers not counted).
    pub entries: u64,
    /// Bytes of uncompressed tar stream, trailing blocks included.
    pub size: u64,
    /// sha256 of the uncompressed tar stream: the layer's DiffID.
    pub diff_id: [u8; 32],
    /// Entries skipped or partly applied.
    pub skipped: Vec<SkippedEntry>,
}

impl ApplySummary {
    /// The DiffID as `sha256:<hex>`, the form image configs list in `rootfs.diff_ids`.
    pub fn diff_id_string(&self) -> String {
        sha256_string(&self.diff_id)
    }
}

/// Why an apply failed. The target may hold a partial layer: callers apply into a fresh
/// snapshot and discard it on error.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The target directory could not be opened.
    #[error("cannot open apply target {path}")]
    OpenTarget {
        /// The target.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The stream is not a readable (possibly compressed) tar.
    #[error("cannot read layer stream")]
    Read(#[source] io::Error),
    /// [`apply_verified_tar`] was given a compressed stream (whose DiffID is not its digest).
    #[error("layer stream is {compression:?}-compressed, but an uncompressed tar was expected")]
    Compressed {
        /// What the stream's first bytes say.
        compression: Compression,
    },
    /// An entry name climbs above the root.
    #[error("layer entry {entry:?} escapes the root")]
    Escape {
        /// The name as the tar spells it.
        entry: String,
    },
    /// An entry name or whiteout cannot name a file.
    #[error("layer entry {entry:?} has an invalid name: {reason}")]
    InvalidName {
        /// The name as the tar spells it.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header, PAX record or sparse map that cannot be right.
    #[error("layer entry {entry:?} is malformed: {reason}")]
    Malformed {
        /// The entry.
        entry: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A hardlink target climbs above the root.
    #[error("layer entry {entry:?} is a hardlink to {target:?}, which escapes the root")]
    HardlinkEscape {
        /// The link's name.
        entry: String,
        /// The link target as the tar spells it.
        target: String,
    },
    /// A hardlink target is not in this layer nor in the tree it is applied onto.
    #[error("layer entry {entry:?} is a hardlink to {target:?}, which is not in the layer or the tree below it")]
    HardlinkTargetMissing {
        /// The link's name.
        entry: String,
        /// The link target as the tar spells it.
        target: String,
    },
    /// The stream ended inside an entry's data.
    #[error("layer entry {entry:?} is truncated: its header says {expected} bytes but the stream ended after {actual}")]
    Truncated {
        /// The entry.
        entry: String,
        /// Size from the header.
        expected: u64,
        /// Bytes actually present.
        actual: u64,
    },
    /// An entry type a layer cannot hold (multi-volume, tape labels, ...).
    #[error("layer entry {entry:?} has unsupported tar type {kind:?}")]
    UnsupportedType {
        /// The entry.
        entry: String,
        /// The type flag byte.
        kind: char,
    },
    /// A device node (or overlay whiteout) needs CAP_MKNOD.
    #[error("layer entry {entry:?} is a device node and creating it is not permitted (apply as root, or with DevicePolicy::SkipUnpermitted)")]
    DeviceNotPermitted {
        /// The entry.
        entry: String,
    },
    /// A uid or gid has no mapping in [`Ownership::Remap`].
    #[error("layer entry {entry:?} is owned by id {id}, which the id mapping does not cover")]
    UnmappedId {
        /// The entry.
        entry: String,
        /// The unmapped container id.
        id: u32,
    },
    /// A sparse entry expands beyond what the applier accepts.
    #[error(
        "layer entry {entry:?} is a sparse file of {size} bytes, more than the {limit} accepted"
    )]
    SparseTooLarge {
        /// The entry.
        entry: String,
        /// Expanded size.
        size: u64,
        /// Limit.
        limit: u64,
    },
    /// A filesystem operation on an entry failed.
    #[error("layer entry {entry:?}: {operation} failed")]
    Io {
        /// The entry.
        entry: String,
        /// What was being done (`create file`, `chown`, ...).
        operation: &'static str,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// Applies the layer tar stream `input` (plain, gzip or zstd, detected from its first bytes)
/// onto the directory `target`.
pub fn apply_layer<R: Read>(
    input: R,
    target: &Path,
    options: &ApplyOptions,
) -> Result<ApplySummary, ApplyError> {
    let (compression, reader) = Decoder::new(input).map_err(ApplyError::Read)?;
    apply_stream(compression, reader, target, options)
}

/// [`apply_layer`] with reading, decompression and the DiffID hash on a second thread,
/// overlapping with the file writes (for plain streams too: hashing a large layer costs
/// about as much as writing its files).
pub fn apply_layer_parallel<R: Read + Send>(
    input: R,
    target: &Path,
    options: &ApplyOptions,
) -> Result<ApplySummary, ApplyError> {
    let (compression, reader) = Decoder::new(input).map_err(ApplyError::Read)?;
    std::thread::scope(|scope| {
        let (digest_tx, digest_rx) = std::sync::mpsc::sync_channel(1);
        let hashed = ReportingDigest {
            inner: Some(DigestReader::new(reader)),
            done: digest_tx,
        };
        let mut pumped = spawn_pump(scope, hashed);
        let (applied, _) = apply_entries(&mut pumped, target, options)?;
        // The trailing padding belongs to the DiffID: let the pump read to the end.
        io::copy(&mut pumped, &mut io::sink()).map_err(ApplyError::Read)?;
        drop(pumped);
        let (size, diff_id) = digest_rx
            .recv()
            .map_err(|_| ApplyError::Read(io::Error::other("layer hash thread stopped")))?
            .map_err(ApplyError::Read)?;
        Ok(ApplySummary {
            compression,
            entries: applied.entries,
            size,
            diff_id,
            skipped: applied.skipped,
        })
    })
}

/// What [`apply_verified_tar`] did (no DiffID: the caller verified it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedTar {
    /// Entries in the tar (extension headers not counted).
    pub entries: u64,
    /// Entries skipped or partly applied.
    pub skipped: Vec<SkippedEntry>,
}

/// Applies an uncompressed layer tar whose DiffID the caller has already verified (a
/// content-store blob whose sha256 digest is the DiffID: the store hashed every byte when
/// it committed the blob), without hashing it again and without a second thread: for a
/// `docker load`ed layer that hash and the hand-over between threads cost more than they
/// overlap. A compressed stream is refused (its DiffID is not its digest).
pub fn apply_verified_tar<R: Read>(
    input: R,
    target: &Path,
    options: &ApplyOptions,
) -> Result<AppliedTar, ApplyError> {
    let (compression, reader) = Decoder::new(input).map_err(ApplyError::Read)?;
    if compression != Compression::None {
        return Err(ApplyError::Compressed { compression });
    }
    // Tar headers are read 512 bytes at a time: buffered, that is one read(2) per 256 KiB.
    let buffered = io::BufReader::with_capacity(256 * 1024, reader);
    let (applied, _) = apply_entries(buffered, target, options)?;
    Ok(AppliedTar {
        entries: applied.entries,
        skipped: applied.skipped,
    })
}

/// A [`DigestReader`] that sends its count and digest once its input ends (read on the
/// pump thread, so the hash runs there).
struct ReportingDigest<R> {
    inner: Option<DigestReader<R>>,
    done: std::sync::mpsc::SyncSender<io::Result<(u64, [u8; 32])>>,
}

impl<R: Read> Read for ReportingDigest<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(0);
        };
        let n = inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Some(inner) = self.inner.take() {
                let _ = self.done.send(inner.finish());
            }
        }
        Ok(n)
    }
}

/// What [`apply_entries`] leaves for the summary.
struct Applied {
    entries: u64,
    skipped: Vec<SkippedEntry>,
}

/// Applies every entry of the tar stream `reader` onto `target`; returns the counts and
/// the reader (positioned after the end-of-archive marker).
fn apply_entries<R: Read>(
    reader: R,
    target: &Path,
    options: &ApplyOptions,
) -> Result<(Applied, R), ApplyError> {
    let root = Root::open(target).map_err(|source| ApplyError::OpenTarget {
        path: target.to_path_buf(),
        source,
    })?;
    let mut archive = tar::Archive::new(reader);
    let mut applier = Applier {
        root: &root,
        options,
        unpacked: HashSet::new(),
        dirs: Vec::new(),
        skipped: Vec::new(),
        entries: 0,
        buffer: Vec::new(),
    };
    for entry in archive.entries().map_err(ApplyError::Read)? {
        let mut entry = entry.map_err(ApplyError::Read)?;
        applier.apply_entry(&mut entry)?;
    }
    applier.finish_directories()?;
    let Applier {
        skipped, entries, ..
    } = applier;
    Ok((Applied { entries, skipped }, archive.into_inner()))
}

fn apply_stream<R: Read>(
    compression: Compression,
    reader: R,
    target: &Path,
    options: &ApplyOptions,
) -> Result<ApplySummary, ApplyError> {
    let (applied, hashed) = apply_entries(DigestReader::new(reader), target, options)?;
    let (size, diff_id) = hashed.finish().map_err(ApplyError::Read)?;
    Ok(ApplySummary {
        compression,
        entries: applied.entries,
        size,
        diff_id,
        skipped: applied.skipped,
    })
}

/// State of one apply.
pub(crate) struct Applier<'a> {
    root: &'a Root,
    options: &'a ApplyOptions,
    /// Paths this layer created (and their parents): an opaque marker keeps them.
    unpacked: HashSet<CleanPath>,
    /// Directories with their mode and mtime, set after all children are written (a
    /// read-only directory mode must not stop an unprivileged applier from filling it).
    dirs: Vec<(CleanPath, u32, rustix::fs::Timespec)>,
    skipped: Vec<SkippedEntry>,
    entries: u64,
    /// File data passes through this one buffer (a fresh zeroed 64 KiB per file cost a
    /// calloc and a memset for each of a rootfs layer's thousands of files).
    buffer: Vec<u8>,
}

impl Applier<'_> {
    fn apply_entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ApplyError> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        let header_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let sparse = sparse::PaxSparse::read(entry, &header_name)?;
        let raw_name = match sparse.as_ref().and_then(|s| s.name.clone()) {
            Some(real) => real,
            None => entry.path_bytes().into_owned(),
        };
        let name = String::from_utf8_lossy(&raw_name).into_owned();
        self.entries += 1;
        let path = CleanPath::parse(&raw_name).map_err(|e| match e {
            PathError::Escape => ApplyError::Escape {
                entry: name.clone(),
            },
            PathError::Nul => ApplyError::InvalidName {
                entry: name.clone(),
                reason: "it contains a NUL byte",
            },
        })?;
        if whiteout::is_aufs_metadata(&path) {
            self.skip(&name, SkipReason::AufsMetadata);
            return Ok(());
        }
        if let Some(rest) = whiteout::whiteout_target(&path) {
            return self.apply_whiteout(&name, &path, rest);
        }
        self.apply_file_entry(entry, &name, &path, sparse.as_ref())
    }

    /// Records `path` and its parents as written by this layer.
    fn mark_unpacked(&mut self, path: &CleanPath) {
        for n in 1..=path.components().len() {
            self.unpacked.insert(path.prefix(n));
        }
    }

    fn skip(&mut self, entry: &str, reason: SkipReason) {
        self.skipped.push(SkippedEntry {
            entry: entry.to_string(),
            reason,
        });
    }
}

/// Wraps an I/O error with the entry and operation it belongs to.
pub(crate) fn io_error<'a>(
    entry: &'a str,
    operation: &'static str,
) -> impl FnOnce(io::Error) -> ApplyError + 'a {
    move |source| ApplyError::Io {
        entry: entry.to_string(),
        operation,
        source,
    }
}

/// Same as [`io_error`] for rustix errors.
pub(crate) fn errno_error<'a>(
    entry: &'a str,
    operation: &'static str,
) -> impl FnOnce(rustix::io::Errno) -> ApplyError + 'a {
    move |errno| ApplyError::Io {
        entry: entry.to_string(),
        operation,
        source: errno.into(),
    }
}
