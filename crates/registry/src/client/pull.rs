//! Pulling: manifest resolution (Docker schema 2, OCI, lists and indexes with platform
//! selection) and blobs into the content store, in parallel, verified, resumed with a
//! `Range` request after a dropped connection, retried with exponential backoff.

use std::time::Duration;

use berth_content::{ContentError, Expected, Store, Writer};
use berth_oci::{Digest, Platform, PlatformMatcher};
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, RANGE};
use reqwest::{Method, StatusCode};

use super::progress::{emit, Progress, ProgressSender};
use super::{registry_error, ClientError, RegistryClient};
use crate::manifest::{self, ManifestKind};

/// Bytes gathered before one blocking append to the store.
const APPEND_BATCH: usize = 1 << 20;

/// What a pull brought into the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// The digest the reference resolved to (an index's when the reference named one).
    pub digest: Digest,
    /// The image manifest chosen for the platform.
    pub manifest_digest: Digest,
    pub media_type: String,
    pub config: Digest,
    pub layers: Vec<Digest>,
}

impl RegistryClient {
    /// Fetches a manifest's raw bytes, media type and digest (verified against a digest
    /// reference), and stores the bytes in `store`.
    pub async fn fetch_manifest(
        &self,
        repo: &str,
        reference: &str,
        store: &Store,
    ) -> Result<(Vec<u8>, String, Digest), ClientError> {
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_str(&manifest::ACCEPT.join(", "))
                .expect("invariant: static media types"),
        );
        let response = self
            .send(Method::GET, url, repo, false, headers, None)
            .await?;
        if !response.status().is_success() {
            return Err(registry_error("GET", response).await);
        }
        let media_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_owned())
            .unwrap_or_default();
        let url = response.url().to_string();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ClientError::Http { url, source })?;
        let digest = match Digest::parse(reference) {
            Ok(wanted) => {
                let actual = Digest::of(wanted.algorithm(), &bytes);
                if actual != wanted {
                    return Err(ClientError::Manifest {
                        digest: wanted.to_string(),
                        message: format!("content hashes to {actual}"),
                    });
                }
                wanted
            }
            Err(_) => Digest::sha256_of(&bytes),
        };
        let (d, data, store) = (digest.clone(), bytes.to_vec(), store.clone());
        tokio::task::spawn_blocking(move || store_bytes(&store, &d, &data)).await??;
        Ok((bytes.to_vec(), media_type, digest))
    }

    /// Pulls `repo:reference` for `platform`: manifest, config and layers into `store`.
    pub async fn pull(
        &self,
        repo: &str,
        reference: &str,
        platform: &Platform,
        store: &Store,
        progress: Option<&ProgressSender>,
    ) -> Result<PulledImage, ClientError> {
        let (bytes, media_type, digest) = self.fetch_manifest(repo, reference, store).await?;
        emit(
            progress,
            Progress::Resolved {
                reference: reference.to_owned(),
                digest: digest.clone(),
            },
        );
        let invalid = |d: &Digest, e: crate::ApiError| ClientError::Manifest {
            digest: d.to_string(),
            message: e.to_string(),
        };
        let mut parsed =
            manifest::parse(&bytes, Some(&media_type)).map_err(|e| invalid(&digest, e))?;
        let (mut manifest_digest, mut manifest_type) = (digest.clone(), media_type);
        if parsed.kind == ManifestKind::Index {
            let candidates: Vec<Platform> = parsed
                .platforms
                .iter()
                .map(|p| {
                    p.clone()
                        .and_then(|p| serde_json::from_value(p).ok())
                        .unwrap_or_default()
                })
                .collect();
            let chosen = PlatformMatcher::only(platform)
                .best(candidates.iter())
                .ok_or_else(|| ClientError::NoMatchingPlatform {
                    reference: reference.to_owned(),
                    platform: format!("{}/{}", platform.os, platform.architecture),
                })?;
            let child = parsed.manifests[chosen].to_string();
            let (bytes, media_type, d) = self.fetch_manifest(repo, &child, store).await?;
            parsed = manifest::parse(&bytes, Some(&media_type)).map_err(|e| invalid(&d, e))?;
            (manifest_digest, manifest_type) = (d, media_type);
        }
        if parsed.kind != ManifestKind::Image {
            return Err(ClientError::Manifest {
                digest: manifest_digest.to_string(),
                message: format!("{manifest_type} is not an image manifest"),
            });
        }
        let limit = self.options.max_concurrent_downloads.max(1);
        for blob in &parsed.blobs[1..] {
            emit(
                progress,
                Progress::Waiting {
                    digest: blob.clone(),
                },
            );
        }
        // The config first (it is small): with it the caller knows the diff ids and can
        // unpack each layer as soon as it and the layers below it are in the store.
        self.fetch_blob(repo, &parsed.blobs[0], None, store, progress)
            .await?;
        emit(
            progress,
            Progress::ImageManifest {
                digest: manifest_digest.clone(),
                media_type: manifest_type.clone(),
                config: parsed.blobs[0].clone(),
            },
        );
        futures_util::stream::iter(parsed.blobs[1..].iter().cloned().map(Ok::<_, ClientError>))
            .try_for_each_concurrent(limit, |blob| async move {
                self.fetch_blob(repo, &blob, None, store, progress).await
            })
            .await?;
        Ok(PulledImage {
            digest,
            manifest_digest,
            media_type: manifest_type,
            config: parsed.blobs[0].clone(),
            layers: parsed.blobs[1..].to_vec(),
        })
    }

    /// Downloads one blob into the store unless it is there, resuming and retrying.
    pub async fn fetch_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
        store: &Store,
        progress: Option<&ProgressSender>,
    ) -> Result<(), ClientError> {
        let gate = self
            .downloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(digest.clone())
            .or_default()
            .clone();
        let guard = gate.lock().await;
        let result = self
            .fetch_blob_gated(repo, digest, size, store, progress)
            .await;
        drop(guard);
        let mut downloads = self.downloads.lock().unwrap_or_else(|p| p.into_inner());
        // Nobody else waits on this gate (the map and we hold the only references).
        if std::sync::Arc::strong_count(&gate) == 2 {
            downloads.remove(digest);
        }
        result
    }

    async fn fetch_blob_gated(
        &self,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
        store: &Store,
        progress: Option<&ProgressSender>,
    ) -> Result<(), ClientError> {
        if store.contains(digest) {
            emit(
                progress,
                Progress::AlreadyExists {
                    digest: digest.clone(),
                },
            );
            return Ok(());
        }
        let attempts = self.options.attempts.max(1);
        let mut delay = self.options.backoff;
        for attempt in 1..=attempts {
            match self
                .fetch_blob_once(repo, digest, size, store, progress)
                .await
            {
                Ok(()) => {
                    emit(
                        progress,
                        Progress::DownloadComplete {
                            digest: digest.clone(),
                        },
                    );
                    return Ok(());
                }
                Err(e) if e.is_transient() && attempt < attempts => {
                    emit(
                        progress,
                        Progress::Retrying {
                            digest: digest.clone(),
                            attempt,
                        },
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(e) if attempt > 1 => {
                    return Err(ClientError::Retries {
                        digest: digest.clone(),
                        attempts: attempt,
                        source: Box::new(e),
                    })
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("invariant: the last attempt returns")
    }

    async fn fetch_blob_once(
        &self,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
        store: &Store,
        progress: Option<&ProgressSender>,
    ) -> Result<(), ClientError> {
        let expected = Expected {
            digest: Some(digest.clone()),
            size,
        };
        let (s, reference, e) = (
            store.clone(),
            format!("berth-pull/{digest}"),
            expected.clone(),
        );
        let writer = match tokio::task::spawn_blocking(move || s.writer(&reference, e)).await? {
            Ok(writer) => writer,
            Err(ContentError::AlreadyExists { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut slot = Some(writer);
        let offset = slot.as_ref().map_or(0, Writer::offset);
        // An earlier pull stopped after the last byte but before the commit: a Range from the
        // end would get 416, so the ingest is verified and committed as it is (a commit that
        // fails verification discards it, and the next attempt starts over).
        let complete = offset > 0 && size.is_some_and(|s| offset >= s);
        if !complete {
            let mut headers = HeaderMap::new();
            if offset > 0 {
                headers.insert(
                    RANGE,
                    HeaderValue::from_str(&format!("bytes={offset}-")).expect("invariant: ascii"),
                );
            }
            let url = self.url(&format!("v2/{repo}/blobs/{digest}"))?;
            let response = self
                .send(Method::GET, url, repo, false, headers, None)
                .await?;
            let status = response.status();
            // 416 for a resumed range: the ingest already holds every byte (the blob's size
            // was not known here), so it goes straight to verification as well.
            let satisfiable = !(offset > 0 && status == StatusCode::RANGE_NOT_SATISFIABLE);
            if offset > 0 && status == StatusCode::OK {
                // The server ignored the range: start over.
                truncate(&mut slot).await?;
            } else if satisfiable && !status.is_success() {
                return Err(registry_error("GET", response).await);
            }
            if satisfiable {
                let total = size.or_else(|| {
                    response
                        .content_length()
                        .map(|l| l + slot.as_ref().map_or(0, Writer::offset))
                });
                let url = response.url().to_string();
                let mut stream = response.bytes_stream();
                let mut batch = Vec::new();
                let mut current = slot.as_ref().map_or(0, Writer::offset);
                loop {
                    let next = stream.next().await;
                    let done = match next {
                        Some(Ok(chunk)) => {
                            current += chunk.len() as u64;
                            batch.extend_from_slice(&chunk);
                            false
                        }
                        Some(Err(source)) => {
                            // Keep what arrived: the next attempt resumes after it.
                            append(&mut slot, &mut batch).await?;
                            return Err(ClientError::Http { url, source });
                        }
                        None => true,
                    };
                    if batch.len() >= APPEND_BATCH || (done && !batch.is_empty()) {
                        append(&mut slot, &mut batch).await?;
                        emit(
                            progress,
                            Progress::Downloading {
                                digest: digest.clone(),
                                current,
                                total,
                            },
                        );
                    }
                    if done {
                        break;
                    }
                }
            }
        }
        emit(
            progress,
            Progress::Verifying {
                digest: digest.clone(),
            },
        );
        let writer = slot.take().ok_or_else(|| ClientError::Manifest {
            digest: digest.to_string(),
            message: "ingest lost".into(),
        })?;
        let d = digest.clone();
        tokio::task::spawn_blocking(move || writer.commit(expected))
            .await?
            .map_err(|source| ClientError::Content { digest: d, source })?;
        Ok(())
    }
}

async fn append(slot: &mut Option<Writer>, batch: &mut Vec<u8>) -> Result<(), ClientError> {
    let Some(mut writer) = slot.take() else {
        return Ok(());
    };
    let bytes = std::mem::take(batch);
    let (writer, result) = tokio::task::spawn_blocking(move || {
        let result = writer.append(&bytes);
        (writer, result)
    })
    .await?;
    if result.is_ok() {
        *slot = Some(writer);
    }
    Ok(result?)
}

async fn truncate(slot: &mut Option<Writer>) -> Result<(), ClientError> {
    let Some(mut writer) = slot.take() else {
        return Ok(());
    };
    let (writer, result) = tokio::task::spawn_blocking(move || {
        let result = writer.truncate(0);
        (writer, result)
    })
    .await?;
    *slot = Some(writer);
    Ok(result?)
}

/// Stores small content (manifests) whole.
pub(crate) fn store_bytes(
    store: &Store,
    digest: &Digest,
    bytes: &[u8],
) -> Result<(), ContentError> {
    let mut writer = match store.writer(
        &format!("berth-manifest/{digest}/{:016x}", rand::random::<u64>()),
        Expected::exact(digest.clone(), bytes.len() as u64),
    ) {
        Ok(writer) => writer,
        Err(ContentError::AlreadyExists { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    writer.truncate(0)?;
    writer.append(bytes)?;
    writer.commit(Expected::exact(digest.clone(), bytes.len() as u64))?;
    Ok(())
}
