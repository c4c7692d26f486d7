//! The streaming endpoints through the real docker CLI (and raw API calls where the CLI
//! cannot show a behaviour) against a private berthd: `run -i` and `run -t`, `attach`,
//! `exec` exit codes and stdin, detach keys, resize, `logs`, `stats`, `top` and `events`.
//! Each test owns its berthd; dropping it removes every container, shim, mount and cgroup
//! it made, even when the test fails.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use berth_e2e::daemon::{run_command, Berthd, Daemon};

/// Hang guard for polling loops (not a performance assertion).
const POLL_LIMIT: Duration = Duration::from_secs(60);

fn daemon() -> Berthd {
    let berthd = Berthd::start();
    berthd.import_busybox();
    berthd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `docker ARGS` with `input` on stdin.
fn docker_with_stdin(berthd: &Berthd, args: &[&str], input: &[u8]) -> Output {
    let mut cmd = berthd.command(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("docker runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(output) => output.expect("docker output"),
        Err(_) => {
            // SAFETY: kill has no memory preconditions; pid is our unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("docker {args:?} hung and was killed");
        }
    };
    let _ = writer.join();
    output
}

/// Polls `check` until it holds (hang guard [`POLL_LIMIT`]).
fn eventually(berthd: &Berthd, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < POLL_LIMIT,
            "{what} never happened; berthd log:\n{}",
            berthd.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends one raw HTTP/1.1 request on the API socket and returns the connection after the
/// response head, plus the head.
fn raw_request(berthd: &Berthd, request: &str) -> (UnixStream, String) {
    let mut stream = UnixStream::connect(berthd.socket()).expect("connect to berthd");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("response head");
        assert!(n == 1, "connection closed in the head: {}", text(&head));
        head.push(byte[0]);
    }
    (stream, text(&head))
}

#[test]
fn run_interactive_pipes_stdin_and_closes_it_at_eof() {
    let berthd = daemon();
    let out = docker_with_stdin(
        &berthd,
        &["run", "-i", "--rm", "busybox", "cat"],
        b"hello\nworld\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello\nworld\n");
}

#[test]
fn run_keeps_stdout_and_stderr_apart_and_returns_the_exit_code() {
    let berthd = daemon();
    let out = berthd.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
}

#[test]
fn run_with_a_terminal_gets_a_pty_and_raw_output() {
    let berthd = daemon();
    // `script` gives the CLI a terminal, as a user's shell would.
    let line = format!(
        "/usr/local/bin/docker -H {} run -t --rm busybox sh -c 'tty; echo tty-ok'",
        berthd.host()
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env("DOCKER_CONFIG", berthd.cli_config_dir())
        .stdin(Stdio::null());
    let out = run_command(&mut cmd);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("/dev/pts/"), "{stdout:?}");
    // The container's pty turns \n into \r\n, and script's own pty adds another \r.
    assert!(stdout.contains("tty-ok\r\r\n"), "{stdout:?}");
}

#[test]
fn exec_reports_dockers_exit_codes() {
    let berthd = daemon();
    berthd.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    assert_eq!(berthd.ok(&["exec", "box", "echo", "hi"]), "hi");
    let cases: [(&[&str], i32); 5] = [
        (&["true"], 0),
        (&["false"], 1),
        (&["sh", "-c", "exit 7"], 7),
        (&["/etc/passwd"], 126),
        (&["nosuch"], 127),
    ];
    for (cmd, code) in cases {
        let mut args = vec!["exec", "box"];
        args.extend_from_slice(cmd);
        let out = berthd.docker(&args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "docker exec {cmd:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let out = berthd.docker(&["exec", "box", "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        ("out\n".into(), "err\n".into())
    );
    let not_found = berthd.docker(&["exec", "box", "nosuch"]);
    // Docker writes the start error into the stream's stdout.
    assert!(
        text(&not_found.stdout).contains("executable file not found"),
        "{}{}",
        text(&not_found.stdout),
        text(&not_found.stderr)
    );
}

#[test]
fn exec_interactive_takes_stdin_and_env_user_workdir() {
    let berthd = daemon();
    berthd.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "-e",
        "FROM_RUN=1",
        "busybox",
        "sleep",
        "1000",
    ]);
    let out = docker_with_stdin(&berthd, &["exec", "-i", "box", "cat"], b"abc\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "abc\n");
    let env = berthd.ok(&["exec", "-e", "X=2", "box", "env"]);
    assert!(env.contains("FROM_RUN=1"), "{env}");
    assert!(env.contains("X=2"), "{env}");
    assert!(env.contains("HOSTNAME="), "{env}");
    assert_eq!(
        berthd.ok(&["exec", "-u", "nobody", "box", "id", "-u"]),
        "65534"
    );
    assert_eq!(berthd.ok(&["exec", "-w", "/etc", "box", "pwd"]), "/etc");
    let bad = berthd.docker(&["exec", "-u", "ghost", "box", "true"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("unable to find user ghost"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn exec_in_a_stopped_container_is_a_conflict() {
    let berthd = daemon();
    let id = berthd.ok(&["create", "--name", "idle", "busybox", "true"]);
    let out = berthd.docker(&["exec", "idle", "true"]);
    assert!(!out.status.success());
    assert!(
        // moby says `container ID is not running` (dockerd 20.10 capitalised it).
        text(&out.stderr)
            .to_lowercase()
            .contains(&format!("container {id} is not running")),
        "{}",
        text(&out.stderr)
    );
    let missing = berthd.docker(&["exec", "nosuchcontainer", "true"]);
    assert!(
        text(&missing.stderr).contains("No such container: nosuchcontainer"),
        "{}",
        text(&missing.stderr)
    );
}

#[test]
fn attach_after_start_streams_output_and_forwards_stdin() {
    let berthd = daemon();
    berthd.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "reader",
        "busybox",
        "sh",
        "-c",
        "read x; echo got-$x",
    ]);
    // stdin stays open until the answer came: without StdinOnce (`run -d -i`), the client's
    // EOF ends the attach, as in Docker.
    let mut cmd = berthd.command(&["attach", "reader"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("docker attach runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let _ = stdout.read_to_end(&mut seen);
        seen
    });
    // Let the attach connect before typing, as a user would.
    std::thread::sleep(Duration::from_millis(500));
    stdin.write_all(b"hello\n").expect("type");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(status) => status.expect("docker attach status"),
        Err(_) => {
            // SAFETY: kill has no memory preconditions; pid is our unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("docker attach hung; berthd log:\n{}", berthd.log());
        }
    };
    drop(stdin);
    let seen = reader.join().expect("reader");
    assert!(status.success(), "{status:?}");
    assert_eq!(text(&seen), "got-hello\n");
    eventually(&berthd, "the container exits", || {
        berthd.ok(&["inspect", "-f", "{{.State.Status}}", "reader"]) == "exited"
    });
}

#[test]
fn detach_keys_leave_the_container_running() {
    let berthd = daemon();
    let id = berthd.ok(&["run", "-dit", "--name", "shell", "busybox", "sh"]);
    let (mut stream, head) = raw_request(
        &berthd,
        &format!(
            "POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-x HTTP/1.1\r\n\
             Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        ),
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("application/vnd.docker.raw-stream"), "{head}");
    stream.write_all(b"echo marker-$((40+2))\n").expect("stdin");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !text(&seen).contains("marker-42") {
        let n = stream.read(&mut buf).expect("output");
        assert!(n > 0, "stream ended early: {}", text(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    stream.write_all(&[0x18]).expect("detach key");
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) => panic!("the server should close the stream on detach: {e}"),
        }
    }
    assert_eq!(
        berthd.ok(&["inspect", "-f", "{{.State.Status}}", "shell"]),
        "running"
    );
    let (_, bad) = raw_request(
        &berthd,
        &format!(
            "POST /containers/{id}/attach?stream=1&detachKeys=ctrl-nope HTTP/1.1\r\n\
             Host: docker\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        ),
    );
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
}

#[test]
fn resize_changes_the_containers_terminal() {
    let berthd = daemon();
    let id = berthd.ok(&[
        "run",
        "-dt",
        "--name",
        "sized",
        "busybox",
        "sh",
        "-c",
        "while true; do stty size > /tmp/size; sleep 0.1; done",
    ]);
    let (_, head) = raw_request(
        &berthd,
        &format!(
            "POST /containers/{id}/resize?h=33&w=101 HTTP/1.1\r\nHost: docker\r\n\
             Connection: close\r\nContent-Length: 0\r\n\r\n"
        ),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    eventually(&berthd, "the new size shows", || {
        berthd.docker(&["exec", "sized", "cat", "/tmp/size"]).stdout == b"33 101\n"
    });
}

#[test]
fn top_lists_the_containers_processes() {
    let berthd = daemon();
    berthd.ok(&["run", "-d", "--name", "topped", "busybox", "sleep", "1000"]);
    let top = berthd.ok(&["top", "topped"]);
    let mut lines = top.lines();
    let titles = lines.next().expect("titles");
    assert!(titles.contains("PID") && titles.contains("CMD"), "{top}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "only the container's process: {top}");
    assert!(rows[0].ends_with("sleep 1000"), "{top}");
    let stopped = berthd.ok(&["create", "busybox", "true"]);
    let out = berthd.docker(&["top", &stopped]);
    assert!(
        text(&out.stderr).contains("is not running"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn stats_no_stream_reads_the_cgroup() {
    let berthd = daemon();
    berthd.ok(&["run", "-d", "--name", "busy", "busybox", "sleep", "1000"]);
    let line = berthd.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.PIDs}}|{{.MemUsage}}",
        "busy",
    ]);
    let fields: Vec<&str> = line.split('|').collect();
    assert_eq!(fields.len(), 3, "{line}");
    assert_eq!(fields[0], "busy");
    assert_eq!(fields[1], "1", "one process in the cgroup: {line}");
    assert!(!fields[2].starts_with("0B "), "memory is counted: {line}");
}

/// Waits until the container exited.
fn wait_exited(berthd: &Berthd, name: &str) {
    eventually(berthd, "the container exits", || {
        berthd.ok(&["inspect", "-f", "{{.State.Status}}", name]) == "exited"
    });
}

#[test]
fn logs_split_streams_and_honour_tail_since_until_and_timestamps() {
    let berthd = daemon();
    berthd.ok(&[
        "run",
        "-d",
        "--name",
        "logger",
        "busybox",
        "sh",
        "-c",
        "echo err >&2; sleep 0.3; echo one; echo two; echo three",
    ]);
    wait_exited(&berthd, "logger");
    let all = berthd.docker(&["logs", "logger"]);
    assert_eq!(text(&all.stdout), "one\ntwo\nthree\n");
    assert_eq!(text(&all.stderr), "err\n");
    let tail = berthd.docker(&["logs", "--tail", "2", "logger"]);
    assert_eq!(text(&tail.stdout), "two\nthree\n");
    assert_eq!(text(&tail.stderr), "");
    let stamped = berthd.ok(&["logs", "-t", "logger"]);
    for line in stamped.lines() {
        let (time, rest) = line.split_once(' ').expect("a timestamp then the line");
        assert_eq!(time.len(), "2006-01-02T15:04:05.000000000Z".len(), "{line}");
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{line}");
        assert!(["one", "two", "three"].contains(&rest), "{line}");
    }
    let future = berthd.docker(&["logs", "--since", "2100-01-01T00:00:00Z", "logger"]);
    assert_eq!(
        (text(&future.stdout), text(&future.stderr)),
        (String::new(), String::new())
    );
    let past = berthd.docker(&["logs", "--until", "2000-01-01T00:00:00Z", "logger"]);
    assert_eq!(text(&past.stdout), "");
}

#[test]
fn logs_follow_ends_when_the_container_stops() {
    let berthd = daemon();
    berthd.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "echo first; sleep 2; echo second",
    ]);
    let out = berthd.docker(&["logs", "-f", "talker"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "first\nsecond\n");
}

#[test]
fn logs_of_a_driver_without_reading_get_dockers_error() {
    let berthd = daemon();
    berthd.ok(&[
        "run",
        "-d",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "true",
    ]);
    let out = berthd.docker(&["logs", "quiet"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("configured logging driver does not support reading"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn attach_with_logs_replays_the_log_first() {
    let berthd = daemon();
    let id = berthd.ok(&["run", "-d", "--name", "done", "busybox", "echo", "replayed"]);
    wait_exited(&berthd, "done");
    let (mut stream, head) = raw_request(
        &berthd,
        &format!(
            "POST /containers/{id}/attach?logs=1&stdout=1&stderr=1 HTTP/1.1\r\n\
             Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        ),
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("application/vnd.docker.multiplexed-stream"),
        "{head}"
    );
    let mut body = Vec::new();
    stream.read_to_end(&mut body).expect("replay");
    let mut frame = vec![1u8, 0, 0, 0, 0, 0, 0, 9];
    frame.extend_from_slice(b"replayed\n");
    assert_eq!(body, frame, "one stdout frame");
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[test]
fn events_replay_a_window_with_filters_including_exec_events() {
    let berthd = daemon();
    let since = unix_now() - 1;
    berthd.ok(&["run", "-d", "--name", "evented", "busybox", "sleep", "1000"]);
    berthd.ok(&["run", "-d", "--name", "other", "busybox", "sleep", "1000"]);
    berthd.ok(&["exec", "evented", "true"]);
    let until = unix_now() + 1;
    let out = berthd.ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        "container=evented",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "container create evented",
        "container start evented",
        "container exec_create: true evented",
        "container exec_start: true evented",
        "container exec_die evented",
    ] {
        assert!(lines.contains(&want), "{want:?} missing from {out}");
    }
    assert!(!out.contains("other"), "filtered: {out}");
    let (_, bad) = raw_request(
        &berthd,
        "GET /events?since=20&until=10 HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
    );
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
}

/// Sends a request with a JSON body and returns the status line and body (Connection: close).
fn raw_json(berthd: &Berthd, method: &str, path: &str, body: &str) -> (String, String) {
    let (mut stream, head) = raw_request(
        berthd,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    (head, text(&rest))
}

#[test]
fn detached_exec_runs_and_inspect_shows_its_exit_code() {
    let berthd = daemon();
    let id = berthd.ok(&["run", "-d", "--name", "host", "busybox", "sleep", "1000"]);
    berthd.ok(&["exec", "-d", "host", "sh", "-c", "echo made > /tmp/flag"]);
    eventually(&berthd, "the detached exec wrote its file", || {
        berthd.docker(&["exec", "host", "cat", "/tmp/flag"]).stdout == b"made\n"
    });
    let (head, body) = raw_json(
        &berthd,
        "POST",
        "/containers/host/exec",
        r#"{"Cmd":["sh","-c","sleep 0.5; exit 3"],"AttachStdout":true}"#,
    );
    assert!(head.starts_with("HTTP/1.1 201"), "{head}{body}");
    let created: serde_json::Value =
        serde_json::from_str(body.trim_end_matches("\r\n0\r\n\r\n").trim()).unwrap_or_else(|_| {
            // A chunked body: the JSON is on the second line.
            serde_json::from_str(body.lines().nth(1).unwrap_or("")).expect("exec create JSON")
        });
    let exec_id = created["Id"].as_str().expect("Id").to_string();
    let (head, _) = raw_json(
        &berthd,
        "POST",
        &format!("/exec/{exec_id}/start"),
        r#"{"Detach":true}"#,
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let inspect = |berthd: &Berthd| -> serde_json::Value {
        let (_, body) = raw_json(berthd, "GET", &format!("/exec/{exec_id}/json"), "");
        let json = body
            .lines()
            .find(|l| l.starts_with('{'))
            .expect("inspect JSON");
        serde_json::from_str(json).expect("inspect parses")
    };
    eventually(&berthd, "the exec ends", || {
        inspect(&berthd)["Running"] == false
    });
    let done = inspect(&berthd);
    assert_eq!(done["ExitCode"], 3, "{done}");
    assert_eq!(done["ContainerID"], id.as_str());
    assert_eq!(done["ProcessConfig"]["entrypoint"], "sh");
    assert!(done["Pid"].as_i64().is_some_and(|p| p > 0), "{done}");
    let (again, _) = raw_json(
        &berthd,
        "POST",
        &format!("/exec/{exec_id}/start"),
        r#"{"Detach":true}"#,
    );
    assert!(
        again.starts_with("HTTP/1.1 409"),
        "an exec runs once: {again}"
    );
    let (missing, _) = raw_json(&berthd, "GET", "/exec/nosuchexec/json", "");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}

#[test]
fn exec_with_a_terminal_through_script() {
    let berthd = daemon();
    berthd.ok(&["run", "-d", "--name", "termbox", "busybox", "sleep", "1000"]);
    let line = format!(
        "/usr/local/bin/docker -H {} exec -t termbox sh -c 'tty; echo term-ok'",
        berthd.host()
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env("DOCKER_CONFIG", berthd.cli_config_dir())
        .stdin(Stdio::null());
    let out = run_command(&mut cmd);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("/dev/pts/"), "{stdout:?}");
    assert!(stdout.contains("term-ok\r\r\n"), "{stdout:?}");
}
