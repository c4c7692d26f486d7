//! Fuzzes the shim frame decoder: arbitrary bytes never panic or allocate past the frame
//! limit, and every decoded frame re-encodes to bytes that decode to the same frame.
#![no_main]

use berth_shim::protocol::{decode, encode, MAX_FRAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((frame, used))) = decode(rest) {
        assert!(used <= MAX_FRAME + 4);
        let mut again = Vec::new();
        encode(&frame, &mut again);
        let (back, _) = decode(&again)
            .expect("a re-encoded frame decodes")
            .expect("a re-encoded frame is complete");
        assert_eq!(back, frame);
        rest = &rest[used..];
    }
});
