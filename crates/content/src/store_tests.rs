//! Tests for reading, listing, verifying and deleting committed blobs.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::testing::{put, temp_store};
use crate::ContentErrorKind;

#[test]
fn committed_blob_reads_back_sequentially_with_seek_and_at_offsets() {
    let (_dir, store) = temp_store();
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let digest = put(&store, &bytes);
    let mut reader = store.reader(&digest).expect("reader");
    assert_eq!(reader.size(), bytes.len() as u64);
    assert_eq!(reader.digest(), &digest);
    let mut all = Vec::new();
    reader.read_to_end(&mut all).expect("read");
    assert_eq!(all, bytes);
    reader.seek(SeekFrom::Start(50_000)).expect("seek");
    let mut four = [0u8; 4];
    reader.read_exact(&mut four).expect("read");
    assert_eq!(four, bytes[50_000..50_004]);
    let mut at = [0u8; 3];
    assert_eq!(reader.read_at(&mut at, 99_998).expect("read_at"), 2);
    assert_eq!(at[..2], bytes[99_998..]);
    assert_eq!(reader.read_at(&mut at, 100_000).expect("read_at"), 0);
    assert_eq!(store.read_to_vec(&digest).expect("read"), bytes);
}

#[test]
fn info_reports_size_and_missing_blobs_are_not_found() {
    let (_dir, store) = temp_store();
    let digest = put(&store, b"hello");
    assert_eq!(store.info(&digest).expect("info").size, 5);
    let missing = Digest::sha256_of(b"missing");
    let err = store.info(&missing).expect_err("missing");
    assert_eq!(err.kind(), ContentErrorKind::NotFound);
    assert_eq!(err.to_string(), format!("blob {missing} not found"));
    assert_eq!(
        store.reader(&missing).expect_err("missing").kind(),
        ContentErrorKind::NotFound
    );
    assert!(!store.contains(&missing));
}

#[test]
fn delete_removes_the_blob_once() {
    let (_dir, store) = temp_store();
    let digest = put(&store, b"bye");
    store.delete(&digest).expect("delete");
    assert!(!store.contains(&digest));
    assert_eq!(
        store.delete(&digest).expect_err("gone").kind(),
        ContentErrorKind::NotFound
    );
}

#[test]
fn list_is_sorted_and_skips_stray_files() {
    let (_dir, store) = temp_store();
    let mut digests = vec![put(&store, b"a"), put(&store, b"b"), put(&store, b"c")];
    digests.sort();
    fs::write(store.root().join("blobs/sha256/not-a-digest"), b"x").expect("stray");
    let listed: Vec<Digest> = store
        .list()
        .expect("list")
        .into_iter()
        .map(|i| i.digest)
        .collect();
    assert_eq!(listed, digests);
}

#[test]
fn committed_blobs_are_read_only_and_verify() {
    let (_dir, store) = temp_store();
    let digest = put(&store, b"content");
    let mode = fs::metadata(store.blob_path(&digest))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o444);
    store.verify(&digest).expect("verifies");
}

#[test]
fn verify_detects_a_corrupted_blob() {
    let (_dir, store) = temp_store();
    let digest = put(&store, b"original");
    let path = store.blob_path(&digest);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::write(&path, b"tampered").expect("tamper");
    match store.verify(&digest) {
        Err(ContentError::Corrupted { actual, .. }) => {
            assert_eq!(actual, Digest::sha256_of(b"tampered"))
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn reopening_a_store_keeps_its_blobs() {
    let (dir, store) = temp_store();
    let digest = put(&store, b"persistent");
    drop(store);
    let again = Store::open(dir.path().join("content")).expect("reopen");
    assert_eq!(again.read_to_vec(&digest).expect("read"), b"persistent");
}
