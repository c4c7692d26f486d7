//! A scratch directory for targets that write files: `base/<inner>` is handed to the code
//! under test, `base/outside/sentinel` must stay as it was (nothing escapes `inner`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static RUN: AtomicU64 = AtomicU64::new(0);

pub struct Sandbox {
    base: PathBuf,
    inner: &'static str,
}

impl Sandbox {
    pub fn new(prefix: &str, inner: &'static str) -> Sandbox {
        let base = std::env::temp_dir().join(format!(
            "berth-fuzz-{prefix}-{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(base.join(inner)).expect("create the inner directory");
        std::fs::create_dir_all(base.join("outside")).expect("create outside");
        std::fs::write(base.join("outside/sentinel"), b"secret").expect("write sentinel");
        Sandbox { base, inner }
    }

    /// The directory the code under test may write.
    pub fn inner(&self) -> PathBuf {
        self.base.join(self.inner)
    }

    /// Panics when anything next to `inner` or below `outside/` changed.
    pub fn assert_untouched(&self) {
        let mut top: Vec<_> = std::fs::read_dir(&self.base)
            .expect("read base")
            .map(|e| e.expect("entry").file_name())
            .collect();
        top.sort();
        let mut want = vec![self.inner, "outside"];
        want.sort();
        assert_eq!(top, want, "something was created next to {}", self.inner);
        let outside: Vec<_> = std::fs::read_dir(self.base.join("outside"))
            .expect("read outside")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(outside, ["sentinel"], "outside/ changed");
        let meta = std::fs::symlink_metadata(self.base.join("outside/sentinel")).expect("sentinel");
        assert!(meta.is_file(), "sentinel replaced");
        assert_eq!(
            std::fs::read(self.base.join("outside/sentinel")).expect("read sentinel"),
            b"secret"
        );
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        unlock(&self.base);
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Makes every directory below `dir` writable again so the sandbox can be removed even
/// when the code under test set mode 0 on some of them.
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
