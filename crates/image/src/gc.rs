//! The "children of this blob" function berth-content's garbage collector walks with:
//! an index references its manifests, a manifest its config and layers (and its subject
//! is not kept alive by it, as in containerd); everything else references nothing.

use std::io::Read;

use berth_content::{BlobReader, BoxError};
use berth_oci::Digest;

use crate::manifest::{self, Parsed, MAX_MANIFEST_SIZE};

/// For [`berth_content::Store::gc`]: what `reader`'s blob references. Layers and configs
/// are recognised by their first byte or by failing to parse as a manifest and yield
/// nothing, without being read further than that.
pub fn children(_digest: &Digest, reader: &mut BlobReader) -> Result<Vec<Digest>, BoxError> {
    if reader.size() > MAX_MANIFEST_SIZE as u64 {
        return Ok(Vec::new());
    }
    let mut bytes = Vec::with_capacity(reader.size() as usize);
    reader
        .take(MAX_MANIFEST_SIZE as u64)
        .read_to_end(&mut bytes)?;
    Ok(references(&bytes))
}

/// What manifest or index `bytes` reference (nothing when they are neither).
pub fn references(bytes: &[u8]) -> Vec<Digest> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Vec::new();
    }
    match manifest::parse(bytes, None) {
        Ok(Parsed::Manifest(m)) => std::iter::once(m.config.digest)
            .chain(m.layers.into_iter().map(|l| l.digest))
            .collect(),
        Ok(Parsed::Index(i)) => i.manifests.into_iter().map(|d| d.digest).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_content::{GcOptions, Store};
    use std::time::SystemTime;

    fn put(store: &Store, bytes: &[u8]) -> Digest {
        crate::blob::put(store, bytes).expect("put").digest
    }

    #[test]
    fn gc_keeps_what_an_index_references_through_its_manifests() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let layer = put(&store, b"layer bytes");
        let config = put(&store, br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#);
        let orphan = put(&store, b"orphan");
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":42}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":11}}]}}"#
        );
        let manifest_digest = put(&store, manifest.as_bytes());
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{}}}]}}"#,
            manifest.len()
        );
        let index_digest = put(&store, index.as_bytes());
        let report = store
            .gc(
                || Ok(vec![index_digest.clone()]),
                children,
                &GcOptions::with_default_expiry(SystemTime::now()),
            )
            .expect("gc");
        assert_eq!(report.removed_blobs, vec![orphan]);
        for kept in [index_digest, manifest_digest, config, layer] {
            assert!(store.contains(&kept), "{kept} was collected");
        }
    }

    #[test]
    fn references_of_non_manifests_are_empty() {
        assert!(references(b"\x1f\x8b gzip").is_empty());
        assert!(references(br#"{"rootfs":{"type":"layers"}}"#).is_empty());
        assert!(references(b"").is_empty());
    }
}
