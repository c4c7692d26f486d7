//! Behaviour of apply on well-formed layers: compression, DiffID, whiteouts in native mode,
//! hardlinks, modes, mtimes, xattrs, sparse files.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use sha2::Digest as _;

use super::*;
use crate::test_tar::{lstat, LayerTar, Sandbox};

fn apply_native(sandbox: &Sandbox, layer: &[u8]) -> ApplySummary {
    apply_layer(layer, &sandbox.root, &ApplyOptions::unprivileged()).expect("apply")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

#[test]
fn diff_id_is_the_sha256_of_the_uncompressed_stream() {
    let sb = Sandbox::new();
    let layer = LayerTar::new().file("a", b"hello").finish();
    let summary = apply_native(&sb, &gzip(&layer));
    assert_eq!(summary.compression, Compression::Gzip);
    assert_eq!(summary.size, layer.len() as u64);
    assert_eq!(
        summary.diff_id,
        <[u8; 32]>::from(sha2::Sha256::digest(&layer))
    );
    assert_eq!(summary.entries, 1);
}

#[test]
fn multi_member_gzip_layers_apply_every_member() {
    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .file("a", &[1u8; 3000])
        .file("b", b"second")
        .finish();
    let (head, tail) = layer.split_at(1024);
    let mut data = gzip(head);
    data.extend(gzip(tail));
    let summary = apply_native(&sb, &data);
    assert_eq!(std::fs::read(sb.path("b")).expect("b"), b"second");
    assert_eq!(
        summary.diff_id,
        <[u8; 32]>::from(sha2::Sha256::digest(&layer))
    );
}

#[test]
fn zstd_layers_apply() {
    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .dir("d", 0o755, 5)
        .file("d/f", b"zstd")
        .finish();
    let summary = apply_native(&sb, &zstd::encode_all(layer.as_slice(), 3).expect("zstd"));
    assert_eq!(summary.compression, Compression::Zstd);
    assert_eq!(std::fs::read(sb.path("d/f")).expect("f"), b"zstd");
}

#[test]
fn native_whiteout_deletes_lower_files_and_directories() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("gone/deep")).expect("mkdir");
    std::fs::write(sb.path("gone/deep/f"), b"x").expect("write");
    std::fs::write(sb.path("file"), b"x").expect("write");
    let layer = LayerTar::new()
        .file(".wh.gone", b"")
        .file(".wh.file", b"")
        .file(".wh.never-there", b"")
        .finish();
    apply_native(&sb, &layer);
    assert!(lstat(&sb.path("gone")).is_none());
    assert!(lstat(&sb.path("file")).is_none());
}

#[test]
fn native_opaque_marker_hides_lower_children_but_keeps_this_layers() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("d/old")).expect("mkdir");
    std::fs::write(sb.path("d/lower"), b"x").expect("write");
    let layer = LayerTar::new()
        .dir("d", 0o755, 5)
        .file("d/before", b"1")
        .file("d/.wh..wh..opq", b"")
        .file("d/after", b"2")
        .finish();
    apply_native(&sb, &layer);
    let mut names: Vec<_> = std::fs::read_dir(sb.path("d"))
        .expect("d")
        .map(|e| e.expect("e").file_name())
        .collect();
    names.sort();
    assert_eq!(names, vec!["after", "before"]);
}

#[test]
fn aufs_metadata_whiteouts_are_skipped() {
    let sb = Sandbox::new();
    let layer = LayerTar::new().file(".wh..wh.plnk/1.2", b"").finish();
    let summary = apply_native(&sb, &layer);
    assert_eq!(summary.skipped.len(), 1);
    assert_eq!(summary.skipped[0].reason, SkipReason::AufsMetadata);
}

#[test]
fn hardlinks_share_an_inode_with_their_target() {
    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .file("a", b"data")
        .hardlink("b", "a")
        .hardlink("sub/c", "/a")
        .finish();
    apply_native(&sb, &layer);
    let (a, b, c) = (
        lstat(&sb.path("a")).expect("a"),
        lstat(&sb.path("b")).expect("b"),
        lstat(&sb.path("sub/c")).expect("c"),
    );
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.ino(), c.ino());
    assert_eq!(a.nlink(), 3);
}

#[test]
fn setuid_setgid_and_sticky_modes_are_kept() {
    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .file_mode("suid", b"", 0o4755, 1)
        .file_mode("sgid", b"", 0o2711, 1)
        .dir("tmp", 0o1777, 1)
        .finish();
    apply_native(&sb, &layer);
    let mode = |p: &str| lstat(&sb.path(p)).expect(p).permissions().mode() & 0o7777;
    assert_eq!(mode("suid"), 0o4755);
    assert_eq!(mode("sgid"), 0o2711);
    assert_eq!(mode("tmp"), 0o1777);
}

#[test]
fn directory_mtimes_are_set_after_their_children_are_written() {
    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .dir("d", 0o755, 1_000_000)
        .dir("d/e", 0o755, 2_000_000)
        .file_mode("d/e/f", b"x", 0o644, 3_000_000)
        .file_mode("d/g", b"y", 0o644, 4_000_000)
        .finish();
    apply_native(&sb, &layer);
    let mtime = |p: &str| lstat(&sb.path(p)).expect(p).mtime();
    assert_eq!(mtime("d"), 1_000_000);
    assert_eq!(mtime("d/e"), 2_000_000);
    assert_eq!(mtime("d/e/f"), 3_000_000);
    assert_eq!(mtime("d/g"), 4_000_000);
}

#[test]
fn pax_mtime_with_nanoseconds_and_long_names_are_honoured() {
    let sb = Sandbox::new();
    let long = format!("{}/file", "x".repeat(150));
    let layer = LayerTar::new()
        .pax(&[("path", long.as_bytes()), ("mtime", b"1234.5")])
        .file("short", b"long")
        .finish();
    apply_native(&sb, &layer);
    let meta = lstat(&sb.path(&long)).expect("long name");
    assert_eq!((meta.mtime(), meta.mtime_nsec()), (1234, 500_000_000));
}

#[test]
fn existing_directory_is_kept_and_other_nodes_are_replaced() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path("d")).expect("mkdir");
    std::fs::write(sb.path("d/keep"), b"x").expect("write");
    std::fs::create_dir_all(sb.path("was-dir/sub")).expect("mkdir");
    std::fs::write(sb.path("was-file"), b"x").expect("write");
    let layer = LayerTar::new()
        .dir("d", 0o700, 1)
        .file("was-dir", b"now a file")
        .dir("was-file", 0o755, 1)
        .finish();
    apply_native(&sb, &layer);
    assert!(lstat(&sb.path("d/keep")).is_some());
    assert_eq!(
        lstat(&sb.path("d")).expect("d").permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::read(sb.path("was-dir")).expect("file"),
        b"now a file"
    );
    assert!(lstat(&sb.path("was-file")).expect("dir").is_dir());
}

#[test]
fn missing_parent_directories_are_created() {
    let sb = Sandbox::new();
    let layer = LayerTar::new().file("a/b/c/f", b"x").finish();
    apply_native(&sb, &layer);
    assert_eq!(
        lstat(&sb.path("a/b")).expect("a/b").permissions().mode() & 0o777,
        0o755
    );
}

#[test]
fn symlinks_keep_their_target_verbatim_and_fifos_are_created() {
    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .symlink("abs", "/usr/bin/env")
        .symlink("rel", "../x")
        .node("fifo", tar::EntryType::Fifo, 0, 0)
        .finish();
    apply_native(&sb, &layer);
    assert_eq!(
        std::fs::read_link(sb.path("abs")).expect("abs").to_str(),
        Some("/usr/bin/env")
    );
    assert_eq!(
        std::fs::read_link(sb.path("rel")).expect("rel").to_str(),
        Some("../x")
    );
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &lstat(&sb.path("fifo")).expect("fifo").file_type()
    ));
}

#[test]
fn user_xattrs_from_pax_records_are_set_or_reported() {
    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .pax(&[("SCHILY.xattr.user.berth", b"v1")])
        .file("f", b"x")
        .finish();
    let summary = apply_native(&sb, &layer);
    let mut buf = [0u8; 16];
    match rustix::fs::lgetxattr(sb.path("f"), "user.berth", &mut buf[..]) {
        Ok(n) => assert_eq!(&buf[..n], b"v1"),
        // A filesystem without user xattrs: then apply must have said so.
        Err(_) => assert_eq!(
            summary.skipped[0].reason,
            SkipReason::Xattr("user.berth".into())
        ),
    }
}

#[test]
fn gnu_sparse_files_keep_their_content_and_holes() {
    let src = tempfile::tempdir().expect("tempdir");
    let path = src.path().join("sparse");
    {
        let f = std::fs::File::create(&path).expect("create");
        f.set_len(8 << 20).expect("extend");
        use std::os::unix::fs::FileExt;
        f.write_all_at(b"head", 0).expect("write");
        f.write_all_at(b"tail", (8 << 20) - 4).expect("write");
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.sparse(true);
    builder
        .append_path_with_name(&path, "sparse")
        .expect("append");
    let layer = builder.into_inner().expect("finish");
    assert!(layer.len() < 1 << 20, "the tar itself is sparse");
    let sb = Sandbox::new();
    apply_native(&sb, &layer);
    let data = std::fs::read(sb.path("sparse")).expect("read");
    assert_eq!(data.len(), 8 << 20);
    assert_eq!(&data[..4], b"head");
    assert_eq!(&data[data.len() - 4..], b"tail");
    assert!(data[4..data.len() - 4].iter().all(|b| *b == 0));
    let meta = lstat(&sb.path("sparse")).expect("meta");
    assert!(
        meta.blocks() * 512 < 4 << 20,
        "holes preserved: {} blocks",
        meta.blocks()
    );
}

#[test]
fn remapped_ownership_reports_unmapped_ids() {
    let sb = Sandbox::new();
    let layer = LayerTar::new().file("f", b"x").finish();
    let options = ApplyOptions {
        ownership: Ownership::Remap {
            uids: vec![],
            gids: vec![],
        },
        ..ApplyOptions::unprivileged()
    };
    let err = apply_layer(layer.as_slice(), &sb.root, &options).expect_err("unmapped");
    assert_eq!(
        err.to_string(),
        r#"layer entry "f" is owned by id 0, which the id mapping does not cover"#
    );
}

#[test]
fn pax_sparse_files_from_gnu_tar_keep_name_content_and_holes() {
    let src = tempfile::tempdir().expect("tempdir");
    let path = src.path().join("holes");
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(&path).expect("create");
        f.set_len(8 << 20).expect("extend");
        f.write_all_at(b"head", 0).expect("write");
        f.write_all_at(&[9u8; 5000], 4 << 20).expect("write");
        f.write_all_at(b"tail", (8 << 20) - 4).expect("write");
    }
    let want = std::fs::read(&path).expect("read source");
    for version in ["0.0", "0.1", "1.0"] {
        let out = std::process::Command::new("tar")
            .args([
                "--format=posix",
                "--sparse",
                &format!("--sparse-version={version}"),
                "-cf",
                "-",
                "-C",
            ])
            .arg(src.path())
            .arg("holes")
            .output()
            .expect("GNU tar runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.len() < 1 << 20, "GNU tar wrote a sparse archive");
        let sb = Sandbox::new();
        let summary = apply_native(&sb, &out.stdout);
        assert_eq!(summary.entries, 1, "version {version}");
        let got = std::fs::read(sb.path("holes")).expect("real name used");
        assert!(got == want, "version {version}: content differs");
        let blocks = lstat(&sb.path("holes")).expect("meta").blocks();
        assert!(
            blocks * 512 < 1 << 20,
            "version {version}: holes preserved ({blocks} blocks)"
        );
    }
}

#[test]
fn pax_sparse_chunks_beyond_the_real_size_are_refused() {
    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .pax(&[
            ("GNU.sparse.map", b"0,4,100,4"),
            ("GNU.sparse.realsize", b"50"),
            ("GNU.sparse.name", b"s"),
        ])
        .file("GNUSparseFile.0/s", b"abcdefgh")
        .finish();
    let err = apply_layer(layer.as_slice(), &sb.root, &ApplyOptions::unprivileged())
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        r#"layer entry "s" is malformed: sparse chunks overlap or exceed the file size"#
    );
}

#[test]
fn gnu_long_names_and_long_link_targets_from_gnu_tar_apply() {
    let src = tempfile::tempdir().expect("tempdir");
    let long_dir = "d".repeat(120);
    let long_file = format!("{long_dir}/{}", "f".repeat(130));
    std::fs::create_dir(src.path().join(&long_dir)).expect("mkdir");
    std::fs::write(src.path().join(&long_file), b"long").expect("write");
    std::os::unix::fs::symlink(&long_file, src.path().join("link")).expect("symlink");
    let out = std::process::Command::new("tar")
        .args(["--format=gnu", "-cf", "-", "-C"])
        .arg(src.path())
        .args([long_dir.as_str(), "link"])
        .output()
        .expect("GNU tar runs");
    assert!(out.status.success());
    let sb = Sandbox::new();
    apply_native(&sb, &out.stdout);
    assert_eq!(
        std::fs::read(sb.path(&long_file)).expect("long name"),
        b"long"
    );
    assert_eq!(
        std::fs::read_link(sb.path("link")).expect("link").to_str(),
        Some(long_file.as_str())
    );
}

#[test]
fn global_pax_headers_like_git_archive_writes_are_not_entries() {
    let sb = Sandbox::new();
    let global = crate::test_tar::raw_header(
        b"pax_global_header",
        tar::EntryType::XGlobalHeader,
        52,
        b"",
        0o666,
    );
    let record = b"52 comment=0123456789abcdef0123456789abcdef01234567\n";
    let layer = LayerTar::new()
        .header(&global, record)
        .file("a", b"x")
        .finish();
    let summary = apply_native(&sb, &layer);
    assert_eq!(summary.entries, 1);
    assert!(lstat(&sb.path("pax_global_header")).is_none());
    assert_eq!(std::fs::read(sb.path("a")).expect("a"), b"x");
}

#[test]
fn parallel_apply_matches_serial_apply_for_gzip_and_zstd() {
    let mut tar = LayerTar::new();
    for d in 0..7 {
        tar.dir(&format!("d{d}"), 0o755, 1_000);
    }
    for i in 0..200 {
        tar.file(&format!("d{}/f{i}", i % 7), &vec![i as u8; 1000 + i * 97]);
    }
    let layer = tar.finish();
    for data in [
        gzip(&layer),
        zstd::encode_all(layer.as_slice(), 3).expect("zstd"),
        layer.clone(),
    ] {
        let (serial, parallel) = (Sandbox::new(), Sandbox::new());
        let a = apply_native(&serial, &data);
        let b = apply_layer_parallel(
            data.as_slice(),
            &parallel.root,
            &ApplyOptions::unprivileged(),
        )
        .expect("parallel");
        assert_eq!(a, b);
        let (ta, _) = crate::diff::tar_tree(&serial.root, Vec::new()).expect("tar");
        let (tb, _) = crate::diff::tar_tree(&parallel.root, Vec::new()).expect("tar");
        assert!(ta == tb, "serial and parallel trees differ");
    }
}

#[test]
fn parallel_apply_stops_the_decoder_thread_on_an_early_error() {
    let mut tar = LayerTar::new();
    tar.file("../escape", b"x");
    for i in 0..100 {
        tar.file(&format!("f{i}"), &[7u8; 100_000]);
    }
    let data = gzip(&tar.finish());
    let sb = Sandbox::new();
    let err = apply_layer_parallel(data.as_slice(), &sb.root, &ApplyOptions::unprivileged())
        .expect_err("escape");
    assert!(matches!(err, ApplyError::Escape { .. }), "{err}");
    let mut cut = data.clone();
    cut.truncate(data.len() / 3);
    let err = apply_layer_parallel(
        cut.as_slice(),
        &Sandbox::new().root,
        &ApplyOptions::unprivileged(),
    )
    .expect_err("cut");
    assert!(
        matches!(err, ApplyError::Escape { .. } | ApplyError::Read(_)),
        "{err}"
    );
}

#[test]
fn verified_tar_applies_the_same_tree_without_hashing() {
    let layer = LayerTar::new()
        .dir("d", 0o755, 5)
        .file("d/f", &[7u8; 100_000])
        .file("g", b"second")
        .finish();
    let hashed = Sandbox::new();
    let summary = apply_native(&hashed, &layer);
    let verified = Sandbox::new();
    let applied = apply_verified_tar(
        layer.as_slice(),
        &verified.root,
        &ApplyOptions::unprivileged(),
    )
    .expect("apply");
    assert_eq!(applied.entries, summary.entries);
    assert_eq!(applied.skipped, summary.skipped);
    for path in ["d/f", "g"] {
        assert_eq!(
            std::fs::read(verified.path(path)).expect("verified"),
            std::fs::read(hashed.path(path)).expect("hashed"),
            "{path}"
        );
    }
    assert_eq!(lstat(&verified.path("d")).expect("d").mtime(), 5);
}

#[test]
fn verified_tar_refuses_a_compressed_stream_before_writing() {
    let sb = Sandbox::new();
    let layer = LayerTar::new().file("a", b"hello").finish();
    let err = apply_verified_tar(
        gzip(&layer).as_slice(),
        &sb.root,
        &ApplyOptions::unprivileged(),
    )
    .expect_err("gzip is not a verified tar");
    assert!(
        matches!(
            err,
            ApplyError::Compressed {
                compression: Compression::Gzip
            }
        ),
        "{err}"
    );
    assert!(!sb.path("a").exists());
}
