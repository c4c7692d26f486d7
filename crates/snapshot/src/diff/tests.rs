//! Diff output: reproducible bytes, Docker's naming (trailing `/` on directories, `.wh.`
//! whiteouts), PAX only when needed, hardlinks, and apply(diff) round trips.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;
use crate::apply::{apply_layer, ApplyOptions};

fn write(path: &Path, data: &[u8], mtime: i64) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, data).expect("write");
    set_mtime(path, mtime);
}

fn set_mtime(path: &Path, secs: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .expect("utimensat");
}

/// (name, type byte, size, linkname, uname, gname, has PAX) of every entry.
fn listing(tar_bytes: &[u8]) -> Vec<(String, char, u64, String)> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in archive.entries().expect("entries") {
        let entry = entry.expect("entry");
        let h = entry.header();
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        out.push((
            String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
            char::from(h.entry_type().as_byte()),
            entry.size(),
            entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default(),
        ));
    }
    out
}

fn sample_tree(root: &Path) {
    write(&root.join("b/file"), b"bee", 1_000);
    write(&root.join("a"), b"ay", 2_000);
    std::fs::hard_link(root.join("a"), root.join("c-link")).expect("hardlink");
    std::os::unix::fs::symlink("a", root.join("sym")).expect("symlink");
    set_mtime(&root.join("sym"), 3_000);
    set_mtime(&root.join("b"), 4_000);
}

#[test]
fn tar_tree_bytes_are_reproducible_and_sorted() {
    let dir = tempfile::tempdir().expect("tempdir");
    sample_tree(dir.path());
    let (first, summary) = tar_tree(dir.path(), Vec::new()).expect("tar");
    // Reading every file changes atimes; the bytes must not change with them.
    for f in ["a", "b/file"] {
        let mut s = String::new();
        std::fs::File::open(dir.path().join(f))
            .expect("open")
            .read_to_string(&mut s)
            .expect("read");
    }
    let (second, _) = tar_tree(dir.path(), Vec::new()).expect("tar");
    assert_eq!(first, second);
    assert_eq!(summary.size, first.len() as u64);
    assert_eq!(summary.entries, 5);
    let names: Vec<_> = listing(&first)
        .into_iter()
        .map(|(n, t, _, l)| (n, t, l))
        .collect();
    assert_eq!(
        names,
        vec![
            ("a".into(), '0', String::new()),
            ("b/".into(), '5', String::new()),
            ("b/file".into(), '0', String::new()),
            ("c-link".into(), '1', "a".into()),
            ("sym".into(), '2', "a".into()),
        ]
    );
}

#[test]
fn short_entries_have_no_pax_headers_and_long_names_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(&dir.path().join("short"), b"x", 1);
    let (plain, _) = tar_tree(dir.path(), Vec::new()).expect("tar");
    assert_eq!(
        plain.len(),
        512 * 2 + 1024,
        "one header, one data block, two end blocks"
    );
    let long = "l".repeat(120);
    write(&dir.path().join(&long), b"x", 1);
    let (with_long, _) = tar_tree(dir.path(), Vec::new()).expect("tar");
    let names: Vec<_> = listing(&with_long).into_iter().map(|e| e.0).collect();
    assert_eq!(names, vec![long, "short".to_string()]);
}

#[test]
fn tree_diff_lists_additions_changes_and_whiteouts_only() {
    let lower = tempfile::tempdir().expect("tempdir");
    let upper = tempfile::tempdir().expect("tempdir");
    for root in [lower.path(), upper.path()] {
        write(&root.join("same/keep"), b"k", 10);
        write(&root.join("changed"), b"old", 10);
        write(&root.join("gone/inner"), b"g", 10);
        set_mtime(&root.join("same"), 10);
        set_mtime(&root.join("gone"), 10);
    }
    write(&upper.path().join("changed"), b"new", 20);
    write(&upper.path().join("added/file"), b"a", 20);
    std::fs::remove_dir_all(upper.path().join("gone")).expect("rm");
    set_mtime(&upper.path().join("added"), 20);
    let (layer, _) = diff_trees(lower.path(), upper.path(), Vec::new()).expect("diff");
    let names: Vec<_> = listing(&layer).into_iter().map(|e| e.0).collect();
    // Whiteouts sit where the deleted name sorts, as in Docker's ExportChanges.
    assert_eq!(names, vec!["added/", "added/file", "changed", ".wh.gone"]);

    // Applying the diff onto a copy of lower gives upper.
    let target = tempfile::tempdir().expect("tempdir");
    let (lower_tar, _) = tar_tree(lower.path(), Vec::new()).expect("tar");
    apply_layer(
        lower_tar.as_slice(),
        target.path(),
        &ApplyOptions::unprivileged(),
    )
    .expect("lower");
    apply_layer(
        layer.as_slice(),
        target.path(),
        &ApplyOptions::unprivileged(),
    )
    .expect("diff");
    let (want, _) = tar_tree(upper.path(), Vec::new()).expect("tar");
    let (got, _) = tar_tree(target.path(), Vec::new()).expect("tar");
    assert_eq!(listing(&got), listing(&want));
    assert_eq!(got, want);
}

#[test]
fn directory_replaced_by_a_file_is_one_entry() {
    let lower = tempfile::tempdir().expect("tempdir");
    let upper = tempfile::tempdir().expect("tempdir");
    write(&lower.path().join("x/child"), b"c", 1);
    write(&upper.path().join("x"), b"file now", 1);
    let (layer, _) = diff_trees(lower.path(), upper.path(), Vec::new()).expect("diff");
    let entries = listing(&layer);
    assert_eq!(entries, vec![("x".into(), '0', 8, String::new())]);
}

#[test]
fn modes_and_xattrs_round_trip_through_diff_and_apply() {
    let src = tempfile::tempdir().expect("tempdir");
    write(&src.path().join("suid"), b"", 5);
    std::fs::set_permissions(
        src.path().join("suid"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .expect("chmod");
    let xattr_ok = rustix::fs::lsetxattr(
        src.path().join("suid"),
        "user.k",
        b"v",
        rustix::fs::XattrFlags::empty(),
    )
    .is_ok();
    let (layer, _) = tar_tree(src.path(), Vec::new()).expect("tar");
    let dst = tempfile::tempdir().expect("tempdir");
    apply_layer(layer.as_slice(), dst.path(), &ApplyOptions::unprivileged()).expect("apply");
    let meta = std::fs::symlink_metadata(dst.path().join("suid")).expect("meta");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(meta.mtime(), 5);
    if xattr_ok {
        let mut buf = [0u8; 4];
        let n =
            rustix::fs::lgetxattr(dst.path().join("suid"), "user.k", &mut buf[..]).expect("xattr");
        assert_eq!(&buf[..n], b"v");
    }
}

#[test]
fn overlay_upper_without_markers_is_a_plain_tree_tar() {
    let upper = tempfile::tempdir().expect("tempdir");
    sample_tree(upper.path());
    let (overlay, _) = diff_overlay_upper(upper.path(), Vec::new()).expect("diff");
    let (plain, _) = tar_tree(upper.path(), Vec::new()).expect("tar");
    assert_eq!(overlay, plain);
}

#[test]
fn gnu_tar_reads_the_diff_as_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    sample_tree(dir.path());
    let long = format!("b/{}", "n".repeat(130));
    write(&dir.path().join(&long), b"long", 6_000);
    set_mtime(&dir.path().join("b"), 4_000);
    let (layer, _) = tar_tree(dir.path(), Vec::new()).expect("tar");
    let scratch = tempfile::tempdir().expect("tempdir");
    let tar_file = scratch.path().join("layer.tar");
    std::fs::write(&tar_file, &layer).expect("write tar");
    let output = std::process::Command::new("tar")
        .args(["--numeric-owner", "--full-time", "-tvf"])
        .arg(&tar_file)
        .env("TZ", "UTC")
        .output()
        .expect("GNU tar runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let owner = format!("{uid}/{gid}");
    let long_line = format!("-rw-r--r-- {owner} 4 1970-01-01 01:40:00 {long}");
    assert_eq!(
        lines,
        vec![
            format!("-rw-r--r-- {owner} 2 1970-01-01 00:33:20 a"),
            format!("drwxr-xr-x {owner} 0 1970-01-01 01:06:40 b/"),
            format!("-rw-r--r-- {owner} 3 1970-01-01 00:16:40 b/file"),
            long_line,
            format!("hrw-r--r-- {owner} 0 1970-01-01 00:33:20 c-link link to a"),
            format!("lrwxrwxrwx {owner} 0 1970-01-01 00:50:00 sym -> a"),
        ]
    );
}
