//! Builds against one private berthd beyond the basic Dockerfile: `berth build --squash`
//! (one merged layer on the base's, history with `empty_layer` entries and the merge
//! comment, the same config and file tree as the unsquashed build, files deleted by a later
//! step absent from the merged layer, deleted base files as whiteouts) and BuildKit's
//! endpoints (`/session`, `/grpc`, `POST /build?version=2`) answered with a clear 501.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use berth_e2e::daemon::{run_command, Berthd, Daemon};

const SQUASH_DOCKERFILE: &str = "\
FROM busybox
RUN mkdir -p /d && echo one > /d/a && echo two > /d/b && echo tmp > /gone && echo x > /etc/added
RUN rm -r /d/b /gone /bin/ls /root && mkdir /e && echo e > /e/f
ENV K=v
CMD [\"sh\", \"-c\", \"cat /d/a\"]
";

/// Every file of a tar, by name: (entry type, mode, uid, gid, link target, content).
type Tree = BTreeMap<String, (u8, u32, u64, u64, String, Vec<u8>)>;

fn read_tar(bytes: &[u8]) -> Tree {
    let mut tree = Tree::new();
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let header = entry.header().clone();
        let name = entry
            .path()
            .expect("entry path")
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let link = entry
            .link_name()
            .ok()
            .flatten()
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("entry content");
        tree.insert(
            name,
            (
                header.entry_type().as_byte(),
                header.mode().expect("mode"),
                header.uid().expect("uid"),
                header.gid().expect("gid"),
                link,
                content,
            ),
        );
    }
    tree
}

/// `docker export` of a container created from `image` (removed again).
fn exported_tree(berthd: &Berthd, image: &str) -> Tree {
    let id = berthd.ok(&["create", image]);
    let out = berthd.docker(&["export", &id]);
    berthd.ok(&["rm", &id]);
    assert!(out.status.success(), "export {image}");
    read_tar(&out.stdout)
}

/// The config JSON and the layer tars (bottom first) of `image`, from `docker save`.
fn saved(berthd: &Berthd, image: &str) -> (serde_json::Value, Vec<Tree>) {
    let out = berthd.docker(&["save", image]);
    assert!(out.status.success(), "save {image}");
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(&out.stdout[..]);
    for entry in archive.entries().expect("save entries") {
        let mut entry = entry.expect("save entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("content");
        files.insert(name, content);
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&files["manifest.json"]).expect("manifest.json");
    let config_path = manifest[0]["Config"].as_str().expect("Config");
    let config = serde_json::from_slice(&files[config_path]).expect("config");
    let layers = manifest[0]["Layers"]
        .as_array()
        .expect("Layers")
        .iter()
        .map(|l| read_tar(&files[l.as_str().expect("layer path")]))
        .collect();
    (config, layers)
}

fn inspect(berthd: &Berthd, format: &str, image: &str) -> String {
    berthd.ok(&["image", "inspect", "-f", format, image])
}

#[test]
fn squash_merges_the_builds_layers_into_one_with_the_same_tree_and_config() {
    let berthd = Berthd::start();
    let base = berthd.import_busybox();
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(ctx.path().join("Dockerfile"), SQUASH_DOCKERFILE).expect("write");
    let build = |args: &[&str]| {
        let mut cmd = berthd.berth_command(&["build"]);
        cmd.args(args).arg(ctx.path());
        let out = run_command(&mut cmd);
        berthd.stdout_of("berth build", &out)
    };
    build(&["-q", "-t", "e2e:plain"]);
    build(&["-q", "--squash", "-t", "e2e:squashed"]);
    let plain = inspect(&berthd, "{{.Id}}", "e2e:plain");
    let squashed = inspect(&berthd, "{{.Id}}", "e2e:squashed");
    assert_ne!(plain, squashed);

    let layers = |image| inspect(&berthd, "{{len .RootFS.Layers}}", image);
    assert_eq!(layers("busybox"), "1");
    assert_eq!(layers("e2e:plain"), "3");
    assert_eq!(
        layers("e2e:squashed"),
        "2",
        "the base's layer and the merged one"
    );
    assert_eq!(
        inspect(&berthd, "{{json .Config}}", "e2e:plain"),
        inspect(&berthd, "{{json .Config}}", "e2e:squashed"),
        "the config is the unsquashed image's"
    );

    let (config, saved_layers) = saved(&berthd, "e2e:squashed");
    let history = config["history"].as_array().expect("history");
    assert_eq!(history.len(), 6, "{history:?}");
    assert_ne!(
        history[0]["empty_layer"], true,
        "the base's entry keeps its layer"
    );
    for entry in &history[1..5] {
        assert_eq!(entry["empty_layer"], true, "{entry}");
    }
    assert_eq!(
        history[5]["comment"],
        format!("merge {plain} to {base}").as_str()
    );
    assert!(history[5].get("created_by").is_none(), "{}", history[5]);

    let merged = saved_layers.last().expect("a merged layer");
    for present in ["d/a", "etc/added", "e/f", "bin/.wh.ls", ".wh.root"] {
        assert!(
            merged.contains_key(present),
            "{present} in {:?}",
            merged.keys()
        );
    }
    for absent in ["d/b", "d/.wh.b", "gone", ".wh.gone"] {
        assert!(
            !merged.contains_key(absent),
            "{absent} in {:?}",
            merged.keys()
        );
    }

    let plain_tree = exported_tree(&berthd, "e2e:plain");
    let squashed_tree = exported_tree(&berthd, "e2e:squashed");
    assert!(plain_tree.contains_key("e/f") && !plain_tree.contains_key("bin/ls"));
    assert_eq!(
        plain_tree.keys().collect::<Vec<_>>(),
        squashed_tree.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        plain_tree, squashed_tree,
        "the same files, modes and contents"
    );
    assert_eq!(
        berthd.ok(&["run", "--rm", "e2e:squashed"]),
        "one",
        "the squashed image runs"
    );
}

/// Sends one raw HTTP request over the daemon's socket and returns the status line and
/// body (a read timeout turns a hang into a test failure).
fn raw_request(socket: &Path, request: &str) -> (String, String) {
    raw_bytes_request(socket, request.as_bytes())
}

fn raw_bytes_request(socket: &Path, request: &[u8]) -> (String, String) {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream.write_all(request).expect("send");
    let mut response = Vec::new();
    if let Err(e) = stream.read_to_end(&mut response) {
        assert!(
            !response.is_empty(),
            "no answer to {}: {e}",
            String::from_utf8_lossy(&request[..request.len().min(200)])
        );
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.lines().next().unwrap_or_default().to_string();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn buildkit_endpoints_answer_a_clear_not_implemented_error() {
    let berthd = Berthd::start();
    let socket = berthd.socket();
    let session = "POST /v1.50/session HTTP/1.1\r\nHost: docker\r\nUpgrade: h2c\r\nConnection: Upgrade, close\r\nX-Docker-Expose-Session-Uuid: abc\r\nContent-Length: 0\r\n\r\n";
    let grpc = "POST /grpc HTTP/1.1\r\nHost: docker\r\nUpgrade: h2c\r\nConnection: Upgrade, close\r\nContent-Length: 0\r\n\r\n";
    let build = "POST /v1.41/build?version=2&session=abc HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/x-tar\r\nContent-Length: 0\r\n\r\n";
    for (what, request, needle) in [
        ("/session", session, "BuildKit"),
        ("/grpc", grpc, "BuildKit"),
        ("/build?version=2", build, "BuildKit builds (version=2)"),
    ] {
        let (status, body) = raw_request(&socket, request);
        assert!(status.contains(" 501 "), "{what}: {status} {body}");
        let message = body
            .lines()
            .find(|l| l.starts_with('{'))
            .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_default();
        assert!(message.contains(needle), "{what}: {body}");
        assert!(message.contains("classic builder"), "{what}: {message}");
    }
    // The docker CLI 28 with BuildKit asked for and no buildx says so and never calls
    // the daemon: no build happens.
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(ctx.path().join("Dockerfile"), "FROM busybox\n").expect("write");
    let mut cmd = berthd.command(&["build"]);
    cmd.env("DOCKER_BUILDKIT", "1").arg(ctx.path());
    let out = run_command(&mut cmd);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("buildx"), "{stderr}");
    // The docker CLI's default (DOCKER_BUILDKIT unset) with no buildx installed: the
    // classic `POST /build`, with the CLI's own deprecation notice, as against dockerd.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY Dockerfile /\n",
    )
    .expect("write");
    let mut cmd = berthd.command(&["build", "-t", "e2e:default-builder"]);
    cmd.env_remove("DOCKER_BUILDKIT").arg(ctx.path());
    let out = run_command(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("legacy builder is deprecated"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Successfully tagged e2e:default-builder\n"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    berthd.ok(&["image", "inspect", "e2e:default-builder"]);
}

/// The snapshot store's entries and the build cache index: what a failed build must not
/// change.
fn store_state(berthd: &Berthd) -> (usize, usize, String) {
    let count = |dir: &str| {
        std::fs::read_dir(berthd.data_root().join(dir))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let cache =
        std::fs::read_to_string(berthd.data_root().join("build/cache.json")).unwrap_or_default();
    (
        count("image/snapshots/snapshots"),
        count("image/snapshots/keys"),
        cache,
    )
}

/// Nothing a failed build made is left: no container, no mounted or held build layer, no
/// extracted context, no scratch file.
fn assert_no_leftovers(berthd: &Berthd, what: &str) {
    assert_eq!(
        berthd.ok(&["ps", "-aq"]),
        "",
        "{what}: build containers left"
    );
    let build = berthd.data_root().join("build");
    for sub in ["mnt", "tmp"] {
        let left: Vec<_> = std::fs::read_dir(build.join(sub))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{what}: build/{sub} holds {left:?}");
    }
    let contexts: Vec<_> = std::fs::read_dir(&build)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("context-") || n.ends_with(".tar"))
                .collect()
        })
        .unwrap_or_default();
    assert!(contexts.is_empty(), "{what}: {contexts:?} left in build/");
}

#[test]
fn bad_contexts_fail_with_docker_texts_and_leave_nothing_behind() {
    let berthd = Berthd::start();
    berthd.import_busybox();
    let images_before = berthd.ok(&["images", "-aq"]);
    // Unpack busybox's layer first (a build does on its first FROM), so the snapshot
    // store's state before and after the failures compares like with like.
    berthd.ok(&["run", "--rm", "busybox", "true"]);
    let stores_before = store_state(&berthd);

    // Context symlinks pointing outside resolve inside the context (moby's
    // FollowSymlinkInScope): the host's /etc is never read.
    let ctx = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink("/etc", ctx.path().join("hostetc")).expect("symlink");
    std::os::unix::fs::symlink("../../../etc/hostname", ctx.path().join("up")).expect("symlink");
    for (source, shown) in [
        ("hostetc/hostname", "hostetc/hostname"),
        ("hostetc", "hostetc"),
        ("up", "up"),
    ] {
        let df = format!("FROM busybox\nCOPY {source} /x\n");
        std::fs::write(ctx.path().join("Dockerfile"), df).expect("write");
        let out = berthd.docker_build(ctx.path(), &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "COPY {source} must fail");
        assert!(
            stderr.contains(&format!(
                "COPY failed: file not found in build context or excluded by .dockerignore: stat {shown}: file does not exist"
            )),
            "{source}: {stderr}"
        );
        assert_no_leftovers(&berthd, source);
    }

    // A missing file and an unknown instruction.
    std::fs::write(ctx.path().join("Dockerfile"), "FROM busybox\nCOPY nope /\n").expect("write");
    let out = berthd.docker_build(ctx.path(), &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("stat nope: file does not exist"));
    std::fs::write(ctx.path().join("Dockerfile"), "FROM busybox\nRUNN true\n").expect("write");
    let out = berthd.docker_build(ctx.path(), &[]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("dockerfile parse error on line 2: unknown instruction: RUNN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_leftovers(&berthd, "missing file, unknown instruction");

    // A failing RUN as the first step: Docker's text and code, nothing committed.
    std::fs::write(ctx.path().join("Dockerfile"), "FROM busybox\nRUN false\n").expect("write");
    let out = berthd.docker_build(ctx.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("The command '/bin/sh -c false' returned a non-zero code: 1"));
    assert_no_leftovers(&berthd, "failing RUN");

    // A body that is no tar at all, and a tar cut off inside a 10 MB entry.
    let socket = berthd.socket();
    let garbage = "not a tar archive, just text\n".repeat(100);
    let mut truncated = tar::Header::new_gnu();
    truncated.set_path("Dockerfile").expect("path");
    truncated.set_size(10 << 20);
    truncated.set_mode(0o644);
    truncated.set_cksum();
    let mut cut = truncated.as_bytes().to_vec();
    cut.extend_from_slice(&[b'x'; 4096]);
    let bodies: [(&str, Vec<u8>); 2] = [("garbage", garbage.into_bytes()), ("truncated", cut)];
    for (what, body) in bodies {
        let mut request = format!(
            "POST /v1.41/build?t=e2e:bad HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        let (status, answer) = raw_bytes_request(&socket, &request);
        assert!(status.contains(" 400 "), "{what}: {status} {answer}");
        assert!(answer.contains("build context"), "{what}: {answer}");
        assert_no_leftovers(&berthd, what);
    }
    assert_eq!(
        berthd.ok(&["images", "-aq"]),
        images_before,
        "failed builds left no image"
    );
    assert_eq!(
        store_state(&berthd),
        stores_before,
        "failed builds left no snapshot and no cache entry"
    );
}
