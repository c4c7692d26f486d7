//! Volumes, mounts and disk given back, against ONE private berthd: every mount form
//! through the docker CLI (`-v name:/p[:ro|nocopy]`, `-v /p`, `-v /host:/p`, `--mount
//! type=volume|bind|tmpfs`, `--volumes-from`, `--read-only`), Docker's texts for bad input,
//! data surviving `rm` and `kill -9` of berthd, two containers sharing writes, in-use `rm`
//! refused, copy-up from an image `VOLUME`, `rm -v` / `run --rm`, prune semantics, the berth
//! CLI and docker-py, `system df`, and the leak check: the data root's `du -sb` after 100
//! containers, 20 images and volumes are created and pruned is back within 1 MB.

use std::path::Path;
use std::process::{Command, Output};

use berth_e2e::daemon::{run_command, Berthd, Daemon};

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

/// `docker <args>` must fail with `want` in its stderr.
fn fails(berthd: &Berthd, args: &[&str], want: &str) {
    let out = berthd.docker(args);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "docker {args:?} succeeded: {stdout}");
    assert!(
        stderr.contains(want),
        "docker {args:?}: expected {want:?} in:\n{stderr}"
    );
}

/// `berth -H <berthd> <args>`.
fn berth(berthd: &Berthd, args: &[&str]) -> Output {
    run_command(&mut berthd.berth_command(args))
}

fn berth_ok(berthd: &Berthd, args: &[&str]) -> String {
    let out = berth(berthd, args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "berth {args:?}: {stderr}\n{stdout}");
    stdout
}

fn du_bytes(path: &Path) -> i64 {
    let out = Command::new("du")
        .arg("-sb")
        .arg(path)
        .output()
        .expect("du");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("du -sb prints a number")
}

/// Bytes of disk under `path` (`du -sx -B1`).
fn du_blocks(path: &Path) -> i64 {
    let out = Command::new("du")
        .args(["-sx", "-B1"])
        .arg(path)
        .output()
        .expect("du");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("du prints a number")
}

/// Every file under `root` with its size (for the leak report).
fn listing(root: &Path) -> Vec<String> {
    let out = Command::new("find")
        .arg(root)
        .args(["-printf", "%s %p\n"])
        .output()
        .expect("find");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn volumes_mounts_and_disk_given_back() {
    let mut berthd = Berthd::start();
    berthd.import_busybox();
    named_volumes_keep_data_and_refuse_removal_in_use(&mut berthd);
    mount_forms_and_bad_input(&berthd);
    bind_propagation_and_nonrecursive(&berthd);
    copy_up_from_an_image_volume_and_anonymous_volume_removal(&berthd);
    driver_options_mount_tmpfs_while_used(&berthd);
    berth_cli_and_docker_py(&berthd);
    prune_semantics_and_disk_usage(&berthd);
    leak_check(&berthd);
}

fn named_volumes_keep_data_and_refuse_removal_in_use(berthd: &mut Berthd) {
    assert_eq!(
        berthd.ok(&["volume", "create", "--label", "k=v", "data"]),
        "data"
    );
    let inspect = berthd.ok(&["volume", "inspect", "data"]);
    let json: serde_json::Value = serde_json::from_str(&inspect).expect("inspect json");
    let volume = &json[0];
    assert_eq!(volume["Driver"], "local");
    assert_eq!(volume["Scope"], "local");
    assert_eq!(volume["Labels"]["k"], "v");
    let mountpoint = volume["Mountpoint"].as_str().expect("mountpoint");
    assert_eq!(
        Path::new(mountpoint),
        berthd.data_root().join("volumes/data/_data")
    );
    let created = volume["CreatedAt"].as_str().expect("created");
    assert!(created.len() >= 20 && created.contains('T'), "{created}");

    // Two containers see each other's writes; the writer runs while the reader reads.
    let writer = berthd.ok(&[
        "run", "-d", "--name", "writer", "-v", "data:/data", "busybox", "sh", "-c",
        "echo one > /data/a; while [ ! -f /data/b ]; do sleep 0.1; done; echo three > /data/c; sleep 1000",
    ]);
    berthd.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "while [ ! -f /data/a ]; do sleep 0.1; done; echo two > /data/b",
    ]);
    let seen = berthd.ok(&[
        "run", "--rm", "-v", "data:/d:ro", "busybox", "sh", "-c",
        "while [ ! -f /d/c ]; do sleep 0.1; done; cat /d/a /d/b /d/c; touch /d/x 2>/dev/null || echo read-only",
    ]);
    assert_eq!(seen, "one\ntwo\nthree\nread-only");

    // In use (running, then stopped): refused with Docker's text, kept.
    fails(
        berthd,
        &["volume", "rm", "data"],
        &format!("remove data: volume is in use - [{writer}]"),
    );
    berthd.ok(&["kill", "writer"]);
    fails(berthd, &["volume", "rm", "data"], "volume is in use");
    let mounts = berthd.ok(&[
        "inspect", "-f",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Source}} {{.Destination}} {{.Driver}} {{.Mode}} {{.RW}}{{end}}",
        "writer",
    ]);
    assert_eq!(
        mounts,
        format!("volume data {mountpoint} /data local z true")
    );

    // berthd killed with -9 and restarted: the data and the reference are still there.
    berthd.kill9();
    berthd.restart();
    fails(berthd, &["volume", "rm", "data"], "volume is in use");
    berthd.ok(&["rm", "-v", "writer"]);
    assert_eq!(
        berthd.ok(&[
            "run",
            "--rm",
            "-v",
            "data:/data",
            "busybox",
            "cat",
            "/data/c"
        ]),
        "three",
        "named volumes survive rm -v of their containers"
    );
    berthd.ok(&["volume", "rm", "data"]);
    assert!(!berthd.data_root().join("volumes/data").exists());
    fails(berthd, &["volume", "inspect", "data"], "no such volume");
}

/// Host mounts made for a test; unmounted (lazily, deepest first) even on failure.
struct HostMounts(Vec<std::path::PathBuf>);

impl HostMounts {
    fn mount(&mut self, args: &[&str], target: &Path) {
        let status = Command::new("mount")
            .args(args)
            .arg(target)
            .status()
            .expect("mount");
        assert!(status.success(), "mount {args:?} {}", target.display());
        self.0.push(target.to_path_buf());
    }

    fn propagation(&self, flag: &str, target: &Path) {
        let status = Command::new("mount")
            .arg(flag)
            .arg(target)
            .status()
            .expect("mount");
        assert!(status.success(), "mount {flag} {}", target.display());
    }
}

impl Drop for HostMounts {
    fn drop(&mut self) {
        for target in self.0.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(target).status();
        }
    }
}

/// `-v /a:/b:rshared|rslave`, `--mount bind-propagation=` and `bind-nonrecursive` as Docker
/// applies them: the container's mount joins the host's peer group (a host mount made later
/// shows up inside), inspect reports the mode, a private source is refused with moby's text,
/// and a non-recursive bind leaves the source's submounts out.
fn bind_propagation_and_nonrecursive(berthd: &Berthd) {
    let host = tempfile::tempdir().expect("host dir");
    let shared = host.path().join("shared");
    let private = host.path().join("private");
    std::fs::create_dir_all(shared.join("sub")).expect("shared");
    std::fs::create_dir_all(shared.join("later")).expect("later");
    std::fs::create_dir_all(&private).expect("private");
    let mut mounts = HostMounts(Vec::new());
    mounts.mount(&["--bind", &shared.display().to_string()], &shared);
    mounts.propagation("--make-shared", &shared);
    mounts.mount(&["-t", "tmpfs", "tmpfs"], &shared.join("sub"));
    mounts.mount(&["--bind", &private.display().to_string()], &private);
    mounts.propagation("--make-private", &private);
    let shared_text = shared.display().to_string();

    let id = berthd.ok(&[
        "run",
        "-d",
        "-v",
        &format!("{shared_text}:/s:rshared"),
        "--mount",
        &format!("type=bind,source={shared_text},target=/r,bind-propagation=rslave"),
        "--mount",
        &format!("type=bind,source={shared_text},target=/n,bind-nonrecursive"),
        "busybox",
        "sleep",
        "1000",
    ]);
    let inspect = berthd.ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Destination}}={{.Propagation}} {{end}}",
        &id,
    ]);
    for want in ["/s=rshared", "/r=rslave", "/n=rprivate"] {
        assert!(inspect.contains(want), "{want} in {inspect}");
    }
    let info = berthd.ok(&["exec", &id, "cat", "/proc/self/mountinfo"]);
    let line = |point: &str| {
        info.lines()
            .find(|l| l.split(' ').nth(4) == Some(point))
            .map(str::to_string)
    };
    assert!(line("/s").is_some_and(|l| l.contains("shared:")), "{info}");
    assert!(line("/r").is_some_and(|l| l.contains("master:")), "{info}");
    assert!(line("/s/sub").is_some(), "rbind takes submounts:\n{info}");
    assert!(line("/n").is_some() && line("/n/sub").is_none(), "{info}");
    // A host mount made after start propagates into the rshared and rslave binds.
    mounts.mount(&["-t", "tmpfs", "tmpfs"], &shared.join("later"));
    let info = berthd.ok(&["exec", &id, "cat", "/proc/self/mountinfo"]);
    for point in [" /s/later ", " /r/later "] {
        assert!(info.contains(point), "{point} in:\n{info}");
    }
    berthd.ok(&["rm", "-f", &id]);

    let private_text = private.display().to_string();
    fails(
        berthd,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{private_text}:/p:rshared"),
            "busybox",
            "true",
        ],
        &format!("path {private_text} is mounted on {private_text} but it is not a shared mount"),
    );
    fails(
        berthd,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{private_text}:/p:rslave"),
            "busybox",
            "true",
        ],
        &format!(
            "path {private_text} is mounted on {private_text} but it is not a shared or slave mount"
        ),
    );
    fails(
        berthd,
        &[
            "run",
            "--rm",
            "--mount",
            &format!("type=bind,source={private_text},target=/p,bind-propagation=bogus"),
            "busybox",
            "true",
        ],
        "invalid propagation mode: bogus",
    );
}

fn mount_forms_and_bad_input(berthd: &Berthd) {
    let host = tempfile::tempdir().expect("host dir");
    let missing = host.path().join("made-by-v");
    let missing_text = missing.display().to_string();
    let out = berthd.ok(&[
        "run", "--rm", "--read-only",
        "-v", &format!("{missing_text}:/bind"),
        "--mount", "type=volume,source=mounted,target=/m",
        "--mount", "type=volume,target=/anon",
        "--mount", "type=tmpfs,target=/t,tmpfs-size=1m",
        "-v", "/plain",
        "busybox", "sh", "-c",
        "touch /bind/x /m/x /anon/x /t/x /plain/x && echo writable; touch /rootfs 2>/dev/null || echo rootfs-ro",
    ]);
    assert_eq!(out, "writable\nrootfs-ro");
    assert!(
        missing.join("x").exists(),
        "-v created the missing host directory"
    );
    fails(
        berthd,
        &[
            "run",
            "--rm",
            "--mount",
            "type=bind,source=/nonexistent/x,target=/x",
            "busybox",
            "true",
        ],
        "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent/x",
    );
    fails(
        berthd,
        &["run", "--rm", "-v", "a/b:/x", "busybox", "true"],
        "\"a/b\" includes invalid characters for a local volume name",
    );
    fails(
        berthd,
        &["volume", "create", "a/b"],
        "includes invalid characters",
    );
    fails(
        berthd,
        &["volume", "create", "--opt", "colour=red", "v1"],
        "invalid option: \"colour\"",
    );
    fails(
        berthd,
        &["run", "--rm", "-v", "vol:/x:bogus", "busybox", "true"],
        "bogus",
    );
    let listed = berthd.ok(&["volume", "ls", "-q"]);
    assert!(
        !listed.contains("v1") && !listed.contains("vol\n"),
        "bad input created nothing: {listed}"
    );

    // --volumes-from (ro and rw) sees the other container's volumes and binds.
    let source = berthd.ok(&[
        "create",
        "--name",
        "vsource",
        "-v",
        "shared:/shared",
        "-v",
        &format!("{}:/hostdir", host.path().display()),
        "busybox",
        "true",
    ]);
    berthd.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "vsource",
        "busybox",
        "sh",
        "-c",
        "echo hi > /shared/f && ls /hostdir/made-by-v",
    ]);
    fails(
        berthd,
        &[
            "run",
            "--rm",
            "--volumes-from",
            "vsource:ro",
            "busybox",
            "touch",
            "/shared/g",
        ],
        "",
    );
    assert_eq!(
        berthd.ok(&[
            "run",
            "--rm",
            "--volumes-from",
            "vsource:ro",
            "busybox",
            "cat",
            "/shared/f"
        ]),
        "hi"
    );
    berthd.ok(&["rm", "-v", &source]);
    // rm -v keeps named volumes; `mounted` (named) stays, the anonymous ones of --rm went.
    let listed = berthd.ok(&["volume", "ls", "-q"]);
    let mut names: Vec<&str> = listed.lines().collect();
    names.sort();
    assert_eq!(
        names,
        vec!["mounted", "shared"],
        "--rm removed its anonymous volumes"
    );
    berthd.ok(&["volume", "rm", "mounted", "shared"]);
}

fn copy_up_from_an_image_volume_and_anonymous_volume_removal(berthd: &Berthd) {
    berthd.ok(&[
        "run", "--name", "seed", "busybox", "sh", "-c",
        "mkdir -p /appdata/sub && echo seeded > /appdata/sub/file && chown -R 1234:5678 /appdata && chmod 0751 /appdata && chmod 0600 /appdata/sub/file && ln -s sub/file /appdata/link",
    ]);
    berthd.ok(&[
        "commit",
        "--change",
        "VOLUME /appdata",
        "seed",
        "withvolume:1",
    ]);
    berthd.ok(&["rm", "seed"]);
    let id = berthd.ok(&[
        "create",
        "withvolume:1",
        "sh",
        "-c",
        "stat -c '%u:%g %a' /appdata /appdata/sub/file; readlink /appdata/link; cat /appdata/link",
    ]);
    berthd.ok(&["start", &id]);
    assert_eq!(berthd.ok(&["wait", &id]), "0");
    let logs = berthd.ok(&["logs", &id]);
    assert_eq!(logs, "1234:5678 751\n1234:5678 600\nsub/file\nseeded");
    let anonymous = berthd.ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Name}} {{.Type}} {{.Mode}}{{end}}",
        &id,
    ]);
    let name = anonymous.split(' ').next().expect("name").to_string();
    assert_eq!(name.len(), 64, "{anonymous}");
    let label = berthd.ok(&["volume", "inspect", "-f", "{{json .Labels}}", &name]);
    assert_eq!(label, r#"{"com.docker.volume.anonymous":""}"#);
    // nocopy: a fresh named volume over the same path stays empty.
    assert_eq!(
        berthd.ok(&[
            "run",
            "--rm",
            "-v",
            "empty:/appdata:nocopy",
            "withvolume:1",
            "ls",
            "-A",
            "/appdata"
        ]),
        ""
    );
    berthd.ok(&["volume", "rm", "empty"]);
    // rm without -v keeps the anonymous volume; prune then removes it.
    berthd.ok(&["rm", &id]);
    assert!(berthd.ok(&["volume", "ls", "-q"]).contains(&name));
    let pruned = berthd.ok(&["volume", "prune", "-f"]);
    assert!(pruned.contains(&name), "{pruned}");
    // rm -v removes it at once.
    let id = berthd.ok(&["create", "withvolume:1", "true"]);
    let name = berthd.ok(&["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", &id]);
    berthd.ok(&["rm", "-v", &id]);
    assert!(!berthd.ok(&["volume", "ls", "-q"]).contains(&name));
    // run --rm removes the anonymous volume of an image VOLUME too.
    berthd.ok(&["run", "--rm", "withvolume:1", "true"]);
    assert_eq!(berthd.ok(&["volume", "ls", "-q"]), "");
    berthd.ok(&["rmi", "withvolume:1"]);
}

fn driver_options_mount_tmpfs_while_used(berthd: &Berthd) {
    berthd.ok(&[
        "volume",
        "create",
        "--driver",
        "local",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=2m,uid=1000",
        "ramdisk",
    ]);
    let out = berthd.ok(&[
        "run",
        "--rm",
        "-v",
        "ramdisk:/r",
        "busybox",
        "sh",
        "-c",
        "grep ' /r ' /proc/mounts | cut -d' ' -f3; stat -c %u /r",
    ]);
    assert_eq!(out, "tmpfs\n1000");
    let data = berthd.data_root().join("volumes/ramdisk/_data");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(&format!(" {} ", data.display())),
        "unmounted once no container uses it"
    );
    berthd.ok(&["volume", "rm", "ramdisk"]);
}

fn berth_cli_and_docker_py(berthd: &Berthd) {
    assert_eq!(berth_ok(berthd, &["volume", "create", "bvol"]), "bvol");
    let listed = berth_ok(berthd, &["volume", "ls"]);
    assert!(
        listed.starts_with("DRIVER") && listed.contains("local     bvol"),
        "{listed}"
    );
    let out = berth(berthd, &["volume", "rm", "nope"]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("no such volume"), "{:?}", text(&out));
    assert_eq!(
        berth_ok(
            berthd,
            &[
                "run",
                "--rm",
                "-v",
                "bvol:/b",
                "busybox",
                "sh",
                "-c",
                "echo x > /b/f && cat /b/f"
            ]
        ),
        "x"
    );
    let script = r#"
import docker, sys
c = docker.from_env()
v = c.volumes.create("pyvol", labels={"py": "1"})
assert v.attrs["Labels"] == {"py": "1"}, v.attrs
out = c.containers.run("busybox", "sh -c 'echo py > /v/f; cat /v/f'", volumes={"pyvol": {"bind": "/v", "mode": "rw"}}, remove=True)
assert out == b"py\n", out
assert [x.name for x in c.volumes.list(filters={"label": "py=1"})] == ["pyvol"]
v.remove()
before = len(c.containers.list(all=True))
try:
    c.containers.create("busybox", "true", mounts=[docker.types.Mount("/x", "rel", type="bind")])
    sys.exit("a relative bind source was accepted")
except docker.errors.APIError as e:
    assert e.status_code == 400, e
    want = "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"
    assert want in str(e.explanation), e.explanation
assert len(c.containers.list(all=True)) == before, "a refused create left a container"
r = c.volumes.prune()
assert "VolumesDeleted" in r and "SpaceReclaimed" in r, r
print("ok")
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script])
        .env("DOCKER_HOST", berthd.host())
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH");
    let out = run_command(&mut cmd);
    assert!(out.status.success(), "docker-py: {:?}", text(&out));
    berth_ok(berthd, &["volume", "rm", "bvol"]);
}

fn prune_semantics_and_disk_usage(berthd: &Berthd) {
    berthd.ok(&["volume", "create", "named"]);
    berthd.ok(&["volume", "create", "--label", "keep=1", "kept"]);
    let id = berthd.ok(&["create", "-v", "/anon", "busybox", "true"]);
    let anonymous = berthd.ok(&["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", &id]);
    berthd.ok(&["rm", &id]);
    let id = berthd.ok(&[
        "create",
        "-v",
        "/used",
        "busybox",
        "sh",
        "-c",
        "head -c 3000 /dev/zero > /used/f",
    ]);
    berthd.ok(&["start", "-a", &id]);
    let df = berthd.ok(&["system", "df", "-v"]);
    assert!(df.contains("Local Volumes space usage:"), "{df}");
    let json = berthd.ok(&["system", "df", "--format", "{{json .}}"]);
    assert!(json.contains("\"Type\":\"Local Volumes\""), "{json}");
    let dangling = berthd.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert!(
        dangling.contains("named") && dangling.contains(&anonymous),
        "{dangling}"
    );
    // Without --all only the unused anonymous volume goes (API 1.42 semantics).
    let pruned = berthd.ok(&["volume", "prune", "-f"]);
    assert!(
        pruned.contains(&anonymous) && !pruned.contains("named"),
        "{pruned}"
    );
    let pruned = berthd.ok(&["volume", "prune", "-af", "--filter", "label!=keep"]);
    assert!(
        pruned.contains("named") && !pruned.contains("kept"),
        "{pruned}"
    );
    berthd.ok(&["container", "prune", "-f"]);
    let before = du_blocks(&berthd.data_root());
    let out = berthd.ok(&["volume", "prune", "-f"]);
    // What the disk got back: the volume's 3000-byte file, its directories and record.
    let gone = before - du_blocks(&berthd.data_root());
    assert!(gone > 3000, "{gone}");
    let printed = out
        .lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .and_then(|t| t.strip_suffix("kB"))
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no kB total in {out}"));
    assert!(
        (printed * 1000.0 - gone as f64).abs() <= gone as f64 * 0.001,
        "SpaceReclaimed is the {gone} bytes du lost: {out}"
    );
    // The pruned container's anonymous volume went with the volume prune after it.
    let left = berthd.ok(&["volume", "ls", "-q"]);
    assert_eq!(left, "kept", "{left}");
    berthd.ok(&["volume", "rm", "kept"]);
}

fn leak_check(berthd: &Berthd) {
    let root = berthd.data_root();
    let before = du_bytes(&root);
    let before_listing = listing(&root);
    // 10 running containers with logs and volumes, 90 created ones.
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(berthd.ok(&[
            "run",
            "-d",
            "-v",
            &format!("leak{i}:/data"),
            "-v",
            "/anon",
            "busybox",
            "sh",
            "-c",
            "head -c 100000 /dev/urandom > /data/f; echo logged; sleep 1000",
        ]));
    }
    for _ in 0..90 {
        ids.push(berthd.ok(&["create", "-v", "/anon", "busybox", "true"]));
    }
    let images = tempfile::tempdir().expect("images");
    for i in 0..20 {
        let dir = images.path().join(format!("img{i}"));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("id"), format!("image {i}\n").repeat(100 + i)).expect("file");
        let tar = images.path().join(format!("img{i}.tar"));
        let status = Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("tar");
        assert!(status.success());
        berthd.ok(&[
            "import",
            "--change",
            "LABEL leak=1",
            &tar.display().to_string(),
            &format!("leak:{i}"),
        ]);
    }
    // One `rm -f` of all of them, as `docker rm -f $(docker ps -aq)`: the docker CLI removes
    // them in parallel, so the snapshot store sees concurrent removals.
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.iter().map(String::as_str));
    berthd.ok(&rm);
    berthd.ok(&["container", "prune", "-f"]);
    berthd.ok(&["image", "prune", "-af", "--filter", "label=leak=1"]);
    berthd.ok(&["volume", "prune", "-af"]);
    assert_eq!(berthd.ok(&["ps", "-aq"]), "");
    assert_eq!(berthd.ok(&["volume", "ls", "-q"]), "");
    let after = du_bytes(&root);
    if (after - before).abs() > 1 << 20 {
        let old: std::collections::BTreeSet<String> = before_listing.into_iter().collect();
        let leaked: Vec<String> = listing(&root)
            .into_iter()
            .filter(|line| !old.contains(line))
            .take(40)
            .collect();
        panic!(
            "the data root went from {before} to {after} bytes; new or changed entries:\n{}",
            leaked.join("\n")
        );
    }
}
