//! Fuzz target: arbitrary bytes applied as a layer (native mode, unprivileged options) into a
//! fresh root never panic and never create, change or delete anything outside that root.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_snapshot::{apply_layer, ApplyOptions};
use libfuzzer_sys::fuzz_target;

static RUN: AtomicU64 = AtomicU64::new(0);

/// `base/root` (the target) and `base/outside/passwd` (the sentinel).
fn sandbox() -> PathBuf {
    let base = std::env::temp_dir().join(format!(
        "berth-fuzz-layer-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(base.join("root")).expect("create root");
    std::fs::create_dir_all(base.join("outside")).expect("create outside");
    std::fs::write(base.join("outside/passwd"), b"secret").expect("write sentinel");
    base
}

fn assert_untouched(base: &Path) {
    let mut top: Vec<_> = std::fs::read_dir(base)
        .expect("read base")
        .map(|e| e.expect("entry").file_name())
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["outside", "root"],
        "something was created next to the root"
    );
    let outside: Vec<_> = std::fs::read_dir(base.join("outside"))
        .expect("read outside")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(outside, ["passwd"], "outside/ changed");
    let meta = std::fs::symlink_metadata(base.join("outside/passwd")).expect("sentinel");
    assert!(meta.is_file(), "sentinel replaced");
    assert_eq!(
        std::fs::read(base.join("outside/passwd")).expect("read"),
        b"secret"
    );
}

/// Makes every directory below `dir` writable again so the sandbox can be removed even when
/// the layer set mode 0 on some of them.
fn unlock(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                unlock(&entry.path());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let base = sandbox();
    let _ = apply_layer(data, &base.join("root"), &ApplyOptions::unprivileged());
    assert_untouched(&base);
    unlock(&base);
    std::fs::remove_dir_all(&base).expect("remove sandbox");
});
