//! Layer diff: turns a writable layer back into an OCI layer tar — from an overlay upper
//! directory (0/0 character devices are whiteouts, `trusted.overlay.opaque=y` directories are
//! opaque) or by comparing a lower and an upper tree (native snapshots). Output bytes depend
//! only on the tree: entries sorted by name, no atime/ctime, empty uname/gname.

mod info;
mod writer;

#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::apply::metadata::OVERLAY_XATTR_PREFIXES;
use crate::apply::whiteout::{OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX};
use crate::compression::sha256_string;
use crate::idshift::IdShift;
use info::{FileInfo, Kind};
use writer::LayerWriter;

/// What a diff wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffSummary {
    /// Entries written (PAX extension headers not counted).
    pub entries: u64,
    /// Bytes of tar written.
    pub size: u64,
    /// sha256 of the tar: the layer's DiffID.
    pub diff_id: [u8; 32],
}

impl DiffSummary {
    /// The DiffID as `sha256:<hex>`.
    pub fn diff_id_string(&self) -> String {
        sha256_string(&self.diff_id)
    }
}

/// Why a diff failed.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A node of the tree could not be read.
    #[error("cannot read {path} for the layer diff")]
    Read {
        /// The node.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The output could not be written.
    #[error("cannot write the layer tar")]
    Write(#[source] io::Error),
}

/// Writes the layer tar of an overlay upper directory to `out`.
pub fn diff_overlay_upper<W: Write>(upper: &Path, out: W) -> Result<(W, DiffSummary), DiffError> {
    diff_overlay_upper_unshifted(upper, out, None)
}

/// [`diff_overlay_upper`] of an upper directory whose ids are host-shifted by `shift`: the
/// tar has container ids (Docker's userns-remap layers are un-shifted the same way).
pub fn diff_overlay_upper_unshifted<W: Write>(
    upper: &Path,
    out: W,
    shift: Option<IdShift>,
) -> Result<(W, DiffSummary), DiffError> {
    let mut walk = Walk {
        writer: LayerWriter::new(out).unshifting(shift),
    };
    walk.overlay_dir(upper, &[])?;
    walk.finish()
}

/// Writes the layer tar that turns tree `lower` into tree `upper` (native snapshots).
pub fn diff_trees<W: Write>(
    lower: &Path,
    upper: &Path,
    out: W,
) -> Result<(W, DiffSummary), DiffError> {
    let mut walk = Walk {
        writer: LayerWriter::new(out),
    };
    let mut ops = Vec::new();
    walk.compare_dir(Some(lower), upper, &[], &mut ops)?;
    for op in ops {
        walk.emit(op)?;
    }
    walk.finish()
}

/// Writes a tar of the whole tree `root` (a diff against nothing).
pub fn tar_tree<W: Write>(root: &Path, out: W) -> Result<(W, DiffSummary), DiffError> {
    tar_tree_unshifted(root, out, None)
}

/// [`tar_tree`] of a tree whose ids are host-shifted by `shift`, written with container ids.
pub fn tar_tree_unshifted<W: Write>(
    root: &Path,
    out: W,
    shift: Option<IdShift>,
) -> Result<(W, DiffSummary), DiffError> {
    let mut walk = Walk {
        writer: LayerWriter::new(out).unshifting(shift),
    };
    let mut ops = Vec::new();
    walk.compare_dir(None, root, &[], &mut ops)?;
    for op in ops {
        walk.emit(op)?;
    }
    walk.finish()
}

struct Walk<W: Write> {
    writer: LayerWriter<W>,
}

/// One planned tar entry.
enum Op {
    Node {
        name: Vec<u8>,
        info: FileInfo,
        source: PathBuf,
    },
    Whiteout {
        name: Vec<u8>,
    },
}

fn read_error(path: &Path) -> impl FnOnce(io::Error) -> DiffError + '_ {
    move |source| DiffError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Children of `dir`, sorted by bytes.
fn children(dir: &Path) -> Result<Vec<OsString>, DiffError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error(dir))? {
        names.push(entry.map_err(read_error(dir))?.file_name());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    if !out.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

fn whiteout_name(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut leaf = WHITEOUT_PREFIX.as_bytes().to_vec();
    leaf.extend_from_slice(name);
    join(prefix, &leaf)
}

impl<W: Write> Walk<W> {
    fn finish(self) -> Result<(W, DiffSummary), DiffError> {
        let entries = self.writer.entries;
        let (out, size, diff_id) = self.writer.finish().map_err(DiffError::Write)?;
        Ok((
            out,
            DiffSummary {
                entries,
                size,
                diff_id,
            },
        ))
    }

    fn emit(&mut self, op: Op) -> Result<(), DiffError> {
        match op {
            Op::Node { name, info, source } => self.writer.add(&name, &info, &source),
            Op::Whiteout { name } => self.writer.add_marker(&name, None),
        }
        .map_err(DiffError::Write)
    }

    /// Emits the children of upper directory `dir` (layer name `prefix`), depth first.
    fn overlay_dir(&mut self, dir: &Path, prefix: &[u8]) -> Result<(), DiffError> {
        for name in children(dir)? {
            let path = dir.join(&name);
            let info = FileInfo::read(&path).map_err(read_error(&path))?;
            let layer_name = join(prefix, name.as_bytes());
            if info.is_overlay_whiteout() {
                let marker = whiteout_name(prefix, name.as_bytes());
                self.writer
                    .add_marker(&marker, Some(&info))
                    .map_err(DiffError::Write)?;
                continue;
            }
            let mut clean = info.clone();
            clean
                .xattrs
                .retain(|(k, _)| !OVERLAY_XATTR_PREFIXES.iter().any(|p| k.starts_with(p)));
            self.writer
                .add(&layer_name, &clean, &path)
                .map_err(DiffError::Write)?;
            if info.kind == Kind::Dir {
                if info.xattr(OVERLAY_OPAQUE_XATTR.as_bytes()) == Some(b"y") {
                    let marker = join(&layer_name, OPAQUE_MARKER.as_bytes());
                    self.writer
                        .add_marker(&marker, Some(&clean))
                        .map_err(DiffError::Write)?;
                }
                self.overlay_dir(&path, &layer_name)?;
            }
        }
        Ok(())
    }

    /// Plans the entries turning `lower` (absent: empty) into `upper` below layer name
    /// `prefix`. Returns whether anything below changed.
    fn compare_dir(
        &mut self,
        lower: Option<&Path>,
        upper: &Path,
        prefix: &[u8],
        ops: &mut Vec<Op>,
    ) -> Result<bool, DiffError> {
        let upper_names = children(upper)?;
        let lower_names = match lower {
            Some(l) => children(l)?,
            None => Vec::new(),
        };
        // Both lists are sorted: merge them, whiteouts in place of names only lower has.
        let mut names: Vec<(Vec<u8>, bool, bool)> = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < upper_names.len() || j < lower_names.len() {
            let u = upper_names.get(i).map(|n| n.as_bytes());
            let l = lower_names.get(j).map(|n| n.as_bytes());
            match (u, l) {
                (Some(u), Some(l)) if u == l => {
                    names.push((u.to_vec(), true, true));
                    i += 1;
                    j += 1;
                }
                (Some(u), Some(l)) if u < l => {
                    names.push((u.to_vec(), true, false));
                    i += 1;
                }
                (Some(u), None) => {
                    names.push((u.to_vec(), true, false));
                    i += 1;
                }
                (_, Some(l)) => {
                    names.push((l.to_vec(), false, true));
                    j += 1;
                }
                (None, None) => break,
            }
        }
        let mut changed = false;
        for (name, in_upper, in_lower) in names {
            let layer_name = join(prefix, &name);
            let name_os = std::ffi::OsStr::from_bytes(&name);
            if !in_upper {
                ops.push(Op::Whiteout {
                    name: whiteout_name(prefix, &name),
                });
                changed = true;
                continue;
            }
            let upper_path = upper.join(name_os);
            let info = FileInfo::read(&upper_path).map_err(read_error(&upper_path))?;
            let lower_info = match (in_lower, lower) {
                (true, Some(l)) => {
                    let p = l.join(name_os);
                    Some((FileInfo::read(&p).map_err(read_error(&p))?, p))
                }
                _ => None,
            };
            let node_changed = lower_info
                .as_ref()
                .is_none_or(|(li, _)| info.differs_from(li));
            if info.kind == Kind::Dir {
                let lower_dir = lower_info
                    .as_ref()
                    .filter(|(li, _)| li.kind == Kind::Dir)
                    .map(|(_, p)| p.as_path());
                let mut sub = Vec::new();
                let sub_changed =
                    self.compare_dir(lower_dir, &upper_path, &layer_name, &mut sub)?;
                if node_changed || sub_changed {
                    ops.push(Op::Node {
                        name: layer_name,
                        info,
                        source: upper_path,
                    });
                    ops.extend(sub);
                    changed = true;
                }
            } else if node_changed {
                ops.push(Op::Node {
                    name: layer_name,
                    info,
                    source: upper_path,
                });
                changed = true;
            }
        }
        Ok(changed)
    }
}
