//! Fuzzes berthd's HTTP surface in-process: arbitrary methods, paths, query strings and
//! bodies go through the whole Engine API router (`berth_server::router`, driven with
//! `tower::ServiceExt::oneshot`) against an Engine on a temporary root. No request may
//! panic a handler, and a POST whose JSON body does not parse is a 4xx, never a 5xx.
//!
//! Routes that reach the network (pulls, logins, builds) are skipped: a fuzzer must not
//! talk to registries.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use berth_engine::{Engine, EngineConfig};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const METHODS: [&str; 5] = ["GET", "HEAD", "POST", "PUT", "DELETE"];
/// Path prefixes that would contact a registry or run a build.
const SKIPPED: [&str; 5] = [
    "/images/create",
    "/auth",
    "/build",
    "/distribution",
    "/images/search",
];

struct Fixture {
    runtime: tokio::runtime::Runtime,
    engine: Arc<Engine>,
    _root: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = tempfile::tempdir().expect("tempdir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let config = EngineConfig::new(root.path().join("data"), root.path().join("exec"));
        let engine = runtime
            .block_on(Engine::open(config))
            .expect("an engine on a temporary root");
        Fixture {
            runtime,
            engine,
            _root: root,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    // Layout: method byte, then `path?query \n body`.
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(2, |&b| b == b'\n');
    let target = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default().to_vec();
    let uri = format!("/{}", target.trim_start_matches('/'));
    let path = uri.split('?').next().unwrap_or_default();
    if SKIPPED.iter().any(|skip| path.starts_with(skip)) {
        return;
    }
    let method = METHODS[usize::from(selector) % METHODS.len()];
    let json_body_unparsable = !body.iter().all(u8::is_ascii_whitespace)
        && serde_json::from_slice::<serde_json::Value>(&body).is_err();
    let Ok(request) = Request::builder()
        .method(method)
        .uri(uri.as_str())
        .header("Content-Type", "application/json")
        .body(Body::from(body))
    else {
        return;
    };
    let fixture = fixture();
    let router = berth_server::router(fixture.engine.clone());
    let response = fixture
        .runtime
        .block_on(router.oneshot(request))
        .expect("infallible");
    let json_routes = ["/containers/create", "/volumes/create", "/networks/create"];
    if method == "POST" && json_body_unparsable && json_routes.contains(&path) {
        assert!(
            response.status().is_client_error(),
            "POST {path} with a malformed body answered {}",
            response.status()
        );
    }
});
