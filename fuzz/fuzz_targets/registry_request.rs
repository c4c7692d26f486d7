//! Fuzzes berth-registry's HTTP surface: arbitrary methods, paths, headers and bodies sent
//! through the router never panic, never answer 5xx for a request that is merely malformed,
//! and never leave a blob in the store that does not match its digest.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::Request;
use berth_registry::server::{router, Config, Storage};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const METHODS: [&str; 6] = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"];

fn root() -> &'static tempfile::TempDir {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    ROOT.get_or_init(|| tempfile::tempdir().expect("tempdir"))
}

fuzz_target!(|data: &[u8]| {
    // Layout: method byte, then `path \n header-value \n body`.
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(3, |&b| b == b'\n');
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let header = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default().to_vec();
    let uri = format!("/v2/{}", path.trim_start_matches('/'));
    let Ok(request) = Request::builder()
        .method(METHODS[usize::from(selector) % METHODS.len()])
        .uri(uri)
        .header("Content-Range", header.as_str())
        .header("Range", header.as_str())
        .header("Content-Type", header.as_str())
        .body(Body::from(body))
    else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let storage = Storage::open(root().path()).expect("storage");
        let app = router(storage.clone(), Config { delete_enabled: true, ..Config::default() });
        let response = app.oneshot(request).await.expect("infallible");
        assert!(
            !response.status().is_server_error(),
            "5xx for a client request: {}",
            response.status()
        );
        for blob in storage.store.list().expect("list") {
            storage
                .store
                .verify(&blob.digest)
                .expect("every committed blob matches its digest");
        }
    });
});
