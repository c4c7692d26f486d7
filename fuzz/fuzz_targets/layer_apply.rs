//! Fuzz target: arbitrary bytes applied as a layer (native mode, unprivileged options) into a
//! fresh root never panic and never create, change or delete anything outside that root.
#![no_main]

#[path = "../src/sandbox.rs"]
mod sandbox;

use berth_snapshot::{apply_layer, ApplyOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let sandbox = sandbox::Sandbox::new("layer", "root");
    let _ = apply_layer(data, &sandbox.inner(), &ApplyOptions::unprivileged());
    sandbox.assert_untouched();
});
