//! Locates BuildKit's Dockerfile fixtures in `../shared/dockerfiles` beside the clone.

use std::path::PathBuf;

/// The fixture directory; a missing directory fails the test with a clear message (never a
/// skip): the fixtures are part of the test suite.
pub fn fixture_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/dockerfiles");
    assert!(
        root.is_dir(),
        "BuildKit Dockerfile fixtures missing at {} (shared/dockerfiles must sit beside the clone)",
        root.display()
    );
    root
}

/// A path inside the fixture directory.
pub fn fixture_path(relative: &str) -> PathBuf {
    fixture_root().join(relative)
}
