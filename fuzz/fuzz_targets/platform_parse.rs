//! Fuzz target: `--platform` parsing never panics and normalisation is idempotent.
#![no_main]

use berth_oci::{Platform, PlatformMatcher};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(platform) = Platform::parse(input) {
        let normalized = platform.normalized();
        assert_eq!(normalized.normalized(), normalized);
        assert!(PlatformMatcher::only(&platform).matches(&platform));
    }
});
