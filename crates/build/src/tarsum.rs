//! The per-entry digest Docker's classic builder names COPY/ADD sources by: moby's tarsum
//! v1 of one tar entry, sha256 over the header fields it selects (every field but mtime,
//! as `name value` pairs with no separator; user and group names left empty; then the
//! xattrs sorted by key), then the content.
//!
//! dockerd takes these from two places, and so does berth: a context file's from the
//! header the client sent (`FromArchive` tarsums the upload), an image's or stage's file
//! (`COPY --from`) from an `lstat` made into a header as moby's `FileInfoHeader` makes it
//! (permission and set-id bits, numeric owner, size of regular files only, a directory's
//! name ending in `/`, the `security.capability` xattr).

use sha2::{Digest as _, Sha256};

/// The header fields that enter the digest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    pub name: String,
    pub mode: u64,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub typeflag: u8,
    pub link: String,
    pub devmajor: u64,
    pub devminor: u64,
    /// Sorted by key.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Header {
    /// Whether the entry's data is part of the digest (tar stores data for these types).
    pub fn has_content(&self) -> bool {
        !matches!(self.typeflag, b'1' | b'2' | b'3' | b'4' | b'5' | b'6')
    }
}

/// A sha256 already fed `header`; feed it the content and finish.
pub fn hasher(header: &Header) -> Sha256 {
    let mut hasher = Sha256::new();
    let numbers = [
        ("name", None),
        ("mode", Some(header.mode)),
        ("uid", Some(header.uid)),
        ("gid", Some(header.gid)),
        ("size", Some(header.size)),
    ];
    for (key, value) in numbers {
        hasher.update(key.as_bytes());
        match value {
            Some(n) => hasher.update(n.to_string().as_bytes()),
            None => hasher.update(header.name.as_bytes()),
        }
    }
    hasher.update(b"typeflag");
    hasher.update([header.typeflag]);
    hasher.update(b"linkname");
    hasher.update(header.link.as_bytes());
    hasher.update(b"uname");
    hasher.update(b"gname");
    hasher.update(b"devmajor");
    hasher.update(header.devmajor.to_string().as_bytes());
    hasher.update(b"devminor");
    hasher.update(header.devminor.to_string().as_bytes());
    for (key, value) in &header.xattrs {
        hasher.update(key.as_bytes());
        hasher.update(value);
    }
    hasher
}

/// The hex digest of `header` followed by `content`.
pub fn sum(header: &Header, content: &[u8]) -> String {
    let mut hasher = hasher(header);
    hasher.update(content);
    format!("{:x}", hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, mode: u64, size: u64) -> Header {
        Header {
            name: name.into(),
            mode,
            size,
            typeflag: b'0',
            ..Header::default()
        }
    }

    #[test]
    fn a_context_file_hashes_as_dockerd_names_it() {
        // dockerd's history for `ADD plain.txt /opt/plain.txt` of this file as the docker
        // CLI sends it (0644, 0:0): `ADD file:0fb4812b... in /opt/plain.txt`.
        let content = b"plain, not extracted\n";
        assert_eq!(
            sum(&file("plain.txt", 0o644, content.len() as u64), content),
            "0fb4812b3c6174a97bd39444b94cce46b57c2c672074650b673d685a91b8caa2"
        );
    }

    #[test]
    fn every_field_but_mtime_changes_the_digest() {
        let base = file("a", 0o644, 1);
        let first = sum(&base, b"x");
        let variants = [
            Header {
                name: "b".into(),
                ..base.clone()
            },
            Header {
                mode: 0o4644,
                ..base.clone()
            },
            Header {
                uid: 1,
                ..base.clone()
            },
            Header {
                gid: 1,
                ..base.clone()
            },
            Header {
                typeflag: b'7',
                ..base.clone()
            },
            Header {
                link: "t".into(),
                ..base.clone()
            },
            Header {
                devminor: 1,
                ..base.clone()
            },
            Header {
                xattrs: vec![("security.capability".into(), vec![1])],
                ..base.clone()
            },
        ];
        for variant in variants {
            assert_ne!(sum(&variant, b"x"), first, "{variant:?}");
        }
        assert_ne!(sum(&base, b"y"), first);
        assert!(base.has_content());
        assert!(!Header {
            typeflag: b'5',
            ..base
        }
        .has_content());
    }
}
