//! The image service end to end on a temporary root, without a daemon: import, names,
//! list filters, history, save and load with the same id, rmi conflicts with a container
//! rootfs, prune, and the garbage collection of blobs and snapshots.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use berth_api::Filters;

use super::*;

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        builder
            .append_data(&mut header, path, *data)
            .expect("append");
    }
    builder.into_inner().expect("tar")
}

async fn service(dir: &std::path::Path) -> ImageService {
    let config = EngineConfig::new(dir.join("data"), dir.join("exec"));
    config.prepare_directories().expect("roots");
    ImageService::open(&config, Arc::new(EventBus::new()))
        .await
        .expect("open")
}

async fn import(service: &ImageService, repo: &str, files: &[(&str, &[u8])]) -> Digest {
    let request = ImportRequest {
        source: "-".into(),
        repo: repo.into(),
        changes: vec!["CMD [\"sh\"]".into()],
        ..ImportRequest::default()
    };
    service
        .import(request, Box::new(Cursor::new(tar_of(files))))
        .await
        .expect("import")
}

/// A `Write` whose bytes the test can read back after the service dropped it.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn imported_images_are_named_listed_saved_loaded_and_deleted_like_docker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = service(dir.path()).await;
    let id = import(&service, "busybox", &[("bin/sh", b"#!")]).await;
    let info = service.lookup("busybox").await.expect("lookup");
    assert_eq!(info.id, id);
    assert_eq!(info.repo_tags, vec!["busybox:latest".to_string()]);
    assert_eq!(
        info.config.config.as_ref().and_then(|c| c.cmd.clone()),
        Some(vec!["sh".to_string()])
    );
    service
        .tag("busybox", "localhost:5000/bb:v1")
        .await
        .expect("tag");
    let mut filters = Filters::new();
    filters.add("reference", "localhost:5000/*");
    let listed = service.list(filters).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].repo_tags,
        vec!["localhost:5000/bb:v1".to_string()]
    );
    assert_eq!(listed[0].size, 2, "Docker's size counts file bytes");
    let history = service.history("busybox").await.expect("history");
    assert_eq!(history[0].comment, "Imported from -");

    let archive = Shared::default();
    service
        .save(vec!["busybox".into()], Box::new(archive.clone()))
        .await
        .expect("save");
    let running = |_: &str| false;
    let removed = service
        .delete("busybox", false, &running)
        .await
        .expect("untag");
    assert_eq!(removed, vec![DeleteItem::Untagged("busybox:latest".into())]);
    let removed = service
        .delete("localhost:5000/bb:v1", false, &running)
        .await
        .expect("delete");
    assert!(
        removed.contains(&DeleteItem::Deleted(id.to_string())),
        "{removed:?}"
    );
    assert!(matches!(
        service.lookup("busybox").await,
        Err(ImageError::Store(_))
    ));
    let bytes = archive.0.lock().expect("lock").clone();
    let loaded = service
        .load(Box::new(Cursor::new(bytes)))
        .await
        .expect("load");
    assert_eq!(loaded.ids, vec![id.clone()]);
    assert_eq!(
        loaded.messages,
        vec!["Loaded image: busybox:latest".to_string()]
    );
}

#[tokio::test]
async fn a_container_rootfs_keeps_its_image_until_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = service(dir.path()).await;
    let id = import(&service, "base", &[("etc/hostname", b"x")]).await;
    let mounts = service
        .prepare_rootfs(&id, "c0ffee")
        .await
        .expect("prepare");
    assert!(!mounts.is_empty());
    // A second prepare returns the same snapshot.
    assert_eq!(
        service.prepare_rootfs(&id, "c0ffee").await.expect("again"),
        mounts
    );
    assert_eq!(service.containers_using(&id), vec!["c0ffee".to_string()]);
    let running = |_: &str| false;
    let refused = service
        .delete(&id.to_string(), false, &running)
        .await
        .expect_err("in use");
    assert_eq!(refused.kind(), crate::error::ErrorKind::Conflict);
    assert!(
        refused
            .to_string()
            .contains("image is being used by stopped container c0ffee"),
        "{refused}"
    );
    let pruned = service
        .prune(
            {
                let mut f = Filters::new();
                f.add("dangling", "false");
                f
            },
            &running,
        )
        .await
        .expect("prune");
    assert!(pruned.items.is_empty(), "an image in use is never pruned");
    service.remove_rootfs("c0ffee").await.expect("remove");
    let removed = service
        .delete("base", false, &running)
        .await
        .expect("delete");
    assert!(removed.contains(&DeleteItem::Deleted(id.to_string())));
    let blobs = dir.path().join("data/image/content/blobs/sha256");
    let left = std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "garbage collection removed every blob");
}
