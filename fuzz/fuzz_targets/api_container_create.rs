//! Fuzz target: the container create body parser never panics on any bytes, and what it
//! accepts reaches a fixed point after one encoding (as Go's omitempty normalises once).
#![no_main]

use berth_api::container::ContainerCreateRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = ContainerCreateRequest::parse(data) else {
        return;
    };
    let once = serde_json::to_vec(&request).expect("a parsed request serialises");
    let reparsed = ContainerCreateRequest::parse(&once).expect("re-encoded request parses");
    let twice = serde_json::to_vec(&reparsed).expect("a reparsed request serialises");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&once).expect("json"),
        serde_json::from_slice::<serde_json::Value>(&twice).expect("json")
    );
});
