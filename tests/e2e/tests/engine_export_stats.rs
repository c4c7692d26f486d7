//! `export` of stopped and running containers, `ps --size` / `inspect --size` and `stats`
//! (`--no-stream`, `--format`, the streaming redraw) with ONE berthd and ONE private dockerd
//! for the whole file (scenarios run in order inside a single test, to keep CI lean): the
//! docker CLI and berth against berthd, and the docker CLI against Debian's dockerd 20.10,
//! must agree.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_e2e::berthd::bin_dir;
use berth_e2e::daemon::{run_command, Berthd, Daemon, Dockerd};
use berth_e2e::normalize::normalize;

/// How long a streaming `stats` is watched before it is stopped (it never ends by itself).
const STATS_WATCH: Duration = Duration::from_millis(1800);

/// `berth -H <daemon> <args>`, stdin closed.
fn berth(daemon: &impl Daemon, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin_dir().join("berth"));
    cmd.env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .env("DOCKER_CONFIG", daemon.cli_config_dir())
        .arg("-H")
        .arg(daemon.host())
        .args(args)
        .stdin(Stdio::null());
    run_command(&mut cmd)
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn berth_ok(daemon: &impl Daemon, args: &[&str]) -> String {
    let out = berth(daemon, args);
    assert!(
        out.status.success(),
        "berth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text(&out).trim().to_string()
}

/// Entries of a tar: path (without a leading `./` or `/`, directories without their
/// trailing `/`) to its content for regular files, `<dir>`/`<link …>`/`<other>` otherwise.
fn tar_entries(bytes: &[u8]) -> BTreeMap<String, String> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = BTreeMap::new();
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("a tar entry");
        let path = entry.path().expect("a path").to_string_lossy().into_owned();
        let path = path
            .trim_start_matches("./")
            .trim_start_matches('/')
            .trim_end_matches('/')
            .to_string();
        if path.is_empty() || path == "." {
            continue;
        }
        let kind = entry.header().entry_type();
        let value = if kind.is_file() {
            let mut content = String::new();
            let _ = entry.read_to_string(&mut content);
            content
        } else if kind.is_dir() {
            "<dir>".to_string()
        } else if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .ok()
                .flatten()
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("<link {target}>")
        } else {
            "<other>".to_string()
        };
        out.insert(path, value);
    }
    out
}

/// What Docker's init layer adds to every container's root filesystem (moby's
/// `initlayer.Setup`); berth bind-mounts these instead, so exports compare without them.
fn without_init_layer(mut entries: BTreeMap<String, String>) -> BTreeMap<String, String> {
    const INIT: &[&str] = &[
        ".dockerenv",
        "etc/hostname",
        "etc/hosts",
        "etc/resolv.conf",
        "etc/mtab",
        "dev/console",
        "dev/pts",
        "dev/shm",
    ];
    entries.retain(|path, _| !INIT.contains(&path.as_str()));
    entries
}

/// Writes some files, deletes one from the image and exits: a container with changes.
const CHANGES: &str = "echo hello > /hello.txt && mkdir -p /d/e && echo x > /d/e/f && \
                       rm /bin/cat && dd if=/dev/zero of=/blob bs=1000 count=5 2>/dev/null";

fn export_of_stopped_and_running_containers(berthd: &Berthd, dockerd: &Dockerd) {
    for daemon in [berthd as &dyn Daemon, dockerd as &dyn Daemon] {
        daemon.ok(&["run", "--name", "changed", "busybox", "sh", "-c", CHANGES]);
    }
    let ours = berthd.docker(&["export", "changed"]);
    assert!(
        ours.status.success(),
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );
    let theirs = dockerd.docker(&["export", "changed"]);
    assert!(theirs.status.success());
    let ours_entries = without_init_layer(tar_entries(&ours.stdout));
    let theirs_entries = without_init_layer(tar_entries(&theirs.stdout));
    assert_eq!(
        ours_entries.get("hello.txt").map(String::as_str),
        Some("hello\n")
    );
    assert_eq!(ours_entries.get("d/e/f").map(String::as_str), Some("x\n"));
    assert!(
        !ours_entries.contains_key("bin/cat"),
        "the deleted file is left out"
    );
    assert!(ours_entries.contains_key("bin/sh"));
    assert_eq!(
        ours_entries.keys().collect::<Vec<_>>(),
        theirs_entries.keys().collect::<Vec<_>>(),
        "berthd's export lists what dockerd's does"
    );
    assert_eq!(ours_entries, theirs_entries);
    // berth's CLI writes the same tar, to a file with -o.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("changed.tar");
    berth_ok(
        berthd,
        &["export", "-o", &file.to_string_lossy(), "changed"],
    );
    let from_file = std::fs::read(&file).expect("the exported file");
    assert_eq!(without_init_layer(tar_entries(&from_file)), ours_entries);
    // The read-only view is gone again and the container still starts and is removed.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains("/export-"),
        "an export view stayed mounted"
    );
    let container_dir = berthd
        .data_root()
        .join("containers")
        .join(berthd.ok(&["inspect", "-f", "{{.Id}}", "changed"]));
    let leftovers: Vec<String> = std::fs::read_dir(&container_dir)
        .expect("the container directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("export-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A running container: the same content, read from its mounted root filesystem.
    for daemon in [berthd as &dyn Daemon, dockerd as &dyn Daemon] {
        daemon.ok(&[
            "run",
            "-d",
            "--name",
            "live",
            "busybox",
            "sh",
            "-c",
            "echo up > /up.txt && exec sleep 1000",
        ]);
    }
    let ours = without_init_layer(tar_entries(&berthd.docker(&["export", "live"]).stdout));
    let theirs = without_init_layer(tar_entries(&dockerd.docker(&["export", "live"]).stdout));
    let start = Instant::now();
    let ours = if ours.contains_key("up.txt") {
        ours
    } else {
        // The shell may not have written it yet.
        loop {
            let again = without_init_layer(tar_entries(&berthd.docker(&["export", "live"]).stdout));
            if again.contains_key("up.txt") || start.elapsed() > Duration::from_secs(30) {
                break again;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(ours.get("up.txt").map(String::as_str), Some("up\n"));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    // Missing containers: the same error and exit code from both daemons.
    let ours = berthd.docker(&["export", "nosuch"]);
    let theirs = dockerd.docker(&["export", "nosuch"]);
    assert_eq!(ours.status.code(), theirs.status.code());
    assert_eq!(
        String::from_utf8_lossy(&ours.stderr),
        String::from_utf8_lossy(&theirs.stderr)
    );
}

fn sizes_in_ps_and_inspect(berthd: &Berthd, dockerd: &Dockerd) {
    // The container of the export scenario holds 5000 + 6 + 2 bytes of its own files.
    let format = "{{.Names}}\t{{.Size}}";
    let ours = berthd.ok(&[
        "ps",
        "-a",
        "-s",
        "--filter",
        "name=changed",
        "--format",
        format,
    ]);
    let theirs = dockerd.ok(&[
        "ps",
        "-a",
        "-s",
        "--filter",
        "name=changed",
        "--format",
        format,
    ]);
    assert!(ours.starts_with("changed\t5.01kB (virtual "), "{ours}");
    assert_eq!(ours, theirs, "ps --size against berthd and dockerd");
    // berth's table is the docker CLI's, SIZE column included.
    let table = ["ps", "-a", "-s", "--filter", "name=changed"];
    assert_eq!(
        normalize(&berth_ok(berthd, &table)),
        normalize(&berthd.ok(&table))
    );
    assert!(berthd
        .ok(&table)
        .lines()
        .next()
        .unwrap_or("")
        .ends_with("SIZE"));
    let template = "{{.SizeRw}} {{.SizeRootFs}}";
    let ours = berthd.ok(&["inspect", "-s", "-f", template, "changed"]);
    assert_eq!(
        ours,
        dockerd.ok(&["inspect", "-s", "-f", template, "changed"])
    );
    assert_eq!(
        ours,
        berth_ok(berthd, &["inspect", "-s", "-f", template, "changed"])
    );
    let rw: i64 = ours
        .split(' ')
        .next()
        .unwrap_or("")
        .parse()
        .expect("SizeRw");
    assert_eq!(rw, 5008);
    // Without --size the fields are absent, as Docker's.
    assert_eq!(
        berthd.ok(&["inspect", "-f", "{{json .SizeRw}}", "changed"]),
        dockerd.ok(&["inspect", "-f", "{{json .SizeRw}}", "changed"])
    );
}

/// Runs a streaming `stats` for [`STATS_WATCH`], then stops it (by PID: our child).
fn watch_stats(mut cmd: Command) -> String {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("stats runs");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    std::thread::sleep(STATS_WATCH);
    let _ = child.kill();
    let _ = child.wait();
    String::from_utf8_lossy(&reader.join().expect("reader")).into_owned()
}

fn stats_one_shot_and_streaming(berthd: &Berthd, dockerd: &Dockerd) {
    let format = "{{.Name}} {{.PIDs}} {{.Container}}";
    let ours = berth_ok(
        berthd,
        &["stats", "--no-stream", "--format", format, "live"],
    );
    assert_eq!(ours, "live 1 live");
    assert_eq!(
        ours,
        berthd.ok(&["stats", "--no-stream", "--format", format, "live"])
    );
    assert_eq!(
        ours,
        dockerd.ok(&["stats", "--no-stream", "--format", format, "live"])
    );
    // The default table: docker's header and columns.
    let table = berth_ok(berthd, &["stats", "--no-stream", "live"]);
    let docker_table = berthd.ok(&["stats", "--no-stream", "live"]);
    assert_eq!(
        table.lines().next(),
        docker_table.lines().next(),
        "{table}\n{docker_table}"
    );
    assert!(table
        .lines()
        .next()
        .unwrap_or("")
        .starts_with("CONTAINER ID   NAME      CPU %"));
    assert_eq!(table.lines().count(), 2, "{table}");
    // Streaming: redrawn from the top-left, each line erased past its end.
    let mut cmd = Command::new(bin_dir().join("berth"));
    cmd.env("DOCKER_CONFIG", berthd.cli_config_dir()).args([
        "-H",
        &berthd.host(),
        "stats",
        "--format",
        format,
        "live",
    ]);
    let ours = watch_stats(cmd);
    let theirs = watch_stats(berthd.command(&["stats", "--format", format, "live"]));
    let frame = "\x1b[Hlive 1 live\n\x1b[Hlive 1 live \x1b[K\n \x1b[K\n\x1b[J";
    assert!(ours.starts_with(frame), "{ours:?}");
    assert!(theirs.starts_with(frame), "docker CLI: {theirs:?}");
    // With no container named, stats follows all running ones.
    let mut cmd = Command::new(bin_dir().join("berth"));
    cmd.env("DOCKER_CONFIG", berthd.cli_config_dir()).args([
        "-H",
        &berthd.host(),
        "stats",
        "--format",
        "{{.Name}}",
    ]);
    let all = watch_stats(cmd);
    assert!(all.contains("\x1b[Hlive\n"), "{all:?}");
    // A stopped container: zeros, as Docker's.
    let format = "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}";
    assert_eq!(
        berth_ok(
            berthd,
            &["stats", "--no-stream", "--format", format, "changed"]
        ),
        dockerd.ok(&["stats", "--no-stream", "--format", format, "changed"])
    );
}

#[test]
fn export_sizes_and_stats_match_docker() {
    let berthd = Berthd::start();
    berthd.import_busybox();
    let dockerd = Dockerd::start();
    dockerd.import_busybox();
    export_of_stopped_and_running_containers(&berthd, &dockerd);
    sizes_in_ps_and_inspect(&berthd, &dockerd);
    stats_one_shot_and_streaming(&berthd, &dockerd);
    for daemon in [&berthd as &dyn Daemon, &dockerd as &dyn Daemon] {
        daemon.ok(&["rm", "-f", "changed", "live"]);
    }
}
