//! Fuzz target: Docker reference parsing never panics and its outputs re-parse to themselves.
#![no_main]

use berth_oci::{AnyReference, Reference};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(raw) = Reference::parse(input) {
        assert_eq!(raw.to_string(), input, "Parse must keep the input verbatim");
    }
    if let Ok(named) = Reference::parse_normalized(input) {
        let full = named.to_string();
        assert_eq!(
            Reference::parse_normalized(&full).as_ref(),
            Ok(&named),
            "full form of {input:?}"
        );
        // Two places where Docker's familiar form is ambiguous, kept for compatibility: a
        // familiar name of 64 hex characters is refused as an image id, and a Hub namespace
        // that looks like a domain (`docker.io/a.b/c` -> `a.b/c`) names another registry.
        let familiar = named.familiar_name();
        let is_id = familiar.len() == 64 && familiar.bytes().all(|b| b.is_ascii_hexdigit());
        let first = familiar.split('/').next().unwrap_or_default();
        let looks_like_domain =
            familiar.contains('/') && (first.contains(['.', ':']) || first == "localhost");
        if !is_id && !(named.domain() == "docker.io" && looks_like_domain) {
            assert_eq!(
                Reference::parse_normalized(&named.familiar_string()).as_ref(),
                Ok(&named),
                "familiar form of {input:?}"
            );
        }
        let docker = Reference::parse_docker(input).expect("a normalised name is a docker ref");
        assert!(
            docker.tag().is_some() != docker.digest().is_some(),
            "tagged xor digested"
        );
    }
    if let Ok(AnyReference::Digest(digest)) = Reference::parse_any(input) {
        assert!(input.ends_with(digest.hex()));
    }
});
