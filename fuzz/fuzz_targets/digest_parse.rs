//! Fuzz target: digest parsing never panics and accepted digests print back verbatim.
#![no_main]

use berth_oci::Digest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(digest) = Digest::parse(input) {
        assert_eq!(digest.to_string(), input);
        assert_eq!(
            Digest::from_parts(digest.algorithm(), digest.hex()).as_ref(),
            Ok(&digest)
        );
    }
    // Hashing arbitrary bytes always yields a digest that parses.
    let hashed = Digest::sha256_of(data);
    assert_eq!(Digest::parse(&hashed.to_string()), Ok(hashed));
});
