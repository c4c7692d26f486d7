//! The trust policy (`/etc/berth/policy.json` unless configured otherwise), in the shape of
//! containers-policy.json(5) so that one file can serve podman and berth: a `default`
//! requirement list and per-scope lists under `transports.docker`, the most specific scope
//! winning (`registry/repo`, then its namespaces, then `registry`). Requirement types:
//! `insecureAcceptAnything`, `reject`, and `sigstoreSigned` with `keyPath`, `keyPaths` or
//! `keyData` (base64 of the PEM): a cosign signature by any of those keys is required.
//! No file at all accepts everything, as Docker does without content trust.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Deserialize;

use super::keys::PublicKey;
use super::TrustError;

/// Where berthd reads the policy unless configured otherwise.
pub const DEFAULT_POLICY_PATH: &str = "/etc/berth/policy.json";

/// What a scope requires of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    AcceptAnything,
    Reject,
    /// A valid signature by any one of these keys.
    Signed(Vec<PublicKey>),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    pub default: Vec<Requirement>,
    pub scopes: BTreeMap<String, Vec<Requirement>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    default: Option<Vec<RawRequirement>>,
    #[serde(default)]
    transports: BTreeMap<String, BTreeMap<String, Vec<RawRequirement>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRequirement {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    key_path: Option<PathBuf>,
    #[serde(default)]
    key_paths: Option<Vec<PathBuf>>,
    #[serde(default)]
    key_data: Option<String>,
    #[serde(default)]
    signed_identity: Option<serde_json::Value>,
}

impl Policy {
    /// Accepts everything (no policy file).
    pub fn accept_anything() -> Policy {
        Policy {
            default: vec![Requirement::AcceptAnything],
            scopes: BTreeMap::new(),
        }
    }

    /// Reads the policy at `path`; a missing file is [`Policy::accept_anything`].
    pub fn load(path: &Path) -> Result<Policy, TrustError> {
        match std::fs::read(path) {
            Ok(bytes) => Policy::parse(&bytes, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Policy::accept_anything()),
            Err(e) => Err(TrustError::Policy {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
        }
    }

    /// Parses policy bytes; key files named in it are read now, so a bad one fails here.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Policy, TrustError> {
        let bad = |message: String| TrustError::Policy {
            path: path.to_path_buf(),
            message,
        };
        let file: File = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let default = file
            .default
            .ok_or_else(|| bad("\"default\" is required (e.g. [{\"type\": \"reject\"}])".into()))?;
        let requirements = |raw: Vec<RawRequirement>, scope: &str| {
            if raw.is_empty() {
                return Err(bad(format!("scope {scope:?} has no requirements")));
            }
            raw.into_iter()
                .map(|r| requirement(r).map_err(|m| bad(format!("scope {scope:?}: {m}"))))
                .collect::<Result<Vec<_>, _>>()
        };
        let mut policy = Policy {
            default: requirements(default, "default")?,
            scopes: BTreeMap::new(),
        };
        for (transport, scopes) in file.transports {
            if transport != "docker" {
                return Err(bad(format!(
                    "transport {transport:?} is not supported (only \"docker\")"
                )));
            }
            for (scope, raw) in scopes {
                let list = requirements(raw, &scope)?;
                policy.scopes.insert(normalize_scope(&scope), list);
            }
        }
        Ok(policy)
    }

    /// The requirements for `repository` (`registry/path`): its own scope, the nearest
    /// namespace, the registry, else the default.
    pub fn requirements_for(&self, repository: &str) -> &[Requirement] {
        let repository = normalize_scope(repository);
        let mut candidate = repository.as_str();
        loop {
            if let Some(list) = self.scopes.get(candidate) {
                return list;
            }
            match candidate.rfind('/') {
                Some(at) => candidate = &candidate[..at],
                None => return &self.default,
            }
        }
    }
}

/// Docker Hub's names: `index.docker.io` and `registry-1.docker.io` are `docker.io`.
pub fn normalize_scope(scope: &str) -> String {
    for alias in ["index.docker.io/", "registry-1.docker.io/"] {
        if let Some(rest) = scope.strip_prefix(alias) {
            return format!("docker.io/{rest}");
        }
    }
    match scope {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

fn read_key(path: &Path) -> Result<PublicKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    PublicKey::from_pem(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn requirement(raw: RawRequirement) -> Result<Requirement, String> {
    match raw.kind.as_str() {
        "insecureAcceptAnything" => Ok(Requirement::AcceptAnything),
        "reject" => Ok(Requirement::Reject),
        "sigstoreSigned" => {
            if raw.signed_identity.is_some() {
                return Err(
                    "signedIdentity is not supported (berth matches the repository)".into(),
                );
            }
            let mut keys = Vec::new();
            for path in raw.key_path.iter().chain(raw.key_paths.iter().flatten()) {
                keys.push(read_key(path)?);
            }
            if let Some(data) = raw.key_data {
                let pem = BASE64
                    .decode(data.trim())
                    .map_err(|_| "keyData is not base64".to_string())?;
                let text = String::from_utf8_lossy(&pem);
                keys.push(PublicKey::from_pem(&text).map_err(|e| format!("keyData: {e}"))?);
            }
            if keys.is_empty() {
                return Err("sigstoreSigned needs keyPath, keyPaths or keyData".into());
            }
            Ok(Requirement::Signed(keys))
        }
        other => Err(format!(
            "unknown requirement type {other:?} (insecureAcceptAnything, reject or sigstoreSigned)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::keys::PrivateKey;

    fn parse(text: &str) -> Result<Policy, TrustError> {
        Policy::parse(text.as_bytes(), Path::new("/etc/berth/policy.json"))
    }

    #[test]
    fn most_specific_scope_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, public) = PrivateKey::generate().expect("keys");
        let key_path = dir.path().join("a.pub");
        std::fs::write(&key_path, &public).expect("write");
        let text = format!(
            r#"{{"default":[{{"type":"insecureAcceptAnything"}}],
               "transports":{{"docker":{{
                 "127.0.0.1:5000":[{{"type":"reject"}}],
                 "127.0.0.1:5000/team":[{{"type":"sigstoreSigned","keyPath":"{}"}}],
                 "127.0.0.1:5000/team/open":[{{"type":"insecureAcceptAnything"}}]}}}}}}"#,
            key_path.display()
        );
        let policy = parse(&text).expect("policy");
        let key = PublicKey::from_pem(&public).expect("key");
        assert_eq!(
            policy.requirements_for("127.0.0.1:5000/team/app"),
            [Requirement::Signed(vec![key])]
        );
        assert_eq!(
            policy.requirements_for("127.0.0.1:5000/team/open"),
            [Requirement::AcceptAnything]
        );
        assert_eq!(
            policy.requirements_for("127.0.0.1:5000/other"),
            [Requirement::Reject]
        );
        assert_eq!(
            policy.requirements_for("docker.io/library/busybox"),
            [Requirement::AcceptAnything]
        );
    }

    #[test]
    fn key_data_is_base64_of_the_pem() {
        let (_, public) = PrivateKey::generate().expect("keys");
        let text = format!(
            r#"{{"default":[{{"type":"sigstoreSigned","keyData":"{}"}}]}}"#,
            BASE64.encode(&public)
        );
        let policy = parse(&text).expect("policy");
        assert!(matches!(policy.default[0], Requirement::Signed(ref k) if k.len() == 1));
    }

    #[test]
    fn missing_file_accepts_anything() {
        let policy = Policy::load(Path::new("/nonexistent/berth/policy.json")).expect("load");
        assert_eq!(policy, Policy::accept_anything());
    }

    #[test]
    fn bad_policies_name_the_file_and_the_fault() {
        let cases = [
            ("{", "EOF"),
            (r#"{"transports":{}}"#, "\"default\" is required"),
            (
                r#"{"default":[{"type":"signedBy"}]}"#,
                "unknown requirement type",
            ),
            (
                r#"{"default":[{"type":"sigstoreSigned"}]}"#,
                "needs keyPath",
            ),
            (
                r#"{"default":[{"type":"sigstoreSigned","keyPath":"/nonexistent.pub"}]}"#,
                "/nonexistent.pub",
            ),
            (r#"{"default":[]}"#, "no requirements"),
            (
                r#"{"default":[{"type":"reject"}],"transports":{"atomic":{}}}"#,
                "not supported",
            ),
            (
                r#"{"default":[{"type":"reject"}],"extra":1}"#,
                "unknown field",
            ),
        ];
        for (text, want) in cases {
            let error = parse(text).expect_err("refused").to_string();
            assert!(error.contains("/etc/berth/policy.json"), "{error}");
            assert!(error.contains(want), "{text}: {error}");
        }
    }
}
