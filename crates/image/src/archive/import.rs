//! `docker import`: a rootfs tarball (plain, gzip or zstd) becomes a one-layer image whose
//! config looks like Docker's (architecture, os, rootfs, "Imported from -" history, the
//! creation time), with `--change` instructions applied.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::time::SystemTime;

use berth_content::{Expected, Store};
use berth_oci::{media_type, Digest, Platform, Reference};
use berth_snapshot::compression::decompress;

use super::changes::apply_changes;
use super::ArchiveError;
use crate::blob::{ingest_reference, put};
use crate::config::{ContainerConfig, History, ImageConfig, RootFs};
use crate::manifest::{Descriptor, Manifest};
use crate::store::{ImageRecord, ImageStore};
use crate::time::rfc3339_nano;

/// What `docker import` takes besides the tarball.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// `REPOSITORY[:TAG]` to tag the image with.
    pub reference: Option<Reference>,
    /// `--change` instructions.
    pub changes: Vec<String>,
    /// `--message`; the default is `Imported from <source>`.
    pub message: Option<String>,
    /// Where the tarball came from (`-` for stdin, or the URL/file).
    pub source: String,
    /// `--platform` (the host's by default).
    pub platform: Platform,
    /// The creation time written into the config.
    pub created: SystemTime,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            reference: None,
            changes: Vec::new(),
            message: None,
            source: "-".to_owned(),
            platform: Platform::host(),
            created: SystemTime::now(),
        }
    }
}

/// Imports the rootfs tarball `input` and returns the new image's record.
pub fn import<R: Read>(
    content: &Store,
    images: &ImageStore,
    input: R,
    options: &ImportOptions,
) -> Result<ImageRecord, ArchiveError> {
    let mut container_config = ContainerConfig::default();
    apply_changes(&mut container_config, &options.changes)?;
    let lease = ingest_reference("import");
    content.create_lease(&lease, None, BTreeMap::new())?;
    let result = import_leased(content, images, input, options, container_config, &lease);
    let _ = content.delete_lease(&lease);
    result
}

fn import_leased<R: Read>(
    content: &Store,
    images: &ImageStore,
    input: R,
    options: &ImportOptions,
    container_config: ContainerConfig,
    lease: &str,
) -> Result<ImageRecord, ArchiveError> {
    let (layer_digest, layer_size) = store_layer(content, input)?;
    content.lease_add_content(lease, &layer_digest)?;
    let created = rfc3339_nano(options.created);
    let message = options
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {}", options.source));
    let platform = options.platform.normalized();
    let config = ImageConfig {
        comment: Some(message.clone()),
        created: Some(created.clone()),
        config: Some(container_config),
        architecture: platform.architecture.clone(),
        variant: Some(platform.variant.clone()).filter(|v| !v.is_empty()),
        os: platform.os.clone(),
        rootfs: Some(RootFs {
            kind: "layers".to_owned(),
            // The layer is stored uncompressed, so its digest is its DiffID.
            diff_ids: vec![layer_digest.clone()],
            extra: BTreeMap::new(),
        }),
        history: vec![History {
            created: Some(created.clone()),
            comment: Some(message),
            ..History::default()
        }],
        ..ImageConfig::default()
    };
    let config_bytes = serde_json::to_vec(&config).map_err(|source| ArchiveError::Json {
        file: "image config".to_owned(),
        source,
    })?;
    let config_blob = put(content, &config_bytes)?;
    content.lease_add_content(lease, &config_blob.digest)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.to_owned()),
        artifact_type: None,
        config: Descriptor::new(
            media_type::OCI_CONFIG,
            config_blob.digest.clone(),
            config_blob.size,
        ),
        layers: vec![Descriptor::new(
            media_type::OCI_LAYER,
            layer_digest,
            layer_size,
        )],
        subject: None,
        annotations: BTreeMap::new(),
    };
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(|source| ArchiveError::Json {
        file: "manifest".to_owned(),
        source,
    })?;
    let manifest_blob = put(content, &manifest_bytes)?;
    content.lease_add_content(lease, &manifest_blob.digest)?;
    let record = ImageRecord {
        id: config_blob.digest,
        target: Descriptor::new(
            media_type::OCI_MANIFEST,
            manifest_blob.digest,
            manifest_blob.size,
        ),
        created,
        labels: BTreeMap::new(),
    };
    images.put(record.clone())?;
    if let Some(reference) = &options.reference {
        images.tag(&record.id, reference)?;
    }
    Ok(record)
}

/// Decompresses `input`, checks that it is a tar archive while streaming it, and stores
/// the uncompressed tar (Docker's layer store also keeps layers uncompressed).
fn store_layer<R: Read>(content: &Store, input: R) -> Result<(Digest, u64), ArchiveError> {
    let (_, plain) = decompress(input).map_err(ArchiveError::Read)?;
    let writer = content.writer(&ingest_reference("import-layer"), Expected::none())?;
    let mut tee = Tee {
        inner: plain,
        writer,
        error: None,
    };
    let walked = (|| -> io::Result<()> {
        let mut archive = tar::Archive::new(&mut tee);
        for entry in archive.entries()? {
            let mut entry = entry?;
            io::copy(&mut entry, &mut io::sink())?;
        }
        Ok(())
    })();
    let drained = walked.and_then(|()| io::copy(&mut tee, &mut io::sink()).map(|_| ()));
    let Tee { writer, error, .. } = tee;
    if let Some(e) = error {
        let _ = writer.abort();
        return Err(e.into());
    }
    if let Err(e) = drained {
        let _ = writer.abort();
        return Err(ArchiveError::Read(e));
    }
    let committed = writer.commit(Expected::none())?;
    Ok((committed.digest, committed.size))
}

/// Reads `inner` while appending everything read to an ingest.
struct Tee<R> {
    inner: R,
    writer: berth_content::Writer,
    error: Option<berth_content::ContentError>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.writer.append(&buf[..n]) {
            let text = e.to_string();
            self.error = Some(e);
            return Err(io::Error::other(text));
        }
        Ok(n)
    }
}
