//! Fuzz target: arbitrary bytes as a build context tar (what `POST /build` receives).
//! Indexing never panics; an indexed context answers every lookup, wildcard, source digest
//! (the same twice) and file read without panicking, and extracting it writes nothing
//! outside its directory.
#![no_main]

#[path = "../src/sandbox.rs"]
mod sandbox;

use std::sync::Arc;

use berth_build::context::SourceRoot;
use berth_build::context_tar::ContextTar;
use libfuzzer_sys::fuzz_target;

/// Every path the index knows, walking from the root through `children`.
fn all_paths(tar: &ContextTar) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(dir) = pending.pop() {
        for name in tar.children(&dir) {
            let path = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            if out.len() > 4096 {
                return out;
            }
            pending.push(path.clone());
            out.push(path);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(Ok(tar)) = ContextTar::new(data.to_vec()) else {
        return;
    };
    let paths = all_paths(&tar);
    for path in &paths {
        if let Some(entry) = tar.lstat(path) {
            let _ = tar.content(entry).len();
        }
        let _ = tar.resolve(path);
        let _ = tar.resolve(&format!("{path}/../{path}/."));
    }
    let tar = Arc::new(tar);
    let sandbox = sandbox::Sandbox::new("context", "ctx");
    let context = sandbox.inner();
    if let Ok(root) = SourceRoot::context_tar(&context, "Dockerfile", tar) {
        let mut patterns: Vec<String> = vec![".".into(), "*".into(), "*/*".into(), "../x".into()];
        patterns.extend(paths.iter().take(64).cloned());
        for pattern in &patterns {
            if let Ok(sources) = root.resolve(pattern) {
                for source in sources.iter().take(16) {
                    let first = root.source_hash(source).ok();
                    assert_eq!(first, root.source_hash(source).ok(), "digest of {pattern}");
                }
            }
        }
        assert!(
            std::fs::read_dir(&context).expect("read ctx").next().is_none(),
            "lookups and digests wrote into the context directory"
        );
        let _ = root.materialize();
    }
    sandbox.assert_untouched();
});
