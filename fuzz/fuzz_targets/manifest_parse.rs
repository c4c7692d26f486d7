//! Fuzz target: manifest and index parsing never panics, what it accepts is within the
//! documented limits, re-serialises to something that parses to the same value, and GC's
//! children function and platform selection cope with it.
#![no_main]

use berth_image::manifest::{parse, Parsed, MAX_DESCRIPTORS};
use berth_oci::{media_type, Platform, PlatformMatcher};
use libfuzzer_sys::fuzz_target;

const SERVED_AS: &[Option<&str>] = &[
    None,
    Some(media_type::OCI_MANIFEST),
    Some(media_type::OCI_INDEX),
    Some(media_type::DOCKER_MANIFEST),
    Some(media_type::DOCKER_MANIFEST_LIST),
    Some("application/json"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let served_as = SERVED_AS[selector as usize % SERVED_AS.len()];
    let _ = berth_image::gc::references(body);
    let Ok(parsed) = parse(body, served_as) else {
        return;
    };
    let again = match &parsed {
        Parsed::Manifest(m) => {
            assert!(m.layers.len() <= MAX_DESCRIPTORS);
            let _ = m.check_image();
            serde_json::to_vec(m).expect("a parsed manifest serialises")
        }
        Parsed::Index(i) => {
            assert!(i.manifests.len() <= MAX_DESCRIPTORS);
            for wanted in ["linux/amd64", "linux/arm/v7", "windows/amd64"] {
                let platform = Platform::parse(wanted).expect("valid platform");
                let _ = i.select(&PlatformMatcher::only(&platform));
            }
            serde_json::to_vec(i).expect("a parsed index serialises")
        }
    };
    let reparsed = parse(&again, served_as).expect("re-serialised manifest parses");
    assert_eq!(reparsed, parsed);
});
