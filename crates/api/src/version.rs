//! Engine API versions: the supported range, `/v1.NN/` path prefixes, Docker's version
//! comparison and negotiation rules, and the headers of `/_ping` and every response.

use std::cmp::Ordering;
use std::fmt;

use crate::error::ErrorKind;

/// An Engine API version `major.minor` (always `1.NN` in practice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        ApiVersion { major, minor }
    }

    /// Parses `1.NN`. Extra dotted segments are ignored as Docker's comparison would
    /// ignore trailing zeros; anything non-numeric is refused.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let invalid = || VersionError::Invalid {
            version: text.to_string(),
        };
        let mut parts = text.split('.');
        let major = parts
            .next()
            .and_then(|part| part.parse::<u32>().ok())
            .ok_or_else(invalid)?;
        let minor = match parts.next() {
            Some(part) => part.parse::<u32>().map_err(|_| invalid())?,
            None => 0,
        };
        for rest in parts {
            rest.parse::<u32>().map_err(|_| invalid())?;
        }
        Ok(ApiVersion { major, minor })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Oldest API version berth serves (Docker 20.10).
pub const MIN_API_VERSION: ApiVersion = ApiVersion::new(1, 41);
/// Newest API version berth serves (Docker 28.x).
pub const MAX_API_VERSION: ApiVersion = ApiVersion::new(1, 50);
/// Version used for requests without a `/vX.Y` prefix: Docker uses its newest.
pub const DEFAULT_API_VERSION: ApiVersion = MAX_API_VERSION;

/// Errors of version parsing and negotiation, with Docker's texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("client version {requested} is too new. Maximum supported API version is {maximum}")]
    TooNew {
        requested: String,
        maximum: ApiVersion,
    },
    #[error(
        "client version {requested} is too old. Minimum supported API version is {minimum}, please upgrade your client to a newer version"
    )]
    TooOld {
        requested: String,
        minimum: ApiVersion,
    },
    #[error("invalid API version {version:?}")]
    Invalid { version: String },
}

impl VersionError {
    /// Docker answers both negotiation failures with 400 (an invalid-parameter error).
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// Compares two dotted version strings as Docker's `versions.compare` does: segment by
/// segment as integers, a missing or non-numeric segment counting as 0.
pub fn compare_versions(left: &str, right: &str) -> Ordering {
    let mut left_parts = left.split('.');
    let mut right_parts = right.split('.');
    loop {
        match (left_parts.next(), right_parts.next()) {
            (None, None) => return Ordering::Equal,
            (l, r) => {
                let l = l.and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
                let r = r.and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
                match l.cmp(&r) {
                    Ordering::Equal => continue,
                    other => return other,
                }
            }
        }
    }
}

/// Splits a request path into its `/vX.Y` version (Docker's router pattern
/// `/v{version:[0-9.]+}`) and the rest of the path. Paths without a prefix return `None`.
pub fn split_version_prefix(path: &str) -> (Option<&str>, &str) {
    let Some(after_v) = path.strip_prefix("/v") else {
        return (None, path);
    };
    let end = after_v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(after_v.len());
    let (version, rest) = after_v.split_at(end);
    if version.is_empty() || !(rest.is_empty() || rest.starts_with('/')) {
        return (None, path);
    }
    let rest = if rest.is_empty() { "/" } else { rest };
    (Some(version), rest)
}

/// Docker's version middleware: no version means the default; a version below the
/// minimum or above the maximum is refused with Docker's texts.
pub fn negotiate(requested: Option<&str>) -> Result<ApiVersion, VersionError> {
    let Some(requested) = requested else {
        return Ok(DEFAULT_API_VERSION);
    };
    if compare_versions(requested, &MIN_API_VERSION.to_string()) == Ordering::Less {
        return Err(VersionError::TooOld {
            requested: requested.to_string(),
            minimum: MIN_API_VERSION,
        });
    }
    if compare_versions(requested, &MAX_API_VERSION.to_string()) == Ordering::Greater {
        return Err(VersionError::TooNew {
            requested: requested.to_string(),
            maximum: MAX_API_VERSION,
        });
    }
    ApiVersion::parse(requested)
}

/// Headers Docker's middlewares put on every response (Go canonicalises `API-Version`
/// to `Api-Version` and `OSType` to `Ostype` on the wire).
pub fn response_headers(server_version: &str, experimental: bool) -> Vec<(&'static str, String)> {
    vec![
        ("Server", format!("Docker/{server_version} (linux)")),
        ("Api-Version", DEFAULT_API_VERSION.to_string()),
        ("Ostype", "linux".to_string()),
        ("Docker-Experimental", experimental.to_string()),
    ]
}

/// What `/_ping` reports beyond the common headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingInfo {
    pub server_version: String,
    pub experimental: bool,
    /// `1` for the classic builder, `2` for BuildKit.
    pub builder_version: String,
    /// `inactive`, `pending`, `error`, `locked`, or `active/worker` / `active/manager`.
    pub swarm: String,
}

impl PingInfo {
    /// A daemon with the classic builder, no swarm and experimental features off.
    pub fn new(server_version: &str) -> Self {
        PingInfo {
            server_version: server_version.to_string(),
            experimental: false,
            builder_version: "1".to_string(),
            swarm: "inactive".to_string(),
        }
    }
}

/// Body of `GET /_ping` (HEAD has none).
pub const PING_BODY: &str = "OK";

/// Every header of `GET`/`HEAD /_ping` (the common ones included): the CLI reads
/// `Api-Version`, `Ostype`, `Docker-Experimental`, `Builder-Version` and `Swarm` from
/// here to negotiate. `HEAD` also gets `Content-Length: 0`.
pub fn ping_headers(info: &PingInfo) -> Vec<(&'static str, String)> {
    let mut headers = response_headers(&info.server_version, info.experimental);
    headers.extend([
        ("Builder-Version", info.builder_version.clone()),
        ("Swarm", info.swarm.clone()),
        (
            "Cache-Control",
            "no-cache, no-store, must-revalidate".to_string(),
        ),
        ("Pragma", "no-cache".to_string()),
        ("Content-Type", "text/plain; charset=utf-8".to_string()),
    ]);
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_table_matches_docker() {
        let cases: &[(Option<&str>, Result<ApiVersion, &str>)] = &[
            (None, Ok(ApiVersion::new(1, 50))),
            (Some("1.41"), Ok(ApiVersion::new(1, 41))),
            (Some("1.45"), Ok(ApiVersion::new(1, 45))),
            (Some("1.50"), Ok(ApiVersion::new(1, 50))),
            (
                Some("1.99"),
                Err("client version 1.99 is too new. Maximum supported API version is 1.50"),
            ),
            (
                Some("1.51"),
                Err("client version 1.51 is too new. Maximum supported API version is 1.50"),
            ),
            (
                Some("2.0"),
                Err("client version 2.0 is too new. Maximum supported API version is 1.50"),
            ),
            (
                Some("1.40"),
                Err("client version 1.40 is too old. Minimum supported API version is 1.41, please upgrade your client to a newer version"),
            ),
            (
                Some("1.4"),
                Err("client version 1.4 is too old. Minimum supported API version is 1.41, please upgrade your client to a newer version"),
            ),
            (
                Some("1"),
                Err("client version 1 is too old. Minimum supported API version is 1.41, please upgrade your client to a newer version"),
            ),
        ];
        for (requested, expected) in cases {
            let got = negotiate(*requested).map_err(|e| e.to_string());
            assert_eq!(got, expected.map_err(str::to_string), "{requested:?}");
        }
    }

    #[test]
    fn negotiation_errors_are_invalid_argument() {
        let err = negotiate(Some("1.99")).expect_err("too new");
        assert_eq!(err.kind().status(), 400);
    }

    #[test]
    fn versions_compare_numerically_not_lexically() {
        assert_eq!(compare_versions("1.9", "1.41"), Ordering::Less);
        assert_eq!(compare_versions("1.41", "1.41.0"), Ordering::Equal);
        assert_eq!(compare_versions("1.50", "1.5"), Ordering::Greater);
        assert!(ApiVersion::new(1, 9) < ApiVersion::new(1, 41));
        assert_eq!(
            ApiVersion::parse("1.44").expect("parse").to_string(),
            "1.44"
        );
        assert!(ApiVersion::parse("1.x").is_err());
    }

    #[test]
    fn path_prefixes_are_split_like_dockers_router() {
        let cases = [
            ("/v1.45/containers/json", Some("1.45"), "/containers/json"),
            ("/containers/json", None, "/containers/json"),
            ("/v1.99/_ping", Some("1.99"), "/_ping"),
            ("/v1.41", Some("1.41"), "/"),
            ("/volumes", None, "/volumes"),
            ("/vx/info", None, "/vx/info"),
            ("/v1.41abc/info", None, "/v1.41abc/info"),
        ];
        for (path, version, rest) in cases {
            assert_eq!(split_version_prefix(path), (version, rest), "{path}");
        }
    }

    #[test]
    fn ping_headers_carry_what_the_cli_reads() {
        let headers = ping_headers(&PingInfo::new("28.2.2"));
        let get = |name: &str| {
            headers
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(get("Api-Version"), Some("1.50"));
        assert_eq!(get("Ostype"), Some("linux"));
        assert_eq!(get("Docker-Experimental"), Some("false"));
        assert_eq!(get("Builder-Version"), Some("1"));
        assert_eq!(
            get("Cache-Control"),
            Some("no-cache, no-store, must-revalidate")
        );
        assert_eq!(get("Pragma"), Some("no-cache"));
        assert_eq!(get("Server"), Some("Docker/28.2.2 (linux)"));
        assert_eq!(get("Swarm"), Some("inactive"));
        let common = response_headers("28.2.2", true);
        assert!(common.contains(&("Docker-Experimental", "true".to_string())));
        assert!(!common.iter().any(|(name, _)| *name == "Builder-Version"));
    }
}
