//! Heredocs and ADD URLs through the fake worker, against BuildKit's behaviour: `RUN <<EOF`
//! runs the body in the shell (a `#!` body as a file under /dev/pipes), `COPY <<EOF`
//! creates files (0644 unless --chmod, expanded unless the delimiter is quoted, `<<-` strips
//! tabs), the cache follows heredoc content; ADD downloads (0600, Last-Modified, checksum).

use std::os::unix::fs::MetadataExt;

use crate::tests::{fixture, history};
use crate::BuildError;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn run_heredoc_body_runs_in_the_shell_and_keys_the_cache() {
    let f = fixture();
    let df = "FROM busybox\nRUN <<EOF\necho one > /a\nmkdir -p /d\nEOF\n";
    let (result, out) = f.build(&f.options(df));
    let image = f.worker.image(&result.unwrap().image).unwrap();
    assert_eq!(
        std::fs::read_to_string(image.root.join("a")).unwrap(),
        "one\n"
    );
    assert!(image.root.join("d").is_dir());
    let script = "echo one > /a\nmkdir -p /d\n";
    assert_eq!(
        f.worker.runs()[0].cmd.clone().unwrap(),
        vec!["/bin/sh", "-c", script]
    );
    assert_eq!(
        history(&f.worker, &image.id),
        vec![format!("/bin/sh -c {script}")]
    );
    assert!(out.contains("Step 2/2 : RUN <<EOF"));
    let (_, again) = f.build(&f.options(df));
    assert!(again.contains(" ---> Using cache"));
    assert_eq!(
        f.worker.runs().len(),
        1,
        "an unchanged heredoc hits the cache"
    );
    let changed = "FROM busybox\nRUN <<EOF\necho two > /a\nmkdir -p /d\nEOF\n";
    f.build(&f.options(changed)).0.unwrap();
    assert_eq!(f.worker.runs().len(), 2, "a changed body runs again");
}

#[test]
fn shebang_heredoc_runs_as_a_file_mounted_under_dev_pipes() {
    let f = fixture();
    let df = "FROM busybox\nRUN <<-EOF\n\t#!/bin/sh\n\techo hi > /s\n\tEOF\n";
    let (result, _) = f.build(&f.options(df));
    let image = f.worker.image(&result.unwrap().image).unwrap();
    assert_eq!(
        std::fs::read_to_string(image.root.join("s")).unwrap(),
        "hi\n"
    );
    assert_eq!(
        f.worker.runs()[0].cmd.clone().unwrap(),
        vec!["/bin/sh", "-c", "/dev/pipes/EOF"]
    );
    let mounts = &f.worker.run_mounts()[0];
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].target, "/dev/pipes");
    assert!(mounts[0].read_only);
    assert!(!image.root.join("dev/pipes").exists());
    // Same command line, other script: the content is in the cache key.
    let other = "FROM busybox\nRUN <<-EOF\n\t#!/bin/sh\n\techo ho > /s\n\tEOF\n";
    let (result, out) = f.build(&f.options(other));
    assert!(!out.contains("Using cache"));
    let image = f.worker.image(&result.unwrap().image).unwrap();
    assert_eq!(
        std::fs::read_to_string(image.root.join("s")).unwrap(),
        "ho\n"
    );
}

#[test]
fn run_with_several_heredocs_hands_them_to_the_shell() {
    let f = fixture();
    let df = "FROM busybox\nRUN cat <<a >/one && cat <<b >/two\nA\na\nB\nb\n";
    f.build(&f.options(df)).0.unwrap();
    assert_eq!(
        f.worker.runs()[0].cmd.clone().unwrap(),
        vec![
            "/bin/sh",
            "-c",
            "cat <<a >/one && cat <<b >/two\nA\na\nB\nb"
        ]
    );
}

#[test]
fn copy_heredoc_creates_a_file_expanded_unless_quoted() {
    let f = fixture();
    let df = "FROM busybox\nENV NAME=world\nCOPY <<EOF /etc/greeting\nhello $NAME\nEOF\nCOPY <<\"EOF\" /raw\nhello $NAME\nEOF\nCOPY <<-EOF /tabs\n\tx\n\tEOF\n";
    let (result, _) = f.build(&f.options(df));
    let image = f.worker.image(&result.unwrap().image).unwrap();
    let greeting = image.root.join("etc/greeting");
    assert_eq!(std::fs::read_to_string(&greeting).unwrap(), "hello world\n");
    assert_eq!(mode(&greeting), 0o644);
    assert_eq!(
        std::fs::read_to_string(image.root.join("raw")).unwrap(),
        "hello $NAME\n"
    );
    assert_eq!(
        std::fs::read_to_string(image.root.join("tabs")).unwrap(),
        "x\n"
    );
    let h = history(&f.worker, &image.id);
    assert!(h[1].starts_with("/bin/sh -c #(nop) COPY file:"), "{}", h[1]);
    assert!(h[1].ends_with(" in /etc/greeting "));
}

#[test]
fn copy_of_several_heredocs_into_a_directory_with_chmod() {
    let f = fixture();
    let df =
        "FROM busybox\nCOPY --chmod=755 <<one.sh <<two.sh /bin/\necho 1\none.sh\necho 2\ntwo.sh\n";
    let (result, _) = f.build(&f.options(df));
    let image = f.worker.image(&result.unwrap().image).unwrap();
    let one = image.root.join("bin/one.sh");
    assert_eq!(std::fs::read_to_string(&one).unwrap(), "echo 1\n");
    assert_eq!(mode(&one), 0o755);
    assert_eq!(
        std::fs::read_to_string(image.root.join("bin/two.sh")).unwrap(),
        "echo 2\n"
    );
    let (err, _) = f.build(&f.options("FROM busybox\nCOPY <<a <<b /file\nA\na\nB\nb\n"));
    assert!(err
        .unwrap_err()
        .to_string()
        .starts_with("COPY failed: When using COPY with more than one source file"));
}

#[test]
fn copy_heredoc_cache_follows_the_body_and_the_name() {
    let f = fixture();
    let df = |body: &str, name: &str| format!("FROM busybox\nCOPY <<{name} /d/\n{body}\n{name}\n");
    f.build(&f.options(&df("x", "a"))).0.unwrap();
    let (_, same) = f.build(&f.options(&df("x", "a")));
    assert!(same.contains(" ---> Using cache"));
    let (r, body) = f.build(&f.options(&df("y", "a")));
    assert!(!body.contains("Using cache"));
    let image = f.worker.image(&r.unwrap().image).unwrap();
    assert_eq!(
        std::fs::read_to_string(image.root.join("d/a")).unwrap(),
        "y\n"
    );
    let (r, name) = f.build(&f.options(&df("x", "b")));
    assert!(!name.contains("Using cache"));
    assert!(f
        .worker
        .image(&r.unwrap().image)
        .unwrap()
        .root
        .join("d/b")
        .is_file());
}

#[test]
fn add_url_downloads_with_mode_0600_last_modified_and_checksum() {
    let f = fixture();
    let url = "http://127.0.0.1:9/files/tool.sh?v=1";
    f.worker.serve(url, b"#!/bin/sh\n", Some(1_000_000));
    let sum = "sha256:4c1ab1e7d2a4d6a6d8d9e1ac1b2a8f2fce6f7d3a1a1ab5b5fb3f0f0b8c1d2e3f";
    let (result, _) = f.build(&f.options(&format!("FROM busybox\nADD {url} /opt/\n")));
    let image = f.worker.image(&result.unwrap().image).unwrap();
    let tool = image.root.join("opt/tool.sh");
    assert_eq!(std::fs::read(&tool).unwrap(), b"#!/bin/sh\n");
    assert_eq!(mode(&tool), 0o600);
    assert_eq!(std::fs::metadata(&tool).unwrap().mtime(), 1_000_000);
    let (renamed, _) = f.build(&f.options(&format!("FROM busybox\nADD --chmod=755 {url} /t\n")));
    let t = f
        .worker
        .image(&renamed.unwrap().image)
        .unwrap()
        .root
        .join("t");
    assert_eq!(mode(&t), 0o755);
    let (bad, _) =
        f.build(&f.options(&format!("FROM busybox\nADD --checksum={sum} {url} /opt/\n")));
    let text = bad.unwrap_err().to_string();
    assert!(
        text.starts_with(&format!("ADD failed: digest mismatch {sum}: sha256:")),
        "{text}"
    );
    let good = {
        use sha2::Digest as _;
        format!("sha256:{:x}", sha2::Sha256::digest(b"#!/bin/sh\n"))
    };
    let (ok, _) = f.build(&f.options(&format!(
        "FROM busybox\nADD --checksum={good} {url} /opt/\n"
    )));
    assert!(ok.is_ok());
    let (copy, _) = f.build(&f.options(&format!("FROM busybox\nCOPY {url} /opt/\n")));
    assert!(
        matches!(copy.unwrap_err(), BuildError::Copy(m) if m.contains("source can't be a URL for COPY"))
    );
    let (missing, _) = f.build(&f.options("FROM busybox\nADD http://127.0.0.1:9/nope /\n"));
    assert!(missing.unwrap_err().to_string().contains("404"));
    assert_eq!(f.worker.live_layers(), 0);
}
