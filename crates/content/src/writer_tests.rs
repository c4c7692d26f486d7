//! Tests for ingest writing, resuming, verification and commit.

use std::sync::Arc;

use super::*;
use crate::testing::{put, scratch_dir, temp_store, FailingSinks};
use crate::ContentErrorKind;

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn commit_with_expected_digest_and_size_installs_the_blob() {
    let (_dir, store) = temp_store();
    let bytes = data(10_000);
    let digest = Digest::sha256_of(&bytes);
    let mut w = store
        .writer("layer", Expected::exact(digest.clone(), 10_000))
        .expect("writer");
    for chunk in bytes.chunks(999) {
        w.append(chunk).expect("append");
    }
    assert_eq!(w.offset(), 10_000);
    assert_eq!(w.digest(), digest);
    let committed = w.commit(Expected::none()).expect("commit");
    assert_eq!(
        committed,
        Committed {
            digest: digest.clone(),
            size: 10_000,
            already_existed: false
        }
    );
    assert_eq!(store.read_to_vec(&digest).expect("read"), bytes);
    assert!(store.ingests().expect("ingests").is_empty());
    assert!(
        fs::read_dir(store.ingest_root())
            .expect("list")
            .next()
            .is_none(),
        "ingest dir removed"
    );
}

#[test]
fn commit_without_expectations_names_the_blob_by_its_content() {
    let (_dir, store) = temp_store();
    let mut w = store.writer("anything", Expected::none()).expect("writer");
    io::copy(&mut &b"streamed"[..], &mut w).expect("copy");
    let committed = w.commit(Expected::none()).expect("commit");
    assert_eq!(committed.digest, Digest::sha256_of(b"streamed"));
}

#[test]
fn a_dropped_ingest_resumes_at_its_offset_with_the_prefix_rehashed() {
    let (_dir, store) = temp_store();
    let bytes = data(64 * 1024 + 17);
    let digest = Digest::sha256_of(&bytes);
    let expected = Expected::exact(digest.clone(), bytes.len() as u64);
    let mut w = store.writer("resume", expected.clone()).expect("writer");
    w.append(&bytes[..30_000]).expect("append");
    drop(w);
    let status = store.ingest_status("resume").expect("status");
    assert_eq!(
        (status.offset, status.expected.clone()),
        (30_000, expected.clone())
    );

    let mut w = store.writer("resume", Expected::none()).expect("reopen");
    assert_eq!(w.offset(), 30_000);
    assert_eq!(w.expected(), &expected, "expectation remembered in meta");
    assert_eq!(w.digest(), Digest::sha256_of(&bytes[..30_000]));
    w.append(&bytes[30_000..]).expect("append rest");
    assert_eq!(w.commit(Expected::none()).expect("commit").digest, digest);
}

#[test]
fn one_writer_per_reference_at_a_time() {
    let (_dir, store) = temp_store();
    let first = store.writer("busy", Expected::none()).expect("first");
    let err = store.writer("busy", Expected::none()).expect_err("second");
    assert_eq!(err.kind(), ContentErrorKind::Unavailable);
    assert_eq!(
        err.to_string(),
        "ingest \"busy\" is in use by another writer (wait for it or abort it)"
    );
    assert_eq!(
        store.abort("busy").expect_err("locked").kind(),
        ContentErrorKind::Unavailable
    );
    drop(first);
    store.writer("busy", Expected::none()).expect("free again");
}

#[test]
fn a_short_ingest_is_refused_and_kept_for_resume() {
    let (_dir, store) = temp_store();
    let bytes = data(1000);
    let digest = Digest::sha256_of(&bytes);
    let mut w = store
        .writer("short", Expected::exact(digest.clone(), 1000))
        .expect("writer");
    w.append(&bytes[..400]).expect("append");
    let err = w.commit(Expected::none()).expect_err("incomplete");
    assert_eq!(
        err.to_string(),
        "ingest \"short\" is incomplete: 400 of 1000 bytes written (resume it from byte 400)"
    );
    assert!(!store.contains(&digest));
    let mut w = store.writer("short", Expected::none()).expect("resume");
    assert_eq!(w.offset(), 400);
    w.append(&bytes[400..]).expect("append");
    w.commit(Expected::none()).expect("commit");
    store.verify(&digest).expect("verify");
}

#[test]
fn a_digest_mismatch_is_refused_and_the_ingest_discarded() {
    let (_dir, store) = temp_store();
    let wanted = Digest::sha256_of(b"expected bytes");
    let mut w = store
        .writer("bad", Expected::digest(wanted.clone()))
        .expect("writer");
    w.append(b"tampered bytes").expect("append");
    match w.commit(Expected::none()) {
        Err(ContentError::DigestMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, wanted);
            assert_eq!(actual, Digest::sha256_of(b"tampered bytes"));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(store.list().expect("list").is_empty(), "nothing committed");
    assert_eq!(
        store.ingest_status("bad").expect_err("discarded").kind(),
        ContentErrorKind::NotFound
    );
}

#[test]
fn too_many_bytes_are_refused_and_discarded() {
    let (_dir, store) = temp_store();
    let mut w = store.writer("long", Expected::none()).expect("writer");
    w.append(b"0123456789").expect("append");
    let err = w
        .commit(Expected::exact(Digest::sha256_of(b"01234"), 5))
        .expect_err("too long");
    assert!(
        matches!(
            err,
            ContentError::SizeMismatch {
                expected: 5,
                actual: 10,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(store.list().expect("list").is_empty());
    assert!(store.ingests().expect("ingests").is_empty());
}

#[test]
fn expecting_an_existing_blob_is_already_exists_and_duplicates_commit_idempotently() {
    let (_dir, store) = temp_store();
    let digest = put(&store, b"same");
    let err = store
        .writer("again", Expected::digest(digest.clone()))
        .expect_err("exists");
    assert_eq!(err.kind(), ContentErrorKind::AlreadyExists);
    let mut w = store.writer("again", Expected::none()).expect("writer");
    w.append(b"same").expect("append");
    let committed = w.commit(Expected::none()).expect("commit");
    assert!(committed.already_existed);
    assert!(store.ingests().expect("ingests").is_empty());
}

#[test]
fn a_conflicting_expectation_restarts_the_ingest() {
    let (_dir, store) = temp_store();
    let mut w = store
        .writer("ref", Expected::digest(Digest::sha256_of(b"one")))
        .expect("writer");
    w.append(b"on").expect("append");
    drop(w);
    let w = store
        .writer("ref", Expected::digest(Digest::sha256_of(b"two")))
        .expect("writer");
    assert_eq!(w.offset(), 0);
    assert_eq!(w.expected().digest, Some(Digest::sha256_of(b"two")));
}

#[test]
fn truncate_rewinds_and_rehashes() {
    let (_dir, store) = temp_store();
    let mut w = store.writer("t", Expected::none()).expect("writer");
    w.append(b"hello world").expect("append");
    w.truncate(5).expect("truncate");
    assert_eq!((w.offset(), w.digest()), (5, Digest::sha256_of(b"hello")));
    let err = w.truncate(6).expect_err("beyond end");
    assert_eq!(err.kind(), ContentErrorKind::InvalidArgument);
    w.append(b", there").expect("append");
    assert_eq!(
        w.commit(Expected::none()).expect("commit").digest,
        Digest::sha256_of(b"hello, there")
    );
}

#[test]
fn sha512_expectations_hash_with_sha512() {
    let (_dir, store) = temp_store();
    let wanted = Digest::of(Algorithm::Sha512, b"big hash");
    let mut w = store
        .writer("512", Expected::digest(wanted.clone()))
        .expect("writer");
    w.append(b"big hash").expect("append");
    w.commit(Expected::none()).expect("commit");
    assert!(store
        .blob_path(&wanted)
        .starts_with(store.root().join("blobs/sha512")));
    store.verify(&wanted).expect("verify");
    let mut w = store.writer("late", Expected::none()).expect("writer");
    w.append(b"late 512").expect("append");
    let late = Digest::of(Algorithm::Sha512, b"late 512");
    assert_eq!(
        w.commit(Expected::digest(late.clone()))
            .expect("commit")
            .digest,
        late
    );
}

#[test]
fn a_full_disk_fails_clearly_and_the_ingest_resumes_afterwards() {
    let dir = scratch_dir();
    let root = dir.path().join("content");
    let bytes = data(5000);
    let digest = Digest::sha256_of(&bytes);
    let other = put(&Store::open(&root).expect("open"), b"already committed");

    let full = Store::open_with_sinks(&root, FailingSinks::disk_full_after(3000)).expect("open");
    let mut w = full
        .writer("pull", Expected::exact(digest.clone(), 5000))
        .expect("writer");
    let err = w.append(&bytes).expect_err("disk full");
    assert!(matches!(err, ContentError::NoSpace { .. }), "{err:?}");
    assert_eq!(err.kind(), ContentErrorKind::Unavailable);
    assert!(
        err.to_string()
            .starts_with("no space left on device writing "),
        "{err}"
    );
    assert_eq!(w.offset(), 3000);
    assert_eq!(
        w.append(b"x").expect_err("poisoned").kind(),
        ContentErrorKind::FailedPrecondition
    );
    assert!(matches!(
        w.commit(Expected::none()),
        Err(ContentError::Poisoned { .. })
    ));

    let store = Store::open(&root).expect("reopen with space");
    store.verify(&other).expect("committed blob intact");
    assert!(!store.contains(&digest));
    let mut w = store.writer("pull", Expected::none()).expect("resume");
    assert_eq!(w.offset(), 3000);
    w.append(&bytes[3000..]).expect("append");
    w.commit(Expected::none()).expect("commit");
    store.verify(&digest).expect("verify");
}

#[test]
fn a_failing_fsync_commits_nothing() {
    let dir = scratch_dir();
    let root = dir.path().join("content");
    let sinks = Arc::new(FailingSinks {
        capacity: u64::MAX,
        errno: libc::EIO,
        fail_sync: true,
    });
    let store = Store::open_with_sinks(&root, sinks).expect("open");
    let mut w = store.writer("x", Expected::none()).expect("writer");
    w.append(b"data").expect("append");
    let err = w.commit(Expected::none()).expect_err("sync fails");
    assert_eq!(err.kind(), ContentErrorKind::Internal);
    assert!(store.list().expect("list").is_empty());
    assert_eq!(store.ingest_status("x").expect("kept").offset, 4);
}

#[test]
fn abort_removes_an_ingest_and_invalid_references_are_refused() {
    let (_dir, store) = temp_store();
    let mut w = store.writer("gone", Expected::none()).expect("writer");
    w.append(b"partial").expect("append");
    drop(w);
    assert_eq!(store.ingests().expect("list").len(), 1);
    store.abort("gone").expect("abort");
    assert!(store.ingests().expect("list").is_empty());
    assert_eq!(
        store.abort("gone").expect_err("missing").kind(),
        ContentErrorKind::NotFound
    );
    let long = "r".repeat(MAX_REFERENCE_LEN + 1);
    for bad in ["", long.as_str()] {
        assert_eq!(
            store.writer(bad, Expected::none()).expect_err(bad).kind(),
            ContentErrorKind::InvalidArgument
        );
    }
}

#[test]
fn concurrent_commits_of_the_same_content_both_succeed() {
    let (_dir, store) = temp_store();
    let bytes = data(200_000);
    let digest = Digest::sha256_of(&bytes);
    let results: Vec<Committed> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (store, bytes, digest) = (store.clone(), &bytes, digest.clone());
                scope.spawn(move || {
                    let mut w = store
                        .writer(&format!("dup-{i}"), Expected::none())
                        .expect("writer");
                    w.append(bytes).expect("append");
                    w.commit(Expected::digest(digest)).expect("commit")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert_eq!(
        results.iter().filter(|c| !c.already_existed).count(),
        1,
        "{results:?}"
    );
    store.verify(&digest).expect("verify");
    assert!(store.ingests().expect("ingests").is_empty());
}

#[test]
fn bytes_beyond_the_expected_size_are_refused_before_reaching_disk() {
    let (_dir, store) = temp_store();
    let digest = Digest::sha256_of(b"12345");
    let mut w = store
        .writer("capped", Expected::exact(digest.clone(), 5))
        .expect("writer");
    w.append(b"123").expect("append");
    let err = w.append(b"4567").expect_err("too large");
    assert!(
        matches!(
            err,
            ContentError::TooLarge {
                expected: 5,
                offset: 3,
                attempted: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ContentErrorKind::FailedPrecondition);
    assert_eq!(w.offset(), 3, "nothing of the refused write was kept");
    let io_err = io::Write::write(&mut w, b"xyz").expect_err("too large through io::Write");
    assert!(
        io_err
            .to_string()
            .contains("refused 3 more bytes at offset 3"),
        "{io_err}"
    );
    w.append(b"45").expect("the writer stays usable");
    assert_eq!(w.commit(Expected::none()).expect("commit").digest, digest);
}

#[test]
fn a_commit_with_a_deferred_directory_sync_installs_the_same_verified_blob() {
    let (_dir, store) = temp_store();
    let bytes = data(5_000);
    let digest = Digest::sha256_of(&bytes);
    let mut w = store.writer("step", Expected::none()).expect("writer");
    w.defer_dir_sync();
    w.append(&bytes).expect("append");
    let committed = w
        .commit(Expected::exact(digest.clone(), 5_000))
        .expect("commit");
    assert!(!committed.already_existed);
    assert_eq!(store.read_to_vec(&digest).expect("read"), bytes);
    store.verify(&digest).expect("verify");
    assert!(store.ingests().expect("ingests").is_empty());
    store.sync_blob_dirs().expect("sync");
}
