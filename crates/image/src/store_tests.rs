use super::*;
use berth_oci::media_type;

fn id(c: char) -> Digest {
    Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).expect("digest")
}

fn id_with_prefix(prefix: &str, fill: char) -> Digest {
    let hex = format!("{prefix}{}", fill.to_string().repeat(64 - prefix.len()));
    Digest::parse(&format!("sha256:{hex}")).expect("digest")
}

fn record(id: Digest) -> ImageRecord {
    ImageRecord {
        target: Descriptor::new(media_type::OCI_MANIFEST, id.clone(), 1),
        id,
        created: "2024-01-01T00:00:00Z".into(),
        labels: BTreeMap::new(),
    }
}

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).expect("reference")
}

fn open() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    (dir, store)
}

fn untagged(s: &str) -> DeleteItem {
    DeleteItem::Untagged(s.to_owned())
}

#[test]
fn repo_tags_and_digests_are_shown_in_familiar_form_sorted() {
    let (_dir, store) = open();
    let a = id('a');
    store.put(record(a.clone())).expect("put");
    store.tag(&a, &r("localhost:5000/x/y:v1")).expect("tag");
    store.tag(&a, &r("busybox")).expect("tag");
    store
        .add_digest(&a, &r(&format!("busybox@{}", id('d'))))
        .expect("digest");
    assert_eq!(
        store.repo_tags(&a),
        vec!["busybox:latest", "localhost:5000/x/y:v1"]
    );
    assert_eq!(store.repo_digests(&a), vec![format!("busybox@{}", id('d'))]);
}

#[test]
fn tags_move_between_images_and_digests_never_do() {
    let (_dir, store) = open();
    let (a, b) = (id('a'), id('b'));
    store.put(record(a.clone())).expect("put");
    store.put(record(b.clone())).expect("put");
    assert_eq!(store.tag(&a, &r("app:1")).expect("tag"), None);
    assert_eq!(store.tag(&b, &r("app:1")).expect("tag"), Some(a.clone()));
    assert!(store.repo_tags(&a).is_empty());
    assert_eq!(store.repo_tags(&b), vec!["app:1"]);
    let canonical = r(&format!("app@{}", id('d')));
    store.add_digest(&a, &canonical).expect("digest");
    store
        .add_digest(&a, &canonical)
        .expect("same digest again is fine");
    let err = store.add_digest(&b, &canonical).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Cannot overwrite digest app@{}", id('d'))
    );
    assert!(matches!(
        store.tag(&a, &canonical),
        Err(StoreError::TagWithDigest)
    ));
    assert!(matches!(
        store.tag(&a, &r("sha256:abc")),
        Err(StoreError::AmbiguousTag)
    ));
}

#[test]
fn resolve_follows_dockers_get_image_order() {
    let (_dir, store) = open();
    let a = id_with_prefix("abc1", '0');
    let b = id_with_prefix("abc2", '0');
    store.put(record(a.clone())).expect("put");
    store.put(record(b.clone())).expect("put");
    store.tag(&a, &r("busybox:latest")).expect("tag");
    store
        .add_digest(&b, &r(&format!("busybox@{}", id('d'))))
        .expect("digest");
    let resolved = |s: &str| store.resolve(s).map(|rec| rec.id);
    assert_eq!(resolved("busybox").expect("name"), a);
    assert_eq!(
        resolved("docker.io/library/busybox:latest").expect("full"),
        a
    );
    assert_eq!(
        resolved(&format!("busybox@{}", id('d'))).expect("digest"),
        b
    );
    assert_eq!(
        resolved(&format!("busybox:latest@{}", id('d'))).expect("digest wins"),
        b
    );
    assert_eq!(resolved(a.hex()).expect("64 hex"), a);
    assert_eq!(resolved(&a.to_string()).expect("sha256:"), a);
    assert_eq!(resolved("abc1").expect("prefix"), a);
    assert_eq!(resolved("sha256:abc2").expect("sha256 prefix"), b);
    assert_eq!(
        resolved("abc").unwrap_err().to_string(),
        "No such image: abc:latest"
    );
    assert_eq!(
        resolved("nothere").unwrap_err().to_string(),
        "No such image: nothere:latest"
    );
    assert_eq!(
        resolved(&id('f').to_string()).unwrap_err().to_string(),
        format!("No such image: {}", id('f'))
    );
    assert_eq!(
        resolved("Busybox").unwrap_err().to_string(),
        "invalid reference format: repository name (library/Busybox) must be lowercase"
    );
}

#[test]
fn rmi_of_one_tag_among_several_only_untags() {
    let (_dir, store) = open();
    let a = id('a');
    store.put(record(a.clone())).expect("put");
    store.tag(&a, &r("one:latest")).expect("tag");
    store.tag(&a, &r("two:latest")).expect("tag");
    let items = store.delete("one", false, &[]).expect("rmi");
    assert_eq!(items, vec![untagged("one:latest")]);
    assert!(store.get(&a).is_some());
    let items = store.delete("two:latest", false, &[]).expect("rmi");
    assert_eq!(
        items,
        vec![untagged("two:latest"), DeleteItem::Deleted(a.to_string())]
    );
    assert!(store.get(&a).is_none());
}

#[test]
fn rmi_by_id_with_tags_in_several_repositories_must_be_forced() {
    let (_dir, store) = open();
    let a = id_with_prefix("0123456789ab", 'c');
    store.put(record(a.clone())).expect("put");
    store.tag(&a, &r("one:latest")).expect("tag");
    store.tag(&a, &r("two:latest")).expect("tag");
    let err = store.delete("0123456789ab", false, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "conflict: unable to delete 0123456789ab (must be forced) - image is referenced in multiple repositories"
    );
    assert_eq!(store.repo_tags(&a).len(), 2, "nothing changed");
    let items = store.delete(a.hex(), true, &[]).expect("forced");
    assert_eq!(
        items,
        vec![
            untagged("one:latest"),
            untagged("two:latest"),
            DeleteItem::Deleted(a.to_string())
        ]
    );
}

#[test]
fn rmi_by_id_with_one_tag_and_its_digests_removes_all() {
    let (_dir, store) = open();
    let a = id('a');
    store.put(record(a.clone())).expect("put");
    store.tag(&a, &r("app:1")).expect("tag");
    store
        .add_digest(&a, &r(&format!("app@{}", id('d'))))
        .expect("digest");
    let items = store.delete(&a.to_string(), false, &[]).expect("rmi");
    assert_eq!(
        items,
        vec![
            untagged("app:1"),
            untagged(&format!("app@{}", id('d'))),
            DeleteItem::Deleted(a.to_string())
        ]
    );
}

#[test]
fn removing_the_last_tag_of_a_repository_drops_its_digest_references() {
    let (_dir, store) = open();
    let a = id('a');
    store.put(record(a.clone())).expect("put");
    store.tag(&a, &r("app:1")).expect("tag");
    store.tag(&a, &r("other:1")).expect("tag");
    store
        .add_digest(&a, &r(&format!("app@{}", id('d'))))
        .expect("digest");
    let items = store.delete("app:1", false, &[]).expect("rmi");
    assert_eq!(
        items,
        vec![untagged("app:1"), untagged(&format!("app@{}", id('d')))]
    );
    assert_eq!(store.repo_tags(&a), vec!["other:1"]);
    assert!(store.repo_digests(&a).is_empty());
}

#[test]
fn images_used_by_containers_conflict_as_docker_says() {
    let (_dir, store) = open();
    let a = id('a');
    store.put(record(a.clone())).expect("put");
    let running = ContainerUse {
        container_id: "c0ffee0000000000".into(),
        image_id: a.clone(),
        running: true,
    };
    let stopped = ContainerUse {
        running: false,
        ..running.clone()
    };
    let err = store
        .delete(a.hex(), true, std::slice::from_ref(&running))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {} (cannot be forced) - image is being used by running container c0ffee000000",
            &a.hex()[..12]
        )
    );
    let err = store
        .delete(a.hex(), false, std::slice::from_ref(&stopped))
        .unwrap_err();
    assert!(err
        .to_string()
        .ends_with("(must be forced) - image is being used by stopped container c0ffee000000"));
    store.tag(&a, &r("app:1")).expect("tag");
    let err = store
        .delete("app:1", false, std::slice::from_ref(&stopped))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("conflict: unable to remove repository reference \"app:1\" (must force) - container c0ffee000000 is using its referenced image {}", &a.hex()[..12])
    );
    // Forced: a stopped container is only a soft conflict, so the image goes too.
    let items = store
        .delete("app:1", true, &[stopped])
        .expect("forced untag");
    assert_eq!(
        items,
        vec![untagged("app:1"), DeleteItem::Deleted(a.to_string())]
    );
    assert!(store.get(&a).is_none());
}

#[test]
fn store_survives_reopen_and_refuses_corrupt_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = id('a');
    {
        let store = ImageStore::open(dir.path()).expect("open");
        store.put(record(a.clone())).expect("put");
        store.tag(&a, &r("app:1")).expect("tag");
    }
    let store = ImageStore::open(dir.path()).expect("reopen");
    assert_eq!(store.resolve("app:1").expect("resolve").id, a);
    assert_eq!(store.list().len(), 1);
    std::fs::write(dir.path().join("images.json"), b"{not json").expect("write");
    let err = ImageStore::open(dir.path()).unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Internal);
    assert!(err.to_string().contains("is corrupt"));
}

#[test]
fn deferred_records_are_visible_at_once_and_reach_the_file_only_when_flushed() {
    let (dir, store) = open();
    let (a, b) = (id('a'), id('b'));
    store.put(record(a.clone())).expect("put");
    store.put_deferred(record(b.clone()));
    assert_eq!(store.get(&b), Some(record(b.clone())));
    assert_eq!(store.list().len(), 2);
    assert_eq!(store.resolve(&b.hex()[..12]).expect("prefix").id, b);
    // Any other write leaves the deferred record and references to it out of the file.
    store.tag(&b, &r("step:last")).expect("tag");
    store.tag(&a, &r("base")).expect("tag");
    let reopened = ImageStore::open(dir.path()).expect("reopen");
    assert_eq!(reopened.get(&b), None);
    assert!(reopened.resolve("step:last").is_err());
    assert_eq!(reopened.resolve("base").expect("base").id, a);
    // A failing make-durable step writes nothing and keeps the record deferred.
    let failed = store.flush_deferred(|| Err("disk gone")).expect("store");
    assert_eq!(failed, Err("disk gone"));
    assert_eq!(ImageStore::open(dir.path()).expect("reopen").get(&b), None);
    let mut synced = false;
    store
        .flush_deferred(|| {
            synced = true;
            Ok::<(), ()>(())
        })
        .expect("store")
        .expect("flush");
    assert!(synced);
    let reopened = ImageStore::open(dir.path()).expect("reopen");
    assert_eq!(reopened.get(&b), Some(record(b.clone())));
    assert_eq!(reopened.resolve("step:last").expect("tag").id, b);
    // Nothing deferred: no make-durable step at all.
    store
        .flush_deferred(|| -> Result<(), ()> { panic!("nothing to flush") })
        .expect("store")
        .expect("flush");
}

#[test]
fn a_deferred_record_never_replaces_one_on_file_and_a_put_makes_it_durable() {
    let (dir, store) = open();
    let a = id('a');
    store.put(record(a.clone())).expect("put");
    let mut other = record(a.clone());
    other.created = "2030-01-01T00:00:00Z".into();
    store.put_deferred(other);
    assert_eq!(store.get(&a), Some(record(a.clone())));
    let b = id('b');
    store.put_deferred(record(b.clone()));
    store.put(record(b.clone())).expect("put");
    assert_eq!(
        ImageStore::open(dir.path()).expect("reopen").get(&b),
        Some(record(b))
    );
    // A deleted deferred record is not brought back by a flush.
    let c = id('c');
    store.put_deferred(record(c.clone()));
    store.delete(&c.to_string(), false, &[]).expect("delete");
    store
        .flush_deferred(|| Ok::<(), ()>(()))
        .expect("store")
        .expect("flush");
    assert_eq!(ImageStore::open(dir.path()).expect("reopen").get(&c), None);
}
