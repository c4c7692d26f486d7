//! ECDSA P-256 keys as cosign and openssl write them: private keys in PKCS#8 PEM
//! (`PRIVATE KEY`, as `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`
//! writes), public keys in SubjectPublicKeyInfo PEM (`PUBLIC KEY`, cosign.pub's format);
//! signatures are ASN.1 DER over SHA-256, base64 in the registry, as cosign's.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1,
    ECDSA_P256_SHA256_ASN1_SIGNING,
};

use super::TrustError;

/// DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, BIT STRING of
/// 66 bytes); the uncompressed point (0x04 ‖ X ‖ Y) follows.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const P256_POINT_LEN: usize = 65;

/// The body of the first PEM block labelled `label`.
fn pem_block(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    BASE64.decode(body).ok()
}

fn pem(label: &str, der: &[u8]) -> String {
    let encoded = BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A signing key.
pub struct PrivateKey {
    pair: EcdsaKeyPair,
}

impl PrivateKey {
    /// Parses a PKCS#8 PEM P-256 key; other formats get an error saying how to convert.
    pub fn from_pem(text: &str) -> Result<PrivateKey, TrustError> {
        if text.contains("ENCRYPTED SIGSTORE PRIVATE KEY") || text.contains("ENCRYPTED COSIGN") {
            return Err(TrustError::Key(
                "cosign's encrypted key format is not supported: export an unencrypted PKCS#8 key (or generate one with `berth image keygen`)".to_string(),
            ));
        }
        if text.contains("BEGIN EC PRIVATE KEY") {
            return Err(TrustError::Key(
                "SEC1 EC keys are not supported: convert with `openssl pkcs8 -topk8 -nocrypt -in KEY`".to_string(),
            ));
        }
        let der = pem_block(text, "PRIVATE KEY").ok_or_else(|| {
            TrustError::Key("no PEM \"PRIVATE KEY\" block (PKCS#8) in the key file".to_string())
        })?;
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der, &SystemRandom::new())
                .map_err(|e| TrustError::Key(format!("not an ECDSA P-256 PKCS#8 key: {e}")))?;
        Ok(PrivateKey { pair })
    }

    /// A fresh key pair: (private PKCS#8 PEM, public SPKI PEM).
    pub fn generate() -> Result<(String, String), TrustError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| TrustError::Key("generating a P-256 key failed".to_string()))?;
        let key = PrivateKey::from_pem(&pem("PRIVATE KEY", pkcs8.as_ref()))?;
        Ok((
            pem("PRIVATE KEY", pkcs8.as_ref()),
            key.public_key().to_pem(),
        ))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            point: self.pair.public_key().as_ref().to_vec(),
        }
    }

    /// Base64 of the ASN.1 DER ECDSA signature of `payload`.
    pub fn sign(&self, payload: &[u8]) -> Result<String, TrustError> {
        let signature = self
            .pair
            .sign(&SystemRandom::new(), payload)
            .map_err(|_| TrustError::Key("signing failed".to_string()))?;
        Ok(BASE64.encode(signature.as_ref()))
    }
}

/// A verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    point: Vec<u8>,
}

impl PublicKey {
    /// Parses a P-256 SubjectPublicKeyInfo PEM (`PUBLIC KEY`).
    pub fn from_pem(text: &str) -> Result<PublicKey, TrustError> {
        let der = pem_block(text, "PUBLIC KEY").ok_or_else(|| {
            TrustError::Key("no PEM \"PUBLIC KEY\" block in the public key file".to_string())
        })?;
        match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
            Some(point) if point.len() == P256_POINT_LEN && point[0] == 0x04 => Ok(PublicKey {
                point: point.to_vec(),
            }),
            _ => Err(TrustError::Key(
                "not an ECDSA P-256 public key (only P-256 keys are supported)".to_string(),
            )),
        }
    }

    pub fn to_pem(&self) -> String {
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.point);
        pem("PUBLIC KEY", &der)
    }

    /// Whether `signature` (base64 ASN.1 DER) signs `payload` under this key.
    pub fn verifies(&self, payload: &[u8], signature: &str) -> bool {
        let Ok(signature) = BASE64.decode(signature.trim()) else {
            return false;
        };
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(payload, &signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_verify_and_round_trip_pem() {
        let (private, public) = PrivateKey::generate().expect("generate");
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let key = PrivateKey::from_pem(&private).expect("private");
        let public = PublicKey::from_pem(&public).expect("public");
        assert_eq!(public, key.public_key());
        let signature = key.sign(b"payload").expect("sign");
        assert!(public.verifies(b"payload", &signature));
        assert!(!public.verifies(b"payloaD", &signature));
        assert!(!public.verifies(b"payload", "bm90IGEgc2lnbmF0dXJl"));
    }

    #[test]
    fn another_key_does_not_verify() {
        let (private, _) = PrivateKey::generate().expect("generate");
        let (_, other) = PrivateKey::generate().expect("generate");
        let signature = PrivateKey::from_pem(&private)
            .expect("key")
            .sign(b"x")
            .expect("sign");
        assert!(!PublicKey::from_pem(&other)
            .expect("public")
            .verifies(b"x", &signature));
    }

    #[test]
    fn unsupported_key_formats_say_how_to_convert() {
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let error = PrivateKey::from_pem(sec1).err().expect("refused");
        assert!(error.to_string().contains("openssl pkcs8 -topk8"));
        let cosign = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAA==\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
        assert!(PrivateKey::from_pem(cosign).is_err());
        assert!(PublicKey::from_pem("garbage").is_err());
    }
}
