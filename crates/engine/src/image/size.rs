//! Docker's image "Size": the sum of the file sizes in each layer as its graph driver
//! counts them (moby's `directory.Size`: regular files and symlink targets, directories
//! and empty files skipped, each hard-linked inode once), computed from the layer tar.

use std::io::{self, Read};

/// The size of the (uncompressed) layer tar in `input`.
pub fn layer_size<R: Read>(input: R) -> io::Result<i64> {
    let mut archive = tar::Archive::new(input);
    let mut total: i64 = 0;
    for entry in archive.entries()? {
        let entry = entry?;
        let header = entry.header();
        let size = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                entry.size()
            }
            tar::EntryType::Symlink => entry
                .link_name_bytes()
                .map_or(0, |target| target.len() as u64),
            // Hard links share the inode counted at their target; directories, devices,
            // fifos and whiteout markers have no size of their own.
            _ => 0,
        };
        total = total.saturating_add(i64::try_from(size).unwrap_or(i64::MAX));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        builder.into_inner().expect("tar")
    }

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o755);
        h
    }

    #[test]
    fn size_counts_files_and_symlink_targets_once_per_inode() {
        let bytes = tar_of(|b| {
            let mut dir = header(tar::EntryType::Directory, 0);
            b.append_data(&mut dir, "bin/", io::empty()).expect("dir");
            let mut file = header(tar::EntryType::Regular, 5);
            b.append_data(&mut file, "bin/busybox", &b"12345"[..])
                .expect("file");
            let mut link = header(tar::EntryType::Symlink, 0);
            b.append_link(&mut link, "bin/sh", "busybox")
                .expect("symlink");
            let mut hard = header(tar::EntryType::Link, 0);
            b.append_link(&mut hard, "bin/ash", "bin/busybox")
                .expect("hardlink");
            let mut empty = header(tar::EntryType::Regular, 0);
            b.append_data(&mut empty, "etc/.wh.passwd", io::empty())
                .expect("whiteout");
        });
        assert_eq!(
            layer_size(&bytes[..]).expect("size"),
            5 + "busybox".len() as i64
        );
    }

    #[test]
    fn a_truncated_tar_is_an_error() {
        let bytes = tar_of(|b| {
            let mut file = header(tar::EntryType::Regular, 600);
            b.append_data(&mut file, "big", &[7u8; 600][..])
                .expect("file");
        });
        assert!(layer_size(&bytes[..700]).is_err());
    }
}
