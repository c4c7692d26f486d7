//! The embedded DNS's forwarding with real traffic, through the real docker CLI: an
//! "outside" network namespace (its own veth link to the host, standing in for the internet)
//! runs a tiny DNS responder used as `--dns`; as on Docker (moby's resolver since 27.2),
//! `--dns` servers are asked from the container's namespace, so a container on a user
//! network reaches them through its gateway and NAT, a container on an `--internal` network
//! does not (SERVFAIL) while container names still resolve there, and a `--dns` on a
//! loopback address names the container's own loopback, not the host's. Also: the default
//! bridge converges to daemon.json's `bip` (a stale address of an earlier run removed, a
//! changed `bip` applied to a kept data root). Links, namespaces and subnets are unique to
//! this file; guards remove them even when an assertion fails.

use std::net::UdpSocket;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_e2e::daemon::{Berthd, Daemon};
use berth_network::NetNs;

/// The host's end of the link to the outside namespace and the outside's address.
const HOST_ON_OUTSIDE: &str = "10.217.0.1/24";
const OUTSIDE_IP: &str = "10.217.0.2";
const USER_SUBNET: &str = "10.218.0.0/24";
const INTERNAL_SUBNET: &str = "10.218.1.0/24";
/// What the outside responder answers for every A question about `*.outside.test`.
const OUTSIDE_ANSWER: [u8; 4] = [192, 0, 2, 99];
/// A responder on the host's loopback (a `--dns` there must not be reached).
const HOST_LOOPBACK_DNS: &str = "127.77.1.1";
const HOST_LOOPBACK_ANSWER: [u8; 4] = [192, 0, 2, 88];

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn must(args: &[&str]) {
    let out = sh(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The outside namespace and its link, removed on drop.
struct Outside {
    netns: String,
    link: String,
}

impl Outside {
    fn create() -> Outside {
        let pid = std::process::id();
        let outside = Outside {
            netns: format!("bdns{pid:x}"),
            link: format!("bdo{pid:x}"),
        };
        outside.remove();
        must(&["ip", "netns", "add", &outside.netns]);
        must(&[
            "ip",
            "link",
            "add",
            &outside.link,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &outside.netns,
        ]);
        must(&["ip", "addr", "add", HOST_ON_OUTSIDE, "dev", &outside.link]);
        must(&["ip", "link", "set", &outside.link, "up"]);
        let address = format!("{OUTSIDE_IP}/24");
        for args in [
            vec!["addr", "add", address.as_str(), "dev", "eth0"],
            vec!["link", "set", "eth0", "up"],
            vec!["link", "set", "lo", "up"],
        ] {
            let mut full = vec!["ip", "-n", outside.netns.as_str()];
            full.extend(args);
            must(&full);
        }
        outside
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.netns)
    }

    fn remove(&self) {
        let _ = sh(&["ip", "link", "del", &self.link]);
        let _ = sh(&["ip", "netns", "del", &self.netns]);
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Deletes the bridges of the networks created here (`br-<12 hex of the id>`), which a
/// failed assertion would otherwise leave behind.
struct BridgesOf(Vec<String>);

impl Drop for BridgesOf {
    fn drop(&mut self) {
        for id in &self.0 {
            let _ = sh(&[
                "ip",
                "link",
                "del",
                &format!("br-{}", &id[..12.min(id.len())]),
            ]);
        }
    }
}

/// A UDP DNS responder on `socket` until `stop`: A questions whose name ends in `suffix`
/// get `answer`, other questions NXDOMAIN.
fn responder(
    socket: UdpSocket,
    suffix: &'static str,
    answer: [u8; 4],
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !stop.load(Ordering::Relaxed) {
            let Ok((len, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            if let Some(reply) = dns_reply(&buf[..len], suffix, answer) {
                let _ = socket.send_to(&reply, from);
            }
        }
    })
}

/// The reply to a query with one question (RFC 1035 §4.1).
fn dns_reply(query: &[u8], suffix: &str, answer: [u8; 4]) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let mut labels = Vec::new();
    let mut end = 12;
    while *query.get(end)? != 0 {
        let len = usize::from(query[end]);
        labels.push(String::from_utf8_lossy(query.get(end + 1..end + 1 + len)?).to_lowercase());
        end += len + 1;
    }
    let name = labels.join(".");
    let qtype = u16::from_be_bytes([*query.get(end + 1)?, *query.get(end + 2)?]);
    let question = query.get(12..end + 5)?;
    let known = name.ends_with(suffix);
    let with_answer = known && qtype == 1;
    let mut reply = Vec::new();
    reply.extend_from_slice(&query[..2]);
    // QR, RD, RA; RCODE 3 (NXDOMAIN) for unknown names.
    let rcode = if known { 0 } else { 3 };
    reply.extend_from_slice(&[
        0x81,
        0x80 | rcode,
        0,
        1,
        0,
        u8::from(with_answer),
        0,
        0,
        0,
        0,
    ]);
    reply.extend_from_slice(question);
    if with_answer {
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&answer);
    }
    Some(reply)
}

/// stdout and stderr of a command whose exit status is asserted by the caller.
fn output_of(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn nslookup(berthd: &Berthd, network: &str, dns: Option<&str>, name: &str) -> String {
    let mut args = vec!["run", "--rm", "--network", network];
    if let Some(dns) = dns {
        args.extend(["--dns", dns]);
    }
    args.extend(["busybox", "nslookup", "-type=a", name]);
    output_of(&berthd.docker(&args))
}

#[test]
fn dns_servers_are_asked_from_the_containers_namespace_as_docker_does() {
    let outside = Outside::create();
    let stop = Arc::new(AtomicBool::new(false));
    let socket = NetNs::open(std::path::Path::new(&outside.path()))
        .expect("outside netns")
        .run(|| UdpSocket::bind((OUTSIDE_IP, 53)))
        .expect("enter the outside netns")
        .expect("bind the outside responder");
    let outside_server = responder(socket, "outside.test", OUTSIDE_ANSWER, stop.clone());
    let loopback = UdpSocket::bind((HOST_LOOPBACK_DNS, 53)).expect("bind on the host loopback");
    let loopback_server = responder(loopback, "outside.test", HOST_LOOPBACK_ANSWER, stop.clone());

    let berthd = Berthd::start();
    berthd.import_busybox();
    let user = berthd.ok(&["network", "create", "--subnet", USER_SUBNET, "dnsnet"]);
    let internal = berthd.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        INTERNAL_SUBNET,
        "dnsint",
    ]);
    let _bridges = BridgesOf(vec![user, internal]);
    berthd.ok(&[
        "run",
        "-d",
        "--name",
        "peer",
        "--network",
        "dnsnet",
        "busybox",
        "sleep",
        "600",
    ]);
    berthd.ok(&[
        "run",
        "-d",
        "--name",
        "inside",
        "--network",
        "dnsint",
        "busybox",
        "sleep",
        "600",
    ]);

    // A user network: the outside server is reached through the gateway and NAT.
    let reply = nslookup(&berthd, "dnsnet", Some(OUTSIDE_IP), "www.outside.test");
    assert!(reply.contains("192.0.2.99"), "{reply}");
    let reply = nslookup(&berthd, "dnsnet", Some(OUTSIDE_IP), "nowhere.example");
    assert!(
        reply.contains("NXDOMAIN"),
        "the upstream's NXDOMAIN: {reply}"
    );
    let reply = nslookup(&berthd, "dnsnet", Some(OUTSIDE_IP), "peer");
    assert!(reply.contains("10.218.0."), "container names: {reply}");

    // An internal network has no way out: the query fails (SERVFAIL, as Docker's resolver
    // answers when no upstream can be reached), container names still resolve.
    let reply = nslookup(&berthd, "dnsint", Some(OUTSIDE_IP), "www.outside.test");
    assert!(!reply.contains("192.0.2.99"), "{reply}");
    assert!(reply.contains("SERVFAIL"), "{reply}");
    let reply = nslookup(&berthd, "dnsint", Some(OUTSIDE_IP), "inside");
    assert!(reply.contains("10.218.1."), "container names: {reply}");
    assert!(!reply.contains("SERVFAIL"), "{reply}");

    // Connected live to the user network as well, the internal container gets out.
    berthd.ok(&["network", "connect", "dnsnet", "inside"]);
    let out = berthd.docker(&["exec", "inside", "nslookup", "-type=a", "peer"]);
    assert!(output_of(&out).contains("10.218.0."), "{}", output_of(&out));

    // `--dns 127.77.1.1` names the container's own loopback (Docker: "--dns 127.0.0.53 means
    // use a nameserver listening on the container's loopback interface"), not the host's.
    let reply = nslookup(
        &berthd,
        "dnsnet",
        Some(HOST_LOOPBACK_DNS),
        "www.outside.test",
    );
    assert!(
        !reply.contains("192.0.2.88"),
        "the host's loopback answered: {reply}"
    );
    assert!(reply.contains("SERVFAIL"), "{reply}");

    for name in ["peer", "inside"] {
        berthd.ok(&["rm", "-f", name]);
    }
    berthd.ok(&["network", "rm", "dnsnet", "dnsint"]);
    stop.store(true, Ordering::Relaxed);
    let _ = outside_server.join();
    let _ = loopback_server.join();
}

/// UDP between containers by name and alias: a DNS responder bound in the namespace of
/// one container (on its address, port 53) answers `busybox nslookup NAME SERVER` run in
/// another container of the same user network with SERVER = the first one's name, alias or
/// short ID (resolved by the embedded DNS), so each query and its answer cross the bridge
/// as UDP. A container of another network cannot reach it (networks are isolated).
#[test]
fn containers_talk_udp_by_name_alias_and_short_id_on_a_user_network() {
    const UDP_SUBNET: &str = "10.218.2.0/24";
    const OTHER_SUBNET: &str = "10.218.3.0/24";
    const ANSWER: [u8; 4] = [192, 0, 2, 77];
    let berthd = Berthd::start();
    berthd.import_busybox();
    let net = berthd.ok(&["network", "create", "--subnet", UDP_SUBNET, "udpnet"]);
    let other = berthd.ok(&["network", "create", "--subnet", OTHER_SUBNET, "udpother"]);
    let _bridges = BridgesOf(vec![net, other]);
    let id = berthd.ok(&[
        "run",
        "-d",
        "--name",
        "udpsrv",
        "--network",
        "udpnet",
        "--network-alias",
        "udpalias",
        "busybox",
        "sleep",
        "600",
    ]);
    let pid = berthd.ok(&["inspect", "-f", "{{.State.Pid}}", "udpsrv"]);
    let ip = berthd.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.udpnet.IPAddress}}",
        "udpsrv",
    ]);
    let ip: std::net::Ipv4Addr = ip.parse().expect("udpsrv's address");
    let socket = NetNs::open(std::path::Path::new(&format!("/proc/{pid}/ns/net")))
        .expect("udpsrv's netns")
        .run(move || UdpSocket::bind((ip, 53)))
        .expect("enter udpsrv's netns")
        .expect("bind in udpsrv's netns");
    let stop = Arc::new(AtomicBool::new(false));
    let server = responder(socket, "udp.test", ANSWER, stop.clone());

    for name in ["udpsrv", "udpalias", &id[..12]] {
        let out = berthd.docker(&[
            "run",
            "--rm",
            "--network",
            "udpnet",
            "busybox",
            "nslookup",
            "-type=a",
            "probe.udp.test",
            name,
        ]);
        let text = output_of(&out);
        assert!(out.status.success(), "nslookup via {name}: {text}");
        assert!(text.contains("192.0.2.77"), "nslookup via {name}: {text}");
        assert!(text.contains(&ip.to_string()), "answered by {ip}: {text}");
    }
    // Another network: neither the name resolves nor the address answers.
    let out = berthd.docker(&[
        "run",
        "--rm",
        "--network",
        "udpother",
        "busybox",
        "nslookup",
        "-type=a",
        "probe.udp.test",
        &ip.to_string(),
    ]);
    let text = output_of(&out);
    assert!(!text.contains("192.0.2.77"), "crossed networks: {text}");

    berthd.ok(&["rm", "-f", "udpsrv"]);
    berthd.ok(&["network", "rm", "udpnet", "udpother"]);
    stop.store(true, Ordering::Relaxed);
    let _ = server.join();
}

/// The addresses (`inet`) of a link, e.g. ["10.219.5.1/24"].
fn inet_of(link: &str) -> Vec<String> {
    let out = sh(&["ip", "-4", "-o", "addr", "show", "dev", link]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            fields.find(|f| *f == "inet")?;
            fields.next().map(str::to_string)
        })
        .collect()
}

struct LinkGuard(String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        let _ = sh(&["ip", "link", "del", &self.0]);
    }
}

#[test]
fn the_default_bridge_converges_to_the_configured_bip() {
    let bridge = format!("bnb{:x}", std::process::id());
    let _guard = LinkGuard(bridge.clone());
    let _ = sh(&["ip", "link", "del", &bridge]);
    // An earlier run's bridge with another address.
    must(&["ip", "link", "add", &bridge, "type", "bridge"]);
    must(&["ip", "addr", "add", "10.219.0.1/24", "dev", &bridge]);
    must(&["ip", "link", "set", &bridge, "up"]);
    let mut daemon_json = serde_json::Map::new();
    daemon_json.insert("bridge".into(), bridge.clone().into());
    daemon_json.insert("bip".into(), "10.219.5.1/24".into());
    let mut berthd = Berthd::start_with(daemon_json.clone());
    berthd.import_busybox();
    let ip = berthd.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0",
    ]);
    assert!(ip.contains("10.219.5."), "{ip}");
    assert_eq!(inet_of(&bridge), vec!["10.219.5.1/24".to_string()]);

    // bip changed, data root kept: the default bridge network and its device follow.
    berthd.stop();
    daemon_json.insert("bip".into(), "10.219.6.1/24".into());
    std::fs::write(
        berthd.root().join("daemon.json"),
        serde_json::to_vec_pretty(&daemon_json).expect("json"),
    )
    .expect("daemon.json");
    berthd.restart();
    assert_eq!(
        berthd.ok(&[
            "network",
            "inspect",
            "bridge",
            "-f",
            "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}",
        ]),
        "10.219.6.0/24 10.219.6.1",
        "berthd log:\n{}",
        berthd.log()
    );
    let ip = berthd.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0",
    ]);
    assert!(ip.contains("10.219.6."), "{ip}");
    assert_eq!(inet_of(&bridge), vec!["10.219.6.1/24".to_string()]);
}
