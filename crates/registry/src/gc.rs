//! Offline garbage collection of a registry root: every blob that no linked manifest of
//! any repository references (directly, or through an index) is deleted, as distribution's
//! `garbage-collect`. Run it with the server stopped.

use berth_content::{BoxError, ContentError};
pub use berth_content::{GcOptions, GcReport};
use berth_oci::Digest;
use thiserror::Error;

use crate::manifest;
use crate::meta::MetaError;
use crate::server::Storage;

#[derive(Debug, Error)]
pub enum GcError {
    #[error("cannot list the registry's manifests")]
    Meta(#[from] MetaError),
    #[error("content store garbage collection failed")]
    Content(#[from] ContentError),
}

/// Deletes unreferenced blobs and stale uploads; returns what was removed.
pub fn collect(storage: &Storage, options: &GcOptions) -> Result<GcReport, GcError> {
    let mut roots = Vec::new();
    for repo in storage.meta.repositories()? {
        for (digest, _) in storage.meta.manifests(&repo)? {
            roots.push(digest);
        }
    }
    let report = storage.store.gc(
        move || Ok(roots),
        |_digest, reader| -> Result<Vec<Digest>, BoxError> {
            // Only manifests are roots' children worth reading; layers are not JSON.
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(
                &mut std::io::Read::take(reader, manifest_limit()),
                &mut bytes,
            )?;
            let Ok(parsed) = manifest::parse(&bytes, None) else {
                return Ok(Vec::new());
            };
            let mut children = parsed.blobs;
            children.extend(parsed.foreign);
            children.extend(parsed.manifests);
            Ok(children)
        },
        options,
    )?;
    Ok(report)
}

fn manifest_limit() -> u64 {
    crate::server::MANIFEST_MAX as u64
}
