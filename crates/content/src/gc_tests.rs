//! Tests for mark-and-sweep over roots, children and leases.

use std::collections::BTreeMap;

use super::*;
use crate::testing::{index_of, put, temp_store, toy_children};
use crate::writer::Expected;

fn far_future() -> SystemTime {
    SystemTime::now() + Duration::from_secs(10 * 365 * 24 * 3600)
}

fn keep_fresh_ingests() -> GcOptions {
    GcOptions::with_default_expiry(SystemTime::now())
}

#[test]
fn unreferenced_blobs_go_and_everything_reachable_stays() {
    let (_dir, store) = temp_store();
    let (config, layer, garbage) = (
        put(&store, b"config"),
        put(&store, b"layer"),
        put(&store, b"garbage"),
    );
    let manifest = put(&store, &index_of(&[&config, &layer]));
    let index = put(
        &store,
        &index_of(&[&manifest, &Digest::sha256_of(b"not pulled")]),
    );
    let report = store
        .gc(
            || Ok(vec![index.clone()]),
            toy_children,
            &keep_fresh_ingests(),
        )
        .expect("gc");
    assert_eq!(report.removed_blobs, vec![garbage.clone()]);
    assert_eq!(report.freed_bytes, 7);
    for kept in [&config, &layer, &manifest, &index] {
        store.verify(kept).expect("kept");
    }
    assert!(!store.contains(&garbage));
}

#[test]
fn leased_content_survives_until_the_lease_expires() {
    let (_dir, store) = temp_store();
    let now = SystemTime::now();
    let pending = Digest::sha256_of(b"in flight");
    store
        .create_lease("pull", Some(now + Duration::from_secs(60)), BTreeMap::new())
        .expect("lease");
    store
        .lease_add_content("pull", &pending)
        .expect("add before commit");
    put(&store, b"in flight");
    let report = store
        .gc(
            || Ok(Vec::new()),
            toy_children,
            &GcOptions::with_default_expiry(now),
        )
        .expect("gc");
    assert!(report.removed_blobs.is_empty());
    assert!(store.contains(&pending));

    let later = GcOptions::with_default_expiry(now + Duration::from_secs(61));
    let report = store
        .gc(|| Ok(Vec::new()), toy_children, &later)
        .expect("gc");
    assert_eq!(report.expired_leases, vec!["pull".to_owned()]);
    assert_eq!(report.removed_blobs, vec![pending]);
    assert!(store.leases().expect("leases").is_empty());
}

#[test]
fn a_failing_children_function_deletes_nothing() {
    let (_dir, store) = temp_store();
    let root = put(&store, b"root");
    let garbage = put(&store, b"garbage");
    let err = store
        .gc(
            || Ok(vec![root]),
            |_: &Digest, _: &mut BlobReader| Err("unreadable manifest".into()),
            &keep_fresh_ingests(),
        )
        .expect_err("must fail");
    assert!(
        err.to_string()
            .starts_with("garbage collection could not list the children of blob"),
        "{err}"
    );
    assert!(store.contains(&garbage));
}

#[test]
fn stale_ingests_go_unless_leased_or_open() {
    let (_dir, store) = temp_store();
    for reference in ["abandoned", "leased", "open"] {
        let mut w = store.writer(reference, Expected::none()).expect("writer");
        w.append(reference.as_bytes()).expect("append");
    }
    store
        .create_lease("l", None, BTreeMap::new())
        .expect("lease");
    store.lease_add_ingest("l", "leased").expect("lease ingest");
    let open = store.writer("open", Expected::none()).expect("hold open");

    let fresh = store
        .gc(|| Ok(Vec::new()), toy_children, &keep_fresh_ingests())
        .expect("gc");
    assert!(
        fresh.removed_ingests.is_empty(),
        "fresh ingests are kept: {fresh:?}"
    );

    let late = GcOptions::with_default_expiry(far_future());
    let report = store
        .gc(|| Ok(Vec::new()), toy_children, &late)
        .expect("gc");
    assert_eq!(report.removed_ingests, vec!["abandoned".to_owned()]);
    let left: Vec<String> = store
        .ingests()
        .expect("ingests")
        .into_iter()
        .map(|s| s.reference)
        .collect();
    assert_eq!(left, vec!["leased".to_owned(), "open".to_owned()]);
    drop(open);
    let report = store
        .gc(|| Ok(Vec::new()), toy_children, &late)
        .expect("gc");
    assert_eq!(report.removed_ingests, vec!["open".to_owned()]);
}

#[test]
fn leftovers_of_interrupted_writes_are_swept() {
    let (_dir, store) = temp_store();
    fs::write(store.lease_dir().join(".tmp-1-0-x.json"), b"{").expect("temp");
    let orphan = store.ingest_root().join("0123");
    fs::create_dir(&orphan).expect("orphan ingest dir without meta");
    let report = store
        .gc(
            || Ok(Vec::new()),
            toy_children,
            &GcOptions::with_default_expiry(far_future()),
        )
        .expect("gc");
    assert_eq!(report.removed_temp_files, 1);
    assert_eq!(report.removed_ingests, vec!["0123".to_owned()]);
    assert!(!orphan.exists());
}

#[test]
fn failing_roots_delete_nothing() {
    let (_dir, store) = temp_store();
    let garbage = put(&store, b"garbage");
    let err = store.gc(
        || Err("image store unavailable".into()),
        toy_children,
        &keep_fresh_ingests(),
    );
    assert_eq!(
        err.expect_err("must fail").to_string(),
        "garbage collection could not list its roots"
    );
    assert!(store.contains(&garbage));
}

/// The caller protocol (lease the digest, commit, record it as a root, release the lease)
/// never loses content to a GC running concurrently, whatever the interleaving.
#[test]
fn concurrent_gc_never_collects_content_committed_under_a_lease() {
    let (_dir, store) = temp_store();
    let roots = std::sync::Mutex::new(Vec::<Digest>::new());
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..60u32 {
                let bytes = format!("image {i}").into_bytes();
                let digest = Digest::sha256_of(&bytes);
                let lease = format!("pull-{i}");
                store
                    .create_lease(&lease, None, BTreeMap::new())
                    .expect("lease");
                store
                    .lease_add_content(&lease, &digest)
                    .expect("lease content");
                let mut w = store.writer(&lease, Expected::none()).expect("writer");
                w.append(&bytes).expect("append");
                w.commit(Expected::digest(digest.clone())).expect("commit");
                roots.lock().expect("roots").push(digest);
                store.delete_lease(&lease).expect("release");
                put(&store, format!("garbage {i}").as_bytes());
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        scope.spawn(|| {
            let mut runs = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || runs == 0 {
                let snapshot = || Ok(roots.lock().expect("roots").clone());
                store
                    .gc(snapshot, toy_children, &keep_fresh_ingests())
                    .expect("gc");
                runs += 1;
            }
        });
    });
    let roots = roots.into_inner().expect("roots");
    assert_eq!(roots.len(), 60);
    for digest in &roots {
        store.verify(digest).expect("root survived every gc");
    }
    let report = store
        .gc(|| Ok(roots.clone()), toy_children, &keep_fresh_ingests())
        .expect("gc");
    assert_eq!(
        store.list().expect("list").len(),
        60,
        "only roots remain: {report:?}"
    );
}
