//! Networking between berthds and per container, through the real docker CLI: each berthd
//! keeps its own nftables tables (`berth-<bridge>`), present while it has endpoints and
//! removed a moment (berthd's linger, 2 s) after the last one went;
//! a berthd reuses the subnet of its bridge left by an earlier run; `--ip`, `--ip6`,
//! `--network-alias`, `--mac-address` with Docker's refusals (nothing created); `--dns`
//! servers kept out of resolv.conf (their forwarding: network_dns.rs); /etc/hosts rewritten
//! at live connect and disconnect; addresses matching the running containers after kill -9 of berthd and a
//! container dying while berthd is down. Bridges, subnets and loopback addresses are unique
//! to this file; guards delete the bridges and tables even when an assertion fails.

use std::process::Command;
use std::time::{Duration, Instant};

use berth_e2e::daemon::{Berthd, Daemon};
use berth_e2e::http::http_get;

/// The default bridge of the main berthd (a device of an "earlier run" it must reuse).
const DEFAULT_BRIDGE: &str = "bnd0";
const DEFAULT_POOL: &str = "10.214.0.0/16";
/// The subnet `bnd0` carries before berthd starts (the first /24 of the pool).
const DEFAULT_ADDRESS: &str = "10.214.0.1/24";
const USER_BRIDGE: &str = "bnd1";
const USER_SUBNET: &str = "10.215.0.0/24";
const USER_SUBNET6: &str = "fd15:215::/64";
/// A `--dns` server (only written to the sandbox, never asked here).
const UPSTREAM: &str = "192.0.2.53";
/// Published port of the main berthd's web container.
const PORT: u16 = 18714;

/// Deletes this file's bridges and the main berthd's tables (veths die with their
/// namespaces).
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        for link in [DEFAULT_BRIDGE, USER_BRIDGE] {
            let _ = Command::new("ip").args(["link", "del", link]).output();
        }
        let _ = berth_network::firewall::clear_in(&format!("berth-{DEFAULT_BRIDGE}"));
    }
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// Output of a command whose exit status does not matter (busybox nslookup fails when one
/// of its questions has no answer).
fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails_with(daemon: &Berthd, args: &[&str]) -> String {
    let out = daemon.docker(args);
    assert!(!out.status.success(), "docker {args:?} succeeded");
    stderr_of(&out)
}

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn table_exists(family: &str, table: &str) -> bool {
    sh(&["nft", "list", "table", family, table])
        .status
        .success()
}

/// Whether both of a berthd's tables are gone within 20 s: it removes them a moment after
/// its last endpoint went (an application meanwhile would keep them).
fn tables_removed(table: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if !table_exists("ip", table) && !table_exists("ip6", table) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn table_text(table: &str) -> String {
    String::from_utf8_lossy(&sh(&["nft", "list", "table", "ip", table]).stdout).into_owned()
}

/// The default bridge device of a fixture (its daemon.json `bridge`).
fn bridge_of(daemon: &Berthd) -> String {
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(daemon.root().join("daemon.json")).expect("daemon.json"),
    )
    .expect("daemon.json parses");
    json["bridge"].as_str().expect("bridge").to_string()
}

fn count_containers(daemon: &Berthd) -> usize {
    daemon
        .ok(&["ps", "-aq"])
        .lines()
        .filter(|l| !l.is_empty())
        .count()
}

#[test]
fn berthds_own_their_tables_and_containers_their_endpoint_settings() {
    let _guard = Guard;
    // An earlier run's bridge, still up with the pool's first subnet: its route is berthd's
    // own, not a clash.
    for link in [DEFAULT_BRIDGE, USER_BRIDGE] {
        let _ = sh(&["ip", "link", "del", link]);
    }
    assert!(sh(&["ip", "link", "add", DEFAULT_BRIDGE, "type", "bridge"])
        .status
        .success());
    assert!(
        sh(&["ip", "addr", "add", DEFAULT_ADDRESS, "dev", DEFAULT_BRIDGE])
            .status
            .success()
    );
    assert!(sh(&["ip", "link", "set", DEFAULT_BRIDGE, "up"])
        .status
        .success());
    let mut daemon_json = serde_json::Map::new();
    daemon_json.insert("bridge".into(), DEFAULT_BRIDGE.into());
    daemon_json.insert(
        "default-address-pools".into(),
        serde_json::json!([{"base": DEFAULT_POOL, "size": 24}]),
    );
    let mut berthd = Berthd::start_with(daemon_json);
    berthd.import_busybox();
    assert_eq!(
        berthd.ok(&[
            "network",
            "inspect",
            "bridge",
            "-f",
            "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}",
        ]),
        "10.214.0.0/24 10.214.0.1",
        "berthd log:\n{}",
        berthd.log()
    );
    let table = format!("berth-{DEFAULT_BRIDGE}");
    assert!(!table_exists("ip", &table), "no endpoint yet, no table");

    // Its own tables while a container publishes a port.
    berthd.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{PORT}:80"),
        "busybox",
        "sh",
        "-c",
        "mkdir /w && echo main > /w/name && httpd -f -h /w",
    ]);
    assert!(table_exists("ip", &table) && table_exists("ip6", &table));
    assert!(table_text(&table).contains(&format!("dport {PORT} dnat to")));
    assert!(http_get(&format!("127.0.0.1:{PORT}"), "/name").contains("main"));

    // A second berthd publishes and unpublishes beside it: the first one's rules stay.
    {
        let other = Berthd::start();
        other.import_busybox();
        let other_table = format!("berth-{}", bridge_of(&other));
        other.ok(&[
            "run", "-d", "--name", "other1", "-p", "18715:80", "busybox", "sleep", "600",
        ]);
        assert!(table_text(&other_table).contains("dport 18715 dnat to"));
        assert!(table_text(&table).contains(&format!("dport {PORT} dnat to")));
        other.ok(&["rm", "-f", "other1"]);
        assert!(
            tables_removed(&other_table),
            "the other berthd's last endpoint took its tables"
        );
        assert!(table_text(&table).contains(&format!("dport {PORT} dnat to")));
    }
    assert!(http_get(&format!("127.0.0.1:{PORT}"), "/name").contains("main"));

    // --ip, --ip6, --network-alias and --mac-address on a user network.
    berthd.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        USER_SUBNET,
        "--subnet",
        USER_SUBNET6,
        "-o",
        &format!("com.docker.network.bridge.name={USER_BRIDGE}"),
        "netx",
    ]);
    berthd.ok(&[
        "run",
        "-d",
        "--name",
        "fixed",
        "--network",
        "netx",
        "--ip",
        "10.215.0.50",
        "--ip6",
        "fd15:215::50",
        "--network-alias",
        "api",
        "--mac-address",
        "02:42:aa:bb:cc:dd",
        "busybox",
        "sleep",
        "600",
    ]);
    let addrs = berthd.ok(&["exec", "fixed", "ip", "-o", "addr", "show", "eth0"]);
    assert!(addrs.contains("inet 10.215.0.50/24"), "{addrs}");
    assert!(addrs.contains("inet6 fd15:215::50/64"), "{addrs}");
    assert_eq!(
        berthd.ok(&["exec", "fixed", "cat", "/sys/class/net/eth0/address"]),
        "02:42:aa:bb:cc:dd"
    );
    assert_eq!(
        berthd.ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.netx.IPAddress}} \
             {{.NetworkSettings.Networks.netx.GlobalIPv6Address}} \
             {{.NetworkSettings.Networks.netx.MacAddress}} \
             {{.NetworkSettings.Networks.netx.IPAMConfig.IPv4Address}}",
            "fixed",
        ]),
        "10.215.0.50 fd15:215::50 02:42:aa:bb:cc:dd 10.215.0.50"
    );
    let resolved = stdout_of(&berthd.docker(&[
        "run",
        "--rm",
        "--network",
        "netx",
        "busybox",
        "nslookup",
        "-type=a",
        "api",
    ]));
    assert!(resolved.contains("10.215.0.50"), "{resolved}");

    // Docker's refusals, and nothing created by them.
    let before = count_containers(&berthd);
    for (args, text) in [
        (
            vec!["run", "--ip", "172.17.0.9", "busybox", "true"],
            "user-specified IP address is supported on user-defined networks only",
        ),
        (
            vec!["create", "--network-alias", "x", "busybox"],
            // The docker CLI 28 refuses this one itself, in its own words.
            "network-scoped alias",
        ),
        (
            vec![
                "run",
                "--network",
                "netx",
                "--ip",
                "10.99.0.1",
                "busybox",
                "true",
            ],
            "no configured subnet contains IP address 10.99.0.1",
        ),
        (
            vec![
                "run",
                "--network",
                "netx",
                "--ip",
                "fd15:215::9",
                "busybox",
                "true",
            ],
            "invalid IPv4 address: fd15:215::9",
        ),
        (
            vec!["run", "--mac-address", "xx", "busybox", "true"],
            "xx is not a valid mac address",
        ),
    ] {
        let err = fails_with(&berthd, &args);
        assert!(err.contains(text), "{args:?}: {err}");
    }
    assert_eq!(
        count_containers(&berthd),
        before,
        "a refused run created nothing"
    );
    let err = fails_with(
        &berthd,
        &[
            "run",
            "--network",
            "netx",
            "--ip",
            "10.215.0.50",
            "busybox",
            "true",
        ],
    );
    assert!(err.contains("Address already in use"), "{err}");

    // --dns: resolv.conf names the embedded DNS only, which forwards to the --dns server
    // from the container's namespace (network_dns.rs, with real traffic).
    let resolv = berthd.ok(&[
        "run",
        "--rm",
        "--network",
        "netx",
        "--dns",
        UPSTREAM,
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");
    assert!(!resolv.contains(UPSTREAM), "{resolv}");

    // Live connect and disconnect rewrite /etc/hosts as Docker does.
    berthd.ok(&["run", "-d", "--name", "hop", "busybox", "sleep", "600"]);
    berthd.ok(&["network", "connect", "--ip", "10.215.0.60", "netx", "hop"]);
    let hosts = berthd.ok(&["exec", "hop", "cat", "/etc/hosts"]);
    assert!(hosts.contains("10.215.0.60\t"), "{hosts}");
    berthd.ok(&["network", "disconnect", "netx", "hop"]);
    let hosts = berthd.ok(&["exec", "hop", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("10.215.0.60"), "{hosts}");

    // kill -9 of berthd; a container dies while it is down: after the restart the network
    // holds exactly the running containers' addresses and hands the dead one's out again.
    berthd.ok(&[
        "run",
        "-d",
        "--name",
        "doomed",
        "--network",
        "netx",
        "busybox",
        "sleep",
        "600",
    ]);
    let doomed_ip = berthd.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.netx.IPAddress}}",
        "doomed",
    ]);
    let pid: i32 = berthd
        .ok(&["inspect", "-f", "{{.State.Pid}}", "doomed"])
        .parse()
        .expect("pid");
    berthd.kill9();
    // SAFETY: kill has no memory-safety preconditions; pid is the container's process.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    berthd.restart();
    let members = berthd.ok(&[
        "network",
        "inspect",
        "netx",
        "-f",
        "{{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}",
    ]);
    assert_eq!(members.trim(), "fixed=10.215.0.50/24", "{members}");
    berthd.ok(&[
        "run",
        "-d",
        "--name",
        "next",
        "--network",
        "netx",
        "busybox",
        "sleep",
        "600",
    ]);
    assert_eq!(
        berthd.ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.netx.IPAddress}}",
            "next",
        ]),
        doomed_ip,
        "the dead container's address is free again, once"
    );
    assert!(http_get(&format!("127.0.0.1:{PORT}"), "/name").contains("main"));

    // The last endpoint gone, the tables go; the network then goes.
    berthd.ok(&["rm", "-f", "web", "fixed", "hop", "next", "doomed"]);
    assert!(tables_removed(&table), "the last endpoint took the tables");
    berthd.ok(&["network", "rm", "netx"]);
    let leftovers = String::from_utf8_lossy(
        &sh(&["ip", "-o", "link", "show", "master", DEFAULT_BRIDGE]).stdout,
    )
    .into_owned();
    assert!(leftovers.trim().is_empty(), "veths left: {leftovers}");
    let netns = std::fs::read_dir(berthd.exec_root().join("netns"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(netns, 0, "pinned namespaces left");
}
