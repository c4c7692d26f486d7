//! Blob uploads whose bytes are made while they go out (a layer gzipped at push time):
//! the caller checks what the registry already has (HEAD, cross-repository mount), then
//! streams the body in one PATCH without a length (the distribution spec's streamed
//! upload, what dockerd does for every layer) and closes the session with a PUT naming
//! the digest it computed on the way. Nothing is written to disk on our side.

use std::io;

use berth_oci::Digest;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use tokio::sync::mpsc;

use super::{registry_error, ClientError, RegistryClient};

/// What a mount request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOutcome {
    /// 201: the blob now exists in the repository.
    Mounted,
    /// 202: the registry opened an upload session instead; it was cancelled.
    NotMounted,
}

impl RegistryClient {
    /// Whether `repo` has blob `digest` (HEAD).
    pub async fn blob_exists(&self, repo: &str, digest: &Digest) -> Result<bool, ClientError> {
        let url = self.url(&format!("v2/{repo}/blobs/{digest}"))?;
        let response = self
            .send(Method::HEAD, url, repo, true, HeaderMap::new(), None)
            .await?;
        Ok(response.status().is_success())
    }

    /// Asks the registry to mount `digest` from repository `from` (same registry) into
    /// `repo`. An upload session opened instead is cancelled (best effort), as dockerd does
    /// before it tries the next source or uploads.
    pub async fn mount_blob(
        &self,
        repo: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<MountOutcome, ClientError> {
        let mut url = self.url(&format!("v2/{repo}/blobs/uploads/"))?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let response = self
            .send(
                Method::POST,
                url,
                repo,
                true,
                HeaderMap::new(),
                Some(bytes::Bytes::new()),
            )
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => {
                if let Ok(location) = self.location(&response) {
                    let _ = self
                        .send(Method::DELETE, location, repo, true, HeaderMap::new(), None)
                        .await;
                }
                Ok(MountOutcome::NotMounted)
            }
            _ => Err(registry_error("POST", response).await),
        }
    }

    /// Opens an upload session (POST); returns its location.
    pub async fn start_upload(&self, repo: &str) -> Result<Url, ClientError> {
        let url = self.url(&format!("v2/{repo}/blobs/uploads/"))?;
        let response = self
            .send(
                Method::POST,
                url,
                repo,
                true,
                HeaderMap::new(),
                Some(bytes::Bytes::new()),
            )
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(registry_error("POST", response).await);
        }
        self.location(&response)
    }

    /// Streams the chunks `body` yields into the session at `location` as one PATCH of
    /// unknown length (an `Err` chunk aborts the request); returns the session's next
    /// location. The body cannot be replayed, so the credentials are the ones
    /// [`RegistryClient::start_upload`] already settled.
    pub async fn patch_stream(
        &self,
        repo: &str,
        location: Url,
        body: mpsc::Receiver<io::Result<Vec<u8>>>,
    ) -> Result<Url, ClientError> {
        let chunks = futures_util::stream::unfold(body, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        let body = reqwest::Body::wrap_stream(chunks);
        let mut request = self
            .http
            .patch(location.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(body);
        if let Some(value) = self.authorization(repo, true).await? {
            request = request.header(AUTHORIZATION, value);
        }
        let response = request.send().await.map_err(|source| ClientError::Http {
            url: location.to_string(),
            source,
        })?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(registry_error("PATCH", response).await);
        }
        self.location(&response)
    }

    /// Closes the session at `location` with the digest of everything sent (empty PUT).
    pub async fn finish_upload(
        &self,
        repo: &str,
        mut location: Url,
        digest: &Digest,
    ) -> Result<(), ClientError> {
        location
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let response = self
            .send(
                Method::PUT,
                location,
                repo,
                true,
                HeaderMap::new(),
                Some(bytes::Bytes::new()),
            )
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(registry_error("PUT", response).await);
        }
        Ok(())
    }

    /// Cancels the session at `location` (best effort, after a failed stream).
    pub async fn cancel_upload(&self, repo: &str, location: Url) {
        let _ = self
            .send(Method::DELETE, location, repo, true, HeaderMap::new(), None)
            .await;
    }
}
