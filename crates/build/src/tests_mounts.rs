//! `RUN --mount` through the fake worker, against BuildKit's behaviour: cache mounts persist
//! per id across builds and honour `sharing`, tmpfs is fresh, binds show the context or a
//! stage read-only unless `rw` (whose writes are dropped), secrets come from the build's
//! options; nothing written under a mount lands in the layer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::output::Collect;
use crate::run_mounts::{hold, is_free};
use crate::tests::fixture;
use crate::{BuildError, RunMountSource, Worker};

#[test]
fn cache_mount_persists_across_builds_and_stays_out_of_the_layer() {
    let f = fixture();
    let (first, _) = f.build(&f.options(
        "FROM busybox\nRUN --mount=type=cache,target=/root/.cache echo v1 > /root/.cache/x && echo done > /done\n",
    ));
    let image = f.worker.image(&first.unwrap().image).unwrap();
    assert_eq!(
        std::fs::read_to_string(image.root.join("done")).unwrap(),
        "done\n"
    );
    assert!(!image.root.join("root/.cache/x").exists());
    // Another build (another step, no cache hit) sees what the first one left; the id
    // defaults to the target.
    let (second, out) = f.build(&f.options(
        "FROM busybox\nENV X=1\nRUN --mount=type=cache,target=/root/.cache cat /root/.cache/x\n",
    ));
    second.unwrap();
    assert!(out.contains("v1\n"), "{out}");
    let (other_id, _) = f.build(&f.options(
        "FROM busybox\nRUN --mount=type=cache,id=other,target=/root/.cache cat /root/.cache/x\n",
    ));
    assert!(matches!(
        other_id.unwrap_err(),
        BuildError::Run { code: 1, .. }
    ));
    let dir = f.worker.cache_mount_dir("/root/.cache").unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("x")).unwrap(), "v1\n");
}

#[test]
fn private_cache_mount_takes_another_directory_while_the_id_is_in_use() {
    let f = fixture();
    let shared = f.worker.cache_mount_dir("busy").unwrap();
    let held = hold(shared.clone(), false);
    f.build(&f.options(
        "FROM busybox\nRUN --mount=type=cache,id=busy,sharing=private,target=/c echo p > /c/x\n",
    ))
    .0
    .unwrap();
    assert!(!shared.join("x").exists());
    let private = f.worker.cache_mount_dir("busy#private1").unwrap();
    assert_eq!(std::fs::read_to_string(private.join("x")).unwrap(), "p\n");
    drop(held);
    assert!(is_free(&shared));
}

#[test]
fn locked_cache_mount_waits_for_other_users() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let step = AtomicUsize::new(0);
    let shared = hold(path.clone(), false);
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let _locked = hold(path.clone(), true);
            step.load(Ordering::SeqCst)
        });
        step.store(1, Ordering::SeqCst);
        drop(shared);
        assert_eq!(
            waiter.join().unwrap(),
            1,
            "locked got the cache only after release"
        );
    });
    assert!(is_free(&path));
}

#[test]
fn tmpfs_mount_is_fresh_and_not_committed() {
    let f = fixture();
    let (result, out) = f.build(&f.options(
        "FROM busybox\nRUN --mount=type=tmpfs,target=/t,size=1m echo x > /t/f && cat /t/f\n",
    ));
    let image = f.worker.image(&result.unwrap().image).unwrap();
    assert!(out.contains("x\n"));
    assert!(!image.root.join("t/f").exists());
    let mounts = &f.worker.run_mounts()[0];
    assert_eq!(mounts[0].source, RunMountSource::Tmpfs { size: 1 << 20 });
}

#[test]
fn bind_mount_of_the_context_is_read_only_unless_rw_and_rw_writes_are_dropped() {
    let f = fixture();
    f.file("data.txt", "ctx\n");
    let (result, out) = f.build(&f.options(
        "FROM busybox\nWORKDIR /w\nRUN --mount=type=bind,source=data.txt,target=d cat /w/d\n",
    ));
    result.unwrap();
    assert!(
        out.contains("ctx\n"),
        "relative targets join the workdir: {out}"
    );
    let (ro, out) =
        f.build(&f.options("FROM busybox\nRUN --mount=type=bind,target=/src echo y > /src/new\n"));
    assert!(matches!(ro.unwrap_err(), BuildError::Run { code: 1, .. }));
    assert!(out.contains("Read-only file system"));
    let (rw, out) = f.build(&f.options(
        "FROM busybox\nRUN --mount=type=bind,target=/src,rw echo y > /src/new && cat /src/data.txt\n",
    ));
    let image = f.worker.image(&rw.unwrap().image).unwrap();
    assert!(out.contains("ctx\n"));
    assert!(
        !f.context.path().join("new").exists(),
        "the context is untouched"
    );
    assert!(!image.root.join("src/new").exists());
}

#[test]
fn bind_mount_content_is_part_of_the_cache_key() {
    let f = fixture();
    let df = "FROM busybox\nRUN --mount=type=bind,source=data.txt,target=/d cat /d\n";
    f.file("data.txt", "one\n");
    f.build(&f.options(df)).0.unwrap();
    let (_, same) = f.build(&f.options(df));
    assert!(same.contains(" ---> Using cache"));
    f.file("data.txt", "two\n");
    let (_, changed) = f.build(&f.options(df));
    assert!(changed.contains("two\n"), "{changed}");
}

#[test]
fn bind_mount_from_a_stage_builds_that_stage_first() {
    let f = fixture();
    let (result, out) = f.build(&f.options(
        "FROM busybox AS tools\nRUN echo made > /made\nFROM busybox\nRUN --mount=type=bind,from=tools,target=/tools cat /tools/made\n",
    ));
    result.unwrap();
    assert!(out.contains("made\n"), "{out}");
    assert_eq!(f.worker.live_layers(), 0);
}

#[test]
fn secret_mount_reads_the_builds_secret_and_never_lands_in_the_image() {
    let f = fixture();
    let mut options = f.options(
        "FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok\nRUN --mount=type=secret,id=tok,env=TOKEN,target=/s cat /s\n",
    );
    options.secrets = BTreeMap::from([("tok".to_string(), b"hunter2".to_vec())]);
    let out = Collect::default();
    let result = crate::build(&f.worker, &options, &out).unwrap();
    assert_eq!(out.text().matches("hunter2").count(), 2);
    let image = f.worker.image(&result.image).unwrap();
    assert!(!image.root.join("run/secrets/tok").exists());
    assert!(!image.root.join("s").exists());
    let runs = f.worker.runs();
    assert!(runs[1]
        .env
        .clone()
        .unwrap()
        .contains(&"TOKEN=hunter2".to_string()));
    assert!(!image
        .config
        .env
        .clone()
        .unwrap()
        .iter()
        .any(|e| e.contains("hunter2")));
    let mounts = f.worker.run_mounts();
    assert_eq!(mounts[0][0].target, "/run/secrets/tok");
    assert!(mounts[0][0].read_only);
}

#[test]
fn missing_secret_fails_only_when_required() {
    let f = fixture();
    let (optional, _) =
        f.build(&f.options("FROM busybox\nRUN --mount=type=secret,id=nope echo ok\n"));
    optional.unwrap();
    assert!(f.worker.run_mounts()[0].is_empty());
    let (required, _) =
        f.build(&f.options("FROM busybox\nRUN --mount=type=secret,id=nope,required echo ok\n"));
    let text = required.unwrap_err().to_string();
    assert!(text.starts_with("secret nope: not found"), "{text}");
}
