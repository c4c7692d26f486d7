//! Token authentication (distribution's token protocol, served by the registry itself):
//! `GET /token?service=&scope=repository:<name>:pull,push` with htpasswd basic credentials
//! returns a short-lived bearer token, HMAC-SHA256-signed with a key held in memory, that
//! grants exactly the requested repository actions; `/v2/` then requires `Bearer`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The service name in challenges and tokens.
pub const SERVICE: &str = "berth-registry";

/// Signing key and token lifetime.
#[derive(Clone)]
pub struct TokenConfig {
    key: [u8; 32],
    pub ttl: Duration,
    /// The realm in challenges is `<scheme>://<Host header>/token`.
    pub https: bool,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenConfig {
    /// A fresh random key: tokens die with the process, which is fine for 5-minute tokens.
    pub fn random(ttl: Duration, https: bool) -> TokenConfig {
        TokenConfig {
            key: rand::random(),
            ttl,
            https,
        }
    }
}

/// One granted resource, as in distribution's token claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    access: Vec<Access>,
}

fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    // RFC 2104 with a 64-byte block; the key is shorter than a block, so it is zero-padded.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Parses `repository:<name>:<a>,<b>` scopes (others are ignored, as distribution does
/// for types it does not know).
pub fn parse_scope(scope: &str) -> Option<Access> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some(Access {
        kind: kind.to_owned(),
        name: name.to_owned(),
        actions: actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

impl TokenConfig {
    /// Signs a token for `subject` granting `access`.
    pub fn issue(&self, subject: &str, access: Vec<Access>) -> String {
        let claims = Claims {
            sub: subject.to_owned(),
            exp: now() + self.ttl.as_secs(),
            access,
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(&self.key, payload.as_bytes()));
        format!("{payload}.{signature}")
    }

    /// Whether `token` is ours, unexpired, and grants `action` on repository `name`
    /// (`None` name: any valid token, for `/v2/` and the catalog).
    pub fn allows(&self, token: &str, name: Option<&str>, action: &str) -> bool {
        let Some((payload, signature)) = token.split_once('.') else {
            return false;
        };
        let expected = hmac_sha256(&self.key, payload.as_bytes());
        let Ok(given) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        // Constant-time comparison: no early exit on the first differing byte.
        if given.len() != expected.len()
            || given
                .iter()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0
        {
            return false;
        }
        let Some(claims) = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Claims>(&bytes).ok())
        else {
            return false;
        };
        if claims.exp < now() {
            return false;
        }
        let Some(name) = name else {
            return true;
        };
        claims.access.iter().any(|a| {
            a.kind == "repository"
                && a.name == name
                && a.actions.iter().any(|x| x == action || x == "*")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_shape_and_tokens_grant_only_their_scope() {
        let config = TokenConfig::random(Duration::from_secs(60), false);
        let token = config.issue(
            "alice",
            vec![parse_scope("repository:a/b:pull,push").expect("scope")],
        );
        assert!(config.allows(&token, Some("a/b"), "push"));
        assert!(config.allows(&token, Some("a/b"), "pull"));
        assert!(!config.allows(&token, Some("a/c"), "pull"));
        assert!(config.allows(&token, None, "pull"));
        let other = TokenConfig::random(Duration::from_secs(60), false);
        assert!(
            !other.allows(&token, Some("a/b"), "pull"),
            "another key rejects it"
        );
        let (payload, _) = token.split_once('.').expect("dot");
        assert!(!config.allows(&format!("{payload}.AAAA"), Some("a/b"), "pull"));
        let expired = TokenConfig {
            key: config.key,
            ttl: Duration::ZERO,
            https: false,
        };
        let old = Claims {
            sub: "x".into(),
            exp: 1,
            access: vec![],
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&old).expect("json"));
        let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(&expired.key, payload.as_bytes()));
        assert!(!config.allows(&format!("{payload}.{signature}"), None, "pull"));
    }

    #[test]
    fn hmac_sha256_known_answer() {
        // RFC 4231 test case 2 uses a 4-byte key; with our fixed 32-byte key we check
        // against a value computed by `openssl dgst -sha256 -mac HMAC -macopt hexkey:00..1f`.
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let mac = hmac_sha256(&key, b"berth");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, KNOWN);
    }

    const KNOWN: &str = "576bde8c43fd66d8a73d0d1a014d5bba8471f9585d3bf45d8af03b6d99e5b888";
}
