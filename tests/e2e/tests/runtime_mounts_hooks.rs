//! Runtime-spec mount extensions and hook failures, checked against runc where Debian's
//! runc 1.1 has them: recursive mount options (rro, rnosuid, ...: runc 1.1 has them),
//! idmapped bind mounts (runc 1.1 ignores mounts[].uidMappings, so berth-runtime is held
//! to the runtime-spec alone), and a failing startContainer hook (runtime-spec: `start`
//! fails and the container stops; runc's `start` exits 0 and only its init prints the
//! error, so the common ground is checked under runc and the error under berth-runtime).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context as _, Result};
use berth_e2e::spec::{add_mount, add_namespace, base_config};
use berth_e2e::{require_root, Bundle, Runtime};
use serde_json::{json, Value};

/// A tmpfs mounted on the host for one test, detached on drop (even when the test fails).
struct HostTmpfs {
    path: PathBuf,
}

impl HostTmpfs {
    fn mount(path: &Path) -> Result<HostTmpfs> {
        std::fs::create_dir_all(path)?;
        let target = CString::new(path.as_os_str().as_bytes())?;
        // SAFETY: valid C strings; a plain tmpfs mount on a directory we own.
        let r = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                c"size=1m".as_ptr().cast(),
            )
        };
        ensure!(
            r == 0,
            "mount tmpfs on {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        Ok(HostTmpfs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for HostTmpfs {
    fn drop(&mut self) {
        if let Ok(target) = CString::new(self.path.as_os_str().as_bytes()) {
            // SAFETY: a valid C string; detaching a mount we made.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// What one run of `config` printed, under `rt`, in a fresh bundle whose scratch dir
/// `src` holds a directory with a tmpfs submount `src/sub`.
fn run_with_submount(rt: &Runtime, config: &mut Value) -> Result<String> {
    let bundle = Bundle::busybox(config)?;
    let src = bundle.scratch("src");
    let _sub = HostTmpfs::mount(&src.join("sub"))?;
    for mount in config["mounts"].as_array_mut().context("mounts")? {
        if mount["source"] == "SRC" {
            mount["source"] = json!(src);
        }
    }
    bundle.write_config(config)?;
    let ran = rt.container("rro").run(&bundle)?.success()?;
    Ok(ran.stdout)
}

#[test]
fn rro_bind_makes_its_submounts_read_only_too_as_under_runc() -> Result<()> {
    require_root();
    // Each mount point: can root write to it, and its mount options (mountinfo field 6).
    let script = "for p in /data /data/sub /plain /plain/sub; do \
        if touch $p/w 2>/dev/null; then w=rw; else w=ro; fi; \
        echo \"$p $w $(awk -v p=$p '$5==p {print $6}' /proc/self/mountinfo)\"; done";
    let mut config = base_config(&["sh", "-c", script]);
    add_mount(
        &mut config,
        json!({"destination": "/data", "type": "bind", "source": "SRC",
               "options": ["rbind", "rro", "rnosuid", "rnodev", "rnoatime"]}),
    );
    add_mount(
        &mut config,
        json!({"destination": "/plain", "type": "bind", "source": "SRC",
               "options": ["rbind", "ro"]}),
    );
    let ours = run_with_submount(&Runtime::berth(), &mut config.clone())?;
    let lines: Vec<&str> = ours.lines().collect();
    ensure!(lines.len() == 4, "one line per mount point:\n{ours}");
    for line in &lines[..2] {
        ensure!(line.contains(" ro ro,"), "rro reaches every mount: {line}");
        for flag in ["nosuid", "nodev", "noatime"] {
            ensure!(line.contains(flag), "{flag} on every mount: {line}");
        }
    }
    ensure!(
        lines[2].contains(" ro ro,") && lines[3].contains(" rw rw,"),
        "plain ro stays on the top mount only:\n{ours}"
    );
    let theirs = run_with_submount(&Runtime::runc(), &mut config)?;
    ensure!(
        ours == theirs,
        "berth-runtime and runc differ:\n{ours}\n-- runc --\n{theirs}"
    );
    Ok(())
}

fn chown(path: &Path, id: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(id), Some(id))
        .with_context(|| format!("chown {}", path.display()))
}

#[test]
fn idmapped_bind_shows_host_uid_1000_as_root_and_maps_new_files_back() -> Result<()> {
    require_root();
    let script = "stat -c '%n %u:%g' /idm/owned /idm/rootfile && touch /idm/new";
    let mut config = base_config(&["sh", "-c", script]);
    let bundle = Bundle::busybox(&config)?;
    let src = bundle.scratch("idsrc");
    std::fs::create_dir(&src)?;
    std::fs::write(src.join("owned"), "x")?;
    std::fs::write(src.join("rootfile"), "x")?;
    chown(&src, 1000)?;
    chown(&src.join("owned"), 1000)?;
    // runtime-spec: the mappings read like a user namespace's, "containerID" being the
    // id on the filesystem and "hostID" what the mount shows for it.
    let map = json!([{"containerID": 1000, "hostID": 0, "size": 1}]);
    add_mount(
        &mut config,
        json!({"destination": "/idm", "type": "bind", "source": src, "options": ["bind"],
               "uidMappings": map, "gidMappings": map}),
    );
    bundle.write_config(&config)?;
    let rt = Runtime::berth();
    let ran = rt.container("idmap").run(&bundle)?.success()?;
    ensure!(
        ran.stdout == "/idm/owned 0:0\n/idm/rootfile 65534:65534\n",
        "uid 1000 shows as 0, unmapped ids as the overflow id:\n{ran}"
    );
    let created = std::fs::metadata(src.join("new")).context("file made through the mount")?;
    ensure!(
        (created.uid(), created.gid()) == (1000, 1000),
        "root's new file is uid 1000 on disk: {}:{}",
        created.uid(),
        created.gid()
    );
    Ok(())
}

#[test]
fn idmap_and_ridmap_take_the_container_user_namespace_mappings() -> Result<()> {
    require_root();
    let config = base_config(&["true"]);
    let bundle = Bundle::busybox(&config)?;
    // The destination exists: root in the user namespace cannot write the host-owned rootfs.
    std::fs::create_dir(bundle.rootfs().join("idm"))?;
    let src = bundle.scratch("usrc");
    std::fs::create_dir(&src)?;
    std::fs::write(src.join("f"), "x")?;
    let _sub = HostTmpfs::mount(&src.join("sub"))?;
    std::fs::write(src.join("sub/g"), "x")?;
    let rt = Runtime::berth();
    // Host root's files show as root in a user namespace that maps 0 to 100000: "idmap"
    // maps the top mount only, "ridmap" the tmpfs below it too.
    for (option, want) in [
        ("idmap", "/idm/f 0:0\n/idm/sub/g 65534:65534\n"),
        ("ridmap", "/idm/f 0:0\n/idm/sub/g 0:0\n"),
    ] {
        let mut config = base_config(&["stat", "-c", "%n %u:%g", "/idm/f", "/idm/sub/g"]);
        add_namespace(&mut config, "user");
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        config["linux"]["uidMappings"] = map.clone();
        config["linux"]["gidMappings"] = map;
        add_mount(
            &mut config,
            json!({"destination": "/idm", "type": "bind", "source": src,
                   "options": ["rbind", option]}),
        );
        bundle.write_config(&config)?;
        let ran = rt.container(option).run(&bundle)?.success()?;
        ensure!(ran.stdout == want, "{option}:\n{ran}");
    }
    Ok(())
}

#[test]
fn idmap_on_a_filesystem_without_support_fails_create_clearly() -> Result<()> {
    require_root();
    let mut config = base_config(&["true"]);
    let map = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    add_mount(
        &mut config,
        json!({"destination": "/p", "type": "bind", "source": "/proc/sys", "options": ["rbind"],
               "uidMappings": map, "gidMappings": map}),
    );
    let bundle = Bundle::busybox(&config)?;
    let rt = Runtime::berth();
    let c = rt.container("idmap-proc");
    let ran = c.create(&bundle)?;
    ensure!(ran.code() != 0, "create must fail: {ran}");
    ensure!(
        ran.stderr.contains("does not support idmapped mounts") && ran.stderr.contains("/proc/sys"),
        "the error names the filesystem problem and the source: {ran}"
    );
    let left = c.leftovers();
    ensure!(left.is_empty(), "left behind: {left:?}");
    Ok(())
}

/// A bundle whose process would leave /ran in the rootfs, with a failing startContainer
/// hook and a poststop hook that records it ran.
fn failing_start_hook_bundle() -> Result<(Bundle, PathBuf)> {
    let mut config = base_config(&["sh", "-c", "touch /ran"]);
    let bundle = Bundle::busybox(&config)?;
    let poststop = bundle.scratch("poststop.ran");
    config["hooks"] = json!({
        "startContainer": [{"path": "/bin/sh",
            "args": ["sh", "-c", "echo hookout; echo hookerr >&2; exit 3"]}],
        "poststop": [{"path": "/bin/sh",
            "args": ["sh", "-c", format!("touch {}", poststop.display())]}]
    });
    bundle.write_config(&config)?;
    Ok((bundle, poststop))
}

#[test]
fn failing_start_container_hook_fails_start_and_stops_the_container() -> Result<()> {
    require_root();
    // runc (1.1 and main alike) writes the exec fifo before running the hooks: its `start`
    // exits 0, the init prints the error on the container's stderr and exits.
    let runc = Runtime::runc();
    let (bundle, _) = failing_start_hook_bundle()?;
    let c = runc.container("starthook");
    c.create(&bundle)?.success()?;
    c.op("start", &[], &[])?.success()?;
    c.wait_for_status("stopped")?;
    ensure!(
        !bundle.rootfs().join("ran").exists(),
        "runc ran the process"
    );
    ensure!(
        c.output(&bundle).1.contains("hookerr"),
        "runc's init reports the hook: {:?}",
        c.output(&bundle)
    );
    drop(c);

    // berth-runtime: `start` itself fails with the hook's error (runtime-spec: "generate
    // an error, stop the container"), and the container is stopped when it returns.
    let rt = Runtime::berth();
    let (bundle, poststop) = failing_start_hook_bundle()?;
    let c = rt.container("starthook");
    c.create(&bundle)?.success()?;
    let start = c.op("start", &[], &[])?;
    ensure!(start.code() != 0, "start must fail: {start}");
    for part in [
        "startContainer hook",
        "exited with status 3",
        "hookout",
        "hookerr",
    ] {
        ensure!(start.stderr.contains(part), "{part:?} in: {start}");
    }
    ensure!(c.status()? == "stopped", "stopped once start returned");
    ensure!(
        !bundle.rootfs().join("ran").exists(),
        "the process never ran"
    );
    c.op("delete", &[], &[])?.success()?;
    ensure!(poststop.exists(), "delete runs the poststop hooks");
    let left = c.leftovers();
    ensure!(left.is_empty(), "left behind after delete: {left:?}");
    Ok(())
}

#[test]
fn failing_start_container_hook_fails_run_foreground_and_detached() -> Result<()> {
    require_root();
    // `run` releases its init over the sync socket, not the exec fifo: the hook's error
    // still reaches the caller, the process never runs and nothing is left behind.
    let rt = Runtime::berth();
    for detach in [false, true] {
        let (bundle, poststop) = failing_start_hook_bundle()?;
        let c = rt.container("runstarthook");
        let ran = if detach {
            c.run_detached(&bundle, &[])?
        } else {
            c.run(&bundle)?
        };
        ensure!(ran.code() != 0, "detach={detach}: run must fail: {ran}");
        for part in ["startContainer hook", "exited with status 3", "hookerr"] {
            ensure!(
                ran.stderr.contains(part),
                "detach={detach}: {part:?} in: {ran}"
            );
        }
        ensure!(
            !bundle.rootfs().join("ran").exists(),
            "detach={detach}: the process never ran"
        );
        ensure!(poststop.exists(), "detach={detach}: poststop hooks ran");
        let left = c.leftovers();
        ensure!(left.is_empty(), "detach={detach}: left behind: {left:?}");
    }
    Ok(())
}

#[test]
fn run_runs_poststart_hooks_after_the_process_started() -> Result<()> {
    require_root();
    let rt = Runtime::berth();
    let mut config = base_config(&["sh", "-c", "exit 5"]);
    let bundle = Bundle::busybox(&config)?;
    let log = bundle.scratch("poststart.json");
    config["hooks"] = json!({"poststart": [{"path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {}", log.display())]}]});
    bundle.write_config(&config)?;
    let c = rt.container("runpoststart");
    let ran = c.run(&bundle)?;
    ensure!(ran.code() == 5, "run exits with the process's code: {ran}");
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(&log).context("the poststart hook did not run")?,
    )?;
    ensure!(state["id"] == c.id(), "poststart state: {state}");
    ensure!(
        state["status"] == "running" || state["status"] == "stopped",
        "poststart sees the started container: {state}"
    );
    let left = c.leftovers();
    ensure!(left.is_empty(), "left behind: {left:?}");
    Ok(())
}

#[test]
fn other_hook_failures_keep_their_runtime_spec_semantics() -> Result<()> {
    require_root();
    let rt = Runtime::berth();
    let fail = json!([{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 1"]}]);
    // createRuntime and createContainer: create fails, poststop runs, nothing is left.
    for kind in ["createRuntime", "createContainer"] {
        let mut config = base_config(&["true"]);
        let bundle = Bundle::busybox(&config)?;
        let poststop = bundle.scratch("poststop.ran");
        config["hooks"] = json!({kind: fail, "poststop": [{"path": "/bin/sh",
            "args": ["sh", "-c", format!("touch {}", poststop.display())]}]});
        bundle.write_config(&config)?;
        let c = rt.container("createhook");
        let ran = c.create(&bundle)?;
        ensure!(ran.code() != 0, "{kind}: create must fail: {ran}");
        ensure!(
            ran.stderr.contains(&format!("error running {kind} hook"))
                && ran.stderr.contains("nope"),
            "{kind}: {ran}"
        );
        ensure!(poststop.exists(), "{kind}: poststop runs");
        let left = c.leftovers();
        ensure!(left.is_empty(), "{kind}: left behind: {left:?}");
    }
    // poststart: a warning, and the container runs on.
    let mut config = base_config(&["sleep", "1000"]);
    config["hooks"] = json!({"poststart": fail});
    let bundle = Bundle::busybox(&config)?;
    let c = rt.container("poststart");
    c.create(&bundle)?.success()?;
    let start = c.op("start", &[], &[])?.success()?;
    ensure!(
        start.stderr.contains("poststart hook"),
        "poststart failure is logged: {start}"
    );
    ensure!(c.status()? == "running", "the container keeps running");
    Ok(())
}

#[test]
fn features_lists_recursive_mount_options_and_idmap_support() -> Result<()> {
    let ran = Runtime::berth().cmd(&["features"])?.success()?;
    let features: Value = serde_json::from_str(&ran.stdout)?;
    let options: Vec<&str> = features["mountOptions"]
        .as_array()
        .context("mountOptions")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for o in [
        "rro",
        "rrw",
        "rnosuid",
        "rnoexec",
        "rnoatime",
        "rnosymfollow",
        "idmap",
        "ridmap",
    ] {
        ensure!(options.contains(&o), "{o} missing: {options:?}");
    }
    // Every option runc 1.1 lists is listed by berth-runtime too, but for the few it
    // does not implement (acl has no mount flag, iversion, runc's tmpfs copy-up).
    let runc = Runtime::runc().cmd(&["features"])?.success()?;
    let runc: Value = serde_json::from_str(&runc.stdout)?;
    let not_implemented = ["acl", "noacl", "iversion", "noiversion", "tmpcopyup"];
    for o in runc["mountOptions"]
        .as_array()
        .context("runc mountOptions")?
    {
        let o = o.as_str().unwrap_or_default();
        ensure!(
            options.contains(&o) || not_implemented.contains(&o),
            "runc lists {o}, berth-runtime does not"
        );
    }
    ensure!(
        features["linux"]["mountExtensions"]["idmap"]["enabled"] == true,
        "kernel 6.x has idmapped mounts: {}",
        features["linux"]["mountExtensions"]
    );
    Ok(())
}
