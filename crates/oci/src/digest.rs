//! Content digests (`sha256:<hex>`, `sha512:<hex>`): parsing with go-digest's rules and
//! error texts, display, serde as a string, and hashing bytes into a digest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha512};
use thiserror::Error;

/// Why a digest string was refused. The texts are go-digest's, which Docker and the
/// registries print verbatim, so that users and scripts see the same words.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DigestError {
    #[error("invalid checksum digest format")]
    InvalidFormat,
    #[error("invalid checksum digest length")]
    InvalidLength,
    #[error("unsupported digest algorithm")]
    Unsupported,
}

/// A digest algorithm registered by the OCI image spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as it appears before the `:`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the hex encoding (twice the hash size in bytes).
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A validated digest: algorithm plus lowercase hex of the right length.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parses `algorithm:hex` exactly like go-digest's `Parse`/`Validate`: the separator
    /// must be present with text on both sides; an unknown algorithm is "unsupported"
    /// when the string is otherwise digest-shaped and "invalid format" when not; the hex
    /// must have the algorithm's length and be lowercase.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let Some(colon) = s.find(':') else {
            return Err(DigestError::InvalidFormat);
        };
        if colon == 0 || colon + 1 == s.len() {
            return Err(DigestError::InvalidFormat);
        }
        let (name, encoded) = (&s[..colon], &s[colon + 1..]);
        let Some(algorithm) = Algorithm::from_name(name) else {
            return Err(if is_digest_shaped(s) {
                DigestError::Unsupported
            } else {
                DigestError::InvalidFormat
            });
        };
        Digest::from_parts(algorithm, encoded)
    }

    /// Builds a digest from an algorithm and its hex encoding, validating the hex.
    pub fn from_parts(algorithm: Algorithm, hex: &str) -> Result<Digest, DigestError> {
        if hex.len() != algorithm.hex_len() {
            return Err(DigestError::InvalidLength);
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::InvalidFormat);
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// The sha256 digest of `bytes` (the canonical algorithm for new content).
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        let mut digester = Digester::new(Algorithm::Sha256);
        digester.update(bytes);
        digester.finish()
    }

    /// The digest of `bytes` with the given algorithm.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut digester = Digester::new(algorithm);
        digester.update(bytes);
        digester.finish()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part after `algorithm:` (go-digest's `Encoded`).
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Docker's short id: the first 12 hex characters.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

/// go-digest's `DigestRegexp`: `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`, anchored.
fn is_digest_shaped(s: &str) -> bool {
    let Some((algorithm, encoded)) = s.split_once(':') else {
        return false;
    };
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let algorithm_ok = algorithm.split(['.', '+', '_', '-']).all(component_ok);
    let encoded_ok = !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
    algorithm_ok && encoded_ok
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Streaming hasher: feed bytes as they arrive, then `finish` into a [`Digest`].
#[derive(Clone)]
pub struct Digester {
    state: DigesterState,
}

#[derive(Clone)]
enum DigesterState {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Digester {
    pub fn new(algorithm: Algorithm) -> Digester {
        let state = match algorithm {
            Algorithm::Sha256 => DigesterState::Sha256(Sha256::new()),
            Algorithm::Sha512 => DigesterState::Sha512(Sha512::new()),
        };
        Digester { state }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.state {
            DigesterState::Sha256(_) => Algorithm::Sha256,
            DigesterState::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            DigesterState::Sha256(h) => h.update(bytes),
            DigesterState::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything fed so far, without consuming the hasher.
    pub fn current(&self) -> Digest {
        self.clone().finish()
    }

    pub fn finish(self) -> Digest {
        let (algorithm, bytes) = match self.state {
            DigesterState::Sha256(h) => (Algorithm::Sha256, h.finalize().to_vec()),
            DigesterState::Sha512(h) => (Algorithm::Sha512, h.finalize().to_vec()),
        };
        Digest {
            algorithm,
            hex: to_hex(&bytes),
        }
    }
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Digester")
            .field("algorithm", &self.algorithm())
            .finish()
    }
}

impl std::io::Write for Digester {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn go_digest_validation_table() {
        let hex64 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let hex128 = "f".repeat(128);
        let cases: Vec<(String, Result<(), DigestError>)> = vec![
            (EMPTY_SHA256.to_owned(), Ok(())),
            (format!("sha512:{hex128}"), Ok(())),
            (String::new(), Err(DigestError::InvalidFormat)),
            ("sha256".to_owned(), Err(DigestError::InvalidFormat)),
            ("sha256:".to_owned(), Err(DigestError::InvalidFormat)),
            (format!(":{hex64}"), Err(DigestError::InvalidFormat)),
            ("sha256:abc".to_owned(), Err(DigestError::InvalidLength)),
            (format!("sha256:{hex64}00"), Err(DigestError::InvalidLength)),
            (format!("sha512:{hex64}"), Err(DigestError::InvalidLength)),
            (
                format!("sha256:{}", hex64.to_uppercase()),
                Err(DigestError::InvalidFormat),
            ),
            (
                format!("sha256:{}", "g".repeat(64)),
                Err(DigestError::InvalidFormat),
            ),
            (format!("md5:{hex64}"), Err(DigestError::Unsupported)),
            (format!("sha384:{hex64}"), Err(DigestError::Unsupported)),
            (
                format!("multihash+base58:{hex64}"),
                Err(DigestError::Unsupported),
            ),
            (format!("SHA256:{hex64}"), Err(DigestError::InvalidFormat)),
            (format!("sha256+:{hex64}"), Err(DigestError::InvalidFormat)),
            ("foo:bar!".to_owned(), Err(DigestError::InvalidFormat)),
            ("foo:bar=_-".to_owned(), Err(DigestError::Unsupported)),
        ];
        for (input, want) in cases {
            let got = Digest::parse(&input).map(|d| assert_eq!(d.to_string(), input));
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn error_texts_match_go_digest() {
        assert_eq!(
            DigestError::InvalidFormat.to_string(),
            "invalid checksum digest format"
        );
        assert_eq!(
            DigestError::InvalidLength.to_string(),
            "invalid checksum digest length"
        );
        assert_eq!(
            DigestError::Unsupported.to_string(),
            "unsupported digest algorithm"
        );
    }

    #[test]
    fn sha256_of_known_inputs() {
        assert_eq!(Digest::sha256_of(b"").to_string(), EMPTY_SHA256);
        assert_eq!(
            Digest::sha256_of(b"abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            Digest::of(Algorithm::Sha512, b"abc").hex(),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
    }

    #[test]
    fn streaming_digester_equals_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut digester = Digester::new(Algorithm::Sha256);
        for chunk in data.chunks(7) {
            digester.update(chunk);
        }
        assert_eq!(digester.current(), Digest::sha256_of(&data));
        assert_eq!(digester.finish(), Digest::sha256_of(&data));
    }

    #[test]
    fn serde_uses_the_string_form_and_validates() {
        let d = Digest::parse(EMPTY_SHA256).expect("valid");
        let json = serde_json::to_string(&d).expect("serialize");
        assert_eq!(json, format!("\"{EMPTY_SHA256}\""));
        assert_eq!(
            serde_json::from_str::<Digest>(&json).expect("deserialize"),
            d
        );
        let err = serde_json::from_str::<Digest>("\"sha256:zz\"").expect_err("must fail");
        assert!(
            err.to_string().contains("invalid checksum digest length"),
            "{err}"
        );
    }

    #[test]
    fn short_id_is_twelve_hex_characters() {
        let d = Digest::parse(EMPTY_SHA256).expect("valid");
        assert_eq!(d.short(), "e3b0c44298fc");
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(s in "\\PC{0,140}") {
            if let Ok(d) = Digest::parse(&s) {
                proptest::prop_assert_eq!(d.to_string(), s);
            }
        }
    }
}
