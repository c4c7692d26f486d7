//! Manifests (GET/HEAD/PUT/DELETE by tag or digest, raw bytes kept exactly), tag
//! listing, the catalog and the referrers API, with `n`/`last` pagination.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use berth_content::{ContentError, Expected};
use berth_oci::{Algorithm, Digest};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;

use super::blobs::{header_value, parse_digest};
use super::{
    blocking, form_pairs, json_response, pagination, percent_encode, query_value, Shared, Storage,
};
use crate::error::{ApiError, ErrorCode};
use crate::manifest::{self, ManifestKind};
use crate::meta::ManifestLink;
use crate::name::is_valid_tag;

/// Largest manifest accepted (distribution's default limit).
pub const MANIFEST_MAX: usize = 4 << 20;

/// A manifest reference from the URL: a tag or a digest.
enum Reference {
    Tag(String),
    Digest(Digest),
}

fn parse_reference(reference: &str) -> Result<Reference, ApiError> {
    if reference.contains(':') {
        return parse_digest(reference).map(Reference::Digest);
    }
    if !is_valid_tag(reference) {
        return Err(ApiError::new(
            ErrorCode::TagInvalid,
            format!("invalid tag {reference:?}"),
        ));
    }
    Ok(Reference::Tag(reference.to_owned()))
}

fn manifest_unknown(reference: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ManifestUnknown,
        format!("manifest unknown: {reference}"),
    )
}

fn resolve(
    s: &Storage,
    name: &str,
    reference: &Reference,
) -> Result<Option<(Digest, ManifestLink)>, ApiError> {
    let digest = match reference {
        Reference::Digest(d) => d.clone(),
        Reference::Tag(tag) => match s.meta.tag(name, tag)? {
            Some(d) => d,
            None => return Ok(None),
        },
    };
    Ok(s.meta.manifest(name, &digest)?.map(|link| (digest, link)))
}

pub(super) async fn get(
    state: Shared,
    name: &str,
    reference: &str,
    with_body: bool,
) -> Result<Response, ApiError> {
    let parsed = parse_reference(reference)?;
    let repo = name.to_owned();
    let found = blocking(&state, move |s| {
        let Some((digest, link)) = resolve(s, &repo, &parsed)? else {
            return Ok(None);
        };
        let bytes = if with_body {
            match s.store.read_to_vec(&digest) {
                Ok(bytes) => Some(bytes),
                Err(ContentError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        Ok(Some((digest, link, bytes)))
    })
    .await?;
    let Some((digest, link, bytes)) = found else {
        return Err(manifest_unknown(reference));
    };
    let mut response = Response::new(bytes.map_or_else(Body::empty, Body::from));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, header_value(&link.media_type));
    h.insert(header::CONTENT_LENGTH, header_value(&link.size.to_string()));
    h.insert("Docker-Content-Digest", header_value(&digest.to_string()));
    h.insert(header::ETAG, header_value(&format!("\"{digest}\"")));
    Ok(response)
}

pub(super) async fn put(
    state: Shared,
    name: String,
    reference: String,
    request: Request,
) -> Result<Response, ApiError> {
    let parsed = parse_reference(&reference)?;
    // distribution-spec 1.1+: `?tag=` parameters tag a manifest pushed by digest.
    let mut tags: Vec<String> = form_pairs(request.uri().query().unwrap_or(""))
        .into_iter()
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| v)
        .collect();
    if let Some(bad) = tags.iter().find(|t| !is_valid_tag(t)) {
        return Err(ApiError::new(
            ErrorCode::TagInvalid,
            format!("invalid tag {bad:?}"),
        ));
    }
    if let Reference::Tag(tag) = &parsed {
        tags.insert(0, tag.clone());
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_owned())
        .filter(|v| !v.is_empty());
    let bytes = Limited::new(request.into_body(), MANIFEST_MAX)
        .collect()
        .await
        .map_err(|e| {
            ApiError::with_status(
                ErrorCode::SizeInvalid,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("manifest too large or unreadable: {e}"),
            )
        })?
        .to_bytes();
    let algorithm = match &parsed {
        Reference::Digest(d) => d.algorithm(),
        Reference::Tag(_) => Algorithm::Sha256,
    };
    let digest = Digest::of(algorithm, &bytes);
    if let Reference::Digest(wanted) = &parsed {
        if *wanted != digest {
            return Err(ApiError::new(
                ErrorCode::DigestInvalid,
                format!("manifest digest {digest} does not match {wanted}"),
            ));
        }
    }
    let parsed_manifest = manifest::parse(&bytes, content_type.as_deref())?;
    let repo = name.clone();
    let d = digest.clone();
    let response_tags = tags.clone();
    let subject = parsed_manifest.subject.clone();
    blocking(&state, move |s| {
        check_references(s, &repo, &parsed_manifest)?;
        let mut writer = match s.store.writer(
            &format!("berth-registry-manifest/{d}/{:016x}", rand::random::<u64>()),
            Expected::digest(d.clone()),
        ) {
            Ok(writer) => Some(writer),
            Err(ContentError::AlreadyExists { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(mut w) = writer.take() {
            w.append(&bytes)?;
            match w.commit(Expected::exact(d.clone(), bytes.len() as u64)) {
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let link = ManifestLink {
            media_type: parsed_manifest.media_type.clone(),
            size: bytes.len() as u64,
            artifact_type: parsed_manifest.artifact_type.clone(),
            subject: parsed_manifest.subject.clone(),
            annotations: parsed_manifest.annotations.clone(),
        };
        s.meta.link_manifest(&repo, &d, &link)?;
        for tag in &tags {
            s.meta.set_tag(&repo, tag, &d)?;
        }
        Ok(())
    })
    .await?;
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::CREATED;
    let h = response.headers_mut();
    h.insert(
        header::LOCATION,
        header_value(&format!("/v2/{name}/manifests/{digest}")),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    h.insert("Docker-Content-Digest", header_value(&digest.to_string()));
    if !matches!(parsed, Reference::Tag(_)) {
        for tag in &response_tags {
            h.append("OCI-Tag", header_value(tag));
        }
    }
    if let Some(subject) = subject {
        h.insert("OCI-Subject", header_value(&subject.to_string()));
    }
    Ok(response)
}

/// Distribution's validation: blobs of an image manifest must be in the repository
/// (layers with `urls` or a non-distributable type excepted), the manifests of an index too.
fn check_references(s: &Storage, name: &str, parsed: &manifest::Manifest) -> Result<(), ApiError> {
    for digest in &parsed.blobs {
        if !s.meta.blob_linked(name, digest) || !s.store.contains(digest) {
            return Err(ApiError::new(
                ErrorCode::ManifestBlobUnknown,
                format!("blob unknown to registry: {digest} (push it before the manifest)"),
            ));
        }
    }
    if parsed.kind == ManifestKind::Index {
        for digest in &parsed.manifests {
            if s.meta.manifest(name, digest)?.is_none() {
                return Err(ApiError::new(
                    ErrorCode::ManifestBlobUnknown,
                    format!("manifest unknown to registry: {digest} (push it before the index)"),
                ));
            }
        }
    }
    Ok(())
}

pub(super) async fn delete(
    state: Shared,
    name: &str,
    reference: &str,
) -> Result<Response, ApiError> {
    let parsed = parse_reference(reference)?;
    if !state.config.delete_enabled {
        return Err(ApiError::new(
            ErrorCode::Unsupported,
            "deletion is disabled (start with --delete)",
        ));
    }
    let repo = name.to_owned();
    let removed = blocking(&state, move |s| match &parsed {
        Reference::Tag(tag) => Ok(s.meta.untag(&repo, tag)?),
        Reference::Digest(d) => Ok(s.meta.unlink_manifest(&repo, d)?),
    })
    .await?;
    if !removed {
        return Err(manifest_unknown(reference));
    }
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::ACCEPTED;
    Ok(response)
}

/// Applies `n`/`last` and builds the `Link` header for the next page.
fn page(items: Vec<String>, n: Option<usize>, last: Option<&str>) -> (Vec<String>, Option<String>) {
    let mut items: Vec<String> = match last {
        Some(last) => items.into_iter().filter(|i| i.as_str() > last).collect(),
        None => items,
    };
    let Some(n) = n else {
        return (items, None);
    };
    let more = items.len() > n;
    items.truncate(n);
    let next = if more { items.last().cloned() } else { None };
    (items, next)
}

fn with_link(
    mut response: Response,
    base: &str,
    n: Option<usize>,
    next: Option<String>,
) -> Response {
    if let (Some(n), Some(next)) = (n, next) {
        let link = format!(
            "<{base}?n={n}&last={}>; rel=\"next\"",
            percent_encode(&next)
        );
        response
            .headers_mut()
            .insert(header::LINK, header_value(&link));
    }
    response
}

pub(super) async fn tags_list(
    state: Shared,
    name: &str,
    query: Option<String>,
) -> Result<Response, ApiError> {
    let (n, last) = pagination(query.as_deref())?;
    let repo = name.to_owned();
    let tags = blocking(&state, move |s| {
        if !s.meta.repository_exists(&repo) {
            return Ok(None);
        }
        Ok(Some(s.meta.tags(&repo)?))
    })
    .await?;
    let Some(tags) = tags else {
        return Err(ApiError::new(
            ErrorCode::NameUnknown,
            format!("repository name not known to registry: {name}"),
        ));
    };
    let (tags, next) = page(tags, n, last.as_deref());
    let body = serde_json::json!({ "name": name, "tags": tags });
    let response = json_response(StatusCode::OK, body.to_string());
    Ok(with_link(
        response,
        &format!("/v2/{name}/tags/list"),
        n,
        next,
    ))
}

pub(super) async fn catalog(state: Shared, query: Option<String>) -> Result<Response, ApiError> {
    let (n, last) = pagination(query.as_deref())?;
    let repositories = blocking(&state, |s| Ok(s.meta.repositories()?)).await?;
    let (repositories, next) = page(repositories, n, last.as_deref());
    let body = serde_json::json!({ "repositories": repositories });
    let response = json_response(StatusCode::OK, body.to_string());
    Ok(with_link(response, "/v2/_catalog", n, next))
}

pub(super) async fn referrers(
    state: Shared,
    name: &str,
    digest: &str,
    query: Option<String>,
) -> Result<Response, ApiError> {
    let subject = parse_digest(digest)?;
    let artifact_type = query_value(query.as_deref(), "artifactType");
    let repo = name.to_owned();
    let filter = artifact_type.clone();
    let descriptors = blocking(&state, move |s| {
        let mut out: Vec<Value> = Vec::new();
        for (digest, link) in s.meta.manifests(&repo)? {
            if link.subject.as_ref() != Some(&subject) {
                continue;
            }
            if filter.is_some() && link.artifact_type != filter {
                continue;
            }
            let mut d = serde_json::Map::new();
            d.insert("mediaType".into(), link.media_type.clone().into());
            d.insert("digest".into(), digest.to_string().into());
            d.insert("size".into(), link.size.into());
            if let Some(t) = &link.artifact_type {
                d.insert("artifactType".into(), t.clone().into());
            }
            if let Some(a) = &link.annotations {
                d.insert("annotations".into(), Value::Object(a.clone()));
            }
            out.push(Value::Object(d));
        }
        out.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
        Ok(out)
    })
    .await?;
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": descriptors,
    });
    let mut response = json_response(StatusCode::OK, body.to_string());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(manifest::OCI_INDEX),
    );
    if artifact_type.is_some() {
        response.headers_mut().insert(
            "OCI-Filters-Applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_start_after_last_and_link_to_the_next() {
        let items: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            page(items.clone(), Some(2), None),
            (vec!["a".into(), "b".into()], Some("b".into()))
        );
        assert_eq!(
            page(items.clone(), Some(2), Some("b")),
            (vec!["c".into(), "d".into()], None)
        );
        assert_eq!(
            page(items.clone(), None, Some("c")),
            (vec!["d".into()], None)
        );
        assert_eq!(page(items, Some(0), None).0, Vec::<String>::new());
    }
}
