//! Registry credentials: the `AuthConfig` JSON of `/auth` and of the `X-Registry-Auth`
//! header, which carries it base64url-encoded (padding optional, as Docker tolerates).

use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::json::nullable;

/// Docker's `registry.AuthConfig`; field names are lowercase on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub username: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub password: String,
    /// base64 of `username:password`, as stored in `~/.docker/config.json`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub auth: String,
    /// Deprecated by Docker, still accepted.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub email: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub serveraddress: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub identitytoken: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub registrytoken: String,
}

/// Response of `POST /auth`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResponse {
    #[serde(rename = "Status", default, deserialize_with = "nullable")]
    pub status: String,
    #[serde(
        rename = "IdentityToken",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub identity_token: String,
}

/// Errors decoding `X-Registry-Auth`, worded as Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("invalid X-Registry-Auth header: illegal base64 data at input byte {offset}")]
    Base64 { offset: usize },
    #[error("invalid X-Registry-Auth header: {reason}")]
    Json { reason: String },
}

impl AuthError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

impl AuthConfig {
    /// Decodes an `X-Registry-Auth` header value. An empty header means no credentials.
    pub fn from_registry_auth_header(header: &str) -> Result<AuthConfig, AuthError> {
        if header.is_empty() {
            return Ok(AuthConfig::default());
        }
        // Go's base64 decoder skips CR and LF anywhere in the input.
        let cleaned: String = header
            .chars()
            .filter(|c| !matches!(c, '\r' | '\n'))
            .collect();
        let bytes = decode_base64_url(&cleaned)?;
        // Docker reads one JSON value from a stream decoder: whatever follows is ignored.
        let json_error = |reason: String| AuthError::Json { reason };
        match serde_json::Deserializer::from_slice(&bytes)
            .into_iter::<AuthConfig>()
            .next()
        {
            Some(Ok(config)) => Ok(config),
            Some(Err(err)) => Err(json_error(err.to_string())),
            None => Err(json_error("EOF".to_string())),
        }
    }

    /// Encodes this config as docker/cli does for `X-Registry-Auth` (base64url, padded).
    pub fn to_registry_auth_header(&self) -> String {
        // Serialising a struct of strings cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        encode_base64_url(&json)
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// RFC 4648 section 4 alphabet (`+` and `/`), used by other Docker headers.
pub(crate) const STANDARD_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn encode_base64_url(bytes: &[u8]) -> String {
    encode_base64(bytes, ALPHABET)
}

fn decode_base64_url(text: &str) -> Result<Vec<u8>, AuthError> {
    decode_base64(text, ALPHABET)
}

/// Padded base64 in the given alphabet.
pub(crate) fn encode_base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Base64 in `alphabet`, with or without `=` padding; bytes outside the alphabet
/// (`+` and `/` for base64url) are refused as Go's decoders refuse them. Docker itself fails unpadded
/// input whose length is not a multiple of 4 ("unexpected EOF"); berth accepts it,
/// deliberately, since refusing helps no client.
pub(crate) fn decode_base64(text: &str, alphabet: &[u8; 64]) -> Result<Vec<u8>, AuthError> {
    let trimmed = text.trim_end_matches('=');
    let padding = text.len() - trimmed.len();
    if padding > 2 || (padding > 0 && text.len() % 4 != 0) {
        return Err(AuthError::Base64 {
            offset: trimmed.len(),
        });
    }
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for (offset, byte) in trimmed.bytes().enumerate() {
        let value = alphabet
            .iter()
            .position(|c| *c == byte)
            .ok_or(AuthError::Base64 { offset })?;
        acc = (acc << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if trimmed.len() % 4 == 1 {
        return Err(AuthError::Base64 {
            offset: trimmed.len() - 1,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn registry_auth_header_decodes_with_and_without_padding() {
        let config = AuthConfig {
            username: "alice".into(),
            password: "s3cr3t?>".into(),
            serveraddress: "registry.example.com".into(),
            ..AuthConfig::default()
        };
        let padded = config.to_registry_auth_header();
        assert_eq!(
            AuthConfig::from_registry_auth_header(&padded),
            Ok(config.clone())
        );
        let unpadded = padded.trim_end_matches('=');
        assert_eq!(AuthConfig::from_registry_auth_header(unpadded), Ok(config));
    }

    #[test]
    fn docker_cli_header_decodes() {
        // base64url of {"username":"bob","password":"pw","serveraddress":"https://index.docker.io/v1/"}
        let header = "eyJ1c2VybmFtZSI6ImJvYiIsInBhc3N3b3JkIjoicHciLCJzZXJ2ZXJhZGRyZXNzIjoiaHR0cHM6Ly9pbmRleC5kb2NrZXIuaW8vdjEvIn0=";
        let config = AuthConfig::from_registry_auth_header(header).expect("decode");
        assert_eq!(config.username, "bob");
        assert_eq!(config.password, "pw");
        assert_eq!(config.serveraddress, "https://index.docker.io/v1/");
        let unpadded = AuthConfig::from_registry_auth_header(header.trim_end_matches('='));
        assert_eq!(unpadded, Ok(config));
    }

    #[test]
    fn empty_header_means_anonymous() {
        assert_eq!(
            AuthConfig::from_registry_auth_header(""),
            Ok(AuthConfig::default())
        );
        assert_eq!(
            AuthConfig::from_registry_auth_header("e30"),
            Ok(AuthConfig::default())
        );
    }

    #[test]
    fn bad_headers_are_invalid_arguments() {
        let err = AuthConfig::from_registry_auth_header("e30+").expect_err("plus");
        assert_eq!(err.kind().status(), 400);
        assert!(err
            .to_string()
            .starts_with("invalid X-Registry-Auth header: "));
        let err = AuthConfig::from_registry_auth_header("bm90IGpzb24").expect_err("not json");
        assert!(matches!(err, AuthError::Json { .. }));
    }

    #[test]
    fn header_line_breaks_and_trailing_data_are_tolerated_like_go() {
        // base64url of `{"username":"u"}` + "\n" + "junk", with a line break inside.
        let header = encode_base64_url(b"{\"username\":\"u\"}\njunk");
        let (head, tail) = header.split_at(8);
        let config =
            AuthConfig::from_registry_auth_header(&format!("{head}\r\n{tail}")).expect("decode");
        assert_eq!(config.username, "u");
        let err =
            AuthConfig::from_registry_auth_header(&encode_base64_url(b"  ")).expect_err("eof");
        assert_eq!(err.to_string(), "invalid X-Registry-Auth header: EOF");
    }

    #[test]
    fn base64_matches_known_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("\u{fb}\u{ff}", "w7vDvw=="),
        ] {
            assert_eq!(encode_base64_url(plain.as_bytes()), encoded);
            assert_eq!(
                decode_base64_url(encoded).expect("decode"),
                plain.as_bytes()
            );
        }
    }

    proptest! {
        #[test]
        fn base64_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let encoded = encode_base64_url(&bytes);
            prop_assert_eq!(decode_base64_url(&encoded).expect("decode"), bytes.clone());
            prop_assert_eq!(decode_base64_url(encoded.trim_end_matches('=')).expect("raw"), bytes);
        }

        #[test]
        fn header_decoding_never_panics(text in ".{0,80}") {
            let _ = AuthConfig::from_registry_auth_header(&text);
        }
    }
}
