//! PAX sparse files as GNU tar writes them with `--format=posix --sparse` (formats 0.1 and
//! 1.0; the old GNU 'S' type is handled by the tar crate): the real name, size and chunk map
//! live in `GNU.sparse.*` records and, for 1.0, in a text map at the start of the data.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use super::entry::MAX_SPARSE_SIZE;
use super::{io_error, ApplyError};

/// Largest 1.0 text map accepted (a map entry costs a few dozen bytes, so this allows tens
/// of thousands of chunks while bounding memory for hostile input).
const MAX_MAP_BYTES: usize = 1 << 20;

/// The sparse description of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PaxSparse {
    /// The real name (the header's name is a `GNUSparseFile.N/...` placeholder).
    pub(crate) name: Option<Vec<u8>>,
    real_size: u64,
    /// Chunks from the PAX records (0.0, 0.1); `None` for 1.0, whose map leads the data.
    map: Option<Vec<(u64, u64)>>,
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

impl PaxSparse {
    /// The sparse description in `entry`'s PAX records, if it has one.
    pub(crate) fn read<R: Read>(
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> Result<Option<Self>, ApplyError> {
        let bad = |reason| ApplyError::Malformed {
            entry: name.to_string(),
            reason,
        };
        let Some(pax) = entry
            .pax_extensions()
            .map_err(|_| bad("its PAX header is malformed"))?
        else {
            return Ok(None);
        };
        let (mut major, mut minor, mut real_name, mut real_size) = (None, None, None, None);
        let (mut map, mut offsets, mut lengths): (Option<Vec<u64>>, Vec<u64>, Vec<u64>) =
            (None, Vec::new(), Vec::new());
        for record in pax {
            let record = record.map_err(|_| bad("its PAX header is malformed"))?;
            let value = record.value_bytes();
            let number = || parse_u64(value).ok_or(bad("a GNU.sparse record is not a number"));
            match record.key_bytes() {
                b"GNU.sparse.major" => major = Some(number()?),
                b"GNU.sparse.minor" => minor = Some(number()?),
                b"GNU.sparse.name" => real_name = Some(value.to_vec()),
                b"GNU.sparse.realsize" | b"GNU.sparse.size" => real_size = Some(number()?),
                b"GNU.sparse.offset" => offsets.push(number()?),
                b"GNU.sparse.numbytes" => lengths.push(number()?),
                b"GNU.sparse.map" => {
                    let parts: Option<Vec<u64>> =
                        value.split(|b| *b == b',').map(parse_u64).collect();
                    map = Some(parts.ok_or(bad("GNU.sparse.map is malformed"))?);
                }
                _ => {}
            }
        }
        let Some(real_size) = real_size else {
            return Ok(None);
        };
        if real_size > MAX_SPARSE_SIZE {
            return Err(ApplyError::SparseTooLarge {
                entry: name.to_string(),
                size: real_size,
                limit: MAX_SPARSE_SIZE,
            });
        }
        let chunks = if (major, minor) == (Some(1), Some(0)) {
            None
        } else if let Some(flat) = map {
            if flat.len() % 2 != 0 {
                return Err(bad("GNU.sparse.map has an odd number of values"));
            }
            Some(flat.chunks(2).map(|c| (c[0], c[1])).collect())
        } else if !offsets.is_empty() && offsets.len() == lengths.len() {
            Some(offsets.into_iter().zip(lengths).collect())
        } else {
            return Ok(None);
        };
        Ok(Some(PaxSparse {
            name: real_name,
            real_size,
            map: chunks,
        }))
    }

    /// Writes the entry's data into `file` as the chunks say, leaving holes between them.
    pub(crate) fn write<R: Read>(
        &self,
        data: &mut R,
        file: &mut File,
        name: &str,
    ) -> Result<(), ApplyError> {
        let bad = |reason| ApplyError::Malformed {
            entry: name.to_string(),
            reason,
        };
        let chunks = match &self.map {
            Some(chunks) => chunks.clone(),
            None => read_map(data, name)?,
        };
        let mut end = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        for (offset, length) in chunks {
            let chunk_end = offset
                .checked_add(length)
                .ok_or(bad("a sparse chunk overflows"))?;
            if offset < end || chunk_end > self.real_size {
                return Err(bad("sparse chunks overlap or exceed the file size"));
            }
            end = chunk_end;
            file.seek(SeekFrom::Start(offset))
                .map_err(io_error(name, "write file"))?;
            let mut left = length;
            while left > 0 {
                let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
                let n = data
                    .read(&mut buf[..want])
                    .map_err(io_error(name, "read entry data"))?;
                if n == 0 {
                    return Err(ApplyError::Truncated {
                        entry: name.to_string(),
                        expected: length,
                        actual: length - left,
                    });
                }
                file.write_all(&buf[..n])
                    .map_err(io_error(name, "write file"))?;
                left -= n as u64;
            }
        }
        file.set_len(self.real_size)
            .map_err(io_error(name, "write file"))
    }
}

/// Reads the 1.0 map: decimal lines `count`, then `offset` and `length` per chunk, padded to
/// a 512-byte block.
fn read_map<R: Read>(data: &mut R, name: &str) -> Result<Vec<(u64, u64)>, ApplyError> {
    let bad = |reason| ApplyError::Malformed {
        entry: name.to_string(),
        reason,
    };
    let mut text = Vec::new();
    let mut block = [0u8; 512];
    loop {
        let mut filled = 0;
        while filled < block.len() {
            let n = data
                .read(&mut block[filled..])
                .map_err(io_error(name, "read entry data"))?;
            if n == 0 {
                return Err(ApplyError::Truncated {
                    entry: name.to_string(),
                    expected: 512,
                    actual: filled as u64,
                });
            }
            filled += n;
        }
        text.extend_from_slice(&block);
        let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
        // The last piece has no newline yet; only complete lines count.
        let complete = &lines[..lines.len() - 1];
        if let Some(first) = complete.first() {
            let count = parse_u64(first).ok_or(bad("the sparse map count is not a number"))?;
            let needed = count
                .checked_mul(2)
                .and_then(|n| n.checked_add(1))
                .ok_or(bad("the sparse map is too large"))?;
            if complete.len() as u64 >= needed {
                let numbers: Option<Vec<u64>> = complete[1..needed as usize]
                    .iter()
                    .map(|l| parse_u64(l))
                    .collect();
                let numbers = numbers.ok_or(bad("the sparse map is malformed"))?;
                return Ok(numbers.chunks(2).map(|c| (c[0], c[1])).collect());
            }
        }
        if text.len() >= MAX_MAP_BYTES {
            return Err(bad("the sparse map is too large"));
        }
    }
}
