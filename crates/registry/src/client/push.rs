//! Pushing: blobs with a HEAD existence check first, a cross-repository mount when a
//! source repository is known, monolithic (streamed from the file) or chunked uploads,
//! then manifests (children of an index before the index).

use berth_content::Store;
use berth_oci::Digest;
use futures_util::TryStreamExt;
use reqwest::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION,
};
use reqwest::{Method, StatusCode, Url};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::progress::{emit, Progress, ProgressSender};
use super::{registry_error, ClientError, RegistryClient};
use crate::manifest::{self, ManifestKind};

/// How a blob reached the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Uploaded,
    AlreadyExists,
    Mounted,
}

/// The file stream, reporting bytes handed to the connection as `Pushing` progress.
fn counted(
    stream: tokio_util::io::ReaderStream<tokio::fs::File>,
    digest: Digest,
    total: u64,
    progress: Option<ProgressSender>,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    let mut current = 0u64;
    stream.map_ok(move |chunk| {
        current += chunk.len() as u64;
        emit(
            progress.as_ref(),
            Progress::Pushing {
                digest: digest.clone(),
                current,
                total,
            },
        );
        chunk
    })
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

impl RegistryClient {
    pub(super) fn location(&self, response: &reqwest::Response) -> Result<Url, ClientError> {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ClientError::Url {
                url: "missing Location header".into(),
            })?;
        // Relative locations resolve against the URL that answered (distribution's rule).
        response.url().join(location).map_err(|_| ClientError::Url {
            url: location.to_owned(),
        })
    }

    /// Pushes one blob from `store` unless the repository has it.
    pub async fn push_blob(
        &self,
        repo: &str,
        digest: &Digest,
        store: &Store,
        mount_from: Option<&str>,
        progress: Option<&ProgressSender>,
    ) -> Result<PushOutcome, ClientError> {
        emit(
            progress,
            Progress::Preparing {
                digest: digest.clone(),
            },
        );
        let head = self.url(&format!("v2/{repo}/blobs/{digest}"))?;
        let response = self
            .send(Method::HEAD, head, repo, true, HeaderMap::new(), None)
            .await?;
        if response.status().is_success() {
            emit(
                progress,
                Progress::AlreadyExists {
                    digest: digest.clone(),
                },
            );
            return Ok(PushOutcome::AlreadyExists);
        }
        let mut start = self.url(&format!("v2/{repo}/blobs/uploads/"))?;
        if let Some(from) = mount_from {
            start
                .query_pairs_mut()
                .append_pair("mount", &digest.to_string())
                .append_pair("from", from);
        }
        let response = self
            .send(
                Method::POST,
                start,
                repo,
                true,
                HeaderMap::new(),
                Some(bytes::Bytes::new()),
            )
            .await?;
        if response.status() == StatusCode::CREATED {
            emit(
                progress,
                Progress::Mounted {
                    digest: digest.clone(),
                    from: mount_from.unwrap_or("").to_owned(),
                },
            );
            return Ok(PushOutcome::Mounted);
        }
        if response.status() != StatusCode::ACCEPTED {
            return Err(registry_error("POST", response).await);
        }
        let location = self.location(&response)?;
        let size = store.info(digest)?.size;
        match self.options.chunk_size {
            Some(chunk) if size > chunk && chunk > 0 => {
                self.upload_chunked(repo, digest, store, location, size, chunk, progress)
                    .await?
            }
            _ => {
                self.upload_monolithic(repo, digest, store, location, size, progress)
                    .await?
            }
        }
        emit(
            progress,
            Progress::Pushed {
                digest: digest.clone(),
            },
        );
        Ok(PushOutcome::Uploaded)
    }

    /// One PUT whose body streams from the blob file.
    async fn upload_monolithic(
        &self,
        repo: &str,
        digest: &Digest,
        store: &Store,
        mut location: Url,
        size: u64,
        progress: Option<&ProgressSender>,
    ) -> Result<(), ClientError> {
        location
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let file = tokio::fs::File::open(store.blob_path(digest))
            .await
            .map_err(|e| ClientError::Url {
                url: format!("{}: {e}", store.blob_path(digest).display()),
            })?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
        emit(
            progress,
            Progress::Pushing {
                digest: digest.clone(),
                current: 0,
                total: size,
            },
        );
        let mut request = self
            .http
            .put(location.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(counted(
                stream,
                digest.clone(),
                size,
                progress.cloned(),
            )));
        if let Some(value) = self.authorization(repo, true).await? {
            request = request.header(AUTHORIZATION, value);
        }
        let response = request.send().await.map_err(|source| ClientError::Http {
            url: location.to_string(),
            source,
        })?;
        if response.status() != StatusCode::CREATED {
            return Err(registry_error("PUT", response).await);
        }
        emit(
            progress,
            Progress::Pushing {
                digest: digest.clone(),
                current: size,
                total: size,
            },
        );
        Ok(())
    }

    /// PATCH chunks with Content-Range, then an empty PUT with the digest.
    #[allow(clippy::too_many_arguments)]
    async fn upload_chunked(
        &self,
        repo: &str,
        digest: &Digest,
        store: &Store,
        mut location: Url,
        size: u64,
        chunk: u64,
        progress: Option<&ProgressSender>,
    ) -> Result<(), ClientError> {
        let path = store.blob_path(digest);
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| ClientError::Url {
                url: format!("{}: {e}", path.display()),
            })?;
        let mut offset = 0u64;
        while offset < size {
            let len = chunk.min(size - offset);
            let mut buffer = vec![0u8; len as usize];
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .and(file.read_exact(&mut buffer).await.map(|_| 0))
                .map_err(|e| ClientError::Url {
                    url: format!("{}: {e}", path.display()),
                })?;
            let mut headers = HeaderMap::new();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(
                CONTENT_RANGE,
                header(&format!("{offset}-{}", offset + len - 1)),
            );
            let response = self
                .send(
                    Method::PATCH,
                    location.clone(),
                    repo,
                    true,
                    headers,
                    Some(buffer.into()),
                )
                .await?;
            if response.status() != StatusCode::ACCEPTED {
                return Err(registry_error("PATCH", response).await);
            }
            location = self.location(&response)?;
            offset += len;
            emit(
                progress,
                Progress::Pushing {
                    digest: digest.clone(),
                    current: offset,
                    total: size,
                },
            );
        }
        self.finish_upload(repo, location, digest).await
    }

    /// PUTs manifest bytes exactly as given; returns the digest the registry reports.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Digest, ClientError> {
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, header(media_type));
        let digest = Digest::sha256_of(&bytes);
        let response = self
            .send(Method::PUT, url, repo, true, headers, Some(bytes.into()))
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(registry_error("PUT", response).await);
        }
        Ok(digest)
    }

    /// Pushes the manifest `digest` from `store` (an index with all its manifests) and
    /// everything it references, then tags it as `reference`.
    pub async fn push(
        &self,
        repo: &str,
        reference: &str,
        digest: &Digest,
        store: &Store,
        mount_from: Option<&str>,
        progress: Option<&ProgressSender>,
    ) -> Result<Digest, ClientError> {
        let bytes = store.read_to_vec(digest)?;
        let parsed = manifest::parse(&bytes, None).map_err(|e| ClientError::Manifest {
            digest: digest.to_string(),
            message: e.to_string(),
        })?;
        if parsed.kind == ManifestKind::Index {
            for child in &parsed.manifests {
                Box::pin(self.push(repo, &child.to_string(), child, store, mount_from, progress))
                    .await?;
            }
        }
        let limit = self.options.max_concurrent_uploads.max(1);
        futures_util::stream::iter(parsed.blobs.iter().cloned().map(Ok::<_, ClientError>))
            .try_for_each_concurrent(limit, |blob| async move {
                self.push_blob(repo, &blob, store, mount_from, progress)
                    .await
                    .map(|_| ())
            })
            .await?;
        self.put_manifest(repo, reference, &parsed.media_type, bytes)
            .await?;
        Ok(digest.clone())
    }
}
