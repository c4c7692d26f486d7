//! Fuzz-style property tests: no request body, however hostile, panics the parsers of
//! create, exec, update and filters; accepted create bodies reach a fixed point after one encoding.

use berth_api::container::{ContainerCreateRequest, ContainerUpdateRequest, ExecCreateRequest};
use berth_api::Filters;
use proptest::prelude::*;
use serde_json::Value;

/// Field names the parser knows, so generated objects reach deep into the types.
const KEYS: &[&str] = &[
    "Image",
    "Cmd",
    "Entrypoint",
    "Env",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "Healthcheck",
    "Test",
    "Interval",
    "HostConfig",
    "NetworkingConfig",
    "EndpointsConfig",
    "PortBindings",
    "HostPort",
    "RestartPolicy",
    "Name",
    "MaximumRetryCount",
    "LogConfig",
    "Config",
    "Mounts",
    "Type",
    "TmpfsOptions",
    "Mode",
    "Ulimits",
    "Soft",
    "Hard",
    "Memory",
    "PidsLimit",
    "ConsoleSize",
    "Devices",
    "Tmpfs",
    "Sysctls",
    "StopTimeout",
    "Init",
    "IPAMConfig",
    "Tty",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|pairs| {
                Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_the_create_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = ContainerCreateRequest::parse(&bytes);
        let _ = serde_json::from_slice::<ExecCreateRequest>(&bytes);
        let _ = serde_json::from_slice::<ContainerUpdateRequest>(&bytes);
        let _ = Filters::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn structured_bodies_never_panic_and_accepted_ones_round_trip(value in json_value()) {
        let bytes = serde_json::to_vec(&value).expect("encode generated value");
        if let Ok(request) = ContainerCreateRequest::parse(&bytes) {
            // Like Go, the first encoding normalises (omitempty drops `{}`); after that
            // decode and encode are a fixed point.
            let once = serde_json::to_value(&request).expect("encode request");
            let bytes = serde_json::to_vec(&once).expect("encode value");
            let reparsed = ContainerCreateRequest::parse(&bytes).expect("re-encoded request parses");
            let twice = serde_json::to_value(&reparsed).expect("encode again");
            prop_assert_eq!(twice, once);
        }
        let _ = Filters::parse(&String::from_utf8_lossy(&bytes));
    }
}
