//! The same Dockerfiles built by berthd and by Debian's dockerd 20.10 (both through the
//! docker CLI 28 with `DOCKER_BUILDKIT=0`, the classic `POST /build`), and the images
//! compared (issue 7): the config fields Docker's builder sets, the history's CreatedBy
//! column (COPY/ADD source digests too) and which steps are empty layers, and the exported
//! file trees. The one known difference is where Docker itself changed: dockerd 20.10
//! digests `COPY --from` sources the pre-23 way (see `as_current_docker`); berth gives
//! today's digests, and the test checks both sides against an independent computation.
//!
//! The fixtures use every instruction between them: multi-stage with `COPY --from`, RUN in
//! shell and exec form, CMD, ENTRYPOINT (both forms), LABEL, EXPOSE, ENV (both forms), ARG
//! with a default and with `--build-arg`, ADD of a local tar (extracted) and of a plain
//! file, COPY of a directory, of several sources and with `--chown` and a wildcard, VOLUME, USER, WORKDIR, ONBUILD (declared, then
//! run by a child image), STOPSIGNAL, HEALTHCHECK, SHELL and MAINTAINER.
//!
//! Both daemons are private fixtures stopped and cleaned up on drop, also on failure.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hasher};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

use berth_e2e::daemon::{run_command, Berthd, Daemon, Dockerd};

/// Every context file and tar entry gets this mtime, far before the test started, so a
/// preserved mtime (COPY, ADD) is told apart from one set while building.
const FIXTURE_MTIME: u64 = 1_600_000_000;

const PARENT: &str = r#"FROM busybox AS builder
ARG GREETING=hello
RUN echo "$GREETING" > /greeting && mkdir -p /out && echo built > /out/built.txt
RUN ["/bin/sh", "-c", "echo exec-form > /out/exec.txt && chmod 0600 /out/exec.txt"]

FROM busybox
MAINTAINER berth e2e <e2e@example.com>
LABEL org.example.a="one" org.example.b=two
LABEL multi="x y"
ARG VERSION=1.0
ARG FLAVOR
ENV APP_HOME=/srv/app APP_VERSION=$VERSION
ENV LEGACY form with spaces
WORKDIR $APP_HOME
COPY --from=builder /out/ ./from-builder/
COPY --from=builder /greeting /greeting
ADD app.tar /opt/
ADD plain.txt /opt/plain.txt
COPY --chown=1:1 src/*.conf /etc/app/
COPY src /srcdir/
COPY plain.txt src/two.conf /multi/
COPY --chown=2:2 src/one.conf /deep/new/dirs/
COPY --chown=nobody:nogroup plain.txt ./owned.txt
RUN echo "flavor=$FLAVOR version=$VERSION" > /srv/app/args.txt && ln -s args.txt /srv/app/args.link
EXPOSE 8080 53/udp
VOLUME ["/data", "/logs"]
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries=2 CMD test -f /srv/app/args.txt || exit 1
ONBUILD RUN echo onbuild > /tmp/onbuild.txt
ONBUILD COPY trigger.txt /onbuild/
USER nobody
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo $APP_HOME"]
"#;

const SHELLS: &str = r#"FROM busybox
SHELL ["/bin/sh", "-ec"]
RUN echo custom-shell > /shell.txt
ENV A=1 B="two words" C=3
WORKDIR /a
WORKDIR b
USER 1000:1000
ENTRYPOINT echo entry
CMD echo cmd
"#;

const CHILD: &str =
    "FROM cmp-parent\nUSER root\nRUN cat /onbuild/trigger.txt >> /tmp/onbuild.txt\n";

/// The Config fields issue 7 names, plus nothing the daemon sets for itself (Hostname,
/// Image, ...).
const CONFIG_FIELDS: &[&str] = &[
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "Healthcheck",
    "OnBuild",
    "Shell",
    "StopSignal",
    "ArgsEscaped",
];

/// What `docker create` + `docker export` adds that no build step made, so is left out of
/// the tree comparison: the runtime's per-container files (dockerd's init layer makes
/// /etc/hostname, /etc/hosts, /etc/resolv.conf as bind-mount targets, /etc/mtab, /dev/*
/// and /.dockerenv) and the VOLUME mount points /data and /logs (made at create, not by
/// the build: they are not in the image's layers).
const RUNTIME_PATHS: &[&str] = &[
    ".dockerenv",
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
    "etc/mtab",
    "data",
    "logs",
];

/// Directories whose mtime the runtime changes by creating the entries above in them.
const RUNTIME_PARENTS: &[&str] = &["", "etc", "dev"];

fn write(dir: &Path, path: &str, content: &[u8]) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&p, content).expect("write");
}

/// Sets every file's mtime under `dir` to [`FIXTURE_MTIME`] (`touch -h`, symlinks too).
fn age(dir: &Path) {
    let out = run_command(
        Command::new("find")
            .arg(dir)
            .args(["-exec", "touch", "-h", "-d"])
            .arg(format!("@{FIXTURE_MTIME}"))
            .args(["{}", "+"]),
    );
    assert!(out.status.success(), "touch: {out:?}");
}

/// A tar for `ADD app.tar /opt/`: a directory, an executable, a file owned by 1000:1000,
/// a symlink and a hard link.
fn app_tar() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut entry = |path: &str,
                     kind: tar::EntryType,
                     mode: u32,
                     owner: u64,
                     data: &[u8],
                     link: Option<&str>| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(owner);
        header.set_gid(owner);
        header.set_mtime(FIXTURE_MTIME);
        header.set_size(data.len() as u64);
        if let Some(link) = link {
            header.set_link_name(link).expect("link name");
        }
        builder
            .append_data(&mut header, path, data)
            .expect("tar entry");
    };
    entry("pkg/", tar::EntryType::Directory, 0o755, 0, b"", None);
    entry("pkg/bin/", tar::EntryType::Directory, 0o750, 0, b"", None);
    entry(
        "pkg/bin/tool",
        tar::EntryType::Regular,
        0o755,
        0,
        b"#!/bin/sh\necho tool\n",
        None,
    );
    entry(
        "pkg/readme",
        tar::EntryType::Regular,
        0o640,
        1000,
        b"read me\n",
        None,
    );
    entry(
        "pkg/link",
        tar::EntryType::Symlink,
        0o777,
        0,
        b"",
        Some("readme"),
    );
    entry(
        "pkg/hard",
        tar::EntryType::Link,
        0o640,
        1000,
        b"",
        Some("pkg/readme"),
    );
    builder.into_inner().expect("tar")
}

fn contexts() -> (tempfile::TempDir, tempfile::TempDir, tempfile::TempDir) {
    let parent = tempfile::tempdir().expect("tempdir");
    write(parent.path(), "Dockerfile", PARENT.as_bytes());
    write(parent.path(), "app.tar", &app_tar());
    write(parent.path(), "plain.txt", b"plain, not extracted\n");
    write(parent.path(), "src/one.conf", b"one=1\n");
    write(parent.path(), "src/two.conf", b"two=2\n");
    write(parent.path(), "src/skip.txt", b"not matched by *.conf\n");
    age(parent.path());
    let shells = tempfile::tempdir().expect("tempdir");
    write(shells.path(), "Dockerfile", SHELLS.as_bytes());
    age(shells.path());
    let child = tempfile::tempdir().expect("tempdir");
    write(child.path(), "Dockerfile", CHILD.as_bytes());
    write(child.path(), "trigger.txt", b"copied by ONBUILD\n");
    age(child.path());
    (parent, shells, child)
}

fn build(daemon: &dyn Daemon, dir: &Path, tag: &str, args: &[&str]) {
    let mut cmd = daemon.command(&["build", "-t", tag]);
    cmd.env("DOCKER_BUILDKIT", "0").args(args).arg(dir);
    let out = run_command(&mut cmd);
    assert!(
        out.status.success(),
        "docker build -t {tag} against {} failed ({:?}):\nstdout: {}\nstderr: {}",
        daemon.name(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The compared view of one image: config fields, Author, history rows, file tree.
struct ImageView {
    fields: BTreeMap<String, serde_json::Value>,
    history: Vec<String>,
    tree: BTreeMap<String, String>,
}

fn view(daemon: &dyn Daemon, tag: &str, started: u64) -> ImageView {
    let config: serde_json::Value =
        serde_json::from_str(&daemon.ok(&["image", "inspect", "-f", "{{json .Config}}", tag]))
            .expect("Config is JSON");
    let mut fields = BTreeMap::new();
    for field in CONFIG_FIELDS {
        fields.insert(
            field.to_string(),
            config.get(field).cloned().unwrap_or_default(),
        );
    }
    let author = daemon.ok(&["image", "inspect", "-f", "{{json .Author}}", tag]);
    fields.insert(
        "Author".into(),
        serde_json::from_str(&author).expect("Author is JSON"),
    );
    let history = daemon
        .ok(&[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}|{{.Size}}",
            tag,
        ])
        .lines()
        .map(|line| {
            // Layer sizes differ in their last bytes (tar padding, directory entries); only
            // whether a step made a layer at all is compared.
            let (created_by, size) = line.rsplit_once('|').expect("CreatedBy|Size");
            let layer = if size == "0B" { "empty" } else { "layer" };
            format!("{created_by} => {layer}")
        })
        .collect();
    let container = daemon.ok(&["create", tag]);
    let export = daemon.docker(&["export", &container]);
    daemon.ok(&["rm", &container]);
    assert!(
        export.status.success(),
        "{}: export: {:?}",
        daemon.name(),
        export.status
    );
    ImageView {
        fields,
        history,
        tree: tree(&export, started),
    }
}

/// moby's tarsum v1 digest of one entry made from an `lstat` (the COPY --from digest):
/// `legacy` as dockerd 20.10 makes it (st_mode's file-type bits kept in the mode, user and
/// group names looked up), else as Docker 23 and later (moby#44083 dropped the type bits;
/// names are no longer looked up), which berth follows.
fn lstat_tarsum(name: &str, st_mode: u32, content: &[u8], legacy: bool) -> String {
    let is_dir = st_mode & 0o170000 == 0o040000;
    let mode = if legacy { st_mode } else { st_mode & 0o7777 };
    let owner_name = if legacy { "root" } else { "" };
    let fields = [
        ("name", name.to_string()),
        ("mode", mode.to_string()),
        ("uid", "0".into()),
        ("gid", "0".into()),
        ("size", content.len().to_string()),
        ("typeflag", if is_dir { "5" } else { "0" }.into()),
        ("linkname", String::new()),
        ("uname", owner_name.into()),
        ("gname", owner_name.into()),
        ("devmajor", "0".into()),
        ("devminor", "0".into()),
    ];
    let mut hasher = Sha256::new();
    for (key, value) in fields {
        hasher.update(key.as_bytes());
        hasher.update(value.as_bytes());
    }
    hasher.update(content);
    format!("{:x}", hasher.finalize())
}

/// The digests of the two `COPY --from=builder` steps of PARENT, dockerd 20.10's and
/// Docker 23+'s: `/greeting` and the directory `/out/` as the builder stage's RUNs make
/// them (umask 022; exec.txt chmod 0600).
fn copy_from_digests(legacy: bool) -> [String; 2] {
    let greeting = lstat_tarsum("greeting", 0o100644, b"hello\n", legacy);
    let mut sums = [
        lstat_tarsum("out/", 0o040755, b"", legacy),
        lstat_tarsum("out/built.txt", 0o100644, b"built\n", legacy),
        lstat_tarsum("out/exec.txt", 0o100600, b"exec-form\n", legacy),
    ];
    sums.sort();
    let dir = Sha256::digest(sums.join(",").as_bytes());
    [format!("file:{greeting}"), format!("dir:{dir:x}")]
}

/// dockerd 20.10's history with its COPY --from digests replaced by the ones Docker 23+
/// gives the same files: a digest that is not 20.10's expected one stays and fails the
/// comparison, as does a berthd digest that is not Docker 23+'s.
fn as_current_docker(history: &[String]) -> Vec<String> {
    let legacy = copy_from_digests(true);
    let current = copy_from_digests(false);
    history
        .iter()
        .map(|line| {
            legacy
                .iter()
                .zip(&current)
                .fold(line.clone(), |line, (old, new)| line.replace(old, new))
        })
        .collect()
}

/// path -> "type mode uid:gid size hash link mtime" for every entry of an exported
/// rootfs. An mtime at or after the test's start was set while building (RUN, or a
/// directory COPY wrote into) and differs between any two builds, so it is shown as
/// `new`; an older one was preserved from the context, the ADDed tar or the busybox base
/// and is compared exactly. Content is compared through a hash (SipHash with fixed keys,
/// the same in both runs of this process).
fn tree(export: &Output, started: u64) -> BTreeMap<String, String> {
    let mut archive = tar::Archive::new(export.stdout.as_slice());
    let mut tree = BTreeMap::new();
    for entry in archive.entries().expect("export is a tar") {
        let mut entry = entry.expect("a tar entry");
        let path = entry.path().expect("a path").to_string_lossy().into_owned();
        let path = path.trim_start_matches("./").trim_matches('/').to_string();
        if RUNTIME_PATHS.contains(&path.as_str()) || path.starts_with("dev/") {
            continue;
        }
        let header = entry.header().clone();
        let kind = header.entry_type();
        let mtime = header.mtime().expect("mtime");
        let mtime = if kind.is_dir() && RUNTIME_PARENTS.contains(&path.as_str()) {
            "runtime".to_string()
        } else if mtime >= started {
            "new".to_string()
        } else {
            mtime.to_string()
        };
        let link = entry
            .link_name()
            .expect("a link name")
            .map(|l| l.to_string_lossy().trim_start_matches("./").to_string())
            .unwrap_or_default();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("entry data");
        let mut hasher = DefaultHasher::new();
        hasher.write(&data);
        let owner = format!(
            "{}:{}",
            header.uid().expect("uid"),
            header.gid().expect("gid")
        );
        tree.insert(
            path,
            format!(
                "{kind:?} {:o} {owner} {} {:x} {link} {mtime}",
                header.mode().expect("mode") & 0o7777,
                data.len(),
                hasher.finish(),
            ),
        );
    }
    tree
}

/// Every difference between the two views, one line each (empty when they match).
fn differences(tag: &str, berth: &ImageView, docker: &ImageView) -> Vec<String> {
    let mut diffs = Vec::new();
    for (field, value) in &berth.fields {
        let theirs = &docker.fields[field];
        if value != theirs {
            diffs.push(format!(
                "{tag} Config.{field}: berthd {value} vs dockerd {theirs}"
            ));
        }
    }
    let docker_history = as_current_docker(&docker.history);
    if berth.history != docker_history {
        diffs.push(format!(
            "{tag} history:\n  berthd:  {:#?}\n  dockerd (COPY --from digests as Docker 23+'s): {:#?}",
            berth.history, docker_history
        ));
    }
    let paths: std::collections::BTreeSet<&String> =
        berth.tree.keys().chain(docker.tree.keys()).collect();
    for path in paths {
        let ours = berth.tree.get(path);
        let theirs = docker.tree.get(path);
        if ours != theirs {
            diffs.push(format!(
                "{tag} /{path}: berthd {ours:?} vs dockerd {theirs:?}"
            ));
        }
    }
    diffs
}

#[test]
fn classic_builds_match_dockerd_in_config_history_and_file_tree() {
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let (parent, shells, child) = contexts();
    let berthd = Berthd::start();
    let dockerd = Dockerd::start();
    let mut views = Vec::new();
    for daemon in [&berthd as &dyn Daemon, &dockerd] {
        daemon.import_busybox();
        build(
            daemon,
            parent.path(),
            "cmp-parent",
            &["--build-arg", "FLAVOR=spicy"],
        );
        build(daemon, shells.path(), "cmp-shells", &[]);
        build(daemon, child.path(), "cmp-child", &[]);
        views.push(
            ["cmp-parent", "cmp-shells", "cmp-child"].map(|tag| (tag, view(daemon, tag, started))),
        );
    }
    let mut diffs = Vec::new();
    for ((tag, berth), (_, docker)) in views[0].iter().zip(views[1].iter()) {
        assert!(
            docker.tree.contains_key("opt/pkg/readme") || *tag != "cmp-parent",
            "dockerd did not extract app.tar: {:?}",
            docker.tree.keys().collect::<Vec<_>>()
        );
        // The parent image sets every compared field but Shell (set by cmp-shells) and
        // ArgsEscaped (Docker sets it for Windows images only): a null there means the
        // inspect template broke, not that both daemons agree.
        if *tag == "cmp-parent" {
            for (field, value) in &docker.fields {
                assert!(
                    field == "Shell" || field == "ArgsEscaped" || !value.is_null(),
                    "dockerd's cmp-parent has no Config.{field}"
                );
            }
        }
        diffs.extend(differences(tag, berth, docker));
    }
    assert!(
        diffs.is_empty(),
        "berthd's images differ from dockerd's:\n{}",
        diffs.join("\n")
    );
}

/// The docker-py client's upload of this context, built against `daemon`: the history's
/// CreatedBy column, newest first.
fn docker_py_history(daemon: &dyn Daemon, dir: &Path) -> Vec<String> {
    let script = r#"
import json, sys, docker
client = docker.from_env()
image, _ = client.images.build(path=sys.argv[1], tag="cmp-py", rm=True)
print(json.dumps([h["CreatedBy"] for h in image.history()]))
"#;
    let mut cmd = daemon.docker_py_command();
    cmd.args(["-c", script]).arg(dir);
    let out = run_command(&mut cmd);
    assert!(
        out.status.success(),
        "docker-py build against {} failed:\n{}",
        daemon.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON list")
}

/// COPY digests are tarsums of the headers each client uploads (docker-py's Python tar
/// has the files' owners and its own hard-link and symlink entries; the docker CLI's has
/// 0:0), of directory walks where a symlink counts as what it points to and a dangling
/// one as its path: berthd must name every source as dockerd does for both clients.
#[test]
fn both_clients_uploads_get_dockerds_copy_digests() {
    let ctx = tempfile::tempdir().expect("tempdir");
    let root = ctx.path();
    write(
        root,
        "Dockerfile",
        b"FROM scratch\nCOPY . /ctx/\nCOPY sub /s\nCOPY link-to-file /lf\nCOPY run.sh hard sub/*.txt /m/\n",
    );
    write(root, "sub/x.txt", b"x\n");
    write(root, "sub/deeper/y", b"y\n");
    write(root, "run.sh", b"#!/bin/sh\n");
    std::fs::set_permissions(
        root.join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4755),
    )
    .expect("chmod");
    std::fs::hard_link(root.join("run.sh"), root.join("hard")).expect("hard link");
    std::os::unix::fs::symlink("sub/x.txt", root.join("link-to-file")).expect("symlink");
    std::os::unix::fs::symlink("sub", root.join("link-to-dir")).expect("symlink");
    std::os::unix::fs::symlink("/sub/deeper/y", root.join("abs")).expect("symlink");
    std::os::unix::fs::symlink("nothing", root.join("dangling")).expect("symlink");
    let berthd = Berthd::start();
    let dockerd = Dockerd::start();
    let mut histories = Vec::new();
    for daemon in [&berthd as &dyn Daemon, &dockerd] {
        build(daemon, root, "cmp-cli", &[]);
        let cli = created_by(daemon, "cmp-cli")
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>();
        histories.push((cli, docker_py_history(daemon, root)));
    }
    let (berth, docker) = (&histories[0], &histories[1]);
    assert_eq!(berth.0, docker.0, "docker CLI upload: berthd vs dockerd");
    assert_eq!(berth.1, docker.1, "docker-py upload: berthd vs dockerd");
    assert_eq!(docker.0.len(), 4, "{:?}", docker.0);
}

/// A Dockerfile kept outside its context (`-f`), with a stage `--target` leaves out (the
/// classic builder still runs it, berthd does not, as BuildKit) and RUN steps that record
/// what the build's host flags gave them.
const FLAGS: &str = r#"FROM busybox AS base
RUN grep -c berth-flag-host /etc/hosts > /addhost && grep berth-flag-host /etc/hosts | cut -f1 > /addhost-ip; ulimit -n > /nofile; df -k /dev/shm | tail -1 | awk '{print $2}' > /shm; (ip -o addr show eth0 2>/dev/null | grep -c 'inet ' || true) > /inet

FROM base AS unused
RUN echo unused > /unused

FROM base AS final
ARG FLAG_ARG
RUN echo "$FLAG_ARG" > /arg
LABEL from=dockerfile
"#;

/// What FLAGS's RUN steps wrote, by file.
fn flag_files(daemon: &dyn Daemon, tag: &str) -> BTreeMap<String, String> {
    ["addhost", "addhost-ip", "nofile", "shm", "inet", "arg"]
        .iter()
        .map(|file| (file.to_string(), flag_files_one(daemon, tag, file)))
        .collect()
}

/// `docker build` with the flags the classic builder takes for its RUN containers and
/// image (`-f` outside the context, `--target`, `--label`, `--build-arg`, `--add-host`,
/// `--shm-size`, `--ulimit`, `--network none`, `-q`, `--iidfile`): berthd's image and
/// output match dockerd's, and `berth build` with the same flags gives the same. With the default network a RUN step has an address on berthd
/// (the fixture's dockerd runs with `--bridge=none`, so that part is berthd's alone).
#[test]
fn build_flags_reach_run_steps_and_the_image_as_on_dockerd() {
    let ctx = tempfile::tempdir().expect("tempdir");
    write(ctx.path(), "unused.txt", b"context\n");
    let outside = tempfile::tempdir().expect("tempdir");
    write(outside.path(), "Flags.dockerfile", FLAGS.as_bytes());
    let dockerfile = outside.path().join("Flags.dockerfile");
    let berthd = Berthd::start();
    let dockerd = Dockerd::start();
    let mut seen = Vec::new();
    for daemon in [&berthd as &dyn Daemon, &dockerd] {
        daemon.import_busybox();
        let iidfile = outside.path().join(format!("iid-{}", daemon.name()));
        let mut cmd = daemon.command(&["build", "-q", "-t", "cmp-flags"]);
        cmd.env("DOCKER_BUILDKIT", "0")
            .arg("-f")
            .arg(&dockerfile)
            .args(["--target", "final", "--label", "extra=yes"])
            .args(["--build-arg", "FLAG_ARG=from-flag"])
            .args(["--add-host", "berth-flag-host:10.1.2.3"])
            .args(["--shm-size", "32m", "--ulimit", "nofile=1234:1234"])
            .args(["--network", "none", "--iidfile"])
            .arg(&iidfile)
            .arg(ctx.path());
        let out = run_command(&mut cmd);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{}: {stdout}\n{}",
            daemon.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        let id = daemon.ok(&["image", "inspect", "-f", "{{.Id}}", "cmp-flags"]);
        assert_eq!(
            stdout.trim(),
            id,
            "{}: -q prints only the ID",
            daemon.name()
        );
        // The iidfile and stdout, the ID masked (the images' IDs differ: their created
        // times do): with -q the CLI writes what the daemon streamed.
        let iid = std::fs::read_to_string(&iidfile).expect("iidfile");
        let masked = format!(
            "{}|{}",
            stdout.replace(&id, "<id>"),
            iid.replace(&id, "<id>")
        );
        let labels = daemon.ok(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Labels}}",
            "cmp-flags",
        ]);
        let history = created_by(daemon, "cmp-flags");
        seen.push((flag_files(daemon, "cmp-flags"), labels, history, masked));
    }
    let (berth, docker) = (&seen[0], &seen[1]);
    assert_eq!(berth.0, docker.0, "what RUN saw: berthd vs dockerd");
    assert_eq!(docker.0["nofile"], "1234");
    assert_eq!(docker.0["shm"], "32768");
    assert_eq!(docker.0["addhost-ip"], "10.1.2.3");
    assert_eq!(docker.0["inet"], "0");
    assert_eq!(berth.1, docker.1, "labels");
    assert_eq!(berth.2, docker.2, "history");
    assert_eq!(berth.3, docker.3, "-q output | iidfile");
    assert!(
        !docker.2.contains("exit 3"),
        "--target built the unused stage"
    );

    // `berth build` passes the same flags.
    let mut cmd = berthd.berth_command(&["build", "-q", "-t", "cmp-flags-berth"]);
    cmd.arg("-f")
        .arg(&dockerfile)
        .args(["--target", "final", "--label", "extra=yes"])
        .args(["--build-arg", "FLAG_ARG=from-flag"])
        .args(["--add-host", "berth-flag-host:10.1.2.3"])
        .args(["--shm-size", "32m", "--ulimit", "nofile=1234:1234"])
        .args(["--network", "none"])
        .arg(ctx.path());
    let out = run_command(&mut cmd);
    assert!(
        out.status.success(),
        "berth build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        flag_files(&berthd, "cmp-flags-berth"),
        docker.0,
        "berth build"
    );

    // The default network: a RUN step has an interface with an address.
    write(
        ctx.path(),
        "Dockerfile",
        b"FROM busybox\nRUN ip -o addr show eth0 | grep -c 'inet ' > /inet\n",
    );
    build(&berthd, ctx.path(), "cmp-net", &[]);
    assert_eq!(flag_files_one(&berthd, "cmp-net", "inet"), "1");
}

/// `docker history`'s CreatedBy column of `tag`, newest first, one line each.
fn created_by(daemon: &dyn Daemon, tag: &str) -> String {
    daemon.ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", tag])
}

/// The trimmed text of `/file` in an image (read by a container without network).
fn flag_files_one(daemon: &dyn Daemon, tag: &str, file: &str) -> String {
    daemon
        .ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            tag,
            "cat",
            &format!("/{file}"),
        ])
        .trim()
        .to_string()
}

/// A context over berthd's in-memory limit (64 MiB) is spooled to a file and mapped; its
/// COPY digests still come from the uploaded headers (a hard link's own, a symlink's
/// target's), as dockerd's do.
#[test]
fn a_context_over_the_memory_limit_gets_dockerds_copy_digests() {
    let ctx = tempfile::tempdir().expect("tempdir");
    let root = ctx.path();
    write(
        root,
        "Dockerfile",
        b"FROM scratch\nCOPY sub /s\nCOPY hard link /m/\n",
    );
    write(root, "sub/x.txt", b"x\n");
    write(root, "sub/deeper/y", b"y\n");
    std::fs::hard_link(root.join("sub/x.txt"), root.join("hard")).expect("hard link");
    std::os::unix::fs::symlink("sub/deeper/y", root.join("link")).expect("symlink");
    let big = std::fs::File::create(root.join("big.bin")).expect("big.bin");
    big.set_len(65 << 20).expect("65 MiB");
    let berthd = Berthd::start();
    let dockerd = Dockerd::start();
    let mut histories = Vec::new();
    for daemon in [&berthd as &dyn Daemon, &dockerd] {
        build(daemon, root, "cmp-big", &[]);
        histories.push(created_by(daemon, "cmp-big"));
    }
    assert_eq!(histories[0], histories[1], "berthd vs dockerd");
    assert!(histories[1].contains("COPY multi:"), "{}", histories[1]);
}
