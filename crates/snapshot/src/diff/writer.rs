//! Writes reproducible layer tar entries: ustar headers, PAX records only when a field does
//! not fit (long names, big ids or sizes, xattrs), empty uname/gname, whole-second mtimes
//! (Docker truncates them too), no atime/ctime, hardlinks by (dev, ino).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

use super::info::{FileInfo, Kind};
use crate::idshift::IdShift;

/// Hashes and counts what passes through to `inner`.
pub(crate) struct DigestWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

const USTAR_NAME_MAX: usize = 100;
const USTAR_ID_MAX: u32 = 0o7777777;
const USTAR_SIZE_MAX: u64 = 0o77777777777;
const USTAR_TIME_MAX: i64 = 0o77777777777;

pub(crate) struct LayerWriter<W: Write> {
    builder: tar::Builder<DigestWriter<W>>,
    /// First path written for each multiply-linked inode.
    links: HashMap<(u64, u64), Vec<u8>>,
    pub(crate) entries: u64,
    /// Host-shifted ids to translate back to container ids (a userns chown copy's upper).
    unshift: Option<IdShift>,
}

impl<W: Write> LayerWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        LayerWriter {
            builder: tar::Builder::new(DigestWriter {
                inner: out,
                hasher: Sha256::new(),
                bytes: 0,
            }),
            links: HashMap::new(),
            entries: 0,
            unshift: None,
        }
    }

    /// Writes container ids for the host-shifted ids of `shift` (ownership and ACLs).
    pub(crate) fn unshifting(mut self, shift: Option<IdShift>) -> Self {
        self.unshift = shift;
        self
    }

    fn ids(&self, info: &FileInfo) -> (u32, u32) {
        match &self.unshift {
            Some(shift) => shift.to_container(info.uid, info.gid),
            None => (info.uid, info.gid),
        }
    }

    /// Appends node `info` found at `source` under the layer name `name` (no trailing slash).
    pub(crate) fn add(&mut self, name: &[u8], info: &FileInfo, source: &Path) -> io::Result<()> {
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        let mut header = base_header(info, self.ids(info), &mut pax);
        let mut full_name = name.to_vec();
        let mut data: Option<File> = None;
        match info.kind {
            Kind::Dir => {
                full_name.push(b'/');
                header.set_entry_type(EntryType::Directory);
            }
            Kind::File if info.nlink > 1 && self.links.contains_key(&(info.dev, info.ino)) => {
                let first = self.links[&(info.dev, info.ino)].clone();
                header.set_entry_type(EntryType::Link);
                set_link_name(&mut header, &first, &mut pax);
            }
            Kind::File => {
                if info.nlink > 1 {
                    self.links.insert((info.dev, info.ino), name.to_vec());
                }
                header.set_entry_type(EntryType::Regular);
                set_size(&mut header, info.size, &mut pax);
                data = Some(File::open(source)?);
            }
            Kind::Symlink => {
                header.set_entry_type(EntryType::Symlink);
                set_link_name(
                    &mut header,
                    info.link_target.as_deref().unwrap_or_default(),
                    &mut pax,
                );
            }
            Kind::Char | Kind::Block => {
                header.set_entry_type(if info.kind == Kind::Char {
                    EntryType::Char
                } else {
                    EntryType::Block
                });
                let (major, minor) = (rustix::fs::major(info.rdev), rustix::fs::minor(info.rdev));
                header.set_device_major(major)?;
                header.set_device_minor(minor)?;
            }
            Kind::Fifo => header.set_entry_type(EntryType::Fifo),
            Kind::Socket => return Ok(()),
        }
        for (key, value) in &info.xattrs {
            if let Ok(key) = std::str::from_utf8(key) {
                let value = match &self.unshift {
                    Some(shift) => shift.unshift_acl(key, value),
                    None => value.clone(),
                };
                pax.push((format!("SCHILY.xattr.{key}"), value));
            }
        }
        set_name(&mut header, &full_name, &mut pax);
        self.append(header, pax, data, info.size)
    }

    /// Appends an empty regular file (whiteout or opaque marker) with the permissions,
    /// owner and mtime of `template` (Docker copies them from the whited-out node), or
    /// zeros when there is none.
    pub(crate) fn add_marker(
        &mut self,
        name: &[u8],
        template: Option<&FileInfo>,
    ) -> io::Result<()> {
        let mut pax = Vec::new();
        let mut header = match template {
            Some(info) => base_header(info, self.ids(info), &mut pax),
            None => {
                let mut h = Header::new_ustar();
                h.set_mode(0);
                h.set_mtime(0);
                h.set_uid(0);
                h.set_gid(0);
                h
            }
        };
        header.set_entry_type(EntryType::Regular);
        header.set_size(0);
        set_name(&mut header, name, &mut pax);
        self.append(header, pax, None, 0)
    }

    fn append(
        &mut self,
        mut header: Header,
        pax: Vec<(String, Vec<u8>)>,
        data: Option<File>,
        size: u64,
    ) -> io::Result<()> {
        if !pax.is_empty() {
            self.builder
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        header.set_cksum();
        self.entries += 1;
        match data {
            // A file that changed size since it was listed would corrupt the stream: read
            // exactly `size` bytes and fail if fewer exist.
            Some(file) => {
                let mut reader = io::Read::take(file, size);
                let mut counted = CountingReader {
                    inner: &mut reader,
                    count: 0,
                };
                self.builder.append(&header, &mut counted)?;
                if counted.count != size {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while being written to the layer",
                    ));
                }
                Ok(())
            }
            None => self.builder.append(&header, io::empty()),
        }
    }

    /// Writes the end-of-archive blocks; returns the writer, the byte count and the DiffID.
    pub(crate) fn finish(self) -> io::Result<(W, u64, [u8; 32])> {
        let out = self.builder.into_inner()?;
        Ok((out.inner, out.bytes, out.hasher.finalize().into()))
    }
}

struct CountingReader<'a, R> {
    inner: &'a mut R,
    count: u64,
}

impl<R: io::Read> io::Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

fn base_header(info: &FileInfo, ids: (u32, u32), pax: &mut Vec<(String, Vec<u8>)>) -> Header {
    let mut h = Header::new_ustar();
    h.set_size(0);
    h.set_mode(info.mode & 0o7777);
    for (key, id, set) in [
        ("uid", ids.0, Header::set_uid as fn(&mut Header, u64)),
        ("gid", ids.1, Header::set_gid),
    ] {
        if id > USTAR_ID_MAX {
            pax.push((key.to_string(), id.to_string().into_bytes()));
            set(&mut h, 0);
        } else {
            set(&mut h, u64::from(id));
        }
    }
    if (0..=USTAR_TIME_MAX).contains(&info.mtime) {
        h.set_mtime(info.mtime as u64);
    } else {
        pax.push(("mtime".to_string(), info.mtime.to_string().into_bytes()));
        h.set_mtime(0);
    }
    h
}

fn set_name(h: &mut Header, name: &[u8], pax: &mut Vec<(String, Vec<u8>)>) {
    let field = &mut h.as_ustar_mut().map(|u| &mut u.name);
    if let Some(field) = field {
        let n = name.len().min(USTAR_NAME_MAX);
        field[..n].copy_from_slice(&name[..n]);
    }
    if name.len() > USTAR_NAME_MAX {
        pax.push(("path".to_string(), name.to_vec()));
    }
}

fn set_link_name(h: &mut Header, target: &[u8], pax: &mut Vec<(String, Vec<u8>)>) {
    if let Some(ustar) = h.as_ustar_mut() {
        let n = target.len().min(USTAR_NAME_MAX);
        ustar.linkname[..n].copy_from_slice(&target[..n]);
    }
    if target.len() > USTAR_NAME_MAX {
        pax.push(("linkpath".to_string(), target.to_vec()));
    }
}

fn set_size(h: &mut Header, size: u64, pax: &mut Vec<(String, Vec<u8>)>) {
    if size > USTAR_SIZE_MAX {
        pax.push(("size".to_string(), size.to_string().into_bytes()));
        h.set_size(0);
    } else {
        h.set_size(size);
    }
}
