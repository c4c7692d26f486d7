//! Reliability of berthd with ONE daemon for the whole file (scenarios run in order inside a
//! single test, to keep CI lean): (a) SIGKILL of berthd while 20 `run -d` are starting
//! concurrently, execs run and an image loads: after the restart no container is lost or
//! duplicated, running ones still run, no image is lost and no log line is lost; (b) 500
//! API requests in parallel (pings, lists, inspects, hijacked attaches) leave berthd
//! responsive with its fd count back to the baseline; (c) malformed bodies to every POST
//! route get a 400 `{"message": ...}` (routes without a JSON body: any answer) and never
//! crash berthd. The fd check caught hijacked attaches whose client hung up: they held the
//! client's socket and the shim's until the silent container wrote again.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_e2e::daemon::{Berthd, Daemon};
use berth_e2e::image_tar::busybox_image_archive;

/// Hang guard for polling loops (not a performance assertion).
const POLL_LIMIT: Duration = Duration::from_secs(120);
/// Lines each container of (a) prints.
const LINES: usize = 150;
const RUNS: usize = 20;

#[test]
fn berthd_survives_kill9_parallel_load_and_malformed_bodies() {
    let mut berthd = Berthd::start();
    berthd.import_busybox();
    kill9_during_concurrent_runs_execs_and_a_load(&mut berthd);
    parallel_requests_leave_no_fds_behind(&berthd);
    malformed_bodies_get_400_and_never_crash(&berthd);
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

type RunOutcome = (String, Option<String>);

fn kill9_during_concurrent_runs_execs_and_a_load(berthd: &mut Berthd) {
    berthd.ok(&["run", "-d", "--name", "base", "busybox", "sleep", "1000"]);
    let archive = busybox_image_archive("loaded:1");
    let archive_path = archive.path().to_string_lossy().into_owned();
    let pid = berthd.pid().expect("berthd runs");
    let started = Arc::new(AtomicUsize::new(0));
    // (name, id the run printed, if any) for every `run -d` started.
    let runs: Arc<Mutex<Vec<RunOutcome>>> = Arc::new(Mutex::new(Vec::new()));
    let loaded = Arc::new(Mutex::new(false));
    let script = format!(
        "i=1; while [ $i -le {LINES} ]; do echo line $i; i=$((i+1)); usleep 20000; done; exec sleep 1000"
    );
    std::thread::scope(|scope| {
        for n in 0..RUNS {
            let (runs, started, script) = (runs.clone(), started.clone(), script.clone());
            let berthd = &*berthd;
            scope.spawn(move || {
                let name = format!("r{n}");
                let out =
                    berthd.docker(&["run", "-d", "--name", &name, "busybox", "sh", "-c", &script]);
                let id = out.status.success().then(|| stdout_of(&out));
                started.fetch_add(1, Ordering::SeqCst);
                runs.lock().expect("runs").push((name, id));
            });
        }
        for _ in 0..4 {
            let berthd = &*berthd;
            scope.spawn(move || {
                for _ in 0..5 {
                    let _ = berthd.docker(&["exec", "base", "sh", "-c", "echo exec"]);
                }
            });
        }
        {
            let (loaded, archive_path, berthd) = (loaded.clone(), archive_path.clone(), &*berthd);
            scope.spawn(move || {
                let out = berthd.docker(&["load", "-i", &archive_path]);
                *loaded.lock().expect("loaded") = out.status.success();
            });
        }
        // Kill berthd once some runs returned and others are still on their way.
        let start = Instant::now();
        while started.load(Ordering::SeqCst) < RUNS / 4 && start.elapsed() < POLL_LIMIT {
            std::thread::sleep(Duration::from_millis(10));
        }
        // SIGKILL by pid: the fixture itself is borrowed by the threads; it reaps the
        // child below.
        let killed = std::process::Command::new("kill")
            .arg("-9")
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(killed.success());
    });
    berthd.kill9();
    berthd.restart();

    let runs = runs.lock().expect("runs").clone();
    let succeeded: Vec<&(String, Option<String>)> =
        runs.iter().filter(|(_, id)| id.is_some()).collect();
    assert!(!succeeded.is_empty(), "some runs returned before the kill");
    // Every run that returned an id exists and runs; no name or id is duplicated.
    for (name, id) in &succeeded {
        let id = id.as_deref().unwrap_or_default();
        assert_eq!(
            berthd.ok(&["inspect", "-f", "{{.Id}} {{.State.Status}}", name]),
            format!("{id} running")
        );
    }
    let all = berthd.ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"]);
    let ids: Vec<&str> = all.lines().filter_map(|l| l.split(' ').next()).collect();
    let names: Vec<&str> = all.lines().filter_map(|l| l.split(' ').nth(1)).collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "{all}"
    );
    assert_eq!(
        names.iter().collect::<BTreeSet<_>>().len(),
        names.len(),
        "{all}"
    );
    let on_disk = berthd.data_root().join("containers");
    let dirs = std::fs::read_dir(&on_disk).expect("containers dir").count();
    assert_eq!(dirs, ids.len(), "container directories vs ps -a:\n{all}");
    // No image lost: the base image always, the loaded one when its load returned.
    berthd.ok(&["image", "inspect", "busybox:latest"]);
    if *loaded.lock().expect("loaded") {
        berthd.ok(&["image", "inspect", "loaded:1"]);
    }
    // No log line lost: each running container printed 1..=LINES across the kill.
    for (name, _) in &succeeded {
        let start = Instant::now();
        loop {
            let out = berthd.docker(&["logs", name]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let lines: Vec<&str> = text.lines().collect();
            if lines.len() >= LINES {
                let want: Vec<String> = (1..=LINES).map(|i| format!("line {i}")).collect();
                assert_eq!(lines, want, "log of {name}");
                break;
            }
            assert!(
                start.elapsed() < POLL_LIMIT,
                "{name} logged {} lines",
                lines.len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert_eq!(berthd.ok(&["exec", "base", "echo", "after"]), "after");
    let leftovers: Vec<String> = berthd
        .ok(&["ps", "-aq"])
        .lines()
        .map(str::to_string)
        .collect();
    let mut rm = vec!["rm", "-f"];
    rm.extend(leftovers.iter().map(String::as_str));
    berthd.ok(&rm);
}

/// One HTTP/1.1 request over the unix socket; returns the status code and the body
/// (read to the end: `Connection: close`).
fn request(berthd: &Berthd, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = UnixStream::connect(berthd.socket()).expect("connect to berthd");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("request head");
    // A route that answers without reading the body (a 404) may close first: the answer
    // still comes.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?} for {method} {path}"));
    let body_start = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |i| i + 4);
    (status, response[body_start..].to_vec())
}

/// Opens a hijacked attach and drops it at once.
fn hijack_and_drop(berthd: &Berthd, id: &str) {
    let mut stream = UnixStream::connect(berthd.socket()).expect("connect to berthd");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "POST /containers/{id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\n\
         Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("attach request");
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).expect("upgrade answer");
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("berthd's fds")
        .count()
}

fn parallel_requests_leave_no_fds_behind(berthd: &Berthd) {
    let id = berthd.ok(&["run", "-d", "--name", "target", "busybox", "sleep", "1000"]);
    let pid = berthd.pid().expect("berthd runs");
    // One of each first, so that lazily opened files count in the baseline.
    request(berthd, "GET", "/containers/json", b"");
    request(berthd, "GET", "/images/json", b"");
    hijack_and_drop(berthd, &id);
    std::thread::sleep(Duration::from_millis(300));
    let baseline = fd_count(pid);
    let failures = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for worker in 0..25 {
            let (id, failures) = (&id, &failures);
            scope.spawn(move || {
                for n in 0..20 {
                    match (worker + n) % 5 {
                        0 => hijack_and_drop(berthd, id),
                        kind => {
                            let path = match kind {
                                1 => "/_ping".to_string(),
                                2 => "/containers/json?all=1".to_string(),
                                3 => "/images/json".to_string(),
                                _ => format!("/containers/{id}/json"),
                            };
                            if request(berthd, "GET", &path, b"").0 != 200 {
                                failures.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                }
            });
        }
    });
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "every request answered 200"
    );
    assert_eq!(request(berthd, "GET", "/_ping", b""), (200, b"OK".to_vec()));
    let start = Instant::now();
    loop {
        let now = fd_count(pid);
        if now <= baseline {
            break;
        }
        assert!(
            start.elapsed() < POLL_LIMIT,
            "berthd holds {now} fds, {baseline} before the 500 requests"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    berthd.ok(&["rm", "-f", "target"]);
}

fn malformed_bodies_get_400_and_never_crash(berthd: &Berthd) {
    berthd.ok(&["run", "-d", "--name", "victim", "busybox", "sleep", "1000"]);
    let exec = {
        let (status, body) = request(
            berthd,
            "POST",
            "/containers/victim/exec",
            br#"{"Cmd":["true"]}"#,
        );
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        let value: serde_json::Value = serde_json::from_slice(&body).expect("exec create answer");
        value["Id"].as_str().expect("an exec id").to_string()
    };
    let pid = berthd.pid().expect("berthd runs");
    // Each body is broken JSON, not UTF-8, or gives a wrong type to a field that every
    // route reads (as dockerd, a route ignores fields it does not know: a body of only
    // those is not malformed).
    let bad_bodies: [&[u8]; 5] = [
        b"{\"Image\": \"busybox\", \"Cmd\": [",
        b"{\"Image\": 5, \"Cmd\": {}, \"Memory\": \"lots\", \"Detach\": \"yes\", \"Name\": 1, \"username\": 2}",
        b"{\"Memory\": 123456789012345678901234567890, \"Tty\": 1e999, \"Cmd\": [1], \"Name\": 1e999, \"Driver\": [1], \"username\": [1]}",
        b"{\"Image\": \"\xff\xfe\", \"Cmd\": [\"\xc3\x28\"]}",
        b"[1, 2, 3]",
    ];
    let json_routes = [
        "/containers/create".to_string(),
        "/containers/victim/update".to_string(),
        "/containers/victim/exec".to_string(),
        format!("/exec/{exec}/start"),
        "/volumes/create".to_string(),
        "/commit?container=victim".to_string(),
        "/auth".to_string(),
    ];
    for route in &json_routes {
        for body in bad_bodies {
            let (status, answer) = request(berthd, "POST", route, body);
            let text = String::from_utf8_lossy(&answer);
            assert_eq!(
                status,
                400,
                "POST {route} with {:?}: {text}",
                String::from_utf8_lossy(body)
            );
            let value: serde_json::Value = serde_json::from_slice(&answer)
                .unwrap_or_else(|e| panic!("POST {route}: not JSON ({e}): {text}"));
            assert!(value["message"].is_string(), "POST {route}: {text}");
        }
        let (status, answer) = request(berthd, "POST", route, b"");
        assert!(
            status < 500 || route.starts_with("/auth"),
            "POST {route} empty: {status} {}",
            String::from_utf8_lossy(&answer)
        );
    }
    // Routes without a JSON body: whatever they answer, berthd stays up.
    let other_routes = [
        "/containers/nosuch/start",
        "/containers/nosuch/stop",
        "/containers/nosuch/kill",
        "/containers/nosuch/restart",
        "/containers/nosuch/wait",
        "/containers/nosuch/rename?name=x",
        "/containers/nosuch/pause",
        "/containers/nosuch/unpause",
        "/containers/nosuch/resize?h=x&w=y",
        "/containers/nosuch/attach",
        "/containers/prune?filters=%7B%22until%22%3A%5B1",
        "/exec/nosuch/resize?h=-1",
        "/images/load",
        "/images/create?fromSrc=-&repo=junk",
        "/images/prune?filters=%5B",
        "/images/nosuch/tag?repo=UPPER",
        "/images/nosuch/push",
        "/volumes/prune",
        "/build",
        "/build/prune",
    ];
    for route in other_routes {
        for body in bad_bodies {
            let (status, _) = request(berthd, "POST", route, body);
            assert!((200..600).contains(&status), "POST {route}: {status}");
        }
    }
    assert_eq!(berthd.pid(), Some(pid), "berthd never restarted");
    assert_eq!(request(berthd, "GET", "/_ping", b""), (200, b"OK".to_vec()));
    assert!(
        !berthd.log().contains("panicked"),
        "berthd's log shows a panic:\n{}",
        berthd.log()
    );
    berthd.ok(&["rm", "-f", "victim"]);
}
