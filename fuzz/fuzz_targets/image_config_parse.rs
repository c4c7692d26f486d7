//! Fuzz target: image config parsing never panics, keeps what it accepts through a
//! serialise/parse round trip (unknown keys included), and ChainIDs compute for any config.
#![no_main]

use berth_image::ImageConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = ImageConfig::parse(data) else {
        return;
    };
    let chain = config.chain_ids();
    assert_eq!(chain.len(), config.diff_ids().len());
    if let Some(first) = config.diff_ids().first() {
        assert_eq!(&chain[0], first);
    }
    let _ = config.platform();
    let again = serde_json::to_vec(&config).expect("a parsed config serialises");
    let reparsed = ImageConfig::parse(&again).expect("re-serialised config parses");
    assert_eq!(reparsed, config);
});
