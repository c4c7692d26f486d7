//! The router driven in-process: every endpoint, its error codes, pagination, referrers.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine as _;
use berth_oci::Digest;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::manifest::OCI_MANIFEST;

struct Registry {
    _dir: tempfile::TempDir,
    router: Router,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn error_code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).expect("error json");
        v["errors"][0]["code"].as_str().expect("code").to_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

fn registry_with(config: Config) -> Registry {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = Storage::open(dir.path()).expect("storage");
    Registry {
        router: router(storage, config),
        _dir: dir,
    }
}

fn registry() -> Registry {
    registry_with(Config {
        delete_enabled: true,
        htpasswd: None,
        token: None,
    })
}

impl Registry {
    async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request.body(Body::from(body)).expect("request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn push_blob(&self, name: &str, bytes: &[u8]) -> Digest {
        let digest = Digest::sha256_of(bytes);
        let uri = format!("/v2/{name}/blobs/uploads/?digest={digest}");
        let reply = self.send("POST", &uri, &[], bytes.to_vec()).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        digest
    }

    async fn push_manifest(
        &self,
        name: &str,
        reference: &str,
        manifest: &serde_json::Value,
    ) -> Reply {
        let body = serde_json::to_vec(manifest).expect("json");
        let uri = format!("/v2/{name}/manifests/{reference}");
        self.send("PUT", &uri, &[("content-type", OCI_MANIFEST)], body)
            .await
    }

    async fn image(&self, name: &str, layer: &[u8]) -> serde_json::Value {
        let config = self.push_blob(name, b"{}").await;
        let layer_digest = self.push_blob(name, layer).await;
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest.to_string(), "size": layer.len()}],
        })
    }
}

#[tokio::test]
async fn base_endpoint_answers_with_the_api_version_header() {
    let r = registry();
    let reply = r.send("GET", "/v2/", &[], vec![]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("docker-distribution-api-version"),
        "registry/2.0"
    );
}

#[tokio::test]
async fn monolithic_upload_then_head_get_and_ranges() {
    let r = registry();
    let bytes: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let digest = r.push_blob("a/b", &bytes).await;
    let uri = format!("/v2/a/b/blobs/{digest}");
    let head = r.send("HEAD", &uri, &[], vec![]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), "5000");
    assert_eq!(head.header("docker-content-digest"), digest.to_string());
    assert!(head.body.is_empty());
    let get = r.send("GET", &uri, &[], vec![]).await;
    assert_eq!(get.body, bytes);
    let part = r
        .send("GET", &uri, &[("range", "bytes=10-19")], vec![])
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body, &bytes[10..20]);
    assert_eq!(part.header("content-range"), "bytes 10-19/5000");
    let bad = r
        .send("GET", &uri, &[("range", "bytes=6000-7000")], vec![])
        .await;
    assert_eq!(bad.status, StatusCode::RANGE_NOT_SATISFIABLE);
    // Linked in a/b only: another repository does not see it.
    let other = r
        .send("HEAD", &format!("/v2/c/blobs/{digest}"), &[], vec![])
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_digests_are_digest_invalid() {
    let r = registry();
    let reply = r
        .send("GET", "/v2/a/blobs/sha256:nothex", &[], vec![])
        .await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    let wrong = Digest::sha256_of(b"other");
    let reply = r
        .send(
            "POST",
            &format!("/v2/a/blobs/uploads/?digest={wrong}"),
            &[],
            b"data".to_vec(),
        )
        .await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    let head = r
        .send("HEAD", &format!("/v2/a/blobs/{wrong}"), &[], vec![])
        .await;
    assert_eq!(
        head.status,
        StatusCode::NOT_FOUND,
        "a mismatched blob is never committed"
    );
}

#[tokio::test]
async fn chunked_upload_enforces_order_and_verifies_on_put() {
    let r = registry();
    let start = r.send("POST", "/v2/a/blobs/uploads/", &[], vec![]).await;
    assert_eq!(start.status, StatusCode::ACCEPTED);
    let location = start.header("location").to_owned();
    let first = r
        .send(
            "PATCH",
            &location,
            &[("content-range", "0-2"), ("content-length", "3")],
            b"abc".to_vec(),
        )
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(first.header("range"), "0-2");
    let gap = r
        .send(
            "PATCH",
            &location,
            &[("content-range", "5-6"), ("content-length", "2")],
            b"fg".to_vec(),
        )
        .await;
    assert_eq!(
        (gap.status, gap.error_code().as_str()),
        (StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID")
    );
    assert_eq!(gap.header("range"), "0-2");
    let second = r
        .send(
            "PATCH",
            &location,
            &[("content-range", "3-5"), ("content-length", "3")],
            b"def".to_vec(),
        )
        .await;
    assert_eq!(second.status, StatusCode::ACCEPTED);
    let status = r.send("GET", &location, &[], vec![]).await;
    assert_eq!(
        (status.status, status.header("range")),
        (StatusCode::NO_CONTENT, "0-5")
    );
    let digest = Digest::sha256_of(b"abcdefgh");
    let done = r
        .send(
            "PUT",
            &format!("{location}?digest={digest}"),
            &[],
            b"gh".to_vec(),
        )
        .await;
    assert_eq!(done.status, StatusCode::CREATED);
    assert_eq!(done.header("docker-content-digest"), digest.to_string());
    let get = r
        .send("GET", &format!("/v2/a/blobs/{digest}"), &[], vec![])
        .await;
    assert_eq!(get.body, b"abcdefgh");
    let gone = r.send("GET", &location, &[], vec![]).await;
    assert_eq!(gone.error_code(), "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn unknown_and_cancelled_uploads_are_blob_upload_unknown() {
    let r = registry();
    let reply = r
        .send("PATCH", "/v2/a/blobs/uploads/deadbeef", &[], b"x".to_vec())
        .await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN")
    );
    let traversal = r.send("GET", "/v2/a/blobs/uploads/..", &[], vec![]).await;
    assert_eq!(traversal.status, StatusCode::NOT_FOUND);
    let start = r.send("POST", "/v2/a/blobs/uploads/", &[], vec![]).await;
    let location = start.header("location").to_owned();
    let other_repo = location.replacen("/v2/a/", "/v2/b/", 1);
    let wrong = r.send("GET", &other_repo, &[], vec![]).await;
    assert_eq!(
        wrong.error_code(),
        "BLOB_UPLOAD_UNKNOWN",
        "a session belongs to its repository"
    );
    assert_eq!(
        r.send("DELETE", &location, &[], vec![]).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        r.send("GET", &location, &[], vec![]).await.status,
        StatusCode::NOT_FOUND
    );
    let digest = Digest::sha256_of(b"");
    let put = r
        .send("PUT", &format!("{location}?digest={digest}"), &[], vec![])
        .await;
    assert_eq!(put.error_code(), "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn put_without_digest_is_digest_invalid() {
    let r = registry();
    let start = r.send("POST", "/v2/a/blobs/uploads/", &[], vec![]).await;
    let reply = r
        .send("PUT", start.header("location"), &[], b"x".to_vec())
        .await;
    assert_eq!(reply.error_code(), "DIGEST_INVALID");
}

#[tokio::test]
async fn cross_repository_mount_links_only_from_a_repository_that_has_it() {
    let r = registry();
    let digest = r.push_blob("src", b"shared").await;
    let uri = format!("/v2/dst/blobs/uploads/?mount={digest}&from=src");
    let mounted = r.send("POST", &uri, &[], vec![]).await;
    assert_eq!(mounted.status, StatusCode::CREATED);
    assert_eq!(
        r.send("GET", &format!("/v2/dst/blobs/{digest}"), &[], vec![])
            .await
            .body,
        b"shared"
    );
    let missing = Digest::sha256_of(b"absent");
    let uri = format!("/v2/dst/blobs/uploads/?mount={missing}&from=src");
    let fallback = r.send("POST", &uri, &[], vec![]).await;
    assert_eq!(
        fallback.status,
        StatusCode::ACCEPTED,
        "a failed mount starts an upload session"
    );
}

#[tokio::test]
async fn manifests_keep_their_bytes_and_resolve_by_tag_and_digest() {
    let r = registry();
    let manifest = r.image("app", b"layer").await;
    // Odd whitespace must survive byte for byte.
    let bytes = format!(
        "{}\n\n",
        serde_json::to_string_pretty(&manifest).expect("json")
    )
    .into_bytes();
    let digest = Digest::sha256_of(&bytes);
    let put = r
        .send(
            "PUT",
            "/v2/app/manifests/v1",
            &[("content-type", OCI_MANIFEST)],
            bytes.clone(),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    assert_eq!(put.header("docker-content-digest"), digest.to_string());
    for reference in ["v1".to_owned(), digest.to_string()] {
        let get = r
            .send(
                "GET",
                &format!("/v2/app/manifests/{reference}"),
                &[],
                vec![],
            )
            .await;
        assert_eq!(get.body, bytes);
        assert_eq!(get.header("content-type"), OCI_MANIFEST);
    }
    let wrong = Digest::sha256_of(b"not it");
    let mismatch = r
        .send(
            "PUT",
            &format!("/v2/app/manifests/{wrong}"),
            &[("content-type", OCI_MANIFEST)],
            bytes,
        )
        .await;
    assert_eq!(mismatch.error_code(), "DIGEST_INVALID");
    let unknown = r.send("GET", "/v2/app/manifests/nope", &[], vec![]).await;
    assert_eq!(
        (unknown.status, unknown.error_code().as_str()),
        (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
    );
}

#[tokio::test]
async fn manifest_errors_use_the_spec_codes() {
    let r = registry();
    let mut manifest = r.image("app", b"layer").await;
    manifest["layers"][0]["digest"] = Digest::sha256_of(b"never pushed").to_string().into();
    let reply = r.push_manifest("app", "v1", &manifest).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
    );
    let invalid = r
        .send(
            "PUT",
            "/v2/app/manifests/v1",
            &[("content-type", OCI_MANIFEST)],
            b"{".to_vec(),
        )
        .await;
    assert_eq!(invalid.error_code(), "MANIFEST_INVALID");
    let tag = r.push_manifest("app", "-bad", &manifest).await;
    assert_eq!(tag.error_code(), "TAG_INVALID");
    let name = r.send("GET", "/v2/Upper/manifests/v1", &[], vec![]).await;
    assert_eq!(name.error_code(), "NAME_INVALID");
    let tags = r.send("GET", "/v2/nothing/tags/list", &[], vec![]).await;
    assert_eq!(tags.error_code(), "NAME_UNKNOWN");
}

#[tokio::test]
async fn tags_and_catalog_paginate_with_link_headers() {
    let r = registry();
    let manifest = r.image("repo", b"l").await;
    for tag in ["c", "a", "b", "d"] {
        assert_eq!(
            r.push_manifest("repo", tag, &manifest).await.status,
            StatusCode::CREATED
        );
    }
    let all = r.send("GET", "/v2/repo/tags/list", &[], vec![]).await;
    assert_eq!(all.json()["tags"], serde_json::json!(["a", "b", "c", "d"]));
    let first = r.send("GET", "/v2/repo/tags/list?n=2", &[], vec![]).await;
    assert_eq!(first.json()["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(
        first.header("link"),
        "</v2/repo/tags/list?n=2&last=b>; rel=\"next\""
    );
    let second = r
        .send("GET", "/v2/repo/tags/list?n=2&last=b", &[], vec![])
        .await;
    assert_eq!(second.json()["tags"], serde_json::json!(["c", "d"]));
    assert_eq!(second.header("link"), "");
    r.push_blob("other/x", b"x").await;
    let catalog = r.send("GET", "/v2/_catalog?n=1", &[], vec![]).await;
    assert_eq!(
        catalog.json()["repositories"],
        serde_json::json!(["other/x"])
    );
    assert!(catalog.header("link").contains("last=other%2Fx"));
    let rest = r
        .send("GET", "/v2/_catalog?n=1&last=other%2Fx", &[], vec![])
        .await;
    assert_eq!(rest.json()["repositories"], serde_json::json!(["repo"]));
}

#[tokio::test]
async fn referrers_list_manifests_with_that_subject_and_filter_by_artifact_type() {
    let r = registry();
    let subject = r.image("app", b"base").await;
    let put = r.push_manifest("app", "base", &subject).await;
    let subject_digest = put.header("docker-content-digest").to_owned();
    let empty = r.push_blob("app", b"{}").await;
    for (kind, note) in [
        ("application/vnd.example.sig", "a"),
        ("application/vnd.example.sbom", "b"),
    ] {
        let referrer = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": kind,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": 1},
            "annotations": {"note": note},
        });
        let body = serde_json::to_vec(&referrer).expect("json");
        let digest = Digest::sha256_of(&body);
        let reply = r
            .send(
                "PUT",
                &format!("/v2/app/manifests/{digest}"),
                &[("content-type", OCI_MANIFEST)],
                body,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        assert_eq!(reply.header("oci-subject"), subject_digest);
    }
    let all = r
        .send(
            "GET",
            &format!("/v2/app/referrers/{subject_digest}"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.json()["manifests"].as_array().map(Vec::len), Some(2));
    let sig = r
        .send(
            "GET",
            &format!("/v2/app/referrers/{subject_digest}?artifactType=application/vnd.example.sig"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(sig.header("oci-filters-applied"), "artifactType");
    let manifests = &sig.json()["manifests"];
    assert_eq!(manifests.as_array().map(Vec::len), Some(1));
    assert_eq!(manifests[0]["annotations"]["note"], "a");
    let none = r
        .send(
            "GET",
            &format!("/v2/app/referrers/{}", Digest::sha256_of(b"z")),
            &[],
            vec![],
        )
        .await;
    assert_eq!(none.json()["manifests"], serde_json::json!([]));
}

#[tokio::test]
async fn deletion_removes_tags_and_links_and_can_be_disabled() {
    let r = registry();
    let manifest = r.image("app", b"layer").await;
    let put = r.push_manifest("app", "v1", &manifest).await;
    let digest = put.header("docker-content-digest").to_owned();
    assert_eq!(
        r.send(
            "DELETE",
            &format!("/v2/app/manifests/{digest}"),
            &[],
            vec![]
        )
        .await
        .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        r.send("GET", "/v2/app/manifests/v1", &[], vec![])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let layer = Digest::sha256_of(b"layer");
    assert_eq!(
        r.send("DELETE", &format!("/v2/app/blobs/{layer}"), &[], vec![])
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        r.send("HEAD", &format!("/v2/app/blobs/{layer}"), &[], vec![])
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let locked = registry_with(Config::default());
    let digest = locked.push_blob("app", b"keep").await;
    let reply = locked
        .send("DELETE", &format!("/v2/app/blobs/{digest}"), &[], vec![])
        .await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED")
    );
}

#[tokio::test]
async fn htpasswd_requires_basic_credentials() {
    let hash = bcrypt::hash("secret", 4).expect("hash");
    let htpasswd = Htpasswd::parse(&format!("alice:{hash}\n")).expect("parse");
    let r = registry_with(Config {
        delete_enabled: false,
        htpasswd: Some(htpasswd),
        token: None,
    });
    let anonymous = r.send("GET", "/v2/", &[], vec![]).await;
    assert_eq!(
        (anonymous.status, anonymous.error_code().as_str()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
    assert_eq!(
        anonymous.header("www-authenticate"),
        "Basic realm=\"berth-registry\""
    );
    let encode = |s: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    };
    let wrong = r
        .send(
            "GET",
            "/v2/",
            &[("authorization", &encode("alice:nope"))],
            vec![],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let right = r
        .send(
            "GET",
            "/v2/",
            &[("authorization", &encode("alice:secret"))],
            vec![],
        )
        .await;
    assert_eq!(right.status, StatusCode::OK);
}

#[tokio::test]
async fn gc_deletes_blobs_no_manifest_references() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = Storage::open(dir.path()).expect("storage");
    let r = Registry {
        router: router(storage.clone(), Config::default()),
        _dir: tempfile::tempdir().expect("tempdir"),
    };
    let manifest = r.image("app", b"kept layer").await;
    let put = r.push_manifest("app", "v1", &manifest).await;
    let orphan = r.push_blob("app", b"orphan").await;
    let options = crate::gc::GcOptions::with_default_expiry(std::time::SystemTime::now());
    let report = crate::gc::collect(&storage, &options).expect("gc");
    assert_eq!(report.removed_blobs, vec![orphan.clone()]);
    assert!(!storage.store.contains(&orphan));
    let kept = Digest::parse(put.header("docker-content-digest")).expect("digest");
    assert!(storage.store.contains(&kept));
    assert!(storage.store.contains(&Digest::sha256_of(b"kept layer")));
}

#[tokio::test]
async fn upload_sessions_survive_a_registry_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || Registry {
        router: router(
            Storage::open(dir.path()).expect("storage"),
            Config::default(),
        ),
        _dir: tempfile::tempdir().expect("tempdir"),
    };
    let first = open();
    let start = first
        .send("POST", "/v2/a/blobs/uploads/", &[], vec![])
        .await;
    let location = start.header("location").to_owned();
    let chunk = first
        .send(
            "PATCH",
            &location,
            &[("content-range", "0-3")],
            b"abcd".to_vec(),
        )
        .await;
    assert_eq!(chunk.status, StatusCode::ACCEPTED);
    drop(first);
    let second = open();
    let status = second.send("GET", &location, &[], vec![]).await;
    assert_eq!(
        (status.status, status.header("range")),
        (StatusCode::NO_CONTENT, "0-3")
    );
    let digest = Digest::sha256_of(b"abcdef");
    let done = second
        .send(
            "PUT",
            &format!("{location}?digest={digest}"),
            &[("content-range", "4-5")],
            b"ef".to_vec(),
        )
        .await;
    assert_eq!(done.status, StatusCode::CREATED);
    let blob = second
        .send("GET", &format!("/v2/a/blobs/{digest}"), &[], vec![])
        .await;
    assert_eq!(blob.body, b"abcdef");
}

#[tokio::test]
async fn token_auth_issues_scoped_tokens_to_htpasswd_users() {
    let hash = bcrypt::hash("secret", 4).expect("hash");
    let r = registry_with(Config {
        delete_enabled: true,
        htpasswd: Some(Htpasswd::parse(&format!("alice:{hash}\n")).expect("parse")),
        token: Some(TokenConfig::random(
            std::time::Duration::from_secs(60),
            false,
        )),
    });
    let anonymous = r
        .send("GET", "/v2/app/tags/list", &[("host", "reg.test")], vec![])
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.header("www-authenticate"),
        "Bearer realm=\"http://reg.test/token\",service=\"berth-registry\",scope=\"repository:app:pull\""
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:secret")
    );
    let refused = r
        .send(
            "GET",
            "/token?service=berth-registry&scope=repository:app:pull,push",
            &[],
            vec![],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "the token endpoint wants credentials"
    );
    let issued = r
        .send(
            "GET",
            "/token?service=berth-registry&scope=repository:app:pull,push",
            &[("authorization", &basic)],
            vec![],
        )
        .await;
    assert_eq!(issued.status, StatusCode::OK);
    let bearer = format!("Bearer {}", issued.json()["token"].as_str().expect("token"));
    let digest = Digest::sha256_of(b"tok");
    let uri = format!("/v2/app/blobs/uploads/?digest={digest}");
    let pushed = r
        .send("POST", &uri, &[("authorization", &bearer)], b"tok".to_vec())
        .await;
    assert_eq!(pushed.status, StatusCode::CREATED);
    let pulled = r
        .send(
            "GET",
            &format!("/v2/app/blobs/{digest}"),
            &[("authorization", &bearer)],
            vec![],
        )
        .await;
    assert_eq!(pulled.body, b"tok");
    let other = r
        .send(
            "GET",
            &format!("/v2/other/blobs/{digest}"),
            &[("authorization", &bearer)],
            vec![],
        )
        .await;
    assert_eq!(
        other.status,
        StatusCode::UNAUTHORIZED,
        "the token is scoped to app"
    );
    let basic_only = r
        .send("GET", "/v2/", &[("authorization", &basic)], vec![])
        .await;
    assert_eq!(
        basic_only.status,
        StatusCode::UNAUTHORIZED,
        "token mode needs a bearer token"
    );
}
