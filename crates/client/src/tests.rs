//! Client behaviour against a tiny in-test hyper server on a unix socket in a tempdir.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use super::*;

/// Every request line the fake daemon saw, as `METHOD path?query`.
type Seen = Arc<Mutex<Vec<String>>>;

/// Starts a fake daemon answering `/_ping` with `api_version` and a few routes.
fn fake_daemon(api_version: &'static str) -> (tempfile::TempDir, Host, Seen) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("d.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let log = log.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(route(request, api_version, &log).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (dir, Host::Unix(path), seen)
}

async fn route(
    request: hyper::Request<hyper::body::Incoming>,
    api_version: &str,
    log: &Seen,
) -> hyper::Response<Full<Bytes>> {
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    log.lock()
        .expect("log")
        .push(format!("{} {}", request.method(), target));
    let reply = |status: u16, body: &str| {
        hyper::Response::builder()
            .status(status)
            .header("api-version", api_version)
            .header("ostype", "linux")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("response")
    };
    let path = request.uri().path().to_string();
    if path == "/_ping" {
        return reply(200, "OK");
    }
    let path = path.split_once('/').map(|(_, rest)| rest).unwrap_or("");
    let path = path.split_once('/').map(|(_, rest)| rest).unwrap_or("");
    match path {
        "containers/json" => reply(200, r#"[{"Id":"abc","Names":["/x"]}]"#),
        "containers/missing/json" => reply(404, r#"{"message":"No such container: missing"}"#),
        "images/create" => reply(
            200,
            "{\"status\":\"Pulling from library/busybox\",\"id\":\"latest\"}\r\n\r\n{\"status\":\"Done\"}\r\n",
        ),
        "containers/abc/attach" => {
            tokio::spawn(async move {
                if let Ok(upgraded) = hyper::upgrade::on(request).await {
                    let mut io = TokioIo::new(upgraded);
                    let mut buffer = Vec::new();
                    if io.read_to_end(&mut buffer).await.is_ok() {
                        buffer.make_ascii_uppercase();
                        let _ = io.write_all(&buffer).await;
                        let _ = io.shutdown().await;
                    }
                }
            });
            hyper::Response::builder()
                .status(101)
                .header("connection", "Upgrade")
                .header("upgrade", "tcp")
                .header("content-type", berth_api::stream::RAW_STREAM)
                .body(Full::new(Bytes::new()))
                .expect("response")
        }
        _ => reply(404, "page not found"),
    }
}

#[tokio::test]
async fn older_server_version_is_used_as_the_path_prefix() {
    let (_dir, host, seen) = fake_daemon("1.41");
    let client = Client::new(host);
    let list: serde_json::Value = client
        .get_json("/containers/json?all=1")
        .await
        .expect("list");
    assert_eq!(list[0]["Id"], "abc");
    assert_eq!(client.api_version().await.expect("version"), "1.41");
    let seen = seen.lock().expect("seen").clone();
    assert_eq!(seen, vec!["GET /_ping", "GET /v1.41/containers/json?all=1"]);
}

#[tokio::test]
async fn newer_server_is_spoken_to_in_the_clients_own_version() {
    let (_dir, host, _seen) = fake_daemon("1.99");
    let client = Client::new(host);
    assert_eq!(
        client.api_version().await.expect("version"),
        CLIENT_API_VERSION
    );
    assert_eq!(negotiated_version(None), "1.24");
    assert_eq!(negotiated_version(Some("1.45")), "1.45");
}

#[tokio::test]
async fn fixed_version_skips_the_ping() {
    let (_dir, host, seen) = fake_daemon("1.41");
    let client = Client::with_version(host, "1.43");
    let _: serde_json::Value = client.get_json("/containers/json").await.expect("list");
    assert_eq!(
        seen.lock().expect("seen").clone(),
        vec!["GET /v1.43/containers/json"]
    );
}

#[tokio::test]
async fn daemon_errors_carry_status_and_message() {
    let (_dir, host, _seen) = fake_daemon("1.41");
    let client = Client::new(host);
    let err = client
        .get_raw("/containers/missing/json")
        .await
        .expect_err("404");
    assert_eq!(err.status(), Some(404));
    assert_eq!(
        err.to_string(),
        "Error response from daemon: No such container: missing"
    );
    let err = client.get_raw("/nowhere").await.expect_err("404");
    assert_eq!(err.message(), "page not found");
}

#[tokio::test]
async fn progress_stream_is_read_line_by_line() {
    let (_dir, host, seen) = fake_daemon("1.41");
    let client = Client::new(host);
    let mut response = client
        .request(
            Method::POST,
            &format!(
                "/images/create{}",
                query(&[("fromImage", "busybox".into()), ("tag", "a b".into())])
            ),
            RequestBody::Empty,
            &[],
        )
        .await
        .expect("pull");
    let mut statuses = Vec::new();
    while let Some(message) = response
        .json_line::<berth_api::progress::JsonMessage>()
        .await
        .expect("line")
    {
        statuses.push(message.status);
    }
    assert_eq!(statuses, vec!["Pulling from library/busybox", "Done"]);
    assert!(seen
        .lock()
        .expect("seen")
        .contains(&"POST /v1.41/images/create?fromImage=busybox&tag=a%20b".to_string()));
}

#[tokio::test]
async fn hijacked_connection_is_a_raw_bidirectional_stream() {
    let (_dir, host, _seen) = fake_daemon("1.41");
    let client = Client::new(host);
    let upgraded = client
        .hijack("/containers/abc/attach?stream=1&stdin=1", None)
        .await
        .expect("hijack");
    assert_eq!(
        upgraded.content_type.as_deref(),
        Some(berth_api::stream::RAW_STREAM)
    );
    let (mut reader, mut writer) = tokio::io::split(upgraded.io);
    writer.write_all(b"hello").await.expect("write");
    // Half-close: the server reads to EOF before answering, as attach stdin does.
    writer.shutdown().await.expect("shutdown");
    let mut answer = Vec::new();
    reader.read_to_end(&mut answer).await.expect("read");
    assert_eq!(answer, b"HELLO");
}

#[tokio::test]
async fn unreachable_socket_is_dockers_cannot_connect_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = Host::Unix(dir.path().join("absent.sock"));
    let shown = host.to_string();
    let err = Client::new(host).ping().await.expect_err("no daemon");
    assert_eq!(
        err.to_string(),
        format!("Cannot connect to the Docker daemon at {shown}. Is the docker daemon running?")
    );
}

#[test]
fn query_values_are_percent_encoded() {
    assert_eq!(query(&[]), "");
    assert_eq!(
        query(&[
            ("filters", r#"{"a":{"b":true}}"#.into()),
            ("all", "1".into())
        ]),
        "?filters=%7B%22a%22%3A%7B%22b%22%3Atrue%7D%7D&all=1"
    );
}
