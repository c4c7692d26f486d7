//! Layer apply as root: overlay whiteout markers (0/0 char devices, trusted.overlay.opaque),
//! ownership kept and remapped, device nodes, trusted xattrs, and the overlay diff round trip.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_e2e::require_root;
use berth_snapshot::{
    apply_layer, diff_overlay_upper, tar_tree, ApplyOptions, IdMapping, Ownership,
};

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in temp paths")
}

fn mknod(path: &Path, kind: libc::mode_t, major: u32, minor: u32) {
    // SAFETY: cpath gives a valid NUL-terminated path; mknod has no memory preconditions.
    let rc = unsafe {
        libc::mknod(
            cpath(path).as_ptr(),
            kind | 0o640,
            libc::makedev(major, minor),
        )
    };
    assert_eq!(
        rc,
        0,
        "mknod {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let name = CString::new(name).expect("name");
    let mut buf = vec![0u8; 256];
    // SAFETY: buf is writable for buf.len() bytes; both strings are NUL-terminated.
    let n = unsafe {
        libc::lgetxattr(
            cpath(path).as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| {
        buf.truncate(n as usize);
        buf
    })
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let name = CString::new(name).expect("name");
    // SAFETY: value is readable for value.len() bytes; both strings are NUL-terminated.
    let rc = unsafe {
        libc::lsetxattr(
            cpath(path).as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "lsetxattr: {}", std::io::Error::last_os_error());
}

fn layer_of(src: &Path) -> Vec<u8> {
    tar_tree(src, Vec::new()).expect("tar").0
}

fn entry_names(layer: &[u8]) -> Vec<String> {
    // The e2e crate has no tar dependency: list names by applying nothing, reading headers.
    let mut names = Vec::new();
    let mut offset = 0;
    while offset + 512 <= layer.len() && layer[offset..offset + 512].iter().any(|b| *b != 0) {
        let header = &layer[offset..offset + 512];
        let name_end = header[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let size_text = String::from_utf8_lossy(&header[124..136])
            .trim_matches(|c: char| c == '\0' || c == ' ')
            .to_string();
        let size = u64::from_str_radix(&size_text, 8).expect("octal size") as usize;
        if header[156] != b'x' {
            names.push(String::from_utf8_lossy(&header[..name_end]).into_owned());
        }
        offset += 512 + size.div_ceil(512) * 512;
    }
    names
}

#[test]
fn overlay_mode_writes_whiteout_devices_and_opaque_xattrs_and_diffs_back() {
    require_root();
    let src = tempfile::tempdir().expect("tempdir");
    std::fs::write(src.path().join(".wh.gone"), b"").expect("write");
    std::fs::create_dir(src.path().join("d")).expect("mkdir");
    std::fs::write(src.path().join("d/.wh..wh..opq"), b"").expect("write");
    std::fs::write(src.path().join("d/x"), b"x").expect("write");
    let layer = layer_of(src.path());

    let upper = tempfile::tempdir().expect("tempdir");
    apply_layer(layer.as_slice(), upper.path(), &ApplyOptions::overlay()).expect("apply");
    let gone = std::fs::symlink_metadata(upper.path().join("gone")).expect("whiteout exists");
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert_eq!(
        get_xattr(&upper.path().join("d"), "trusted.overlay.opaque"),
        Some(b"y".to_vec())
    );
    assert!(std::fs::symlink_metadata(upper.path().join("d/.wh..wh..opq")).is_err());

    let (diff, _) = diff_overlay_upper(upper.path(), Vec::new()).expect("diff");
    assert_eq!(
        entry_names(&diff),
        vec!["d/", "d/.wh..wh..opq", "d/x", ".wh.gone"]
    );
}

#[test]
fn root_apply_keeps_owners_devices_setuid_and_trusted_xattrs() {
    require_root();
    let src = tempfile::tempdir().expect("tempdir");
    let file = src.path().join("suid");
    std::fs::write(&file, b"bin").expect("write");
    std::os::unix::fs::lchown(&file, Some(1234), Some(5678)).expect("chown");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o4750))
        .expect("chmod");
    set_xattr(&file, "trusted.berth", b"t");
    std::fs::create_dir(src.path().join("dev")).expect("mkdir");
    mknod(&src.path().join("dev/null"), libc::S_IFCHR, 1, 3);
    mknod(&src.path().join("dev/loop9"), libc::S_IFBLK, 7, 9);
    let layer = layer_of(src.path());

    let dst = tempfile::tempdir().expect("tempdir");
    let summary =
        apply_layer(layer.as_slice(), dst.path(), &ApplyOptions::native()).expect("apply");
    assert!(summary.skipped.is_empty(), "{:?}", summary.skipped);
    let meta = std::fs::symlink_metadata(dst.path().join("suid")).expect("suid");
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (1234, 5678, 0o4750)
    );
    assert_eq!(
        get_xattr(&dst.path().join("suid"), "trusted.berth"),
        Some(b"t".to_vec())
    );
    let null = std::fs::symlink_metadata(dst.path().join("dev/null")).expect("null");
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    let lo = std::fs::symlink_metadata(dst.path().join("dev/loop9")).expect("loop");
    assert!(lo.file_type().is_block_device());
    assert_eq!(lo.rdev(), libc::makedev(7, 9));
}

#[test]
fn remapped_ownership_shifts_ids_into_the_user_namespace_range() {
    require_root();
    let src = tempfile::tempdir().expect("tempdir");
    std::fs::write(src.path().join("f"), b"x").expect("write");
    std::os::unix::fs::lchown(src.path().join("f"), Some(1000), Some(0)).expect("chown");
    std::os::unix::fs::symlink("f", src.path().join("l")).expect("symlink");
    std::os::unix::fs::lchown(src.path().join("l"), Some(7), Some(8)).expect("chown");
    let layer = layer_of(src.path());
    let map = vec![IdMapping {
        container_id: 0,
        host_id: 200000,
        size: 65536,
    }];
    let options = ApplyOptions {
        ownership: Ownership::Remap {
            uids: map.clone(),
            gids: map,
        },
        ..ApplyOptions::native()
    };
    let dst = tempfile::tempdir().expect("tempdir");
    apply_layer(layer.as_slice(), dst.path(), &options).expect("apply");
    let f = std::fs::symlink_metadata(dst.path().join("f")).expect("f");
    assert_eq!((f.uid(), f.gid()), (201000, 200000));
    let l = std::fs::symlink_metadata(dst.path().join("l")).expect("l");
    assert_eq!((l.uid(), l.gid()), (200007, 200008));
}
