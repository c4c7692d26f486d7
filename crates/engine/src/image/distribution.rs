//! Pull, push, login and `/distribution/{name}/json` against registries, with Docker's
//! JSON progress messages (`Pulling from ...`, `Pulling fs layer`, `Downloading`,
//! `Download complete`, `Extracting`, `Pull complete`, `Digest: ...`, `Status: ...`; for
//! push `The push refers to repository [...]`, `Preparing`, `Pushing`, `Pushed`, the
//! digest line and its `aux`). Plain HTTP only for loopback and `insecure-registries`.

use std::collections::{BTreeMap, BTreeSet};

use berth_api::progress::{JsonMessage, ProgressDetail};
use berth_image::{Descriptor, ImageConfig, ImageRecord, Manifest, RootFs};
use berth_oci::{Digest, Platform, Reference};
use berth_registry::client::{
    credentials, pull_with_mirrors, ClientError, Credentials, Progress, RegistryClient,
};
use tokio::sync::mpsc;

use super::pipeline::Step;
use super::{ImageError, ImageService, Inner};

/// Where progress lines go (the server streams them to the client as they come).
pub type ProgressTx = mpsc::UnboundedSender<JsonMessage>;

/// `POST /images/create?fromImage=&tag=&platform=` with its `X-Registry-Auth`.
#[derive(Debug, Clone, Default)]
pub struct PullRequest {
    pub image: String,
    pub tag: String,
    pub platform: String,
    pub registry_auth: String,
}

/// `POST /images/{name}/push?tag=` with its `X-Registry-Auth`.
#[derive(Debug, Clone, Default)]
pub struct PushRequest {
    pub name: String,
    pub tag: String,
    pub registry_auth: String,
}

/// `GET /distribution/{name}/json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributionInfo {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub platforms: Vec<Platform>,
}

/// Docker's short layer id.
pub(super) fn short(digest: &Digest) -> String {
    digest.hex().chars().take(12).collect()
}

pub(super) fn layer_message(digest: &Digest, status: &str) -> JsonMessage {
    JsonMessage {
        status: status.to_string(),
        id: short(digest),
        progress_detail: Some(ProgressDetail::default()),
        ..JsonMessage::default()
    }
}

/// The reference a pull names: `fromImage` normalised, `tag` (a tag or a digest) added.
pub fn pull_reference(image: &str, tag: &str) -> Result<Reference, ImageError> {
    let named = Reference::parse_normalized(image).map_err(|e| ImageError::reference(image, e))?;
    if tag.is_empty() {
        return Ok(named.with_default_tag());
    }
    if let Ok(digest) = Digest::parse(tag) {
        return Ok(named.repository().with_digest(digest));
    }
    named
        .with_tag(tag)
        .map_err(|e| ImageError::reference(tag, e))
}

/// Docker's `translatePullError`: registry codes become its "not found" texts.
pub fn translate_registry_error(
    error: ClientError,
    reference: &Reference,
    action: &'static str,
) -> ImageError {
    if let ClientError::Registry { code, message, .. } = &error {
        let detail = format!("{}: {message}", code.to_lowercase().replace('_', " "));
        match code.as_str() {
            "MANIFEST_UNKNOWN" => {
                return ImageError::ManifestUnknown {
                    reference: reference.familiar_string(),
                    detail,
                }
            }
            "NAME_UNKNOWN" => {
                return ImageError::RepositoryUnknown {
                    repository: reference.familiar_name(),
                    detail,
                }
            }
            "DENIED" | "UNAUTHORIZED" => {
                return ImageError::AccessDenied {
                    action,
                    repository: reference.familiar_name(),
                    detail,
                }
            }
            _ => {}
        }
    }
    ImageError::from(error)
}

/// Docker's registry key for an `AuthConfig.serveraddress` (`https://index.docker.io/v1/`
/// is Docker Hub; a scheme and path are dropped).
pub fn registry_host(server: &str) -> String {
    let trimmed = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = trimmed.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

/// Translates the registry client's pull events into Docker's lines; only layers (the
/// digests announced as waiting) are shown.
struct PullDisplay {
    /// Layers already in the store before the pull (shown only as "Already exists").
    store: Option<berth_content::Store>,
    layers: BTreeSet<Digest>,
    present: BTreeSet<Digest>,
    /// "Already exists" lines held back: Docker shows none when the image itself is
    /// already local, and they are flushed before any other layer line otherwise.
    pending: Vec<JsonMessage>,
    announced: bool,
    familiar_name: String,
    tag_or_digest: String,
}

impl PullDisplay {
    /// The lines to show for `event`, held-back "Already exists" lines first.
    fn lines(&mut self, event: Progress) -> Vec<JsonMessage> {
        match self.translate(event) {
            Some(line) if line.id.len() == 12 => {
                let mut out = std::mem::take(&mut self.pending);
                out.push(line);
                out
            }
            Some(line) => vec![line],
            None => Vec::new(),
        }
    }

    fn translate(&mut self, event: Progress) -> Option<JsonMessage> {
        match event {
            Progress::Resolved { .. } if !self.announced => {
                self.announced = true;
                Some(JsonMessage {
                    status: format!("Pulling from {}", self.familiar_name),
                    id: self.tag_or_digest.clone(),
                    ..JsonMessage::default()
                })
            }
            Progress::Waiting { digest } => {
                self.layers.insert(digest.clone());
                if self.store.as_ref().is_some_and(|s| s.contains(&digest)) {
                    return None;
                }
                Some(layer_message(&digest, "Pulling fs layer"))
            }
            Progress::Downloading {
                digest,
                current,
                total,
            } if self.layers.contains(&digest) => Some(JsonMessage::layer_progress(
                &short(&digest),
                "Downloading",
                current as i64,
                total.unwrap_or(0) as i64,
            )),
            Progress::Verifying { digest } if self.layers.contains(&digest) => {
                Some(layer_message(&digest, "Verifying Checksum"))
            }
            Progress::DownloadComplete { digest } if self.layers.contains(&digest) => {
                Some(layer_message(&digest, "Download complete"))
            }
            Progress::AlreadyExists { digest } if self.layers.contains(&digest) => {
                self.present.insert(digest.clone());
                self.pending.push(layer_message(&digest, "Already exists"));
                None
            }
            Progress::Retrying { digest, .. } if self.layers.contains(&digest) => {
                let mut message = JsonMessage::status(event_status(&Progress::Retrying {
                    digest: digest.clone(),
                    attempt: 1,
                }));
                message.id = short(&digest);
                Some(message)
            }
            _ => None,
        }
    }
}

fn event_status(event: &Progress) -> String {
    event.docker_json()["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The registry client for `host` with the request's credentials.
async fn connect(
    service: &ImageService,
    host: &str,
    registry_auth: &str,
) -> Result<RegistryClient, ImageError> {
    let credentials = credentials::from_registry_auth(registry_auth)?;
    Ok(RegistryClient::connect(host, credentials, service.registry_options.clone()).await?)
}

/// A manifest and config restricted to their first `n` layers (to unpack layer by layer).
pub(super) fn prefix(
    manifest: &Manifest,
    config: &ImageConfig,
    n: usize,
) -> (Manifest, ImageConfig) {
    let mut m = manifest.clone();
    m.layers.truncate(n);
    let mut c = config.clone();
    c.rootfs = Some(RootFs {
        kind: "layers".into(),
        diff_ids: config.diff_ids()[..n].to_vec(),
        extra: BTreeMap::new(),
    });
    (m, c)
}

impl Inner {
    /// Records a pulled image, unpacks it layer by layer with `Extracting`/`Pull complete`
    /// lines, and tags it; returns whether the reference moved (Docker's "newer image").
    fn finish_pull(
        &self,
        reference: &Reference,
        target: Descriptor,
        resolved_digest: &Digest,
        skip: &BTreeSet<Digest>,
        tx: &ProgressTx,
    ) -> Result<bool, ImageError> {
        let config_bytes = self.content.read_to_vec(
            &Manifest::parse(
                &self.content.read_to_vec(&target.digest)?,
                Some(&target.media_type),
            )
            .map_err(|e| ImageError::Broken {
                image: reference.familiar_string(),
                reason: e.to_string(),
            })?
            .config
            .digest,
        )?;
        let id = Digest::sha256_of(&config_bytes);
        let previous = self
            .images
            .resolve(&reference.to_string())
            .ok()
            .map(|r| r.id);
        if self.images.get(&id).is_none() {
            self.images.put(ImageRecord {
                id: id.clone(),
                target,
                created: berth_image::time::rfc3339_nano(std::time::SystemTime::now()),
                labels: BTreeMap::new(),
            })?;
        }
        let resolved = self.resolve_id(&id)?;
        let (manifest, config) = (&resolved.manifest, &resolved.config);
        for (n, layer) in manifest.layers.iter().enumerate() {
            // Present before the pull, or already extracted while downloading.
            if skip.contains(&layer.digest) {
                continue;
            }
            let (m, c) = prefix(manifest, config, n + 1);
            let size = layer.size as i64;
            let _ = tx.send(JsonMessage::layer_progress(
                &short(&layer.digest),
                "Extracting",
                size,
                size,
            ));
            let _guard = super::lock(&self.unpack_lock);
            berth_image::unpack(&self.content, &self.snapshotter, &m, &c).map_err(|source| {
                ImageError::Unpack {
                    image: id.to_string(),
                    source: Box::new(source),
                }
            })?;
            let _ = tx.send(layer_message(&layer.digest, "Pull complete"));
        }
        if reference.digest().is_none() {
            self.images.tag(&id, reference)?;
            self.touch_tag(reference);
        }
        let digest_ref = reference.repository().with_digest(resolved_digest.clone());
        // A digest already recorded for another image is left alone (digests never move).
        let _ = self.images.add_digest(&id, &digest_ref);
        Ok(previous.as_ref() != Some(&id))
    }
}

impl ImageService {
    /// `docker pull`: progress lines go to `tx` as the pull proceeds.
    pub async fn pull(&self, request: PullRequest, tx: ProgressTx) -> Result<(), ImageError> {
        let reference = pull_reference(&request.image, &request.tag)?;
        let _in_flight = self.gc_gate.read().await;
        let platform = if request.platform.is_empty() {
            Platform::host()
        } else {
            Platform::parse(&request.platform).map_err(|source| ImageError::Platform {
                platform: request.platform.clone(),
                source,
            })?
        };
        let credentials = credentials::from_registry_auth(&request.registry_auth)?;
        let tag_or_digest = match (reference.digest(), reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        let (tag_or_digest, verified) = self
            .trusted_pull_target(&reference, &tag_or_digest, &credentials)
            .await?;
        let (events_tx, mut events_rx) = mpsc::unbounded_channel::<Progress>();
        let display_tx = tx.clone();
        let mut display = PullDisplay {
            store: Some(self.inner.content.clone()),
            layers: BTreeSet::new(),
            present: BTreeSet::new(),
            pending: Vec::new(),
            announced: false,
            // Docker names the repository by its path in the registry (`library/busybox`).
            familiar_name: reference.path().to_string(),
            tag_or_digest: tag_or_digest.clone(),
        };
        let (steps_tx, steps_rx) = std::sync::mpsc::channel::<Step>();
        let unpacker = {
            let (inner, tx) = (self.inner.clone(), tx.clone());
            tokio::task::spawn_blocking(move || inner.unpack_while_pulling(steps_rx, &tx))
        };
        let forward = tokio::spawn(async move {
            while let Some(event) = events_rx.recv().await {
                let step = match &event {
                    Progress::ImageManifest {
                        digest, media_type, ..
                    } => Some(Step::Start {
                        manifest: digest.clone(),
                        media_type: media_type.clone(),
                    }),
                    Progress::DownloadComplete { digest } => Some(Step::Ready {
                        digest: digest.clone(),
                        quiet: false,
                    }),
                    Progress::AlreadyExists { digest } => Some(Step::Ready {
                        digest: digest.clone(),
                        quiet: true,
                    }),
                    _ => None,
                };
                for message in display.lines(event) {
                    let _ = display_tx.send(message);
                }
                if let Some(step) = step {
                    let _ = steps_tx.send(step);
                }
            }
            (display.present, display.pending)
        });
        let mirrors = if berth_registry::client::mirrors_apply(reference.domain()) {
            self.mirrors.clone()
        } else {
            Vec::new()
        };
        let pulled = pull_with_mirrors(
            reference.domain(),
            &mirrors,
            credentials,
            &self.registry_options,
            reference.path(),
            &tag_or_digest,
            &platform,
            &self.inner.content,
            Some(&events_tx),
        )
        .await;
        drop(events_tx);
        let (present, pending) = forward.await?;
        let unpacked = unpacker.await?;
        let pulled = pulled.map_err(|e| translate_registry_error(e, &reference, "pull"))?;
        if let Some(error) = unpacked.error {
            return Err(error);
        }
        let skip: BTreeSet<Digest> = present.union(&unpacked.extracted).cloned().collect();
        if self.inner.images.get(&pulled.config).is_none() {
            for message in pending {
                let _ = tx.send(message);
            }
        }
        let size = self.inner.content.info(&pulled.manifest_digest)?.size;
        let target = Descriptor::new(&pulled.media_type, pulled.manifest_digest.clone(), size);
        let (r, resolved_digest, progress) = (reference.clone(), pulled.digest.clone(), tx.clone());
        let newer = self
            .blocking(move |inner| {
                inner.finish_pull(&r, target, &resolved_digest, &skip, &progress)
            })
            .await?;
        if let Some(verified) = verified {
            self.remember_verified(verified).await?;
        }
        let _ = tx.send(JsonMessage::status(format!("Digest: {}", pulled.digest)));
        let status = if newer {
            "Downloaded newer image for"
        } else {
            "Image is up to date for"
        };
        let _ = tx.send(JsonMessage::status(format!(
            "Status: {status} {}",
            reference.familiar_string()
        )));
        let name = reference.familiar_string();
        self.publish("pull", &name, &name);
        Ok(())
    }

    /// The tags `docker push NAME[:TAG]` pushes: that tag, or every tag of the repository.
    async fn push_targets(
        &self,
        reference: &Reference,
    ) -> Result<Vec<(Reference, ImageRecord)>, ImageError> {
        let wanted = reference.clone();
        self.blocking(move |inner| {
            let mut out = Vec::new();
            for record in inner.images.list() {
                for r in inner.images.references(&record.id) {
                    let hit = match wanted.tag() {
                        Some(_) => r == wanted,
                        None => r.tag().is_some() && r.name() == wanted.name(),
                    };
                    if hit {
                        out.push((r, record.clone()));
                    }
                }
            }
            out.sort_by_key(|(r, _)| r.to_string());
            Ok(out)
        })
        .await
    }

    /// `docker push`: progress lines go to `tx`; errors after the first line are the
    /// caller's to put in the stream.
    pub async fn push(&self, request: PushRequest, tx: ProgressTx) -> Result<(), ImageError> {
        let mut reference = Reference::parse_normalized(&request.name)
            .map_err(|e| ImageError::reference(&request.name, e))?;
        if !request.tag.is_empty() {
            reference = reference
                .with_tag(&request.tag)
                .map_err(|e| ImageError::reference(&request.tag, e))?;
        }
        let _ = tx.send(JsonMessage::status(format!(
            "The push refers to repository [{}]",
            reference.name()
        )));
        let targets = self.push_targets(&reference).await?;
        if targets.is_empty() {
            return Err(ImageError::NoLocalTag(reference.familiar_name()));
        }
        let client =
            std::sync::Arc::new(connect(self, reference.domain(), &request.registry_auth).await?);
        for (tagged, record) in targets {
            self.push_one(&client, &tagged, &record, &tx).await?;
        }
        Ok(())
    }

    /// `POST /auth`: checks the credentials against the registry; Docker's status text.
    pub async fn login(
        &self,
        server: &str,
        username: &str,
        password: &str,
    ) -> Result<String, ImageError> {
        let host = registry_host(server);
        let credentials = if username.is_empty() && password.is_empty() {
            Credentials::Anonymous
        } else {
            Credentials::Basic {
                username: username.to_string(),
                password: password.to_string(),
            }
        };
        let client =
            RegistryClient::connect(&host, credentials, self.registry_options.clone()).await?;
        client.login().await.map_err(|e| match e {
            // Docker's text for refused credentials.
            ClientError::Unauthorized { .. } | ClientError::Auth { .. } => ImageError::Login {
                server: format!("{}://{host}/v2/", client.scheme()),
                detail: "401 Unauthorized".to_string(),
            },
            other => ImageError::from(other),
        })?;
        Ok("Login Succeeded".to_string())
    }

    /// `GET /distribution/{name}/json`: the registry's descriptor and platforms.
    pub async fn distribution(
        &self,
        name: &str,
        registry_auth: &str,
    ) -> Result<DistributionInfo, ImageError> {
        let reference =
            Reference::parse_docker(name).map_err(|e| ImageError::reference(name, e))?;
        let client = connect(self, reference.domain(), registry_auth).await?;
        let wanted = match (reference.digest(), reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, t) => t.unwrap_or("latest").to_string(),
        };
        let (bytes, media_type, digest) = client
            .fetch_manifest(reference.path(), &wanted, &self.inner.content)
            .await
            .map_err(|e| translate_registry_error(e, &reference, "pull"))?;
        let mut platforms = Vec::new();
        match berth_image::manifest::parse(&bytes, Some(&media_type)) {
            Ok(berth_image::Parsed::Index(index)) => {
                platforms.extend(index.manifests.iter().filter_map(|d| d.platform.clone()));
            }
            Ok(berth_image::Parsed::Manifest(manifest)) => {
                client
                    .fetch_blob(
                        reference.path(),
                        &manifest.config.digest,
                        None,
                        &self.inner.content,
                        None,
                    )
                    .await?;
                let config = self.inner.content.read_to_vec(&manifest.config.digest)?;
                if let Ok(config) = ImageConfig::parse(&config) {
                    platforms.push(config.platform());
                }
            }
            Err(e) => {
                return Err(ImageError::Broken {
                    image: reference.familiar_string(),
                    reason: e.to_string(),
                })
            }
        }
        Ok(DistributionInfo {
            size: bytes.len() as u64,
            media_type,
            digest,
            platforms,
        })
    }
}

#[cfg(test)]
#[path = "distribution_tests.rs"]
mod registry_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_reference_takes_tags_and_digests() {
        assert_eq!(
            pull_reference("busybox", "latest")
                .expect("tag")
                .to_string(),
            "docker.io/library/busybox:latest"
        );
        let digest = Digest::sha256_of(b"m").to_string();
        let r = pull_reference("localhost:5000/bb", &digest).expect("digest");
        assert_eq!(r.digest().map(|d| d.to_string()), Some(digest));
        assert!(pull_reference("busybox", "bad tag").is_err());
    }

    #[test]
    fn registry_codes_become_docker_not_found_texts() {
        let reference = pull_reference("localhost:5000/nope", "").expect("reference");
        let error = |code: &str, message: &str| ClientError::Registry {
            method: "GET".into(),
            url: "http://localhost:5000/v2/nope/manifests/latest".into(),
            status: 404,
            code: code.into(),
            message: message.into(),
        };
        assert_eq!(
            translate_registry_error(
                error("MANIFEST_UNKNOWN", "manifest unknown"),
                &reference,
                "pull"
            )
            .to_string(),
            "manifest for localhost:5000/nope:latest not found: manifest unknown: manifest unknown"
        );
        assert_eq!(
            translate_registry_error(
                error("NAME_UNKNOWN", "repository name not known to registry"),
                &reference,
                "pull"
            )
            .to_string(),
            "repository localhost:5000/nope not found: name unknown: repository name not known to registry"
        );
    }

    #[test]
    fn pull_display_shows_layers_only() {
        let layer = Digest::sha256_of(b"layer");
        let config = Digest::sha256_of(b"config");
        let mut display = PullDisplay {
            store: None,
            layers: BTreeSet::new(),
            present: BTreeSet::new(),
            pending: Vec::new(),
            announced: false,
            familiar_name: "busybox".into(),
            tag_or_digest: "latest".into(),
        };
        let first = display
            .translate(Progress::Resolved {
                reference: "latest".into(),
                digest: config.clone(),
            })
            .expect("announce");
        assert_eq!(first.status, "Pulling from busybox");
        assert_eq!(first.id, "latest");
        let waiting = display
            .translate(Progress::Waiting {
                digest: layer.clone(),
            })
            .expect("waiting");
        assert_eq!(waiting.status, "Pulling fs layer");
        assert!(display
            .translate(Progress::DownloadComplete { digest: config })
            .is_none());
        let done = display
            .translate(Progress::DownloadComplete { digest: layer })
            .expect("layer");
        assert_eq!(done.status, "Download complete");
    }

    #[test]
    fn registry_host_normalises_server_addresses() {
        assert_eq!(registry_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_host("localhost:5000"), "localhost:5000");
        assert_eq!(registry_host("http://127.0.0.1:5000/"), "127.0.0.1:5000");
    }
}
