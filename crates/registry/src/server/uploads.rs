//! Blob uploads: POST (monolithic with `?digest=`, cross-repository mount, or a new
//! session), chunked PATCH with Content-Range ordering, PUT to verify and commit, GET of
//! the session's progress and DELETE to cancel. The bytes stream into a content-store
//! ingest named after the session, so nothing is buffered whole and a session survives
//! a registry restart.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use berth_content::{ContentError, ContentErrorKind, Expected, Writer};
use berth_oci::Digest;
use http_body_util::BodyExt;

use super::blobs::{header_value, parse_digest};
use super::range::parse_content_range;
use super::{blocking, query_value, Shared, UploadSlot};
use crate::error::{ApiError, ErrorCode};
use crate::meta::UploadRecord;
use crate::name::is_valid_name;

/// Bytes gathered from the request body before one blocking append.
const APPEND_BATCH: usize = 1 << 20;

fn ingest_reference(id: &str) -> String {
    format!("berth-registry-upload/{id}")
}

fn new_upload_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn upload_unknown(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::BlobUploadUnknown,
        format!("blob upload unknown to registry: {id}"),
    )
}

fn location(name: &str, id: &str) -> HeaderValue {
    header_value(&format!("/v2/{name}/blobs/uploads/{id}"))
}

/// `Range: 0-<last byte>` as distribution reports progress ("0-0" when empty).
fn progress(offset: u64) -> HeaderValue {
    header_value(&format!("0-{}", offset.saturating_sub(1)))
}

fn session_response(status: StatusCode, name: &str, id: &str, offset: u64) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::LOCATION, location(name, id));
    h.insert(header::RANGE, progress(offset));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    h.insert("Docker-Upload-UUID", header_value(id));
    response
}

fn created(name: &str, digest: &Digest) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::CREATED;
    let h = response.headers_mut();
    h.insert(
        header::LOCATION,
        header_value(&format!("/v2/{name}/blobs/{digest}")),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    h.insert("Docker-Content-Digest", header_value(&digest.to_string()));
    response
}

pub(super) async fn start(
    state: Shared,
    name: String,
    request: Request,
) -> Result<Response, ApiError> {
    let query = request.uri().query().map(str::to_owned);
    let query = query.as_deref();
    if let Some(mount) = query_value(query, "mount") {
        let digest = parse_digest(&mount)?;
        let from = query_value(query, "from");
        if let Some(response) = try_mount(&state, &name, &digest, from).await? {
            return Ok(response);
        }
    }
    let id = new_upload_id();
    if let Some(digest) = query_value(query, "digest") {
        // Monolithic upload: the whole blob is this request's body.
        let digest = parse_digest(&digest)?;
        let mut writer = None;
        append_body(&state, &id, &mut writer, request.into_body()).await?;
        return complete(&state, &name, &id, writer, digest).await;
    }
    let record = UploadRecord { name: name.clone() };
    let rec_id = id.clone();
    blocking(&state, move |s| {
        Ok(s.meta.create_upload(&rec_id, &record)?)
    })
    .await?;
    Ok(session_response(StatusCode::ACCEPTED, &name, &id, 0))
}

async fn try_mount(
    state: &Shared,
    name: &str,
    digest: &Digest,
    from: Option<String>,
) -> Result<Option<Response>, ApiError> {
    let (repo, d) = (name.to_owned(), digest.clone());
    let mounted = blocking(state, move |s| {
        let source_ok = match &from {
            Some(from) => is_valid_name(from) && s.meta.blob_linked(from, &d),
            // Anonymous mount (distribution-spec 1.1): any blob the registry holds.
            None => true,
        };
        if source_ok && s.store.contains(&d) {
            s.meta.link_blob(&repo, &d)?;
            return Ok(true);
        }
        Ok(false)
    })
    .await?;
    Ok(mounted.then(|| created(name, digest)))
}

/// The session's writer slot, after checking that the session exists for this repository.
async fn session(state: &Shared, name: &str, id: &str) -> Result<UploadSlot, ApiError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(upload_unknown(id));
    }
    let rec_id = id.to_owned();
    let record = blocking(state, move |s| Ok(s.meta.upload(&rec_id)?)).await?;
    if record.as_ref().map(|r| r.name.as_str()) != Some(name) {
        return Err(upload_unknown(id));
    }
    let mut uploads = state.uploads.lock().unwrap_or_else(|p| p.into_inner());
    Ok(uploads.entry(id.to_owned()).or_default().clone())
}

async fn open_writer(state: &Shared, id: &str, slot: &mut Option<Writer>) -> Result<(), ApiError> {
    if slot.is_none() {
        let reference = ingest_reference(id);
        let writer = blocking(state, move |s| {
            Ok(s.store.writer(&reference, Expected::none())?)
        })
        .await?;
        *slot = Some(writer);
    }
    Ok(())
}

/// Streams a request body into the session's ingest; returns the bytes appended.
async fn append_body(
    state: &Shared,
    id: &str,
    slot: &mut Option<Writer>,
    body: Body,
) -> Result<u64, ApiError> {
    open_writer(state, id, slot).await?;
    let mut body = body;
    let mut batch: Vec<u8> = Vec::new();
    let mut total = 0u64;
    loop {
        let frame = body.frame().await;
        let done = match frame {
            None => true,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    batch.extend_from_slice(&data);
                }
                false
            }
            Some(Err(e)) => {
                // The client went away: keep what arrived so far for a resumed PATCH.
                flush(slot, &mut batch).await?;
                return Err(ApiError::new(
                    ErrorCode::BlobUploadInvalid,
                    format!("reading the request body failed: {e}"),
                ));
            }
        };
        if batch.len() >= APPEND_BATCH || (done && !batch.is_empty()) {
            total += batch.len() as u64;
            flush(slot, &mut batch).await?;
        }
        if done {
            return Ok(total);
        }
    }
}

async fn flush(slot: &mut Option<Writer>, batch: &mut Vec<u8>) -> Result<(), ApiError> {
    let Some(mut writer) = slot.take() else {
        return Ok(());
    };
    let bytes = std::mem::take(batch);
    let (writer, result) = tokio::task::spawn_blocking(move || {
        let result = writer.append(&bytes);
        (writer, result)
    })
    .await?;
    // A failed append poisons the writer: drop it so the next request resumes from disk.
    if result.is_ok() {
        *slot = Some(writer);
    }
    Ok(result?)
}

fn content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("");
    parse_content_range(text).map(Some).ok_or_else(|| {
        ApiError::new(
            ErrorCode::RangeInvalid,
            format!("invalid Content-Range {text:?}"),
        )
    })
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Checks that a chunk continues the upload where it stands (the spec's 416 otherwise).
fn check_chunk(
    headers: &HeaderMap,
    name: &str,
    id: &str,
    offset: u64,
) -> Result<(), Box<Response>> {
    let Ok(Some((start, end))) = content_range(headers) else {
        return match content_range(headers) {
            Err(e) => Err(Box::new(range_error(e, name, id, offset))),
            Ok(_) => Ok(()),
        };
    };
    let length_ok = content_length(headers).is_none_or(|len| len == end - start + 1);
    if start != offset || !length_ok {
        let error = ApiError::new(
            ErrorCode::RangeInvalid,
            format!("chunk {start}-{end} does not continue the upload at byte {offset}"),
        );
        return Err(Box::new(range_error(error, name, id, offset)));
    }
    Ok(())
}

fn range_error(error: ApiError, name: &str, id: &str, offset: u64) -> Response {
    let mut response = axum::response::IntoResponse::into_response(error);
    let h = response.headers_mut();
    h.insert(header::LOCATION, location(name, id));
    h.insert(header::RANGE, progress(offset));
    h.insert("Docker-Upload-UUID", header_value(id));
    response
}

pub(super) async fn patch(
    state: Shared,
    name: String,
    id: String,
    request: Request,
) -> Result<Response, ApiError> {
    let slot = session(&state, &name, &id).await?;
    let mut guard = slot.lock().await;
    open_writer(&state, &id, &mut guard).await?;
    let offset = guard.as_ref().map_or(0, Writer::offset);
    if let Err(response) = check_chunk(request.headers(), &name, &id, offset) {
        return Ok(*response);
    }
    append_body(&state, &id, &mut guard, request.into_body()).await?;
    let offset = guard.as_ref().map_or(0, Writer::offset);
    Ok(session_response(StatusCode::ACCEPTED, &name, &id, offset))
}

pub(super) async fn finish(
    state: Shared,
    name: String,
    id: String,
    request: Request,
) -> Result<Response, ApiError> {
    let slot = session(&state, &name, &id).await?;
    let mut guard = slot.lock().await;
    let digest = query_value(request.uri().query(), "digest").ok_or_else(|| {
        ApiError::new(
            ErrorCode::DigestInvalid,
            "the digest query parameter is required",
        )
    })?;
    let digest = parse_digest(&digest)?;
    open_writer(&state, &id, &mut guard).await?;
    let offset = guard.as_ref().map_or(0, Writer::offset);
    if let Err(response) = check_chunk(request.headers(), &name, &id, offset) {
        return Ok(*response);
    }
    append_body(&state, &id, &mut guard, request.into_body()).await?;
    let writer = guard.take();
    let result = complete(&state, &name, &id, writer, digest).await;
    let failed_for_good = matches!(&result, Err(ApiError::Spec { code, .. }) if *code != ErrorCode::BlobUploadInvalid);
    if result.is_ok() || failed_for_good {
        forget(&state, &id).await?;
    }
    result
}

/// Verifies and commits the ingest, then links the blob into the repository.
async fn complete(
    state: &Shared,
    name: &str,
    id: &str,
    writer: Option<Writer>,
    digest: Digest,
) -> Result<Response, ApiError> {
    let Some(writer) = writer else {
        return Err(upload_unknown(id));
    };
    let (repo, d) = (name.to_owned(), digest.clone());
    blocking(state, move |s| {
        writer
            .commit(Expected::digest(d.clone()))
            .map_err(commit_error)?;
        s.meta.link_blob(&repo, &d)?;
        Ok(())
    })
    .await?;
    Ok(created(name, &digest))
}

fn commit_error(error: ContentError) -> ApiError {
    match &error {
        ContentError::DigestMismatch {
            expected, actual, ..
        } => ApiError::new(
            ErrorCode::DigestInvalid,
            format!("provided digest {expected} did not match uploaded content {actual}"),
        ),
        ContentError::SizeMismatch { .. } | ContentError::TooLarge { .. } => {
            ApiError::new(ErrorCode::SizeInvalid, error.to_string())
        }
        _ if error.kind() == ContentErrorKind::FailedPrecondition => {
            ApiError::new(ErrorCode::BlobUploadInvalid, error.to_string())
        }
        _ => ApiError::Content(error),
    }
}

/// Drops a finished or cancelled session's record and slot.
async fn forget(state: &Shared, id: &str) -> Result<(), ApiError> {
    state
        .uploads
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(id);
    let id = id.to_owned();
    blocking(state, move |s| {
        s.meta.remove_upload(&id)?;
        Ok(())
    })
    .await
}

pub(super) async fn status(state: Shared, name: &str, id: &str) -> Result<Response, ApiError> {
    let slot = session(&state, name, id).await?;
    let guard = slot.lock().await;
    let offset = match guard.as_ref() {
        Some(writer) => writer.offset(),
        None => {
            let reference = ingest_reference(id);
            blocking(&state, move |s| match s.store.ingest_status(&reference) {
                Ok(status) => Ok(status.offset),
                Err(ContentError::IngestNotFound { .. }) => Ok(0),
                Err(e) => Err(e.into()),
            })
            .await?
        }
    };
    Ok(session_response(StatusCode::NO_CONTENT, name, id, offset))
}

pub(super) async fn cancel(state: Shared, name: &str, id: &str) -> Result<Response, ApiError> {
    let slot: Arc<_> = session(&state, name, id).await?;
    let writer = slot.lock().await.take();
    let reference = ingest_reference(id);
    blocking(&state, move |s| {
        let result = match writer {
            Some(writer) => writer.abort(),
            None => s.store.abort(&reference),
        };
        match result {
            Ok(()) | Err(ContentError::IngestNotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    forget(&state, id).await?;
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}
