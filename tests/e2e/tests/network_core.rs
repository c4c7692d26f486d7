//! berth-network against the real kernel (root): pinned namespaces, bridge and veth
//! endpoints with real traffic, berth's nftables tables (NAT, published ports from another
//! "host", from 127.0.0.1 and hairpin, idempotent atomic apply that leaves other tables
//! alone), and the embedded DNS answering inside a namespace. Every device, namespace and
//! table is named per test and process and removed by a guard, even on failure.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_network::ipnet::{IpNet, Ipv4Net};
use berth_network::{attach, delete_bridge, ensure_bridge, host_routes, mac_for, BridgeConfig};
use berth_network::{Endpoint, FirewallState, NetNs, NetworkRules, PortRule, Proto};

/// A per-test, per-process name of at most 15 bytes: "bt" + tag + pid in hex.
fn dev_name(tag: &str) -> String {
    let name = format!("bt{tag}{:x}", std::process::id());
    assert!(name.len() <= 15, "{name} too long");
    name
}

/// Removes a pinned namespace on drop.
struct NsGuard(NetNs);

impl NsGuard {
    fn create(tag: &str) -> NsGuard {
        let dir = PathBuf::from(format!("/run/berth-e2e-netns-{}", std::process::id()));
        let ns = NetNs::create(&dir.join(tag)).expect("create netns");
        NsGuard(ns)
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for NsGuard {
    fn drop(&mut self) {
        let _ = NetNs::remove(self.0.path());
        if let Some(dir) = self.0.path().parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Deletes a bridge (and with it nothing else) on drop.
struct BridgeGuard(String);

impl Drop for BridgeGuard {
    fn drop(&mut self) {
        let _ = delete_bridge(&self.0);
    }
}

/// Deletes a veth pair on drop.
struct VethGuard(String);

impl Drop for VethGuard {
    fn drop(&mut self) {
        let _ = berth_network::detach(&self.0);
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// A subnet 10.x.y.0/24 derived from the pid and `salt` that no host route overlaps.
fn free_subnet(salt: u8) -> Ipv4Net {
    let routes = host_routes().expect("host routes");
    let pid = std::process::id();
    for attempt in 0u32..200 {
        let x = 100 + ((pid + attempt) % 100) as u8;
        let candidate = Ipv4Net::new(Ipv4Addr::new(10, x, salt, 0), 24).expect("net");
        let clash = routes.iter().any(|route| match route {
            IpNet::V4(route) => {
                route.contains(&candidate.network()) || candidate.contains(&route.network())
            }
            IpNet::V6(_) => false,
        });
        if !clash {
            return candidate;
        }
    }
    panic!("no free 10.x.{salt}.0/24 subnet");
}

fn host_ip(net: Ipv4Net, last: u8) -> Ipv4Addr {
    let [a, b, c, _] = net.network().octets();
    Ipv4Addr::new(a, b, c, last)
}

/// A bridge with gateway .1 and `count` namespaces attached as .2, .3, ...
struct Lan {
    subnet: Ipv4Net,
    bridge: String,
    members: Vec<(NsGuard, VethGuard, Ipv4Addr)>,
    _bridge_guard: BridgeGuard,
}

fn lan(tag: &str, salt: u8, count: u8) -> Lan {
    berth_e2e::require_root();
    let subnet = free_subnet(salt);
    let bridge = dev_name(tag);
    let guard = BridgeGuard(bridge.clone());
    let cfg = BridgeConfig {
        name: bridge.clone(),
        mtu: 1500,
        ipv4: vec![Ipv4Net::new(host_ip(subnet, 1), 24).expect("gw")],
        ipv6: vec![],
        icc: true,
        internal: false,
    };
    ensure_bridge(&cfg).expect("ensure bridge");
    ensure_bridge(&cfg).expect("ensure bridge is idempotent");
    let mut members = Vec::new();
    for i in 0..count {
        let ip = host_ip(subnet, 2 + i);
        let ns = NsGuard::create(&format!("{tag}{i}"));
        let veth = VethGuard(dev_name(&format!("{tag}v{i}")));
        attach(&Endpoint {
            bridge: bridge.clone(),
            host_veth: veth.0.clone(),
            netns: ns.path().to_path_buf(),
            ifname: "eth0".into(),
            mac: mac_for(ip),
            mtu: 1500,
            ipv4: Some(Ipv4Net::new(ip, 24).expect("ip")),
            gateway4: Some(host_ip(subnet, 1)),
            ipv6: None,
            gateway6: None,
        })
        .expect("attach");
        members.push((ns, veth, ip));
    }
    Lan {
        subnet,
        bridge,
        members,
        _bridge_guard: guard,
    }
}

fn nsenter(ns: &Path, args: &[&str]) -> std::process::Output {
    Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(args)
        .output()
        .expect("run nsenter")
}

/// Serves one TCP connection inside `ns` on `port`: replies "pong:" + what it read.
fn tcp_echo_once(ns: &NetNs, ip: IpAddr, port: u16) -> std::thread::JoinHandle<String> {
    let listener = ns
        .run(move || TcpListener::bind(SocketAddr::new(ip, port)))
        .expect("run in netns")
        .expect("bind in netns");
    std::thread::spawn(move || {
        let (mut stream, peer) = listener.accept().expect("accept");
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).expect("read");
        stream
            .write_all(format!("pong:{}", String::from_utf8_lossy(&buf[..n])).as_bytes())
            .expect("write");
        peer.ip().to_string()
    })
}

fn tcp_ask(stream: std::io::Result<TcpStream>, text: &str) -> String {
    let mut stream = stream.expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream.write_all(text.as_bytes()).expect("send");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("reply");
    reply
}

#[test]
fn netns_create_pins_a_namespace_with_loopback_up_and_remove_unpins_it() {
    berth_e2e::require_root();
    let ns = NsGuard::create("pin");
    assert!(NetNs::open(ns.path()).is_ok());
    let err = NetNs::create(ns.path()).expect_err("second create on the same path");
    assert!(matches!(err, berth_network::NetnsError::AlreadyExists(_)));
    // Connecting to 127.0.0.1 only works when `lo` is up.
    let connected =
        ns.0.run(|| {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            TcpStream::connect(listener.local_addr()?).map(|_| ())
        })
        .expect("run");
    connected.expect("loopback is up inside the namespace");
    let path = ns.path().to_path_buf();
    NetNs::remove(&path).expect("remove");
    assert!(!path.exists());
    NetNs::remove(&path).expect("remove twice is ok");
}

#[test]
fn endpoints_on_one_bridge_ping_and_talk_tcp_with_docker_macs() {
    let lan = lan("a", 1, 2);
    let (ns0, veth0, ip0) = &lan.members[0];
    let (ns1, _, ip1) = &lan.members[1];
    assert!(link_exists(&veth0.0), "host end exists");
    let out = nsenter(
        ns0.path(),
        &[
            "/bin/busybox",
            "ping",
            "-c",
            "1",
            "-W",
            "5",
            &ip1.to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "ping: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let server = tcp_echo_once(&ns1.0, IpAddr::V4(*ip1), 7000);
    let ip1 = *ip1;
    let reply = tcp_ask(
        ns0.0
            .run(move || TcpStream::connect(SocketAddr::new(IpAddr::V4(ip1), 7000)))
            .expect("run"),
        "ping",
    );
    assert_eq!(reply, "pong:ping");
    assert_eq!(server.join().expect("server"), ip0.to_string());
    // nsenter keeps our mount namespace (and its sysfs), so ask `ip` inside the namespace.
    let out = nsenter(ns0.path(), &["ip", "-o", "link", "show", "eth0"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let [a, b, c, d] = ip0.octets();
    let mac = format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}");
    assert!(text.contains(&mac), "{mac} not in {text}");
    assert!(text.contains("mtu 1500"), "{text}");
    // The host reaches the endpoints through the bridge's gateway address.
    let out = Command::new("/bin/busybox")
        .args(["ping", "-c", "1", "-W", "5", &ip0.to_string()])
        .output()
        .expect("ping");
    assert!(out.status.success(), "host ping failed");
    assert!(lan.subnet.contains(ip0));
}

#[test]
fn detach_and_delete_bridge_remove_the_devices_and_are_ok_when_missing() {
    let lan = lan("d", 2, 1);
    let veth = lan.members[0].1 .0.clone();
    berth_network::detach(&veth).expect("detach");
    assert!(!link_exists(&veth));
    berth_network::detach(&veth).expect("detach twice");
    delete_bridge(&lan.bridge).expect("delete bridge");
    assert!(!link_exists(&lan.bridge));
    delete_bridge(&lan.bridge).expect("delete twice");
    assert!(host_routes()
        .expect("routes")
        .iter()
        .all(|route| *route != IpNet::V4(lan.subnet)));
}

/// Removes a test's own nftables tables (berth's layout under a private name) on drop.
struct TableGuard(String);

impl TableGuard {
    fn new(tag: &str) -> TableGuard {
        TableGuard(format!("bt_{tag}_{}", std::process::id()))
    }
}

impl Drop for TableGuard {
    fn drop(&mut self) {
        let _ = berth_network::firewall::clear_in(&self.0);
    }
}

/// A table standing in for the host's own firewall, deleted on drop.
struct ForeignTable(String);

impl Drop for ForeignTable {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.0])
            .output();
    }
}

fn nft(args: &[&str]) -> String {
    let out = Command::new("nft").args(args).output().expect("run nft");
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `nft list tables` without the tables named `except`.
fn other_tables(except: &str) -> Vec<String> {
    nft(&["list", "tables"])
        .lines()
        .filter(|line| !line.ends_with(&format!(" {except}")))
        .map(str::to_string)
        .collect()
}

fn network_rules(lan: &Lan, icc: bool, internal: bool) -> NetworkRules {
    NetworkRules {
        bridge: lan.bridge.clone(),
        subnets: vec![IpNet::V4(lan.subnet)],
        masquerade: true,
        icc,
        internal,
    }
}

#[test]
fn firewall_apply_twice_is_idempotent_and_leaves_other_tables_alone() {
    berth_e2e::require_root();
    let table = TableGuard::new("idem");
    let guard = ForeignTable(format!("btforeign{}", std::process::id()));
    let foreign = guard.0.as_str();
    nft(&["add", "table", "inet", foreign]);
    nft(&[
        "add",
        "chain",
        "inet",
        foreign,
        "c",
        "{ type filter hook forward priority 5; policy accept; }",
    ]);
    nft(&[
        "add",
        "rule",
        "inet",
        foreign,
        "c",
        "ip",
        "saddr",
        "192.0.2.1",
        "drop",
    ]);
    let foreign_before = nft(&["list", "table", "inet", foreign]);
    let before = other_tables(&table.0);
    let state = FirewallState {
        networks: vec![NetworkRules {
            bridge: "btnone0".into(),
            subnets: vec!["10.250.0.0/24".parse().expect("net")],
            masquerade: true,
            icc: false,
            internal: false,
        }],
        ports: vec![PortRule {
            host_ip: None,
            host_port: 18080,
            proto: Proto::Tcp,
            container_ip: "10.250.0.2".parse().expect("ip"),
            container_port: 80,
            bridge: "btnone0".into(),
        }],
        allow_forward: false,
    };
    berth_network::firewall::apply_in(&table.0, &state).expect("apply");
    let first = nft(&["list", "table", "ip", &table.0]);
    berth_network::firewall::apply_in(&table.0, &state).expect("apply again");
    let second = nft(&["list", "table", "ip", &table.0]);
    assert_eq!(first, second);
    assert!(first.contains("dnat to 10.250.0.2:80"), "{first}");
    assert_eq!(other_tables(&table.0), before);
    assert_eq!(nft(&["list", "table", "inet", foreign]), foreign_before);
    berth_network::firewall::clear_in(&table.0).expect("clear");
    berth_network::firewall::clear_in(&table.0).expect("clear twice");
    assert!(!nft(&["list", "tables"]).contains(&table.0));
}

/// Serves `count` TCP connections inside `ns`; each reply names the peer's address.
fn tcp_server(ns: &NetNs, ip: IpAddr, port: u16, count: usize) -> std::thread::JoinHandle<()> {
    let listener = ns
        .run(move || TcpListener::bind(SocketAddr::new(ip, port)))
        .expect("run in netns")
        .expect("bind in netns");
    std::thread::spawn(move || {
        for _ in 0..count {
            let Ok((mut stream, peer)) = listener.accept() else {
                return;
            };
            let _ = stream.write_all(format!("peer={}", peer.ip()).as_bytes());
        }
    })
}

fn tcp_read(stream: std::io::Result<TcpStream>) -> String {
    let mut stream = stream.expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("reply");
    reply
}

fn connect_from(ns: &NetNs, addr: SocketAddr) -> std::io::Result<TcpStream> {
    ns.run(move || TcpStream::connect_timeout(&addr, Duration::from_secs(3)))
        .expect("run")
}

#[test]
fn published_port_reaches_the_container_from_another_host_localhost_and_hairpin() {
    let table = TableGuard::new("pub");
    let lan = lan("p", 3, 1);
    // "Another host": a namespace behind a second bridge that is not a berth network.
    let outside = self::lan("o", 4, 1);
    let (container_ns, _, container_ip) = &lan.members[0];
    let (outside_ns, _, outside_ip) = &outside.members[0];
    let host_on_outside = host_ip(outside.subnet, 1);
    let gateway = host_ip(lan.subnet, 1);
    let host_port = 20000 + (std::process::id() % 20000) as u16;
    let state = FirewallState {
        networks: vec![network_rules(&lan, true, false)],
        ports: vec![PortRule {
            host_ip: None,
            host_port,
            proto: Proto::Tcp,
            container_ip: IpAddr::V4(*container_ip),
            container_port: 80,
            bridge: lan.bridge.clone(),
        }],
        allow_forward: false,
    };
    berth_network::firewall::apply_in(&table.0, &state).expect("apply");
    let server = tcp_server(&container_ns.0, IpAddr::V4(*container_ip), 80, 3);
    let published = SocketAddr::new(IpAddr::V4(host_on_outside), host_port);
    // (a) from the other host: the container sees the client's own address.
    let reply = tcp_read(connect_from(&outside_ns.0, published));
    assert_eq!(reply, format!("peer={outside_ip}"));
    // (b) from the host's 127.0.0.1: masqueraded to the bridge's gateway.
    let reply = tcp_read(TcpStream::connect_timeout(
        &SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), host_port),
        Duration::from_secs(3),
    ));
    assert_eq!(reply, format!("peer={gateway}"));
    // (c) hairpin: the container reaches itself through a host address.
    let reply = tcp_read(connect_from(&container_ns.0, published));
    assert_eq!(reply, format!("peer={gateway}"));
    server.join().expect("server");
    // Egress is masqueraded to the host's address on the way out.
    let egress = tcp_server(&outside_ns.0, IpAddr::V4(*outside_ip), 81, 1);
    let reply = tcp_read(connect_from(
        &container_ns.0,
        SocketAddr::new(IpAddr::V4(*outside_ip), 81),
    ));
    assert_eq!(reply, format!("peer={host_on_outside}"));
    egress.join().expect("egress server");
}

#[test]
fn icc_off_and_internal_networks_drop_what_docker_drops() {
    let table = TableGuard::new("iso");
    let lan = lan("i", 5, 2);
    let outside = self::lan("j", 6, 1);
    let (ns0, _, _) = &lan.members[0];
    let (ns1, _, ip1) = &lan.members[1];
    let (_, _, outside_ip) = &outside.members[0];
    let state = FirewallState {
        networks: vec![network_rules(&lan, false, true)],
        ports: vec![],
        allow_forward: false,
    };
    berth_network::firewall::apply_in(&table.0, &state).expect("apply");
    let _server = tcp_server(&ns1.0, IpAddr::V4(*ip1), 82, 1);
    let denied = connect_from(&ns0.0, SocketAddr::new(IpAddr::V4(*ip1), 82));
    assert!(
        denied.is_err(),
        "icc=false let container to container through"
    );
    let denied = connect_from(&ns0.0, SocketAddr::new(IpAddr::V4(*outside_ip), 83));
    assert!(denied.is_err(), "an internal network reached the outside");
    // With ICC back on, the same connection goes through.
    let state = FirewallState {
        networks: vec![network_rules(&lan, true, true)],
        ports: vec![],
        allow_forward: false,
    };
    berth_network::firewall::apply_in(&table.0, &state).expect("apply");
    let reply = tcp_read(connect_from(&ns0.0, SocketAddr::new(IpAddr::V4(*ip1), 82)));
    assert!(reply.starts_with("peer="), "{reply}");
}

/// One container name; `external_access` false stands for a container on internal
/// networks only.
struct NamesOfOne {
    external_access: bool,
}

impl berth_network::Resolver for NamesOfOne {
    fn lookup(&self, from: &str, name: &str) -> Option<Vec<IpAddr>> {
        (from == "ctr1" && name == "web").then(|| vec![IpAddr::V4(Ipv4Addr::new(172, 30, 0, 2))])
    }
    fn reverse(&self, _from: &str, _ip: IpAddr) -> Option<String> {
        None
    }
    fn external_access(&self, _from: &str) -> bool {
        self.external_access
    }
}

/// Serves the embedded DNS in `ns` on `runtime`.
fn serve_in(
    runtime: &tokio::runtime::Runtime,
    ns: &NetNs,
    external_access: bool,
    upstream: Vec<berth_network::Upstream>,
) -> berth_network::DnsHandle {
    runtime
        .block_on(async {
            let ns = ns.clone();
            tokio::task::spawn_blocking(move || {
                berth_network::serve(
                    &ns,
                    "ctr1".into(),
                    std::sync::Arc::new(NamesOfOne { external_access }),
                    upstream,
                )
            })
            .await
        })
        .expect("join")
        .expect("serve in netns")
}

/// A DNS query for `name` (one label), type A, by hand: the e2e crate has no DNS library.
fn dns_query(id: u16, label: &str) -> Vec<u8> {
    let mut bytes = id.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    bytes.push(label.len() as u8);
    bytes.extend_from_slice(label.as_bytes());
    bytes.extend_from_slice(&[0, 0, 1, 0, 1]);
    bytes
}

/// Sends `query` to 127.0.0.11:53 from inside `ns` and returns the reply.
fn ask_in(ns: &NetNs, query: Vec<u8>) -> Vec<u8> {
    ns.run(move || -> std::io::Result<Vec<u8>> {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        socket.send_to(&query, "127.0.0.11:53")?;
        let mut buf = [0u8; 512];
        let len = socket.recv(&mut buf)?;
        Ok(buf[..len].to_vec())
    })
    .expect("run")
    .expect("dns reply")
}

#[test]
fn embedded_dns_answers_inside_the_namespace_and_forwards_from_the_host() {
    berth_e2e::require_root();
    let ns = NsGuard::create("dns");
    // The netns only has `lo`; 127.0.0.11 is inside 127.0.0.0/8 so it is local there.
    // An upstream on the host's loopback, unreachable from inside the namespace: it answers
    // NXDOMAIN to everything, so a relayed NXDOMAIN proves forwarding from berthd's side.
    let upstream = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind upstream");
    let upstream_addr = upstream.local_addr().expect("addr");
    upstream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let upstream_thread = std::thread::spawn(move || {
        let mut asked = 0;
        let mut buf = [0u8; 512];
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((len, peer)) = upstream.recv_from(&mut buf) else {
                continue;
            };
            asked += 1;
            let mut reply = buf[..len].to_vec();
            reply[2] |= 0x80; // QR: a response
            reply[3] = (reply[3] & 0xf0) | 3; // NXDOMAIN
            upstream.send_to(&reply, peer).expect("upstream send");
        }
        asked
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let handle = serve_in(
        &runtime,
        &ns.0,
        true,
        vec![berth_network::Upstream::host(upstream_addr)],
    );
    let reply = ask_in(&ns.0, dns_query(0x4242, "WEB"));
    assert_eq!(&reply[..2], &[0x42, 0x42], "id");
    assert_eq!(reply[3] & 0x0f, 0, "NOERROR");
    assert_eq!(&reply[6..8], &[0, 1], "one answer");
    assert_eq!(&reply[reply.len() - 4..], &[172, 30, 0, 2]);
    let reply = ask_in(&ns.0, dns_query(0x4343, "elsewhere"));
    assert_eq!(&reply[..2], &[0x43, 0x43], "id");
    assert_eq!(reply[3] & 0x0f, 3, "the upstream's NXDOMAIN");
    handle.stop();

    // Internal networks only: the host's server is not asked; a `--dns` server is asked
    // from the container's namespace, where nothing listens on that loopback address.
    let handle = serve_in(
        &runtime,
        &ns.0,
        false,
        vec![
            berth_network::Upstream::host(upstream_addr),
            berth_network::Upstream::container(upstream_addr),
        ],
    );
    let reply = ask_in(&ns.0, dns_query(0x4444, "elsewhere"));
    assert_eq!(&reply[..2], &[0x44, 0x44], "id");
    assert_eq!(reply[3] & 0x0f, 2, "SERVFAIL");
    let reply = ask_in(&ns.0, dns_query(0x4545, "web"));
    assert_eq!(reply[3] & 0x0f, 0, "container names still resolve");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        upstream_thread.join().expect("upstream"),
        1,
        "the host's server was asked once, before the internal-only server"
    );
    handle.stop();
    drop(runtime);
}

#[test]
fn allow_forward_lets_published_ports_through_a_host_forward_drop_and_clear_removes_it() {
    let table = TableGuard::new("fwd");
    let lan = lan("f", 7, 1);
    let outside = self::lan("g", 8, 1);
    let (container_ns, _, container_ip) = &lan.members[0];
    let (outside_ns, _, _) = &outside.members[0];
    // The "host firewall": its own table whose forward chain ends in a drop for our bridge
    // (a drop for our devices only, so nothing else on this machine is disturbed).
    let host_table = format!("btfw{}", std::process::id());
    nft(&["add", "table", "ip", &host_table]);
    let host_guard = HostTable(host_table.clone());
    nft(&[
        "add",
        "chain",
        "ip",
        &host_table,
        "FORWARD",
        "{ type filter hook forward priority 0; policy accept; }",
    ]);
    nft(&[
        "add",
        "rule",
        "ip",
        &host_table,
        "FORWARD",
        "oifname",
        &lan.bridge,
        "drop",
    ]);
    nft(&[
        "add",
        "rule",
        "ip",
        &host_table,
        "FORWARD",
        "iifname",
        &lan.bridge,
        "drop",
    ]);
    let host = berth_network::HostForward {
        table: host_table.clone(),
        chain: "FORWARD".into(),
    };
    let host_port = 40000 + (std::process::id() % 20000) as u16;
    let mut state = FirewallState {
        networks: vec![network_rules(&lan, true, false)],
        ports: vec![PortRule {
            host_ip: None,
            host_port,
            proto: Proto::Tcp,
            container_ip: IpAddr::V4(*container_ip),
            container_port: 80,
            bridge: lan.bridge.clone(),
        }],
        allow_forward: false,
    };
    berth_network::firewall::apply_with(&table.0, &host, &state).expect("apply");
    let published = SocketAddr::new(IpAddr::V4(host_ip(outside.subnet, 1)), host_port);
    let _server = tcp_server(&container_ns.0, IpAddr::V4(*container_ip), 80, 1);
    assert!(
        connect_from(&outside_ns.0, published).is_err(),
        "the host's forward drop let a published port through"
    );
    state.allow_forward = true;
    berth_network::firewall::apply_with(&table.0, &host, &state).expect("apply");
    berth_network::firewall::apply_with(&table.0, &host, &state).expect("apply twice");
    let listing = nft(&["list", "chain", "ip", &host_table, "FORWARD"]);
    assert_eq!(
        listing.matches(&format!("comment \"{}\"", table.0)).count(),
        3,
        "{listing}"
    );
    let reply = tcp_read(connect_from(&outside_ns.0, published));
    assert!(reply.starts_with("peer="), "{reply}");
    berth_network::firewall::clear_with(&table.0, &host).expect("clear");
    let listing = nft(&["list", "chain", "ip", &host_table, "FORWARD"]);
    assert!(!listing.contains("comment"), "{listing}");
    assert_eq!(
        listing.matches(" drop").count(),
        2,
        "the host's own rules stay: {listing}"
    );
    drop(host_guard);
}

/// Deletes a stand-in host table of the ip family on drop.
struct HostTable(String);

impl Drop for HostTable {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.0])
            .output();
    }
}

#[test]
fn ipv6_endpoints_talk_tcp_over_the_bridge_at_once() {
    berth_e2e::require_root();
    let pid = std::process::id();
    let prefix = format!("fdbe:{:x}:{:x}", pid >> 16, pid & 0xffff);
    let gateway: std::net::Ipv6Addr = format!("{prefix}::1").parse().expect("gw");
    let bridge = BridgeGuard(dev_name("six"));
    ensure_bridge(&BridgeConfig {
        name: bridge.0.clone(),
        mtu: 1500,
        ipv4: vec![],
        ipv6: vec![berth_network::ipnet::Ipv6Net::new(gateway, 64).expect("net")],
        icc: true,
        internal: false,
    })
    .expect("ensure bridge");
    let mut members = Vec::new();
    for i in 0..2u8 {
        let ip: std::net::Ipv6Addr = format!("{prefix}::{}", i + 2).parse().expect("ip");
        let ns = NsGuard::create(&format!("six{i}"));
        let veth = VethGuard(dev_name(&format!("sv{i}")));
        attach(&Endpoint {
            bridge: bridge.0.clone(),
            host_veth: veth.0.clone(),
            netns: ns.path().to_path_buf(),
            ifname: "eth0".into(),
            mac: [0x02, 0x42, 0, 0, 0x66, i],
            mtu: 1500,
            ipv4: None,
            gateway4: None,
            ipv6: Some(berth_network::ipnet::Ipv6Net::new(ip, 64).expect("ip")),
            gateway6: Some(gateway),
        })
        .expect("attach");
        members.push((ns, veth, ip));
    }
    let (ns0, _, ip0) = &members[0];
    let (ns1, _, ip1) = &members[1];
    // No duplicate address detection: the addresses are usable right after attach.
    let server = tcp_echo_once(&ns1.0, IpAddr::V6(*ip1), 7006);
    let target = SocketAddr::new(IpAddr::V6(*ip1), 7006);
    let reply = tcp_ask(
        ns0.0.run(move || TcpStream::connect(target)).expect("run"),
        "six",
    );
    assert_eq!(reply, "pong:six");
    assert_eq!(server.join().expect("server"), ip0.to_string());
}
