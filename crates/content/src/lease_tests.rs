//! Tests for lease persistence and updates.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::*;
use crate::testing::temp_store;
use crate::ContentErrorKind;

#[test]
fn leases_are_created_updated_listed_and_deleted() {
    let (_dir, store) = temp_store();
    let labels = BTreeMap::from([("purpose".to_owned(), "pull".to_owned())]);
    let expires = SystemTime::UNIX_EPOCH + Duration::from_secs(4_000_000_000);
    let lease = store
        .create_lease("pull-1", Some(expires), labels.clone())
        .expect("create");
    assert_eq!(lease.labels, labels);
    let digest = Digest::sha256_of(b"layer");
    store
        .lease_add_content("pull-1", &digest)
        .expect("add content");
    store
        .lease_add_ingest("pull-1", "layer-ref")
        .expect("add ingest");
    store
        .create_lease("build-2", None, BTreeMap::new())
        .expect("create");

    let got = store.lease("pull-1").expect("get");
    assert_eq!(got.content, BTreeSet::from([digest.clone()]));
    assert_eq!(got.ingests, BTreeSet::from(["layer-ref".to_owned()]));
    assert_eq!(got.expires_at, Some(expires));
    let ids: Vec<String> = store
        .leases()
        .expect("list")
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(ids, vec!["build-2".to_owned(), "pull-1".to_owned()]);

    store
        .lease_remove_content("pull-1", &digest)
        .expect("remove content");
    store
        .lease_remove_ingest("pull-1", "layer-ref")
        .expect("remove ingest");
    let got = store.lease("pull-1").expect("get");
    assert!(got.content.is_empty() && got.ingests.is_empty());

    store.delete_lease("pull-1").expect("delete");
    assert_eq!(
        store.lease("pull-1").expect_err("gone").kind(),
        ContentErrorKind::NotFound
    );
    assert_eq!(
        store.delete_lease("pull-1").expect_err("gone").kind(),
        ContentErrorKind::NotFound
    );
}

#[test]
fn duplicate_missing_and_invalid_leases_are_refused() {
    let (_dir, store) = temp_store();
    store
        .create_lease("a", None, BTreeMap::new())
        .expect("create");
    let dup = store
        .create_lease("a", None, BTreeMap::new())
        .expect_err("duplicate");
    assert_eq!(dup.kind(), ContentErrorKind::AlreadyExists);
    let missing = store
        .lease_add_content("b", &Digest::sha256_of(b"x"))
        .expect_err("missing");
    assert_eq!(missing.to_string(), "lease \"b\" not found");
    let invalid = store
        .create_lease("", None, BTreeMap::new())
        .expect_err("empty id");
    assert_eq!(invalid.kind(), ContentErrorKind::InvalidArgument);
}

#[test]
fn leases_survive_reopen_and_leave_no_temp_files() {
    let (dir, store) = temp_store();
    store
        .create_lease("keep", None, BTreeMap::new())
        .expect("create");
    store
        .lease_add_content("keep", &Digest::sha256_of(b"x"))
        .expect("add");
    drop(store);
    let store = Store::open(dir.path().join("content")).expect("reopen");
    assert_eq!(store.lease("keep").expect("get").content.len(), 1);
    let names: Vec<String> = fs::read_dir(store.lease_dir())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with(".json") && !is_temp_name(&names[0]));
}

#[test]
fn expiry_is_judged_against_the_given_instant() {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
    let lease = Lease {
        id: "x".into(),
        created_at: SystemTime::UNIX_EPOCH,
        expires_at: Some(at),
        labels: BTreeMap::new(),
        content: BTreeSet::new(),
        ingests: BTreeSet::new(),
    };
    assert!(!lease.is_expired(at - Duration::from_secs(1)));
    assert!(lease.is_expired(at));
    assert!(!Lease {
        expires_at: None,
        ..lease
    }
    .is_expired(at));
}
