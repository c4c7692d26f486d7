//! `HEAD`/`GET /containers/{id}/archive`: the `X-Docker-Container-Path-Stat` header
//! (standard base64 of a JSON `PathStat`) and Go's `os.FileMode` bits it carries.

use serde::{Deserialize, Serialize};

use crate::json::nullable;

/// Name of the header carrying the stat of the archived path.
pub const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// Go's `container.PathStat`; `mode` holds Go `os.FileMode` bits, not Unix ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStat {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub size: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub mode: u32,
    /// Go RFC 3339 nano time.
    #[serde(default, deserialize_with = "nullable")]
    pub mtime: String,
    #[serde(rename = "linkTarget", default, deserialize_with = "nullable")]
    pub link_target: String,
}

/// Errors decoding the path stat header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathStatError {
    #[error("unable to decode container path stat header: illegal base64 data")]
    Base64,
    #[error("unable to decode container path stat header: {0}")]
    Json(String),
}

impl PathStat {
    /// The header value: standard (padded) base64 of the JSON, as Docker writes it.
    pub fn to_header(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        crate::auth::encode_base64(&json, crate::auth::STANDARD_ALPHABET)
    }

    pub fn from_header(value: &str) -> Result<PathStat, PathStatError> {
        let bytes = crate::auth::decode_base64(value, crate::auth::STANDARD_ALPHABET)
            .map_err(|_| PathStatError::Base64)?;
        serde_json::from_slice(&bytes).map_err(|err| PathStatError::Json(err.to_string()))
    }
}

/// Go's `os.FileMode` type bits.
pub mod go_mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
}

/// Converts a Unix `st_mode` into Go's `os.FileMode` (as Go's `os.Stat` fills it).
pub fn go_file_mode_from_unix(st_mode: u32) -> u32 {
    let mut mode = st_mode & 0o777;
    mode |= match st_mode & 0o170000 {
        0o060000 => go_mode::DEVICE,
        0o020000 => go_mode::DEVICE | go_mode::CHAR_DEVICE,
        0o040000 => go_mode::DIR,
        0o010000 => go_mode::NAMED_PIPE,
        0o120000 => go_mode::SYMLINK,
        0o140000 => go_mode::SOCKET,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        mode |= go_mode::SETUID;
    }
    if st_mode & 0o2000 != 0 {
        mode |= go_mode::SETGID;
    }
    if st_mode & 0o1000 != 0 {
        mode |= go_mode::STICKY;
    }
    mode
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_modes_map_to_go_file_modes() {
        assert_eq!(go_file_mode_from_unix(0o040755), go_mode::DIR | 0o755);
        assert_eq!(go_file_mode_from_unix(0o100644), 0o644);
        assert_eq!(go_file_mode_from_unix(0o120777), go_mode::SYMLINK | 0o777);
        assert_eq!(
            go_file_mode_from_unix(0o020666),
            go_mode::DEVICE | go_mode::CHAR_DEVICE | 0o666
        );
        assert_eq!(
            go_file_mode_from_unix(0o041777),
            go_mode::DIR | go_mode::STICKY | 0o777
        );
        assert_eq!(go_file_mode_from_unix(0o104755), go_mode::SETUID | 0o755);
    }

    #[test]
    fn path_stat_header_round_trips_in_standard_base64() {
        let stat = PathStat {
            name: "etc".into(),
            size: 4096,
            mode: go_mode::DIR | 0o755,
            mtime: "2025-06-03T09:14:22.518739215Z".into(),
            link_target: String::new(),
        };
        let header = stat.to_header();
        assert!(!header.contains('-') && !header.contains('_'), "{header}");
        assert_eq!(PathStat::from_header(&header), Ok(stat));
        let json: serde_json::Value = serde_json::from_slice(
            &crate::auth::decode_base64(&header, crate::auth::STANDARD_ALPHABET).expect("b64"),
        )
        .expect("json");
        assert_eq!(json["mode"], 2_147_484_141u32);
        assert_eq!(json["linkTarget"], "");
        assert_eq!(PathStat::from_header("!!"), Err(PathStatError::Base64));
    }
}
