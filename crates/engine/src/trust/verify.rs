//! Offline verification of one cosign signature: the base64 signature over the payload by
//! one of the trusted keys, and the payload's claims naming the manifest digest and the
//! repository being checked (cosign's `verify` with `--key`, and containers-policy's
//! `sigstoreSigned` with `signedIdentity: matchRepository`).

use berth_oci::Digest;

use super::keys::PublicKey;
use super::payload::Payload;
use super::policy::normalize_scope;

/// Whether `signature` signs `body` under one of `keys` and `body` claims `digest` in
/// `repository` (`registry/path`).
pub fn signature_verifies(
    keys: &[PublicKey],
    body: &[u8],
    signature: &str,
    digest: &Digest,
    repository: &str,
) -> bool {
    if !keys.iter().any(|k| k.verifies(body, signature)) {
        return false;
    }
    let Ok(claims) = Payload::parse(body) else {
        return false;
    };
    claims.critical.image.docker_manifest_digest == digest.to_string()
        && normalize_scope(&claims.critical.identity.docker_reference)
            == normalize_scope(repository)
}

#[cfg(test)]
mod tests {
    //! Vectors made by cosign, copied from containers/image's `signature/fixtures` (see
    //! `test_data/cosign/SOURCE.md`).

    use super::*;

    const KEY: &str = include_str!("test_data/cosign/cosign.pub");
    const OTHER_KEY: &str = include_str!("test_data/cosign/cosign2.pub");
    const PAYLOAD: &[u8] = include_bytes!("test_data/cosign/payload.json");
    const SIGNATURE: &str = include_str!("test_data/cosign/payload.sig");
    const UNKNOWN_KEY_SIGNATURE: &str = include_str!("test_data/cosign/unknown-key.sig");
    const MANIFEST: &[u8] = include_bytes!("test_data/cosign/manifest.json");
    const MODIFIED_MANIFEST: &[u8] = include_bytes!("test_data/cosign/modified-manifest.json");
    const REPOSITORY: &str = "192.168.64.2:5000/cosign-signed-single-sample";

    fn key(pem: &str) -> Vec<PublicKey> {
        vec![PublicKey::from_pem(pem).expect("cosign.pub parses")]
    }

    #[test]
    fn cosign_signature_from_test_vectors_verifies() {
        let digest = Digest::sha256_of(MANIFEST);
        assert_eq!(
            digest.to_string(),
            "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
        );
        assert!(signature_verifies(
            &key(KEY),
            PAYLOAD,
            SIGNATURE,
            &digest,
            REPOSITORY
        ));
        // One trusted key among several is enough.
        let keys = [key(OTHER_KEY), key(KEY)].concat();
        assert!(signature_verifies(
            &keys, PAYLOAD, SIGNATURE, &digest, REPOSITORY
        ));
    }

    #[test]
    fn one_changed_payload_byte_is_refused() {
        let digest = Digest::sha256_of(MANIFEST);
        for at in [0, PAYLOAD.len() / 2, PAYLOAD.len() - 1] {
            let mut tampered = PAYLOAD.to_vec();
            tampered[at] ^= 0x01;
            assert!(
                !signature_verifies(&key(KEY), &tampered, SIGNATURE, &digest, REPOSITORY),
                "byte {at} changed and still verified"
            );
        }
    }

    #[test]
    fn one_changed_signature_byte_is_refused() {
        use base64::engine::general_purpose::STANDARD as BASE64;
        use base64::Engine as _;
        let digest = Digest::sha256_of(MANIFEST);
        let raw = BASE64.decode(SIGNATURE.trim()).expect("base64");
        for at in [10, raw.len() - 1] {
            let mut tampered = raw.clone();
            tampered[at] ^= 0x01;
            let tampered = BASE64.encode(&tampered);
            assert!(!signature_verifies(
                &key(KEY),
                PAYLOAD,
                &tampered,
                &digest,
                REPOSITORY
            ));
        }
    }

    #[test]
    fn wrong_keys_are_refused() {
        let digest = Digest::sha256_of(MANIFEST);
        assert!(!signature_verifies(
            &key(OTHER_KEY),
            PAYLOAD,
            SIGNATURE,
            &digest,
            REPOSITORY
        ));
        assert!(!signature_verifies(
            &key(KEY),
            PAYLOAD,
            UNKNOWN_KEY_SIGNATURE,
            &digest,
            REPOSITORY
        ));
    }

    #[test]
    fn tampered_manifest_is_not_what_was_signed() {
        let digest = Digest::sha256_of(MODIFIED_MANIFEST);
        assert!(!signature_verifies(
            &key(KEY),
            PAYLOAD,
            SIGNATURE,
            &digest,
            REPOSITORY
        ));
    }

    #[test]
    fn signature_for_another_repository_is_refused() {
        let digest = Digest::sha256_of(MANIFEST);
        assert!(!signature_verifies(
            &key(KEY),
            PAYLOAD,
            SIGNATURE,
            &digest,
            "192.168.64.2:5000/another-repository"
        ));
    }
}
