//! The hostile tar suite: every layer here tries to write outside the target root or to
//! confuse the applier; each test asserts the sentinel next to the root is untouched and
//! that any error names the offending entry.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use tar::EntryType;

use super::*;
use crate::test_tar::{lstat, raw_header, LayerTar, Sandbox};

fn apply_native(sandbox: &Sandbox, layer: &[u8]) -> Result<ApplySummary, ApplyError> {
    apply_layer(layer, &sandbox.root, &ApplyOptions::unprivileged())
}

#[test]
fn dotdot_traversal_is_refused_with_the_entry_named() {
    let sb = Sandbox::new();
    let layer = LayerTar::new().file("../outside/passwd", b"pwned").finish();
    let err = apply_native(&sb, &layer).expect_err("must refuse");
    assert_eq!(
        err.to_string(),
        r#"layer entry "../outside/passwd" escapes the root"#
    );
    sb.assert_outside_untouched();
}

#[test]
fn deep_dotdot_after_a_real_component_is_refused() {
    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .file("a/../../../etc/passwd", b"pwned")
        .finish();
    let err = apply_native(&sb, &layer).expect_err("must refuse");
    assert!(
        matches!(&err, ApplyError::Escape { entry } if entry == "a/../../../etc/passwd"),
        "{err}"
    );
    sb.assert_outside_untouched();
}

#[test]
fn absolute_names_are_made_relative_to_the_root() {
    let sb = Sandbox::new();
    let abs = format!("{}/pwned", sb.outside.display());
    let layer = LayerTar::new().file(&abs, b"inside").finish();
    apply_native(&sb, &layer).expect("apply");
    let landed = sb.root.join(abs.trim_start_matches('/'));
    assert_eq!(std::fs::read(landed).expect("file inside root"), b"inside");
    sb.assert_outside_untouched();
}

#[test]
fn relative_symlink_climbing_out_cannot_redirect_a_later_entry() {
    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .symlink("up", "../../../..")
        .file("up/outside/passwd", b"pwned")
        .finish();
    apply_native(&sb, &layer).expect("apply resolves inside the root");
    // `up` resolves to the root itself, so the file lands at root/outside/passwd.
    assert_eq!(
        std::fs::read(sb.path("outside/passwd")).expect("inside"),
        b"pwned"
    );
    sb.assert_outside_untouched();
}

#[test]
fn absolute_symlink_to_the_host_root_resolves_to_the_target_root() {
    let sb = Sandbox::new();
    let rel_outside = sb.outside.display().to_string();
    let layer = LayerTar::new()
        .symlink("host", "/")
        .file(&format!("host{rel_outside}/passwd"), b"pwned")
        .finish();
    apply_native(&sb, &layer).expect("apply");
    let inside = sb
        .root
        .join(rel_outside.trim_start_matches('/'))
        .join("passwd");
    assert_eq!(std::fs::read(inside).expect("inside"), b"pwned");
    sb.assert_outside_untouched();
}

#[test]
fn symlink_to_an_outside_directory_then_write_through_it_is_refused() {
    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .symlink("etc", &sb.outside.display().to_string())
        .file("etc/passwd", b"pwned")
        .finish();
    // The symlink's target does not exist inside the root, so the parent cannot be opened.
    let err = apply_native(&sb, &layer).expect_err("dangling in-root target");
    assert!(
        err.to_string().starts_with(r#"layer entry "etc/passwd""#),
        "{err}"
    );
    sb.assert_outside_untouched();
}

#[test]
fn file_entry_replaces_a_symlink_instead_of_writing_through_it() {
    let sb = Sandbox::new();
    let target = sb.outside.join("passwd").display().to_string();
    let layer = LayerTar::new()
        .symlink("p", &target)
        .file("p", b"pwned")
        .finish();
    apply_native(&sb, &layer).expect("apply");
    let meta = lstat(&sb.path("p")).expect("exists");
    assert!(meta.is_file());
    assert_eq!(std::fs::read(sb.path("p")).expect("read"), b"pwned");
    sb.assert_outside_untouched();
}

#[test]
fn hardlink_to_an_absolute_host_path_is_not_found_inside_the_root() {
    let sb = Sandbox::new();
    let target = sb.outside.join("passwd").display().to_string();
    let layer = LayerTar::new().hardlink("h", &target).finish();
    let err = apply_native(&sb, &layer).expect_err("must refuse");
    assert!(
        matches!(&err, ApplyError::HardlinkTargetMissing { entry, .. } if entry == "h"),
        "{err}"
    );
    sb.assert_outside_untouched();
}

#[test]
fn hardlink_climbing_out_of_the_root_is_refused() {
    let sb = Sandbox::new();
    let layer = LayerTar::new().hardlink("h", "../outside/passwd").finish();
    let err = apply_native(&sb, &layer).expect_err("must refuse");
    assert_eq!(
        err.to_string(),
        r#"layer entry "h" is a hardlink to "../outside/passwd", which escapes the root"#
    );
    sb.assert_outside_untouched();
}

#[test]
fn hardlink_through_a_symlinked_directory_stays_inside() {
    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .symlink("d", &sb.outside.display().to_string())
        .hardlink("h", "d/passwd")
        .finish();
    let err = apply_native(&sb, &layer).expect_err("target is not inside the root");
    assert!(
        matches!(&err, ApplyError::HardlinkTargetMissing { entry, .. } if entry == "h"),
        "{err}"
    );
    sb.assert_outside_untouched();
}

#[test]
fn hardlink_to_a_symlink_pointing_out_links_the_symlink_not_its_target() {
    let sb = Sandbox::new();
    let target = sb.outside.join("passwd").display().to_string();
    let layer = LayerTar::new()
        .symlink("s", &target)
        .hardlink("h", "s")
        .file("h", b"pwned")
        .finish();
    apply_native(&sb, &layer).expect("apply");
    assert!(lstat(&sb.path("s")).expect("s").file_type().is_symlink());
    assert_eq!(
        std::fs::read(sb.path("h")).expect("h replaced by a file"),
        b"pwned"
    );
    sb.assert_outside_untouched();

    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .symlink("s", &target)
        .hardlink("h", "s")
        .finish();
    apply_native(&sb, &layer).expect("apply");
    let (s, h) = (
        lstat(&sb.path("s")).expect("s"),
        lstat(&sb.path("h")).expect("h"),
    );
    assert!(h.file_type().is_symlink());
    assert_eq!(s.ino(), h.ino(), "h is the same symlink inode");
    sb.assert_outside_untouched();
}

#[test]
fn hardlink_to_a_missing_target_is_refused() {
    let sb = Sandbox::new();
    let layer = LayerTar::new().hardlink("h", "nope").finish();
    let err = apply_native(&sb, &layer).expect_err("must refuse");
    assert_eq!(
        err.to_string(),
        r#"layer entry "h" is a hardlink to "nope", which is not in the layer or the tree below it"#
    );
}

#[test]
fn whiteout_of_dotdot_or_dot_is_refused() {
    for name in ["dir/.wh...", ".wh..", "a/.wh."] {
        let sb = Sandbox::new();
        let layer = LayerTar::new().file(name, b"").finish();
        let err = apply_native(&sb, &layer).expect_err(name);
        assert!(
            matches!(&err, ApplyError::InvalidName { entry, .. } if entry == name),
            "{name}: {err}"
        );
        sb.assert_outside_untouched();
    }
}

#[test]
fn whiteout_climbing_out_of_the_root_is_refused() {
    let sb = Sandbox::new();
    let layer = LayerTar::new().file("../outside/.wh.passwd", b"").finish();
    let err = apply_native(&sb, &layer).expect_err("must refuse");
    assert!(matches!(err, ApplyError::Escape { .. }), "{err}");
    sb.assert_outside_untouched();
}

#[test]
fn whiteout_through_a_symlinked_directory_deletes_nothing_outside() {
    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .symlink("d", &sb.outside.display().to_string())
        .file("d/.wh.passwd", b"")
        .file("up/../d/.wh.passwd", b"")
        .finish();
    apply_native(&sb, &layer).expect("nothing to delete inside the root");
    sb.assert_outside_untouched();
}

#[test]
fn whiteout_of_a_symlink_removes_the_link_not_its_target() {
    let sb = Sandbox::new();
    std::os::unix::fs::symlink(&sb.outside, sb.path("link")).expect("symlink");
    let layer = LayerTar::new().file(".wh.link", b"").finish();
    apply_native(&sb, &layer).expect("apply");
    assert!(lstat(&sb.path("link")).is_none());
    sb.assert_outside_untouched();
}

#[test]
fn whiteout_prefix_inside_a_directory_component_is_an_ordinary_name() {
    let sb = Sandbox::new();
    let layer = LayerTar::new().file("a/.wh.b/c", b"x").finish();
    apply_native(&sb, &layer).expect("apply");
    assert_eq!(std::fs::read(sb.path("a/.wh.b/c")).expect("read"), b"x");
}

#[test]
fn opaque_marker_through_a_symlink_clears_nothing_outside() {
    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .symlink("d", &sb.outside.display().to_string())
        .file("d/.wh..wh..opq", b"")
        .finish();
    apply_native(&sb, &layer).expect("nothing to clear inside the root");
    sb.assert_outside_untouched();
}

#[test]
fn device_nodes_are_created_or_recorded_as_skipped_never_silently_dropped() {
    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .node("dev/null", EntryType::Char, 1, 3)
        .finish();
    let summary = apply_native(&sb, &layer).expect("apply");
    match lstat(&sb.path("dev/null")) {
        Some(meta) => {
            assert!(meta.file_type().is_char_device());
            assert_eq!(meta.rdev(), rustix::fs::makedev(1, 3));
            assert!(summary.skipped.is_empty());
        }
        None => assert_eq!(
            summary.skipped,
            vec![SkippedEntry {
                entry: "dev/null".into(),
                reason: SkipReason::Device
            }]
        ),
    }
}

#[test]
fn entry_naming_the_root_must_be_a_directory() {
    let sb = Sandbox::new();
    let layer = LayerTar::new().file("./", b"x").finish();
    let err = apply_native(&sb, &layer).expect_err("must refuse");
    assert!(
        matches!(&err, ApplyError::InvalidName { entry, .. } if entry == "./"),
        "{err}"
    );
}

#[test]
fn truncated_entry_data_is_an_error_naming_the_entry() {
    let sb = Sandbox::new();
    let mut layer = LayerTar::new().file("big", &[7u8; 4096]).finish();
    layer.truncate(512 + 1000);
    let err = apply_native(&sb, &layer).expect_err("must fail");
    assert_eq!(
        err.to_string(),
        r#"layer entry "big" is truncated: its header says 4096 bytes but the stream ended after 1000"#
    );
}

#[test]
fn huge_declared_size_with_little_data_is_truncated_not_allocated() {
    let sb = Sandbox::new();
    let header = raw_header(b"huge", EntryType::Regular, 1 << 40, b"", 0o644);
    let mut layer = header.as_bytes().to_vec();
    layer.extend_from_slice(&[1u8; 700]);
    let err = apply_native(&sb, &layer).expect_err("must fail");
    assert!(
        matches!(err, ApplyError::Truncated { expected, actual: 700, .. } if expected == 1 << 40),
        "{err}"
    );
}

#[test]
fn corrupted_header_checksum_is_a_read_error() {
    let sb = Sandbox::new();
    let mut layer = LayerTar::new().file("a", b"x").finish();
    layer[0] = b'b';
    let err = apply_native(&sb, &layer).expect_err("must fail");
    assert!(matches!(err, ApplyError::Read(_)), "{err}");
    assert!(lstat(&sb.path("a")).is_none() && lstat(&sb.path("b")).is_none());
}

#[test]
fn truncated_gzip_stream_is_a_read_error() {
    let sb = Sandbox::new();
    let layer = LayerTar::new().file("a", &[3u8; 20000]).finish();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&layer).expect("gzip");
    let mut gz = enc.finish().expect("gzip");
    gz.truncate(gz.len() / 2);
    assert!(apply_native(&sb, &gz).is_err());
}

#[test]
fn unsupported_entry_types_are_refused_by_name() {
    let sb = Sandbox::new();
    let header = raw_header(b"vol", EntryType::new(b'V'), 0, b"", 0o644);
    let layer = LayerTar::new().header(&header, b"").finish();
    let err = apply_native(&sb, &layer).expect_err("must refuse");
    assert_eq!(
        err.to_string(),
        r#"layer entry "vol" has unsupported tar type 'V'"#
    );
}

#[test]
fn overlay_xattrs_from_the_layer_are_never_set() {
    let sb = Sandbox::new();
    let layer = LayerTar::new()
        .pax(&[
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
            ("SCHILY.xattr.user.overlay.opaque", b"y"),
        ])
        .dir("d", 0o755, 1)
        .finish();
    let summary = apply_native(&sb, &layer).expect("apply");
    assert_eq!(
        summary.skipped,
        vec![
            SkippedEntry {
                entry: "d".into(),
                reason: SkipReason::Xattr("trusted.overlay.redirect".into())
            },
            SkippedEntry {
                entry: "d".into(),
                reason: SkipReason::Xattr("user.overlay.opaque".into())
            },
        ]
    );
}

#[test]
fn hostile_suite_holds_with_the_component_walk_fallback() {
    // What berth does where openat2 is missing (old kernels, seccomp profiles without it).
    crate::root::FORCE_WALK.with(|force| force.set(true));
    let suite: [fn(); 18] = [
        dotdot_traversal_is_refused_with_the_entry_named,
        deep_dotdot_after_a_real_component_is_refused,
        absolute_names_are_made_relative_to_the_root,
        relative_symlink_climbing_out_cannot_redirect_a_later_entry,
        absolute_symlink_to_the_host_root_resolves_to_the_target_root,
        symlink_to_an_outside_directory_then_write_through_it_is_refused,
        file_entry_replaces_a_symlink_instead_of_writing_through_it,
        hardlink_to_an_absolute_host_path_is_not_found_inside_the_root,
        hardlink_climbing_out_of_the_root_is_refused,
        hardlink_through_a_symlinked_directory_stays_inside,
        hardlink_to_a_symlink_pointing_out_links_the_symlink_not_its_target,
        hardlink_to_a_missing_target_is_refused,
        whiteout_of_dotdot_or_dot_is_refused,
        whiteout_climbing_out_of_the_root_is_refused,
        whiteout_through_a_symlinked_directory_deletes_nothing_outside,
        whiteout_of_a_symlink_removes_the_link_not_its_target,
        whiteout_prefix_inside_a_directory_component_is_an_ordinary_name,
        opaque_marker_through_a_symlink_clears_nothing_outside,
    ];
    for test in suite {
        test();
    }
}

mod random_hostile_layers {
    //! Structured fuzzing inside `cargo test`: random layers built from hostile name parts
    //! never write outside the root and never panic, whatever apply decides.

    use proptest::prelude::*;

    use super::*;

    const PARTS: &[&str] = &[
        "..",
        ".",
        "a",
        "b",
        "",
        ".wh.a",
        ".wh..wh..opq",
        ".wh...",
        "OUTSIDE",
        "/",
    ];

    fn name() -> impl Strategy<Value = Vec<usize>> {
        proptest::collection::vec(0..PARTS.len(), 1..5)
    }

    fn render(parts: &[usize], outside: &str) -> String {
        parts
            .iter()
            .map(|i| {
                if PARTS[*i] == "OUTSIDE" {
                    outside
                } else {
                    PARTS[*i]
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn random_hostile_layers_stay_inside_the_root(
            entries in proptest::collection::vec((0u8..6, name(), name()), 1..10),
            walk in any::<bool>(),
        ) {
            crate::root::FORCE_WALK.with(|force| force.set(walk));
            let sb = Sandbox::new();
            let outside = sb.outside.display().to_string();
            let mut layer = LayerTar::new();
            for (kind, n, target) in &entries {
                let name = render(n, &outside);
                let target = render(target, &outside);
                if name.len() > 99 || target.len() > 99 {
                    continue;
                }
                match kind {
                    0 => layer.file(&name, b"pwned"),
                    1 => layer.dir(&name, 0o755, 1),
                    2 => layer.symlink(&name, &target),
                    3 => layer.hardlink(&name, &target),
                    4 => layer.node(&name, EntryType::Fifo, 0, 0),
                    _ => layer.file(&format!("{name}/.wh.passwd"), b""),
                };
            }
            let bytes = layer.finish();
            let _ = apply_layer(bytes.as_slice(), &sb.root, &ApplyOptions::unprivileged());
            sb.assert_outside_untouched();
        }
    }
}
