//! Blob HEAD, GET (with byte ranges, streamed from the file) and DELETE.

use std::io::SeekFrom;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use berth_oci::Digest;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::range::{parse_range, ByteRange};
use super::{blocking, Shared};
use crate::error::{ApiError, ErrorCode};

pub(crate) fn parse_digest(digest: &str) -> Result<Digest, ApiError> {
    Digest::parse(digest).map_err(|e| {
        ApiError::new(
            ErrorCode::DigestInvalid,
            format!("invalid digest {digest:?}: {e}"),
        )
    })
}

fn blob_unknown(digest: &Digest) -> ApiError {
    ApiError::new(
        ErrorCode::BlobUnknown,
        format!("blob unknown to registry: {digest}"),
    )
}

pub(super) async fn get(
    state: Shared,
    name: &str,
    digest: &str,
    headers: &HeaderMap,
    with_body: bool,
) -> Result<Response, ApiError> {
    let digest = parse_digest(digest)?;
    let (repo, d) = (name.to_owned(), digest.clone());
    let info = blocking(&state, move |s| {
        if !s.meta.blob_linked(&repo, &d) {
            return Ok(None);
        }
        match s.store.info(&d) {
            Ok(info) => Ok(Some(info)),
            Err(e) if e.kind() == berth_content::ContentErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    let Some(info) = info else {
        return Err(blob_unknown(&digest));
    };
    let size = info.size;
    let range = parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    );
    let (status, start, len) = match range {
        ByteRange::Full => (StatusCode::OK, 0, size),
        ByteRange::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        ByteRange::Unsatisfiable => {
            let mut response = ApiError::new(
                ErrorCode::RangeInvalid,
                format!("range not satisfiable for a blob of {size} bytes"),
            )
            .into_response_parts();
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{size}")),
            );
            return Ok(response);
        }
    };
    let body = if with_body && len > 0 {
        let path = state.storage.store.blob_path(&digest);
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|_| blob_unknown(&digest))?;
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|_| blob_unknown(&digest))?;
        Body::from_stream(ReaderStream::with_capacity(file.take(len), 256 * 1024))
    } else {
        Body::empty()
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, header_value(&len.to_string()));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert("Docker-Content-Digest", header_value(&digest.to_string()));
    h.insert(header::ETAG, header_value(&format!("\"{digest}\"")));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {start}-{}/{size}", start + len - 1)),
        );
    }
    Ok(response)
}

pub(super) async fn delete(state: Shared, name: &str, digest: &str) -> Result<Response, ApiError> {
    let digest = parse_digest(digest)?;
    if !state.config.delete_enabled {
        return Err(ApiError::new(
            ErrorCode::Unsupported,
            "deletion is disabled (start with --delete)",
        ));
    }
    let (repo, d) = (name.to_owned(), digest.clone());
    let removed = blocking(&state, move |s| Ok(s.meta.unlink_blob(&repo, &d)?)).await?;
    if !removed {
        return Err(blob_unknown(&digest));
    }
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::ACCEPTED;
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    Ok(response)
}

/// A header value from text we built ourselves (digests, numbers, paths of valid names).
pub(crate) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

impl ApiError {
    fn into_response_parts(self) -> Response {
        axum::response::IntoResponse::into_response(self)
    }
}
