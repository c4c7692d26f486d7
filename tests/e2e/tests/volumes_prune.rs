//! Disk given back, measured: every prune's `SpaceReclaimed` (containers, images, volumes,
//! build cache) equals what `du -sx` of the data root loses; `system df` counts the build
//! cache; the real docker CLI's `system prune -af --volumes` after a mix of containers,
//! images, volumes, networks and a build returns the data root to its starting usage
//! (within 1 MB) and prints Docker's summary; a concurrent `rm -f` of containers sharing
//! an image (the docker CLI sends them in parallel) leaves no snapshot behind. One berthd.

use std::path::Path;
use std::process::{Command, Output};

use berth_e2e::daemon::{run_command, Berthd, Daemon};

/// Bytes of disk under `path` on its own filesystem (`du -sx -B1`).
fn du(path: &Path) -> u64 {
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

/// `du` once berthd's writes after the last command have landed (a stopped container's
/// final state reaches disk just after `docker run` returns): two equal readings in a row.
fn settled_du(path: &Path) -> u64 {
    let mut last = du(path);
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = du(path);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// `POST <path>` on berthd's socket; the JSON answer.
fn post(berthd: &Berthd, path: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-sf", "-X", "POST", "--unix-socket"])
        .arg(berthd.socket())
        .arg(format!("http://berth{path}"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "POST {path}: {out:?}");
    serde_json::from_slice(&out.stdout).expect("json answer")
}

fn get(berthd: &Berthd, path: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-sf", "--unix-socket"])
        .arg(berthd.socket())
        .arg(format!("http://berth{path}"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "GET {path}: {out:?}");
    serde_json::from_slice(&out.stdout).expect("json answer")
}

/// Runs a prune through the API and checks its `SpaceReclaimed` against `du`.
fn prune_measured(berthd: &Berthd, path: &str) -> (serde_json::Value, u64) {
    let root = berthd.data_root();
    let before = settled_du(&root);
    let report = post(berthd, path);
    let after = du(&root);
    let reclaimed = report["SpaceReclaimed"].as_u64().expect("SpaceReclaimed");
    assert_eq!(
        reclaimed,
        before.saturating_sub(after),
        "{path}: reported {reclaimed}, du went {before} -> {after}: {report}"
    );
    (report, reclaimed)
}

fn berth(berthd: &Berthd, args: &[&str]) -> Output {
    run_command(&mut berthd.berth_command(args))
}

fn berth_ok(berthd: &Berthd, args: &[&str]) -> String {
    let out = berth(berthd, args);
    assert!(
        out.status.success(),
        "berth {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `docker build` with the classic builder; the output whatever the exit code.
fn build(berthd: &Berthd, dockerfile: &str, tag: Option<&str>) -> Output {
    let dir = tempfile::tempdir().expect("context");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("Dockerfile");
    let mut cmd = berthd.command(&["build"]);
    cmd.env("DOCKER_BUILDKIT", "0");
    if let Some(tag) = tag {
        cmd.args(["-t", tag]);
    }
    cmd.arg(dir.path());
    run_command(&mut cmd)
}

/// Bytes of a docker `units.HumanSize` text (`12.3MB`, `4.1kB`, `0B`).
fn parse_human(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .expect("a unit");
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => panic!("unit {other}"),
    };
    number.parse::<f64>().expect("number") * scale
}

fn total_reclaimed(output: &str) -> f64 {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap_or_else(|| panic!("no total line in:\n{output}"));
    parse_human(line.trim())
}

#[test]
fn volumes_prune_reclaims_what_du_loses() {
    let berthd = Berthd::start();
    let start = du(&berthd.data_root());
    berthd.import_busybox();
    each_prune_reports_what_du_loses(&berthd);
    disk_usage_counts_the_build_cache(&berthd);
    parallel_rm_of_containers_sharing_an_image(&berthd);
    docker_system_prune_returns_the_data_root(&berthd, start);
}

fn each_prune_reports_what_du_loses(berthd: &Berthd) {
    // Stopped containers with data in their writable layer and their logs.
    for i in 0..3 {
        berthd.ok(&[
            "run",
            "--name",
            &format!("p{i}"),
            "busybox",
            "sh",
            "-c",
            "head -c 300000 /dev/urandom > /blob; seq 1 2000",
        ]);
    }
    let (report, reclaimed) = prune_measured(berthd, "/containers/prune");
    assert_eq!(
        report["ContainersDeleted"].as_array().map(Vec::len),
        Some(3)
    );
    assert!(reclaimed >= 900_000, "{reclaimed}");

    // Two imported images nothing uses.
    let images = tempfile::tempdir().expect("images");
    for i in 0..2 {
        let dir = images.path().join(format!("img{i}"));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("data"), vec![i as u8 + 1; 200_000]).expect("file");
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
            "LABEL prune=1",
            &tar.display().to_string(),
            &format!("prunable:{i}"),
        ]);
    }
    let filters = r#"{"dangling":["false"],"label":["prune=1"]}"#;
    let (report, reclaimed) = prune_measured(
        berthd,
        &format!("/images/prune?filters={}", urlencode(filters)),
    );
    assert!(report["ImagesDeleted"].as_array().is_some(), "{report}");
    assert!(reclaimed >= 400_000, "{reclaimed}");

    // An anonymous volume left by a removed container.
    berthd.ok(&[
        "run",
        "--name",
        "anon",
        "-v",
        "/anon",
        "busybox",
        "sh",
        "-c",
        "head -c 250000 /dev/urandom > /anon/f",
    ]);
    berthd.ok(&["rm", "anon"]);
    let (report, reclaimed) = prune_measured(berthd, "/volumes/prune");
    assert_eq!(report["VolumesDeleted"].as_array().map(Vec::len), Some(1));
    assert!(reclaimed >= 250_000, "{reclaimed}");

    // The berth CLI prints what the API reported.
    berthd.ok(&[
        "run",
        "--name",
        "cli",
        "busybox",
        "sh",
        "-c",
        "head -c 500000 /dev/urandom > /blob",
    ]);
    let root = berthd.data_root();
    let before = settled_du(&root);
    let out = berth_ok(berthd, &["container", "prune", "-f"]);
    let gone = before - du(&root);
    let printed = total_reclaimed(&out);
    assert!(
        (printed - gone as f64).abs() <= gone as f64 * 0.001 + 1.0,
        "printed {printed}, du lost {gone}:\n{out}"
    );
}

fn disk_usage_counts_the_build_cache(berthd: &Berthd) {
    // The last step fails: the first RUN's image is kept only by the build cache.
    let out = build(
        berthd,
        "FROM busybox\nRUN head -c 400000 /dev/urandom > /cached\nRUN false\n",
        None,
    );
    assert!(!out.status.success(), "the build must fail at RUN false");
    let usage = get(berthd, "/system/df?type=build-cache");
    let cache = usage["BuildCache"].as_array().expect("BuildCache");
    assert!(
        usage.get("Images").is_none_or(serde_json::Value::is_null),
        "{usage}"
    );
    let record = cache
        .iter()
        .find(|r| r["Size"].as_i64().unwrap_or(0) >= 400_000)
        .unwrap_or_else(|| panic!("no record of the RUN step: {usage}"));
    assert_eq!(record["Type"], "regular");
    assert_eq!(record["Shared"], false);
    assert!(
        record["Description"]
            .as_str()
            .is_some_and(|d| d.contains("head -c 400000")),
        "{record}"
    );

    let df = berth_ok(berthd, &["system", "df"]);
    let row = df
        .lines()
        .find(|l| l.starts_with("Build Cache"))
        .unwrap_or_else(|| panic!("{df}"));
    assert!(!row.contains(" 0B "), "{df}");
    // `df -v` renders as the docker CLI renders it against the same daemon.
    let docker = berthd.ok(&["system", "df", "-v"]);
    let ours = berth_ok(berthd, &["system", "df", "-v"]);
    assert_eq!(ours.trim_end(), docker.trim_end());

    let (report, reclaimed) = prune_measured(berthd, "/build/prune");
    assert!(
        report["CachesDeleted"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{report}"
    );
    assert!(reclaimed >= 400_000, "{reclaimed}");
    let usage = get(berthd, "/system/df?type=build-cache");
    assert_eq!(usage["BuildCache"], serde_json::json!([]), "{usage}");
}

fn parallel_rm_of_containers_sharing_an_image(berthd: &Berthd) {
    let snapshots = || {
        let out = Command::new("find")
            .arg(berthd.data_root())
            .args(["-maxdepth", "4", "-type", "d"])
            .output()
            .expect("find");
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    let before = snapshots();
    let mut names = Vec::new();
    for i in 0..6 {
        let name = format!("race{i}");
        if i % 2 == 0 {
            berthd.ok(&["run", "-d", "--name", &name, "busybox", "sleep", "1000"]);
        } else {
            berthd.ok(&["create", "--name", &name, "busybox", "true"]);
        }
        names.push(name);
    }
    let mut args = vec!["rm", "-f"];
    args.extend(names.iter().map(String::as_str));
    let out = berthd.docker(&args);
    assert!(
        out.status.success(),
        "parallel rm -f: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(berthd.ok(&["ps", "-aq"]), "");
    assert_eq!(snapshots(), before, "directories left behind");
    // The image's layers are intact: a new container still starts.
    assert_eq!(berthd.ok(&["run", "--rm", "busybox", "echo", "ok"]), "ok");
}

fn docker_system_prune_returns_the_data_root(berthd: &Berthd, start: u64) {
    berthd.ok(&["network", "create", "prunenet"]);
    berthd.ok(&[
        "run",
        "--network",
        "prunenet",
        "-v",
        "/anon",
        "busybox",
        "sh",
        "-c",
        "head -c 300000 /dev/urandom > /anon/f; head -c 300000 /dev/urandom > /f",
    ]);
    berthd.ok(&["create", "busybox", "true"]);
    let out = build(
        berthd,
        "FROM busybox\nRUN head -c 200000 /dev/urandom > /built\n",
        Some("built:1"),
    );
    assert!(out.status.success(), "{out:?}");
    let out = build(
        berthd,
        "FROM busybox\nRUN head -c 200000 /dev/urandom > /cached\nRUN false\n",
        None,
    );
    assert!(!out.status.success());
    let before = settled_du(&berthd.data_root());
    let output = berthd.ok(&["system", "prune", "-af", "--volumes"]);
    let after = du(&berthd.data_root());
    for title in [
        "Deleted Containers:",
        "Deleted Networks:",
        "prunenet",
        "Deleted Volumes:",
        "Deleted Images:",
        "untagged: built:1",
        "untagged: busybox:latest",
        "Deleted build cache objects:",
    ] {
        assert!(output.contains(title), "{title:?} missing in:\n{output}");
    }
    let printed = total_reclaimed(&output);
    let gone = (before - after) as f64;
    // Network prune reports no bytes (Docker's answer has no SpaceReclaimed), so the
    // network's record is the only disk the total does not count.
    assert!(
        (printed - gone).abs() <= gone * 0.001 + 16384.0,
        "printed {printed}, du lost {gone}:\n{output}"
    );
    assert!(
        after.abs_diff(start) <= 1 << 20,
        "the data root went from {start} to {after} bytes"
    );
    assert_eq!(berthd.ok(&["images", "-aq"]), "");
    assert_eq!(berthd.ok(&["volume", "ls", "-q"]), "");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
