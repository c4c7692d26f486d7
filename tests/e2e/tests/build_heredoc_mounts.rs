//! `docker build` (docker CLI 28, DOCKER_BUILDKIT=0: the classic `POST /build`) of what
//! BuildKit added to the language, run by berthd in real containers: `RUN <<EOF` (shell
//! body, `#!` script under /dev/pipes), `COPY <<EOF`, `RUN --mount=type=cache|tmpfs|bind`
//! (nothing of them in the image, not even their mount points; the cache persists into the
//! next build) and `ADD --checksum` of a URL served on 127.0.0.1 (mode 0600, mtime from
//! Last-Modified).

use std::io::{Read, Write};
use std::net::TcpListener;

use berth_e2e::daemon::{Berthd, Daemon};

const DOCKERFILE: &str = "\
FROM busybox
ENV WHO=me
RUN <<EOF
echo one > /one
EOF
RUN <<EOF
#!/bin/sh
echo two > /two
EOF
COPY <<EOF /etc/three
three $WHO
EOF
RUN --mount=type=cache,target=/cache sh -c 'echo count=$(cat /cache/n 2>/dev/null); echo x >> /cache/n'
RUN --mount=type=tmpfs,target=/t touch /t/x && test -f /t/x
RUN --mount=type=bind,source=data.txt,target=/data cat /data && ! touch /data
";

/// Serves `body` on 127.0.0.1 for `requests` GETs, with a fixed Last-Modified.
fn serve(body: &'static [u8], requests: usize) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        for _ in 0..requests {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    (port, handle)
}

#[test]
fn heredocs_run_mounts_and_add_url_build_as_buildkit_gives_them_meaning() {
    let berthd = Berthd::start();
    berthd.import_busybox();
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(ctx.path().join("Dockerfile"), DOCKERFILE).expect("write");
    std::fs::write(ctx.path().join("data.txt"), "bound data\n").expect("write");

    let out = berthd.docker_build(ctx.path(), &["-t", "e2e:heredoc"]);
    let stdout = berthd.stdout_of("docker build", &out);
    assert!(
        stdout.contains("count=\n"),
        "an empty cache at first: {stdout}"
    );
    assert!(stdout.contains("bound data\n"), "{stdout}");
    let shown = berthd.ok(&[
        "run",
        "--rm",
        "e2e:heredoc",
        "sh",
        "-c",
        "cat /one /two /etc/three; stat -c %a /etc/three; ls -d /cache /t /data /dev/pipes 2>&1 | wc -l",
    ]);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines[..4], ["one", "two", "three me", "644"], "{shown}");
    // ls prints one "No such file" line per missing path: none of the mount points stayed.
    assert_eq!(lines[4], "4", "{shown}");

    // Another build (no cache) finds what the first left in the cache mount.
    let out = berthd.docker_build(ctx.path(), &["--no-cache", "-t", "e2e:heredoc"]);
    let stdout = berthd.stdout_of("docker build --no-cache", &out);
    assert!(
        stdout.contains("count=x\n"),
        "the cache mount persisted: {stdout}"
    );

    // ADD of a URL, with its checksum.
    let (port, server) = serve(b"downloaded\n", 1);
    let sum = "sha256:91a1f7bf5ddc5b5ecd1ef1d8c0a6c5cc9e0d3bb9a6c3e0a2b7d1bfcd2ea2d1a8";
    let url = format!("http://127.0.0.1:{port}/files/tool.txt");
    let bad = format!("FROM busybox\nADD --checksum={sum} {url} /opt/\n");
    std::fs::write(ctx.path().join("Dockerfile"), bad).expect("write");
    let out = berthd.docker_build(ctx.path(), &["-t", "e2e:url"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("digest mismatch"), "{stderr}");
    server.join().expect("server");

    let (port, server) = serve(b"downloaded\n", 1);
    let url = format!("http://127.0.0.1:{port}/files/tool.txt");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM busybox\nADD {url} /opt/\n"),
    )
    .expect("write");
    let out = berthd.docker_build(ctx.path(), &["-t", "e2e:url"]);
    berthd.stdout_of("docker build ADD url", &out);
    server.join().expect("server");
    let shown = berthd.ok(&[
        "run",
        "--rm",
        "e2e:url",
        "sh",
        "-c",
        "cat /opt/tool.txt; stat -c '%a %Y' /opt/tool.txt",
    ]);
    assert_eq!(shown, "downloaded\n600 784111777");
}
