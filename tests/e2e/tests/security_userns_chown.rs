//! User namespaces without idmapped mounts: a berthd with `userns-idmapped-mounts: false`
//! gives `--userns` containers a one-time chowned copy of their image layers (Docker's
//! userns-remap layout). Root inside sees its files owned by 0 as on the idmapped path
//! (security_userns.rs), while on the host the layer copy, the upper layer's new files and
//! the processes belong to the mapped range; root in the container cannot write a host root
//! file in a bind mount; a second container with the same map reuses the copy; `commit` and
//! `export` (running and stopped) give container ids; rm leaves no copy behind.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_e2e::berthd::bin_dir;
use berth_e2e::daemon::{run_command, Berthd, Daemon};

/// The host uid/gid container root maps to in every container of this test.
const HOST_ROOT: u32 = 400000;
const MAP: &str = "map=0:400000:65536";

fn berth(berthd: &Berthd, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(bin_dir().join("berth"));
    cmd.env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .env("DOCKER_CONFIG", berthd.cli_config_dir())
        .arg("-H")
        .arg(berthd.host())
        .args(args)
        .stdin(Stdio::null());
    let out = run_command(&mut cmd);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

fn berth_ok(berthd: &Berthd, args: &[&str]) -> String {
    let (ok, out, err) = berth(berthd, args);
    assert!(
        ok,
        "berth {args:?}: {err}\n{out}\nberthd log:\n{}",
        berthd.log()
    );
    out
}

/// The chowned stacks: `<image-dir>/userns-chown/<map>/<stack>`.
fn stacks(berthd: &Berthd) -> Vec<PathBuf> {
    let root = berthd.data_root().join("image/userns-chown");
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|map| {
            std::fs::read_dir(map.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|stack| stack.path())
        .collect()
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// `tar --numeric-owner -tvf` lines of `file`, as (owner "uid/gid", path).
fn tar_owners(file: &Path) -> Vec<(String, String)> {
    let out = run_command(
        Command::new("tar")
            .arg("--numeric-owner")
            .arg("-tvf")
            .arg(file),
    );
    assert!(out.status.success(), "tar -tvf {}", file.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some((fields.get(1)?.to_string(), fields.get(5)?.to_string()))
        })
        .collect()
}

fn owner_of(owners: &[(String, String)], path: &str) -> Option<String> {
    owners
        .iter()
        .find(|(_, p)| p.trim_start_matches("./").trim_end_matches('/') == path)
        .map(|(o, _)| o.clone())
}

#[test]
fn chowned_layer_stack_without_idmapped_mounts() {
    let mut json = serde_json::Map::new();
    json.insert("userns-idmapped-mounts".into(), false.into());
    let berthd = Berthd::start_with(json);
    // The container's root must traverse the fixture's 0700 root to reach its rootfs.
    std::fs::set_permissions(berthd.root(), std::fs::Permissions::from_mode(0o711))
        .expect("chmod the fixture root");
    berthd.import_busybox();

    // Root inside owns its rootfs and is unprivileged outside.
    let inside = inside_view(&berthd);
    assert_eq!(inside, ["0", "0:0", "0:0", "0"], "inside view");
    // `run --rm` may return before the removal finished: wait for it, boundedly.
    let mut left = stacks(&berthd);
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = stacks(&berthd);
    }
    assert!(
        left.is_empty(),
        "the --rm container's stack outlived it: {left:?}"
    );

    // Two containers with one map share one chowned stack, owned by the range on the host.
    for name in ["c1", "c2"] {
        berth_ok(
            &berthd,
            &[
                "run",
                "-d",
                "--name",
                name,
                "--userns",
                MAP,
                "busybox",
                "sh",
                "-c",
                "echo hi > /made; sleep 300",
            ],
        );
    }
    let found = stacks(&berthd);
    assert_eq!(found.len(), 1, "one stack for one map and image: {found:?}");
    let stack = &found[0];
    assert_eq!(count(&stack.join("users")), 2);
    assert_eq!(count(&stack.join("layers")), 1, "busybox has one layer");
    let sh = std::fs::symlink_metadata(stack.join("layers/0/bin/sh")).expect("sh in the copy");
    assert_eq!((sh.uid(), sh.gid()), (HOST_ROOT, HOST_ROOT));
    let pid = berthd.ok(&["inspect", "-f", "{{.State.Pid}}", "c1"]);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).expect("Uid");
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "400000"),
        "container process on the host: {uid_line}"
    );
    // Same file seen through both containers' rootfs: the one copy (same inode). Read from
    // the host through /proc/<pid>/root (exec into a user namespace is not supported yet).
    let inode = |name: &str| {
        let pid = berthd.ok(&["inspect", "-f", "{{.State.Pid}}", name]);
        std::fs::metadata(format!("/proc/{}/root/bin/busybox", pid.trim()))
            .expect("busybox through /proc/<pid>/root")
            .ino()
    };
    assert_eq!(inode("c1"), inode("c2"));
    // The upper layer holds host-shifted ids on disk.
    let c1_pid = berthd.ok(&["inspect", "-f", "{{.State.Pid}}", "c1"]);
    let in_c1 = format!("/proc/{}/root/made", c1_pid.trim());
    for _ in 0..100 {
        if Path::new(&in_c1).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let made = find_upper_file(
        &berthd.data_root().join("image/snapshots/snapshots"),
        "made",
    )
    .expect("/made in an upper dir");
    let meta = std::fs::metadata(&made).expect("made");
    assert_eq!(meta.uid(), HOST_ROOT, "{}", made.display());

    // commit and export write container ids.
    let work = tempfile::tempdir().expect("tempdir");
    let running = work.path().join("running.tar");
    berthd.ok(&["export", "-o", &running.to_string_lossy(), "c1"]);
    let owners = tar_owners(&running);
    assert_eq!(
        owner_of(&owners, "made").as_deref(),
        Some("0/0"),
        "{owners:?}"
    );
    assert_eq!(owner_of(&owners, "bin/busybox").as_deref(), Some("0/0"));
    berthd.ok(&["commit", "c1", "chowned:1"]);
    let out = berthd.ok(&[
        "run",
        "--rm",
        "chowned:1",
        "stat",
        "-c",
        "%u:%g",
        "/made",
        "/bin/busybox",
    ]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["0:0", "0:0"],
        "committed image: {out}"
    );
    berthd.ok(&["kill", "c1"]);
    let stopped = work.path().join("stopped.tar");
    berthd.ok(&["export", "-o", &stopped.to_string_lossy(), "c1"]);
    let owners = tar_owners(&stopped);
    assert_eq!(
        owner_of(&owners, "made").as_deref(),
        Some("0/0"),
        "{owners:?}"
    );
    assert_eq!(owner_of(&owners, "bin/busybox").as_deref(), Some("0/0"));

    // The last container's removal deletes the copy; the images go without a trace.
    berthd.ok(&["rm", "-f", "c1"]);
    assert_eq!(count(&stack.join("users")), 1);
    berthd.ok(&["rm", "-f", "c2"]);
    assert!(stacks(&berthd).is_empty(), "{:?}", stacks(&berthd));
    berthd.ok(&["rmi", "chowned:1", "busybox"]);
    assert_eq!(count(&berthd.data_root().join("image/userns-chown")), 0);
}

/// Runs a `--userns MAP` container with a bind mount holding a host-root file: returns what
/// root inside sees (its uid, owners of /bin/sh and /etc, owner of a new rootfs file) and
/// checks that its bind-mount file belongs to the mapped host root and that the host root
/// file stayed unwritten.
fn inside_view(berthd: &Berthd) -> Vec<String> {
    let bind = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(bind.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod bind");
    std::fs::write(bind.path().join("hostroot"), "host\n").expect("write");
    let volume = format!("{}:/b", bind.path().display());
    let script = "id -u; stat -c %u:%g /bin/sh /etc; touch /in-rootfs && stat -c %u /in-rootfs; \
                  touch /b/created; if echo x >> /b/hostroot; then echo wrote-hostroot; fi";
    let out = berth_ok(
        berthd,
        &[
            "run", "--rm", "--userns", MAP, "-v", &volume, "busybox", "sh", "-c", script,
        ],
    );
    let created = std::fs::metadata(bind.path().join("created")).expect("created");
    assert_eq!((created.uid(), created.gid()), (HOST_ROOT, HOST_ROOT));
    assert_eq!(
        std::fs::read_to_string(bind.path().join("hostroot")).expect("read"),
        "host\n"
    );
    out.lines().map(str::to_string).collect()
}

/// The same container on a default berthd takes the idmapped path on this kernel (no
/// chowned copy, the upper layer in container ids on disk) and looks the same inside.
#[test]
fn idmapped_path_gives_the_same_view_without_a_copy() {
    let berthd = Berthd::start();
    std::fs::set_permissions(berthd.root(), std::fs::Permissions::from_mode(0o711))
        .expect("chmod the fixture root");
    berthd.import_busybox();
    let inside = inside_view(&berthd);
    assert_eq!(inside, ["0", "0:0", "0:0", "0"], "inside view");
    berth_ok(
        &berthd,
        &[
            "run",
            "-d",
            "--name",
            "i1",
            "--userns",
            MAP,
            "busybox",
            "sh",
            "-c",
            "echo hi > /made; sleep 300",
        ],
    );
    let pid = berthd.ok(&["inspect", "-f", "{{.State.Pid}}", "i1"]);
    let in_i1 = format!("/proc/{}/root/made", pid.trim());
    for _ in 0..100 {
        if Path::new(&in_i1).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let made = find_upper_file(
        &berthd.data_root().join("image/snapshots/snapshots"),
        "made",
    )
    .expect("/made in an upper dir");
    assert_eq!(std::fs::metadata(&made).expect("made").uid(), 0);
    assert!(stacks(&berthd).is_empty(), "{:?}", stacks(&berthd));
    assert!(!berthd.data_root().join("image/userns-chown").exists());
    berthd.ok(&["rm", "-f", "i1"]);
}

/// The first file named `name` in any `snapshots/<id>/fs` directory.
fn find_upper_file(snapshots: &Path, name: &str) -> Option<PathBuf> {
    std::fs::read_dir(snapshots)
        .ok()?
        .flatten()
        .map(|s| s.path().join("fs").join(name))
        .find(|p| p.exists())
}
