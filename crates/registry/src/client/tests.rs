//! The client against berth-registry served in-process on 127.0.0.1:0: push and pull
//! round trips, chunked uploads, mounts, existence checks, resume after a dropped
//! connection, basic and bearer auth, platform selection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use berth_content::Store;
use berth_oci::{Digest, Platform};
use tower::ServiceExt;

use super::*;
use crate::manifest::{OCI_INDEX, OCI_MANIFEST};
use crate::server::{serve, Htpasswd};
use crate::{router, Config, Storage};

struct Served {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn serve_router(router: Router, dir: tempfile::TempDir) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, router, None, async move {
        let _ = stopped.await;
    }));
    Served {
        addr,
        _stop: stop,
        _dir: dir,
    }
}

fn registry_router(config: Config) -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = Storage::open(dir.path()).expect("storage");
    (router(storage, config), dir)
}

async fn registry(config: Config) -> Served {
    let (router, dir) = registry_router(config);
    serve_router(router, dir).await
}

fn fast_options() -> ClientOptions {
    ClientOptions {
        backoff: std::time::Duration::from_millis(1),
        ..ClientOptions::default()
    }
}

/// A store holding a one-layer image; returns the manifest digest and the layer bytes.
fn image_store(layer_len: usize) -> (tempfile::TempDir, Store, Digest, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let layer: Vec<u8> = (0..layer_len).map(|i| (i * 7 % 256) as u8).collect();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let (layer_digest, config_digest) = (Digest::sha256_of(&layer), Digest::sha256_of(config));
    pull::store_bytes(&store, &layer_digest, &layer).expect("layer");
    pull::store_bytes(&store, &config_digest, config).expect("config");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest.to_string(), "size": layer.len()}],
    });
    let bytes = serde_json::to_vec_pretty(&manifest).expect("json");
    let digest = Digest::sha256_of(&bytes);
    pull::store_bytes(&store, &digest, &bytes).expect("manifest");
    (dir, store, digest, layer)
}

fn empty_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    (dir, store)
}

#[tokio::test]
async fn push_then_pull_round_trips_every_digest() {
    let served = registry(Config::default()).await;
    let host = served.addr.to_string();
    let client = RegistryClient::connect(&host, Credentials::Anonymous, fast_options())
        .await
        .expect("connect");
    assert_eq!(client.scheme(), "http", "loopback falls back to plain HTTP");
    let (_src_dir, src, digest, layer) = image_store(300_000);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    client
        .push("app/one", "v1", &digest, &src, None, Some(&tx))
        .await
        .expect("push");
    let (_dst_dir, dst) = empty_store();
    let pulled = client
        .pull(
            "app/one",
            "v1",
            &Platform::new("linux", "amd64", ""),
            &dst,
            Some(&tx),
        )
        .await
        .expect("pull");
    assert_eq!(pulled.manifest_digest, digest);
    assert_eq!(
        dst.read_to_vec(&digest).expect("manifest"),
        src.read_to_vec(&digest).expect("manifest")
    );
    assert_eq!(dst.read_to_vec(&pulled.layers[0]).expect("layer"), layer);
    drop(tx);
    let mut statuses = Vec::new();
    while let Some(event) = rx.recv().await {
        statuses.push(
            event.docker_json()["status"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        );
    }
    for wanted in [
        "Preparing",
        "Pushing",
        "Pushed",
        "Downloading",
        "Verifying Checksum",
        "Download complete",
    ] {
        assert!(
            statuses.iter().any(|s| s == wanted),
            "{wanted} missing from {statuses:?}"
        );
    }
    // A second push finds every blob already there.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    client
        .push("app/one", "v2", &digest, &src, None, Some(&tx))
        .await
        .expect("push again");
    drop(tx);
    let mut exists = 0;
    while let Some(event) = rx.recv().await {
        exists += usize::from(matches!(event, Progress::AlreadyExists { .. }));
    }
    assert_eq!(exists, 2);
}

#[tokio::test]
async fn chunked_upload_and_cross_repository_mount() {
    let served = registry(Config::default()).await;
    let options = ClientOptions {
        chunk_size: Some(64 * 1024),
        ..fast_options()
    };
    let client = RegistryClient::connect(&served.addr.to_string(), Credentials::Anonymous, options)
        .await
        .expect("connect");
    let (_d, src, digest, layer) = image_store(200_001);
    client
        .push("src", "v1", &digest, &src, None, None)
        .await
        .expect("chunked push");
    let layer_digest = Digest::sha256_of(&layer);
    let outcome = client
        .push_blob("dst", &layer_digest, &src, Some("src"), None)
        .await
        .expect("mount");
    assert_eq!(outcome, PushOutcome::Mounted);
    let (_e, dst) = empty_store();
    client
        .fetch_blob("dst", &layer_digest, Some(layer.len() as u64), &dst, None)
        .await
        .expect("fetch");
    assert_eq!(dst.read_to_vec(&layer_digest).expect("read"), layer);
}

#[tokio::test]
async fn pull_resumes_with_range_after_a_dropped_connection() {
    let (inner, dir) = registry_router(Config::default());
    let (_d, src, digest, layer) = image_store(250_000);
    let layer_path = format!("/blobs/{}", Digest::sha256_of(&layer));
    let ranges: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen = ranges.clone();
    // A proxy that cuts the first layer download off after 100 000 bytes.
    let proxy = Router::new().fallback(move |request: Request| {
        let (inner, seen, layer_path) = (inner.clone(), seen.clone(), layer_path.clone());
        async move {
            let is_layer_get =
                request.method() == "GET" && request.uri().path().ends_with(&layer_path);
            let range = request
                .headers()
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let response = inner.oneshot(request).await.expect("infallible");
            if !is_layer_get {
                return response;
            }
            let first = {
                let mut seen = seen.lock().expect("lock");
                seen.push(range);
                seen.len() == 1
            };
            if !first {
                return response;
            }
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
            let head =
                futures_util::stream::iter([Ok::<_, std::io::Error>(bytes.slice(..100_000))]);
            // The error comes after the head was flushed to the socket: a connection that
            // dies mid-blob, not one that never sent anything.
            let cut = futures_util::stream::once(async {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                Err::<bytes::Bytes, _>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "dropped",
                ))
            });
            Response::from_parts(
                parts,
                Body::from_stream(futures_util::StreamExt::chain(head, cut)),
            )
            .into_response()
        }
    });
    let served = serve_router(proxy, dir).await;
    let client = RegistryClient::connect(
        &served.addr.to_string(),
        Credentials::Anonymous,
        fast_options(),
    )
    .await
    .expect("connect");
    client
        .push("app", "v1", &digest, &src, None, None)
        .await
        .expect("push");
    let (_e, dst) = empty_store();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pulled = client
        .pull(
            "app",
            "v1",
            &Platform::new("linux", "amd64", ""),
            &dst,
            Some(&tx),
        )
        .await
        .expect("pull");
    drop(tx);
    let mut retried = false;
    while let Some(event) = rx.recv().await {
        retried |= matches!(event, Progress::Retrying { .. });
    }
    assert!(retried, "the first download failed and was retried");
    assert_eq!(dst.read_to_vec(&pulled.layers[0]).expect("layer"), layer);
    let ranges = ranges.lock().expect("lock").clone();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert_eq!(ranges[0], None);
    assert_eq!(
        ranges[1].as_deref(),
        Some("bytes=100000-"),
        "resumed after the bytes that arrived"
    );
}

#[derive(Clone)]
struct BearerState {
    inner: Router,
    seen: Arc<Mutex<Vec<String>>>,
    addr: SocketAddr,
}

/// A registry behind distribution's token protocol: /token hands out "t0k" for u:pw.
async fn bearer_proxy(
    axum::extract::State(state): axum::extract::State<BearerState>,
    request: Request,
) -> Response {
    if request.uri().path() == "/token" {
        let query = request.uri().query().unwrap_or("").to_owned();
        let basic = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        // "dTpwdw==" is base64 of "u:pw".
        if basic != "Basic dTpwdw==" {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        state.seen.lock().expect("lock").push(query);
        return (StatusCode::OK, r#"{"token":"t0k"}"#).into_response();
    }
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v == "Bearer t0k");
    if !authorized {
        let challenge = format!(
            "Bearer realm=\"http://{}/token\",service=\"test\"",
            state.addr
        );
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge)],
        )
            .into_response();
    }
    state.inner.oneshot(request).await.expect("infallible")
}

#[tokio::test]
async fn bearer_token_flow_fetches_a_scoped_token() {
    let (inner, dir) = registry_router(Config::default());
    let scopes: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = scopes.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let proxy = Router::new()
        .fallback(bearer_proxy)
        .with_state(BearerState { inner, seen, addr });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, proxy, None, async move {
        let _ = stopped.await;
    }));
    let creds = Credentials::Basic {
        username: "u".into(),
        password: "pw".into(),
    };
    let client = RegistryClient::connect(&addr.to_string(), creds, fast_options())
        .await
        .expect("connect");
    let (_d, src, digest, _) = image_store(10);
    client
        .push("team/app", "v1", &digest, &src, None, None)
        .await
        .expect("push with token");
    let (_e, dst) = empty_store();
    client
        .pull(
            "team/app",
            "v1",
            &Platform::new("linux", "amd64", ""),
            &dst,
            None,
        )
        .await
        .expect("pull");
    let scopes = scopes.lock().expect("lock").clone();
    assert!(
        scopes
            .iter()
            .any(|q| q.contains("scope=repository%3Ateam%2Fapp%3Apull%2Cpush")),
        "{scopes:?}"
    );
    assert!(scopes.iter().all(|q| q.contains("service=test")));
    drop((stop, dir));
}

#[tokio::test]
async fn index_pull_selects_the_platform() {
    let served = registry(Config::default()).await;
    let client = RegistryClient::connect(
        &served.addr.to_string(),
        Credentials::Anonymous,
        fast_options(),
    )
    .await
    .expect("connect");
    let (_d, src, amd64, _) = image_store(1000);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": Digest::sha256_of(b"arm").to_string(), "size": 1,
             "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": OCI_MANIFEST, "digest": amd64.to_string(), "size": 1,
             "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    });
    // Only the amd64 child exists; push it, then the index by hand (the arm64 child is absent).
    client
        .push("multi", &amd64.to_string(), &amd64, &src, None, None)
        .await
        .expect("child");
    let bytes = serde_json::to_vec(&index).expect("json");
    let refused = client
        .put_manifest("multi", "latest", OCI_INDEX, bytes.clone())
        .await;
    assert!(
        matches!(&refused, Err(ClientError::Registry { code, .. }) if code == "MANIFEST_BLOB_UNKNOWN"),
        "{refused:?}"
    );
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [index["manifests"][1].clone()]});
    client
        .put_manifest(
            "multi",
            "latest",
            OCI_INDEX,
            serde_json::to_vec(&index).expect("json"),
        )
        .await
        .expect("index");
    let (_e, dst) = empty_store();
    let pulled = client
        .pull(
            "multi",
            "latest",
            &Platform::new("linux", "amd64", ""),
            &dst,
            None,
        )
        .await
        .expect("pull");
    assert_eq!(pulled.manifest_digest, amd64);
    assert_ne!(pulled.digest, amd64, "the reference resolved to the index");
    let missing = client
        .pull(
            "multi",
            "latest",
            &Platform::new("linux", "s390x", ""),
            &dst,
            None,
        )
        .await;
    assert!(
        matches!(missing, Err(ClientError::NoMatchingPlatform { .. })),
        "{missing:?}"
    );
}

#[test]
fn loopback_hosts_are_insecure_capable() {
    for host in [
        "localhost",
        "localhost:5000",
        "127.0.0.1:5000",
        "[::1]:5000",
        "127.1.2.3",
    ] {
        assert!(is_loopback_host(host), "{host}");
    }
    for host in ["registry.example", "10.0.0.1:5000", "docker.io"] {
        assert!(!is_loopback_host(host), "{host}");
    }
}

#[tokio::test]
async fn basic_auth_with_htpasswd() {
    let hash = bcrypt::hash("pw", 4).expect("hash");
    let htpasswd = Htpasswd::parse(&format!("u:{hash}")).expect("parse");
    let served = registry(Config {
        delete_enabled: false,
        htpasswd: Some(htpasswd),
        token: None,
    })
    .await;
    let host = served.addr.to_string();
    let (_d, src, digest, _) = image_store(10);
    let anonymous = RegistryClient::connect(&host, Credentials::Anonymous, fast_options())
        .await
        .expect("connect");
    let refused = anonymous.push("app", "v1", &digest, &src, None, None).await;
    assert!(
        matches!(refused, Err(ClientError::Unauthorized { .. })),
        "{refused:?}"
    );
    let creds = Credentials::Basic {
        username: "u".into(),
        password: "pw".into(),
    };
    let client = RegistryClient::connect(&host, creds, fast_options())
        .await
        .expect("connect");
    client
        .push("app", "v1", &digest, &src, None, None)
        .await
        .expect("authenticated push");
}

#[tokio::test]
async fn concurrent_pulls_of_one_image_into_one_store_both_succeed() {
    let served = registry(Config::default()).await;
    let client = RegistryClient::connect(
        &served.addr.to_string(),
        Credentials::Anonymous,
        fast_options(),
    )
    .await
    .expect("connect");
    let (_d, src, digest, layer) = image_store(3 << 20);
    client
        .push("app", "v1", &digest, &src, None, None)
        .await
        .expect("push");
    let (_e, dst) = empty_store();
    let platform = Platform::new("linux", "amd64", "");
    let (a, b) = tokio::join!(
        client.pull("app", "v1", &platform, &dst, None),
        client.pull("app", "v1", &platform, &dst, None)
    );
    let (a, b) = (a.expect("first pull"), b.expect("second pull"));
    assert_eq!(a, b);
    assert_eq!(dst.read_to_vec(&a.layers[0]).expect("layer"), layer);
}

#[tokio::test]
async fn pushing_an_index_pushes_its_manifests_first() {
    let served = registry(Config::default()).await;
    let client = RegistryClient::connect(
        &served.addr.to_string(),
        Credentials::Anonymous,
        fast_options(),
    )
    .await
    .expect("connect");
    let (_d, src, child, _) = image_store(500);
    let child_len = src.read_to_vec(&child).expect("child").len();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child.to_string(), "size": child_len,
                       "platform": {"os": "linux", "architecture": "amd64"}}],
    });
    let bytes = serde_json::to_vec(&index).expect("json");
    let index_digest = Digest::sha256_of(&bytes);
    pull::store_bytes(&src, &index_digest, &bytes).expect("store index");
    client
        .push("list", "v1", &index_digest, &src, None, None)
        .await
        .expect("push index");
    let (_e, dst) = empty_store();
    let pulled = client
        .pull(
            "list",
            "v1",
            &Platform::new("linux", "amd64", ""),
            &dst,
            None,
        )
        .await
        .expect("pull");
    assert_eq!(
        (pulled.digest, pulled.manifest_digest),
        (index_digest.clone(), child)
    );
    assert_eq!(dst.read_to_vec(&index_digest).expect("index"), bytes);
}

#[tokio::test]
async fn pulls_prefer_a_mirror_that_has_the_image_and_fall_back_to_the_registry() {
    let (mirror, registry_served) = (
        registry(Config::default()).await,
        registry(Config::default()).await,
    );
    let (_d, src, cached, _) = image_store(700);
    let (_d2, src2, only_upstream, _) = image_store(900);
    let to_mirror = RegistryClient::connect(
        &mirror.addr.to_string(),
        Credentials::Anonymous,
        fast_options(),
    )
    .await
    .expect("connect mirror");
    to_mirror
        .push("library/app", "cached", &cached, &src, None, None)
        .await
        .expect("seed mirror");
    let upstream = RegistryClient::connect(
        &registry_served.addr.to_string(),
        Credentials::Anonymous,
        fast_options(),
    )
    .await
    .expect("connect registry");
    upstream
        .push("library/app", "fresh", &only_upstream, &src2, None, None)
        .await
        .expect("seed registry");
    let mirrors = vec![
        "http://127.0.0.1:1".to_owned(),
        format!("http://{}", mirror.addr),
    ];
    let platform = Platform::new("linux", "amd64", "");
    let host = registry_served.addr.to_string();
    let (_e, dst) = empty_store();
    let from_mirror = pull_with_mirrors(
        &host,
        &mirrors,
        Credentials::Anonymous,
        &fast_options(),
        "library/app",
        "cached",
        &platform,
        &dst,
        None,
    )
    .await
    .expect("pull via mirror");
    assert_eq!(
        from_mirror.manifest_digest, cached,
        "the unreachable mirror was skipped"
    );
    let from_registry = pull_with_mirrors(
        &host,
        &mirrors,
        Credentials::Anonymous,
        &fast_options(),
        "library/app",
        "fresh",
        &platform,
        &dst,
        None,
    )
    .await
    .expect("pull falls back");
    assert_eq!(from_registry.manifest_digest, only_upstream);
}

#[tokio::test]
async fn client_uses_berth_registry_token_auth() {
    let hash = bcrypt::hash("pw", 4).expect("hash");
    let served = registry(Config {
        delete_enabled: false,
        htpasswd: Some(Htpasswd::parse(&format!("u:{hash}")).expect("parse")),
        token: Some(crate::server::TokenConfig::random(
            std::time::Duration::from_secs(60),
            false,
        )),
    })
    .await;
    let creds = Credentials::Basic {
        username: "u".into(),
        password: "pw".into(),
    };
    let client = RegistryClient::connect(&served.addr.to_string(), creds, fast_options())
        .await
        .expect("connect");
    let (_d, src, digest, layer) = image_store(1000);
    client
        .push("tok/app", "v1", &digest, &src, None, None)
        .await
        .expect("push with a token");
    let (_e, dst) = empty_store();
    let pulled = client
        .pull(
            "tok/app",
            "v1",
            &Platform::new("linux", "amd64", ""),
            &dst,
            None,
        )
        .await
        .expect("pull with a token");
    assert_eq!(dst.read_to_vec(&pulled.layers[0]).expect("layer"), layer);
    let anonymous = RegistryClient::connect(
        &served.addr.to_string(),
        Credentials::Anonymous,
        fast_options(),
    )
    .await
    .expect("connect");
    let (_f, other) = empty_store();
    let refused = anonymous
        .pull(
            "tok/app",
            "v1",
            &Platform::new("linux", "amd64", ""),
            &other,
            None,
        )
        .await;
    assert!(refused.is_err(), "anonymous users get no token");
}
