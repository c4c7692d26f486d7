//! Docker's networking model through the real docker CLI against one private berthd (one
//! per file, for the CI budget): the predefined networks, the default bridge's subnet (or
//! the announced fallback), user-defined networks with Docker's texts and JSON, name and
//! alias resolution, published ports, addresses released over run/rm cycles, and a kill -9
//! of berthd that leaves running containers connected. Bridge names and subnets are unique
//! to this file; a guard deletes the bridges even when an assertion fails.

use std::process::Command;

use berth_e2e::daemon::{Berthd, Daemon};
use berth_e2e::http::http_get;

/// The default bridge of this file's berthd and the user network's bridge.
const DEFAULT_BRIDGE: &str = "bne0";
const USER_BRIDGE: &str = "bne1";
const USER_SUBNET: &str = "10.213.0.0/24";

/// Deletes the bridges this file creates (veths die with their namespaces).
struct LinkGuard;

impl Drop for LinkGuard {
    fn drop(&mut self) {
        for link in [DEFAULT_BRIDGE, USER_BRIDGE] {
            let _ = Command::new("ip").args(["link", "del", link]).output();
        }
    }
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

fn fails_with(berthd: &Berthd, args: &[&str]) -> String {
    let out = berthd.docker(args);
    assert!(!out.status.success(), "docker {args:?} succeeded");
    stderr_of(&out)
}

fn ipv4_of_eth0(text: &str) -> String {
    // `ip -o -4 addr show eth0`: "2: eth0    inet 10.213.0.3/24 scope global eth0 ..."
    text.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn docker_networking_through_berthd() {
    let _links = LinkGuard;
    let mut daemon_json = serde_json::Map::new();
    daemon_json.insert("bridge".into(), DEFAULT_BRIDGE.into());
    let mut berthd = Berthd::start_with(daemon_json);
    berthd.import_busybox();

    // Predefined networks, as `docker network ls` shows them.
    assert_eq!(
        berthd.ok(&[
            "network",
            "ls",
            "--format",
            "{{.Name}} {{.Driver}} {{.Scope}}"
        ]),
        "bridge bridge local\nhost host local\nnone null local"
    );

    // The default bridge: Docker's 172.17.0.0/16 unless a host route clashes, then the
    // next free pool, announced in the log.
    let subnet = berthd.ok(&[
        "network",
        "inspect",
        "bridge",
        "-f",
        "{{(index .IPAM.Config 0).Subnet}}",
    ]);
    if subnet != "172.17.0.0/16" {
        assert!(
            berthd
                .log()
                .contains(&format!("using {subnet} for {DEFAULT_BRIDGE}")),
            "fallback {subnet} not announced:\n{}",
            berthd.log()
        );
    }
    let prefix = subnet
        .rsplit_once('.')
        .map(|(p, _)| p)
        .unwrap_or_default()
        .to_string();
    let addr = berthd.ok(&[
        "run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0",
    ]);
    let ip = ipv4_of_eth0(&addr);
    assert!(
        ip.starts_with(prefix.trim_end_matches(".0")),
        "{ip} not in {subnet}"
    );
    assert!(link_exists(DEFAULT_BRIDGE));

    // A user-defined network: create, Docker's conflict texts, inspect's JSON.
    let id = berthd.ok(&[
        "network",
        "create",
        "--subnet",
        USER_SUBNET,
        "--label",
        "team=a",
        "-o",
        &format!("com.docker.network.bridge.name={USER_BRIDGE}"),
        "bnet",
    ]);
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(
        fails_with(&berthd, &["network", "create", "bnet"]),
        "Error response from daemon: network with name bnet already exists"
    );
    assert_eq!(
        fails_with(&berthd, &["network", "create", "--subnet", "10.213.0.128/25", "other"]),
        "Error response from daemon: invalid pool request: Pool overlaps with other one on this address space"
    );
    assert_eq!(
        fails_with(&berthd, &["network", "inspect", "nonet"]),
        "Error response from daemon: network nonet not found"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&berthd.ok(&["network", "inspect", "bnet"])).expect("json");
    let net = &inspect[0];
    assert_eq!(net["Name"], "bnet");
    assert_eq!(net["Id"], id.as_str());
    assert_eq!(net["Driver"], "bridge");
    assert_eq!(net["Scope"], "local");
    assert_eq!(net["Internal"], false);
    assert_eq!(net["IPAM"]["Driver"], "default");
    assert_eq!(net["IPAM"]["Config"][0]["Subnet"], USER_SUBNET);
    assert_eq!(net["IPAM"]["Config"][0]["Gateway"], "10.213.0.1");
    assert_eq!(net["Labels"]["team"], "a");
    assert_eq!(
        net["Options"]["com.docker.network.bridge.name"],
        USER_BRIDGE
    );
    assert_eq!(net["Containers"], serde_json::json!({}));
    assert_eq!(
        berthd.ok(&[
            "network",
            "ls",
            "--filter",
            "label=team=a",
            "--format",
            "{{.Name}}"
        ]),
        "bnet"
    );

    // Two containers on it: addresses in order, DNS names, ping by name and alias.
    let alpha = berthd.ok(&[
        "run",
        "-d",
        "--name",
        "alpha",
        "--network",
        "bnet",
        "--network-alias",
        "al",
        "busybox",
        "sleep",
        "600",
    ]);
    assert_eq!(
        berthd.ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.bnet.IPAddress}}",
            "alpha"
        ]),
        "10.213.0.2"
    );
    assert_eq!(
        berthd.ok(&[
            "inspect",
            "-f",
            "{{json .NetworkSettings.Networks.bnet.DNSNames}}",
            "alpha"
        ]),
        format!("[\"alpha\",\"al\",\"{}\"]", &alpha[..12])
    );
    for name in ["alpha", "al", &alpha[..12]] {
        let out = berthd.docker(&[
            "run",
            "--rm",
            "--network",
            "bnet",
            "busybox",
            "ping",
            "-c",
            "1",
            "-W",
            "5",
            name,
        ]);
        assert!(
            out.status.success(),
            "ping {name}: {}\n{}",
            stderr_of(&out),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(link_exists(USER_BRIDGE));
    let refused = fails_with(&berthd, &["network", "rm", "bnet"]);
    assert!(
        refused.starts_with(
            "Error response from daemon: error while removing network: network bnet has active \
             endpoints (name:\""
        ),
        "{refused}"
    );

    // Addresses come back after run --rm cycles: the next one is still .3.
    for _ in 0..10 {
        berthd.ok(&["run", "--rm", "--network", "bnet", "busybox", "true"]);
    }
    let addr = berthd.ok(&[
        "run",
        "--rm",
        "--network",
        "bnet",
        "busybox",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert_eq!(ipv4_of_eth0(&addr), "10.213.0.3/24");

    // A published port on 127.0.0.1 with a random host port.
    berthd.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "bnet",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    let port = berthd.ok(&["port", "web", "80"]);
    assert!(port.starts_with("127.0.0.1:"), "{port}");
    let reply = http_get(&port, "/hostname");
    assert!(
        reply.starts_with("HTTP/1.") && reply.contains(" 200 OK"),
        "{reply}"
    );

    // berthd killed and restarted: the containers keep their addresses and names.
    berthd.kill9();
    berthd.restart();
    assert_eq!(
        berthd.ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.bnet.IPAddress}}",
            "alpha"
        ]),
        "10.213.0.2"
    );
    let addr = berthd.ok(&["exec", "alpha", "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert_eq!(ipv4_of_eth0(&addr), "10.213.0.2/24");
    assert!(
        http_get(&port, "/hostname").contains(" 200 OK"),
        "published port after restart"
    );
    let ping = berthd.docker(&["exec", "web", "ping", "-c", "1", "-W", "5", "al"]);
    assert!(ping.status.success(), "{}", stderr_of(&ping));

    // Cleanup through the CLI: endpoints go with the containers, then the network.
    berthd.ok(&["rm", "-f", "alpha", "web"]);
    berthd.ok(&["network", "rm", "bnet"]);
    assert!(!link_exists(USER_BRIDGE), "network rm deletes its bridge");
    let left = std::fs::read_dir(berthd.exec_root().join("netns"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "no pinned namespace is left");
}
