//! Pull and push through the image service against berth-registry served in-process on
//! 127.0.0.1:0: a pull unpacks every layer bottom-up while downloading, a corrupt layer
//! commits neither blob nor snapshot (and a later pull resumes and completes), and a push
//! gzips uncompressed layers once, keeping the image id a pull gets back.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use berth_content::Store;
use berth_registry::client::{ClientOptions, Credentials, RegistryClient};
use tokio::sync::mpsc;

use super::*;
use crate::config::EngineConfig;
use crate::events::EventBus;
use crate::image::PushCompression;

struct Registry {
    host: String,
    root: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn registry() -> Registry {
    let root = tempfile::tempdir().expect("tempdir");
    let storage = berth_registry::Storage::open(root.path()).expect("storage");
    let router = berth_registry::router(storage, berth_registry::Config::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let host = listener.local_addr().expect("addr").to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(berth_registry::server::serve(
        listener,
        router,
        None,
        async move {
            let _ = stopped.await;
        },
    ));
    Registry {
        host,
        root,
        _stop: stop,
    }
}

async fn service(dir: &Path) -> ImageService {
    let config = EngineConfig::new(dir.join("data"), dir.join("exec"));
    config.prepare_directories().expect("roots");
    let mut service = ImageService::open(&config, Arc::new(EventBus::new()))
        .await
        .expect("open");
    service.registry_options.backoff = std::time::Duration::from_millis(1);
    service.registry_options.attempts = 1;
    service
}

fn layer_tar(name: &str, size: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..size).map(|i| b"berth layer "[i % 12]).collect();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    builder
        .append_data(&mut header, name, &data[..])
        .expect("append");
    builder.into_inner().expect("tar")
}

/// Pushes a three-layer image of uncompressed tars (`a`, `b`, `c`) as `app:v1`; returns
/// its config digest (the image id) and the layer digests.
async fn push_three_layers(registry: &Registry) -> (Digest, Vec<Digest>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let mut layers = Vec::new();
    for name in ["a", "b", "c"] {
        let tar = layer_tar(name, 300_000);
        layers.push((
            berth_image::blob::put(&store, &tar).expect("layer").digest,
            tar.len(),
        ));
    }
    let diff_ids: Vec<String> = layers.iter().map(|(d, _)| d.to_string()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": berth_oci::Platform::host().architecture, "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("config");
    let config_digest = berth_image::blob::put(&store, &config)
        .expect("config")
        .digest;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": berth_oci::media_type::OCI_MANIFEST,
        "config": {"mediaType": berth_oci::media_type::OCI_CONFIG, "digest": config_digest.to_string(), "size": config.len()},
        "layers": layers.iter().map(|(d, size)| serde_json::json!({
            "mediaType": berth_oci::media_type::OCI_LAYER, "digest": d.to_string(), "size": size,
        })).collect::<Vec<_>>(),
    }))
    .expect("manifest");
    let manifest_digest = berth_image::blob::put(&store, &manifest)
        .expect("manifest")
        .digest;
    let client = RegistryClient::connect(
        &registry.host,
        Credentials::Anonymous,
        ClientOptions::default(),
    )
    .await
    .expect("connect");
    client
        .push("app", "v1", &manifest_digest, &store, None, None)
        .await
        .expect("push");
    (config_digest, layers.into_iter().map(|(d, _)| d).collect())
}

async fn pull(
    service: &ImageService,
    image: &str,
) -> (Result<(), ImageError>, Vec<(String, String)>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let request = PullRequest {
        image: image.into(),
        tag: "v1".into(),
        ..PullRequest::default()
    };
    let result = service.pull(request, tx).await;
    let mut lines = Vec::new();
    while let Ok(line) = rx.try_recv() {
        lines.push((line.status, line.id));
    }
    (result, lines)
}

fn short_id(digest: &Digest) -> String {
    digest.hex()[..12].to_string()
}

#[tokio::test]
async fn pull_extracts_each_layer_bottom_up_once_with_docker_lines() {
    let registry = registry().await;
    let (id, layers) = push_three_layers(&registry).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let service = service(dir.path()).await;
    let (result, lines) = pull(&service, &format!("{}/app", registry.host)).await;
    result.expect("pull");
    let extracted: Vec<String> = lines
        .iter()
        .filter(|(status, _)| status == "Pull complete")
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(
        extracted,
        layers.iter().map(short_id).collect::<Vec<_>>(),
        "{lines:?}"
    );
    for layer in &layers {
        let id = short_id(layer);
        let at = |status: &str| lines.iter().position(|l| l.0 == status && l.1 == id);
        let (download, extract, done) = (
            at("Download complete"),
            at("Extracting"),
            at("Pull complete"),
        );
        assert!(download < extract && extract < done, "{id}: {lines:?}");
    }
    let resolved = service.inner.resolve_id(&id).expect("image recorded");
    for chain_id in resolved.config.chain_ids() {
        service
            .inner
            .snapshotter
            .stat(&chain_id.to_string())
            .expect("every layer's snapshot committed");
    }
}

#[tokio::test]
async fn corrupt_layer_commits_nothing_and_a_later_pull_completes() {
    let registry = registry().await;
    let (id, layers) = push_three_layers(&registry).await;
    let blob = Store::open(berth_registry::Storage::content_root(registry.root.path()))
        .expect("registry store")
        .blob_path(&layers[1]);
    let good = std::fs::read(&blob).expect("blob");
    let mut bad = good.clone();
    bad[600] ^= 0xff;
    let write = |bytes: &[u8]| {
        let mut perms = std::fs::metadata(&blob).expect("meta").permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&blob, perms).expect("chmod");
        std::fs::write(&blob, bytes).expect("write blob");
    };
    write(&bad);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut service = service(dir.path()).await;
    let (result, lines) = pull(&service, &format!("{}/app", registry.host)).await;
    assert!(result.is_err(), "a corrupt layer fails the pull: {lines:?}");
    assert!(
        !service.inner.content.contains(&layers[1]),
        "corrupt blob not committed"
    );
    assert!(service.inner.images.get(&id).is_none(), "no image recorded");
    let chain_ids = berth_image::chain_ids(&layers);
    for chain_id in &chain_ids[1..] {
        assert!(
            service
                .inner
                .snapshotter
                .stat(&chain_id.to_string())
                .is_err(),
            "no snapshot at or above the corrupt layer"
        );
    }
    write(&good);
    // A download the failed pull abandoned may still hold its ingest for a moment: the second
    // pull retries on that as berthd's default options do.
    service.registry_options.attempts = 5;
    service.registry_options.backoff = std::time::Duration::from_millis(50);
    let (result, lines) = pull(&service, &format!("{}/app", registry.host)).await;
    result.expect("second pull");
    // The layers the failed pull committed before the corrupt one stopped it (which ones
    // depends on how far each download got) show as present; the others, the corrupt one
    // included, are pulled now, bottom-up.
    let shown =
        |status: &str, layer: &Digest| lines.contains(&(status.to_string(), short_id(layer)));
    for layer in &layers {
        assert!(
            shown("Already exists", layer) != shown("Pull complete", layer),
            "{layer} either present or pulled: {lines:?}"
        );
    }
    assert!(
        shown("Pull complete", &layers[1]),
        "the corrupt layer is pulled again: {lines:?}"
    );
    let order: Vec<usize> = lines
        .iter()
        .filter(|(s, _)| s == "Pull complete")
        .filter_map(|(_, id)| layers.iter().position(|l| &short_id(l) == id))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "bottom-up: {lines:?}"
    );
    service
        .inner
        .snapshotter
        .stat(&chain_ids[2].to_string())
        .expect("top snapshot");
}

#[tokio::test]
async fn push_gzips_uncompressed_layers_once_and_the_image_id_survives() {
    let registry = registry().await;
    let (id, layers) = push_three_layers(&registry).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let first = service(dir.path()).await;
    let name = format!("{}/app", registry.host);
    pull(&first, &name).await.0.expect("pull");
    for tagged in [format!("{name}:v2"), format!("{}/other:v3", registry.host)] {
        first
            .inner
            .images
            .tag(&id, &Reference::parse_normalized(&tagged).expect("ref"))
            .expect("tag");
    }
    let push = |name: &str, tag: &str| PushRequest {
        name: name.to_string(),
        tag: tag.into(),
        ..PushRequest::default()
    };
    let statuses = |rx: &mut mpsc::UnboundedReceiver<JsonMessage>| {
        let mut out = Vec::new();
        while let Ok(line) = rx.try_recv() {
            out.push(line.status);
        }
        out
    };
    let count = |lines: &[String], status: &str| lines.iter().filter(|s| *s == status).count();
    let (tx, mut rx) = mpsc::unbounded_channel();
    first
        .push(push(&name, "v2"), tx.clone())
        .await
        .expect("push");
    assert_eq!(count(&statuses(&mut rx), "Pushed"), 3);
    let compressed = super::super::lock(&first.inner.compressed).clone();
    assert_eq!(
        compressed.keys().cloned().collect::<Vec<_>>(),
        {
            let mut keys: Vec<String> = layers.iter().map(|d| d.to_string()).collect();
            keys.sort();
            keys
        },
        "every uncompressed layer got a gzip blob"
    );
    let client = RegistryClient::connect(
        &registry.host,
        Credentials::Anonymous,
        ClientOptions::default(),
    )
    .await
    .expect("connect");
    for blob in compressed.values() {
        assert!(
            !first.inner.content.contains(&blob.digest),
            "streamed, not kept"
        );
        assert!(client.blob_exists("app", &blob.digest).await.expect("head"));
        assert_eq!(
            blob.repositories.iter().cloned().collect::<Vec<_>>(),
            vec![name.clone()]
        );
    }
    first
        .push(push(&name, "v2"), tx.clone())
        .await
        .expect("again");
    assert_eq!(
        super::super::lock(&first.inner.compressed).clone(),
        compressed,
        "nothing recompressed"
    );
    let second_lines = statuses(&mut rx);
    assert_eq!(
        count(&second_lines, "Layer already exists"),
        3,
        "{second_lines:?}"
    );
    let other = format!("{}/other", registry.host);
    first
        .push(push(&other, "v3"), tx)
        .await
        .expect("other repo");
    let third_lines = statuses(&mut rx);
    assert_eq!(
        count(&third_lines, "Mounted from app"),
        3,
        "{third_lines:?}"
    );
    let remembered = super::super::lock(&first.inner.compressed).clone();
    for blob in remembered.values() {
        assert!(blob.repositories.contains(&other), "{blob:?}");
        assert!(client
            .blob_exists("other", &blob.digest)
            .await
            .expect("head"));
    }
    let other = tempfile::tempdir().expect("tempdir");
    let second = service(other.path()).await;
    let (tx, _rx) = mpsc::unbounded_channel();
    second
        .pull(
            PullRequest {
                image: name.clone(),
                tag: "v2".into(),
                ..PullRequest::default()
            },
            tx,
        )
        .await
        .expect("pull what berth pushed");
    let pulled = second
        .inner
        .images
        .resolve(&format!("{name}:v2"))
        .expect("tagged");
    assert_eq!(pulled.id, id, "same image id");
    let manifest = second
        .inner
        .resolve(&pulled)
        .expect("resolve")
        .manifest
        .clone();
    let types: BTreeMap<String, usize> =
        manifest.layers.iter().fold(BTreeMap::new(), |mut m, l| {
            *m.entry(l.media_type.clone()).or_default() += 1;
            m
        });
    assert_eq!(
        types,
        BTreeMap::from([(berth_oci::media_type::OCI_LAYER_GZIP.to_string(), 3)])
    );
    for layer in &manifest.layers {
        let bytes = second
            .inner
            .content
            .read_to_vec(&layer.digest)
            .expect("layer");
        assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip magic");
        assert_eq!(bytes.len() as u64, layer.size, "descriptor size");
    }
}

#[tokio::test]
async fn zstd_push_sends_an_oci_manifest_of_zstd_layers_another_store_pulls_back() {
    let registry = registry().await;
    let (id, layers) = push_three_layers(&registry).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = service(dir.path()).await;
    first.push_compression = PushCompression::Zstd;
    let name = format!("{}/app", registry.host);
    pull(&first, &name).await.0.expect("pull");
    let tagged = format!("{}/zstd:v1", registry.host);
    first
        .inner
        .images
        .tag(&id, &Reference::parse_normalized(&tagged).expect("ref"))
        .expect("tag");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let request = PushRequest {
        name: format!("{}/zstd", registry.host),
        tag: "v1".into(),
        ..PushRequest::default()
    };
    first.push(request, tx).await.expect("push");
    let mut pushed = 0;
    while let Ok(line) = rx.try_recv() {
        pushed += usize::from(line.status == "Pushed");
    }
    assert_eq!(pushed, 3, "every layer compressed and uploaded");
    let remembered = super::super::lock(&first.inner.compressed).clone();
    for layer in &layers {
        let blob = &remembered[&layer.to_string()];
        assert_eq!(blob.compression, PushCompression::Zstd, "{blob:?}");
    }

    let other = tempfile::tempdir().expect("tempdir");
    let second = service(other.path()).await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let request = PullRequest {
        image: format!("{}/zstd", registry.host),
        tag: "v1".into(),
        ..PullRequest::default()
    };
    second.pull(request, tx).await.expect("pull the zstd image");
    let pulled = second.inner.images.resolve(&tagged).expect("tagged");
    assert_eq!(pulled.id, id, "same image id: the DiffIDs did not change");
    assert_eq!(
        pulled.target.media_type,
        berth_oci::media_type::OCI_MANIFEST
    );
    let resolved = second.inner.resolve(&pulled).expect("resolve");
    assert_eq!(resolved.manifest.layers.len(), 3);
    for (layer, diff_id) in resolved.manifest.layers.iter().zip(&layers) {
        assert_eq!(layer.media_type, berth_oci::media_type::OCI_LAYER_ZSTD);
        assert_eq!(remembered[&diff_id.to_string()].digest, layer.digest);
        let bytes = second
            .inner
            .content
            .read_to_vec(&layer.digest)
            .expect("layer");
        assert_eq!(&bytes[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
        assert_eq!(Digest::sha256_of(&bytes), layer.digest, "registry digest");
        let tar = zstd::decode_all(&bytes[..]).expect("unzstd");
        assert_eq!(Digest::sha256_of(&tar), *diff_id, "DiffID of the tar");
    }
    let chain = berth_image::chain_ids(&layers);
    second
        .inner
        .snapshotter
        .stat(&chain[2].to_string())
        .expect("unpacked");
}
