//! Service tests over the fake datapath: predefined networks, create/rm with Docker's
//! texts, sandboxes (addresses, DNS names, ports, firewall), connect/disconnect, reconcile
//! and persistence across reopen.

use std::net::IpAddr;
use std::sync::Arc;

use berth_api::network::{Ipam, IpamPool, NetworkCreateRequest};

use super::datapath::{Datapath, FakeDatapath, NameLookup};
use super::*;
use crate::container::ContainerRecord;

struct Fixture {
    _dir: tempfile::TempDir,
    paths: NetworkPaths,
    fake: Arc<FakeDatapath>,
    service: Arc<NetworkService>,
}

async fn open_at(dir: tempfile::TempDir, fake: Arc<FakeDatapath>) -> Fixture {
    let paths = NetworkPaths::under(&dir.path().join("data"), &dir.path().join("exec"));
    let datapath: Arc<dyn Datapath> = Arc::new(fake.clone());
    let service = NetworkService::open_with(
        paths.clone(),
        NetworkDefaults::default(),
        Arc::new(EventBus::new()),
        datapath,
    )
    .await
    .expect("open");
    Fixture {
        _dir: dir,
        paths,
        fake,
        service,
    }
}

async fn fixture() -> Fixture {
    open_at(
        tempfile::tempdir().expect("dir"),
        Arc::new(FakeDatapath::default()),
    )
    .await
}

fn request(name: &str, subnet: &str) -> NetworkCreateRequest {
    NetworkCreateRequest {
        name: name.to_string(),
        ipam: (!subnet.is_empty()).then(|| Ipam {
            config: Some(vec![IpamPool {
                subnet: subnet.to_string(),
                ..IpamPool::default()
            }]),
            ..Ipam::default()
        }),
        ..NetworkCreateRequest::default()
    }
}

fn container(id_char: char, name: &str, host_config: &str, networking: &str) -> ContainerRecord {
    ContainerRecord {
        id: id_char.to_string().repeat(64),
        name: format!("/{name}"),
        host_config: serde_json::from_str(host_config).expect("host config"),
        networking_config: serde_json::from_str(networking).expect("networking"),
        ..ContainerRecord::default()
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

#[tokio::test]
async fn predefined_networks_exist_and_cannot_be_removed() {
    let f = fixture().await;
    let names: Vec<String> = f.service.list().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["bridge", "host", "none"]);
    let bridge = f.service.get("bridge").expect("bridge");
    assert_eq!(bridge.bridge, "berth0");
    assert_eq!(bridge.ipam_config[0].subnet, "172.17.0.0/16");
    assert_eq!(bridge.ipam_config[0].gateway, "172.17.0.1");
    let err = f.service.remove("bridge").await.expect_err("predefined");
    assert_eq!(
        err.to_string(),
        "bridge is a pre-defined network and cannot be removed"
    );
    assert_eq!(err.kind(), ErrorKind::Forbidden);
}

#[tokio::test]
async fn default_bridge_avoids_a_clashing_host_route() {
    let fake = Arc::new(FakeDatapath::default());
    fake.state.lock().expect("lock").routes = vec!["172.17.0.0/16".parse().expect("route")];
    let f = open_at(tempfile::tempdir().expect("dir"), fake).await;
    let bridge = f.service.get("bridge").expect("bridge");
    assert_eq!(bridge.ipam_config[0].subnet, "172.18.0.0/16");
}

#[tokio::test]
async fn create_refuses_duplicates_overlaps_and_unknown_networks() {
    let f = fixture().await;
    let id = f
        .service
        .create(request("front", "10.30.0.0/24"))
        .await
        .expect("create");
    assert_eq!(f.service.get("front").expect("by name").id, id);
    assert_eq!(f.service.get(&id[..5]).expect("by prefix").name, "front");
    let err = f
        .service
        .create(request("front", ""))
        .await
        .expect_err("dup");
    assert_eq!(err.to_string(), "network with name front already exists");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let err = f
        .service
        .create(request("other", "10.30.0.128/25"))
        .await
        .expect_err("overlap");
    assert_eq!(
        err.to_string(),
        "invalid pool request: Pool overlaps with other one on this address space"
    );
    let err = f.service.get("nope").expect_err("missing");
    assert_eq!(err.to_string(), "network nope not found");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // Without --subnet the next free default pool is used (bridge has 172.17).
    f.service.create(request("auto", "")).await.expect("auto");
    assert_eq!(
        f.service.get("auto").expect("auto").ipam_config[0].subnet,
        "172.18.0.0/16"
    );
    let bridge_name = f.service.get("front").expect("front").bridge;
    assert_eq!(bridge_name, format!("br-{}", &id[..12]));
}

#[tokio::test]
async fn two_containers_resolve_each_other_by_name_alias_and_short_id() {
    let f = fixture().await;
    f.service
        .create(request("app", "10.31.0.0/24"))
        .await
        .expect("create");
    f.service
        .create(request("other", "10.32.0.0/24"))
        .await
        .expect("create");
    let a = container(
        'a',
        "web",
        r#"{"NetworkMode":"app"}"#,
        r#"{"EndpointsConfig":{"app":{"Aliases":["www"]}}}"#,
    );
    let b = container(
        'b',
        "db",
        r#"{"NetworkMode":"app","PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"18080"}]}}"#,
        "null",
    );
    let c = container('c', "lonely", r#"{"NetworkMode":"other"}"#, "null");
    let sa = f.service.setup(&a, None).await.expect("a");
    let sb = f.service.setup(&b, None).await.expect("b");
    f.service.setup(&c, None).await.expect("c");
    assert_eq!(sa.addresses, vec![ip("10.31.0.2")]);
    assert_eq!(sb.addresses, vec![ip("10.31.0.3")]);
    assert!(sa.embedded_dns);
    assert_eq!(sa.netns, Some(f.paths.netns.join(&a.id)));
    assert_eq!(sa.host_gateway, Some(ip("172.17.0.1")));

    let lookup = dns::ServiceLookup::new(&f.service);
    assert_eq!(lookup.lookup(&b.id, "web"), Some(vec![ip("10.31.0.2")]));
    assert_eq!(lookup.lookup(&b.id, "WWW."), Some(vec![ip("10.31.0.2")]));
    assert_eq!(
        lookup.lookup(&b.id, "aaaaaaaaaaaa"),
        Some(vec![ip("10.31.0.2")])
    );
    assert_eq!(lookup.lookup(&a.id, "db.app"), Some(vec![ip("10.31.0.3")]));
    assert_eq!(lookup.lookup(&c.id, "web"), None, "network scoped");
    assert_eq!(
        lookup.reverse(&b.id, ip("10.31.0.2")),
        Some("web.app".to_string())
    );

    let state = f.fake.snapshot();
    assert_eq!(state.endpoints.len(), 3);
    assert_eq!(state.endpoints[0].ifname, "eth0");
    assert_eq!(state.endpoints[0].mac, [0x02, 0x42, 10, 31, 0, 2]);
    assert_eq!(state.dns.len(), 3);
    let rule = &state.firewall.ports[0];
    assert_eq!((rule.host_port, rule.container_port), (18080, 80));
    assert_eq!(rule.container_ip, ip("10.31.0.3"));
    assert_eq!(rule.host_ip, Some(ip("127.0.0.1")));
    assert!(state
        .firewall
        .networks
        .iter()
        .any(|n| n.subnets[0].to_string() == "10.31.0.0/24" && n.masquerade));

    let err = f.service.remove("app").await.expect_err("in use");
    let app = f.service.get("app").expect("app");
    let endpoints: Vec<String> = app
        .endpoints
        .values()
        .map(|e| {
            format!(
                "name:\"{}\" id:\"{}\"",
                e.container_name,
                &e.endpoint_id[..12]
            )
        })
        .collect();
    assert_eq!(endpoints.len(), 2, "two containers are attached to app");
    assert_eq!(
        err.to_string(),
        format!(
            "error while removing network: network app has active endpoints ({})",
            endpoints.join(", ")
        )
    );
    for id in [&a.id, &b.id, &c.id] {
        f.service.teardown(id).await.expect("teardown");
    }
    let state = f.fake.snapshot();
    assert!(state.endpoints.is_empty() && state.netns.is_empty() && state.dns.is_empty());
    assert!(state.firewall.ports.is_empty());
    assert_eq!(f.service.get("app").expect("app").ipam.in_use(), 0);
    f.service.remove("app").await.expect("rm");
    assert!(f
        .fake
        .snapshot()
        .bridges
        .iter()
        .all(|b| b.name != app.bridge));
}

#[tokio::test]
async fn start_stop_cycles_leak_no_address() {
    let f = fixture().await;
    f.service
        .create(request("cyc", "10.33.0.0/29"))
        .await
        .expect("create");
    let a = container('d', "cyc1", r#"{"NetworkMode":"cyc"}"#, "null");
    for _ in 0..100 {
        let setup = f.service.setup(&a, None).await.expect("setup");
        assert_eq!(setup.addresses, vec![ip("10.33.0.2")]);
        f.service.forget(&a.id).await.expect("rm");
    }
    assert_eq!(f.service.get("cyc").expect("cyc").ipam.in_use(), 0);
    assert!(f.service.sandbox(&a.id).is_none());
}

#[tokio::test]
async fn specific_ip_alias_on_default_bridge_and_exhaustion_are_refused_like_docker() {
    let f = fixture().await;
    let a = container(
        'e',
        "x",
        r#"{"NetworkMode":"bridge"}"#,
        r#"{"EndpointsConfig":{"bridge":{"IPAMConfig":{"IPv4Address":"172.17.0.9"}}}}"#,
    );
    let err = f.service.setup(&a, None).await.expect_err("ip on bridge");
    assert_eq!(
        err.to_string(),
        "invalid endpoint settings:\nuser-specified IP address is supported on user-defined \
         networks only"
    );
    assert!(f.fake.snapshot().netns.is_empty(), "undone on failure");
    f.service
        .create(request("tiny", "10.34.0.0/30"))
        .await
        .expect("create");
    let b = container('f', "b", r#"{"NetworkMode":"tiny"}"#, "null");
    let c = container('1', "c", r#"{"NetworkMode":"tiny"}"#, "null");
    f.service.setup(&b, None).await.expect("b");
    let tiny = f.service.get("tiny").expect("tiny");
    let err = f.service.setup(&c, None).await.expect_err("full");
    assert_eq!(
        err.to_string(),
        format!(
            "no available IPv4 addresses on this network's address pools: tiny ({})",
            tiny.id
        )
    );
    assert_eq!(f.fake.snapshot().netns, vec![f.paths.netns.join(&b.id)]);
}

#[tokio::test]
async fn connect_and_disconnect_live_add_and_remove_an_interface() {
    let f = fixture().await;
    f.service
        .create(request("extra", "10.35.0.0/24"))
        .await
        .expect("create");
    let a = container('2', "live", r#"{"NetworkMode":"default"}"#, "null");
    let setup = f.service.setup(&a, None).await.expect("setup");
    assert_eq!(setup.addresses, vec![ip("172.17.0.2")]);
    assert!(!setup.embedded_dns);
    f.service
        .connect(
            "extra",
            &a,
            true,
            EndpointRequest {
                ipv4: Some(ip("10.35.0.50")),
                ..Default::default()
            },
        )
        .await
        .expect("connect");
    let eps = f.service.endpoints_of(&a.id);
    assert_eq!(
        eps.iter()
            .map(|(_, e)| e.ifname.as_str())
            .collect::<Vec<_>>(),
        ["eth0", "eth1"]
    );
    assert_eq!(eps[1].1.ipv4.map(|s| s.addr), Some(ip("10.35.0.50")));
    assert_eq!(f.fake.snapshot().dns, vec![a.id.clone()]);
    let err = f
        .service
        .connect("extra", &a, true, EndpointRequest::default())
        .await
        .expect_err("twice");
    assert_eq!(
        err.to_string(),
        "endpoint with name live already exists in network extra"
    );
    f.service
        .disconnect("extra", &a, false)
        .await
        .expect("disconnect");
    assert_eq!(f.service.endpoints_of(&a.id).len(), 1);
    let err = f
        .service
        .disconnect("extra", &a, false)
        .await
        .expect_err("not connected");
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    // Stopped containers remember the connect for their next start.
    f.service.teardown(&a.id).await.expect("teardown");
    f.service
        .connect("extra", &a, false, EndpointRequest::default())
        .await
        .expect("connect stopped");
    assert!(f.service.endpoints_of(&a.id).is_empty());
    f.service.setup(&a, None).await.expect("start");
    assert_eq!(f.service.endpoints_of(&a.id).len(), 2);
}

#[tokio::test]
async fn reopen_keeps_addresses_and_reconcile_removes_the_dead() {
    let dir = tempfile::tempdir().expect("dir");
    let fake = Arc::new(FakeDatapath::default());
    let root = dir.path().to_path_buf();
    let f = open_at(dir, fake.clone()).await;
    f.service
        .create(request("keep", "10.36.0.0/24"))
        .await
        .expect("create");
    let live = container(
        '3',
        "live",
        r#"{"NetworkMode":"keep","PortBindings":{"53/udp":[{"HostPort":"15353"}]}}"#,
        "null",
    );
    let dead = container('4', "dead", r#"{"NetworkMode":"keep"}"#, "null");
    f.service.setup(&live, None).await.expect("live");
    f.service.setup(&dead, None).await.expect("dead");
    // The old service is gone with its process (its DNS servers stop with it).
    let Fixture {
        _dir: dir, service, ..
    } = f;
    drop(service);
    // berthd is killed: a new service over the same roots.
    fake.state.lock().expect("lock").firewall = Default::default();
    let paths = NetworkPaths::under(&root.join("data"), &root.join("exec"));
    let datapath: Arc<dyn Datapath> = Arc::new(fake.clone());
    let service = NetworkService::open_with(
        paths,
        NetworkDefaults::default(),
        Arc::new(EventBus::new()),
        datapath,
    )
    .await
    .expect("reopen");
    service
        .reconcile(std::slice::from_ref(&live.id))
        .await
        .expect("reconcile");
    let keep = service.get("keep").expect("keep");
    assert_eq!(keep.endpoints.keys().collect::<Vec<_>>(), vec![&live.id]);
    assert_eq!(keep.ipam.in_use(), 1);
    let state = fake.snapshot();
    assert_eq!(state.endpoints.len(), 1);
    assert_eq!(
        state.firewall.ports.len(),
        1,
        "rules re-applied for the running container"
    );
    assert_eq!(state.dns, vec![live.id.clone()]);
    let next = container('5', "next", r#"{"NetworkMode":"keep"}"#, "null");
    let setup = service.setup(&next, None).await.expect("next");
    assert_eq!(
        setup.addresses,
        vec![ip("10.36.0.3")],
        "the dead one's address is free again"
    );
    drop(dir);
}

#[tokio::test]
async fn default_bridge_reuses_the_subnet_of_its_existing_device() {
    // A fresh data root beside a `berth0` left by an earlier run: its route is its own.
    let fake = Arc::new(FakeDatapath::default());
    {
        let mut state = fake.state.lock().expect("lock");
        state.routes = vec!["172.17.0.0/16".parse().expect("route")];
        state.bridges.push(super::datapath::BridgeSpec {
            name: "berth0".to_string(),
            mtu: 1500,
            addresses: vec!["172.17.0.1/16".parse().expect("address")],
            icc: true,
            internal: false,
        });
    }
    let f = open_at(tempfile::tempdir().expect("dir"), fake).await;
    let bridge = f.service.get("bridge").expect("bridge");
    assert_eq!(bridge.ipam_config[0].subnet, "172.17.0.0/16");
    assert_eq!(bridge.ipam_config[0].gateway, "172.17.0.1");
}

#[tokio::test]
async fn firewall_tables_exist_only_while_an_endpoint_does() {
    let f = fixture().await;
    f.service
        .reconcile(&[])
        .await
        .expect("reconcile with nothing running");
    assert!(
        !f.fake.snapshot().firewall_present,
        "idle daemon: no tables"
    );
    let a = container('6', "one", r#"{"NetworkMode":"bridge"}"#, "null");
    let b = container('7', "two", r#"{"NetworkMode":"bridge"}"#, "null");
    f.service.setup(&a, None).await.expect("a");
    f.service.setup(&b, None).await.expect("b");
    assert!(f.fake.snapshot().firewall_present);
    f.service.teardown(&a.id).await.expect("teardown a");
    assert!(f.fake.snapshot().firewall_present, "b still runs");
    f.service.forget(&b.id).await.expect("rm b");
    let state = f.fake.snapshot();
    assert!(!state.firewall_present, "the last endpoint took the tables");
    assert!(state.firewall.networks.is_empty());
}

#[test]
fn firewall_table_is_berth_for_berth0_and_per_bridge_otherwise() {
    let mut defaults = NetworkDefaults::default();
    assert_eq!(defaults.firewall_table(), "berth");
    defaults.bridge = "bt1a2b3c".to_string();
    assert_eq!(defaults.firewall_table(), "berth-bt1a2b3c");
}

/// A container on `network` with the ID `n` in hex.
fn numbered(n: u64, network: &str) -> ContainerRecord {
    ContainerRecord {
        id: format!("{n:064x}"),
        name: format!("/c{n}"),
        host_config: serde_json::from_str(&format!(r#"{{"NetworkMode":"{network}"}}"#))
            .expect("host config"),
        ..ContainerRecord::default()
    }
}

#[tokio::test]
async fn a_thousand_create_rm_cycles_leak_nothing_and_survive_a_kill_9() {
    // Through the service over the fake datapath (berthd would take minutes for 1000 runs;
    // the e2e file network_daemons checks kill -9 with real containers).
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path().to_path_buf();
    let fake = Arc::new(FakeDatapath::default());
    let f = open_at(dir, fake.clone()).await;
    // 13 usable addresses (/28 minus network, gateway and broadcast): churn near the limit.
    f.service
        .create(request("churn", "10.37.0.0/28"))
        .await
        .expect("create");
    let mut live: Vec<(ContainerRecord, IpAddr)> = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for n in 1..=1000u64 {
        let record = numbered(n, "churn");
        let setup = f.service.setup(&record, None).await.expect("setup");
        let [ip] = setup.addresses[..] else {
            panic!("one address expected: {:?}", setup.addresses)
        };
        assert!(
            !live.iter().any(|(_, other)| *other == ip),
            "{ip} handed out twice at cycle {n}"
        );
        live.push((record, ip));
        // Remove one or two at random once the network is nearly full (or at random).
        while live.len() >= 12 || (!live.is_empty() && next() % 3 == 0) {
            let (gone, _) = live.remove((next() % live.len() as u64) as usize);
            f.service.forget(&gone.id).await.expect("rm");
        }
        let network = f.service.get("churn").expect("churn");
        assert_eq!(network.ipam.in_use(), live.len(), "cycle {n}");
        assert_eq!(network.endpoints.len(), live.len(), "cycle {n}");
    }
    assert_eq!(fake.snapshot().endpoints.len(), live.len());

    // kill -9: the service goes without any teardown, and one container died meanwhile.
    let Fixture {
        _dir: dir, service, ..
    } = f;
    drop(service);
    let (dead, dead_ip) = live.pop().expect("a live container");
    let paths = NetworkPaths::under(&root.join("data"), &root.join("exec"));
    let datapath: Arc<dyn Datapath> = Arc::new(fake.clone());
    let service = NetworkService::open_with(
        paths,
        NetworkDefaults::default(),
        Arc::new(EventBus::new()),
        datapath,
    )
    .await
    .expect("reopen");
    let running: Vec<String> = live.iter().map(|(r, _)| r.id.clone()).collect();
    service.reconcile(&running).await.expect("reconcile");
    let network = service.get("churn").expect("churn");
    let mut held: Vec<(String, IpAddr)> = network
        .endpoints
        .iter()
        .map(|(id, e)| (id.clone(), e.ipv4.expect("v4").addr))
        .collect();
    held.sort();
    let mut expected: Vec<(String, IpAddr)> =
        live.iter().map(|(r, ip)| (r.id.clone(), *ip)).collect();
    expected.sort();
    assert_eq!(held, expected, "allocations match the running containers");
    assert_eq!(network.ipam.in_use(), live.len());
    assert!(fake
        .snapshot()
        .endpoints
        .iter()
        .all(|e| e.netns != service.paths().netns.join(&dead.id)));
    // The dead one's address is free again, and only that one is handed out next.
    let again = service
        .setup(&numbered(5000, "churn"), None)
        .await
        .expect("next");
    let free_before: Vec<IpAddr> = (2..=14)
        .map(|h| IpAddr::from([10, 37, 0, h]))
        .filter(|ip| !live.iter().any(|(_, l)| l == ip))
        .collect();
    assert_eq!(again.addresses, vec![free_before[0]]);
    assert!(free_before.contains(&dead_ip));
    drop(dir);
}

fn ipam_request(name: &str, subnet: &str, ip_range: &str, gateway: &str) -> NetworkCreateRequest {
    NetworkCreateRequest {
        name: name.to_string(),
        ipam: Some(Ipam {
            config: Some(vec![IpamPool {
                subnet: subnet.to_string(),
                ip_range: ip_range.to_string(),
                gateway: gateway.to_string(),
                ..IpamPool::default()
            }]),
            ..Ipam::default()
        }),
        ..NetworkCreateRequest::default()
    }
}

#[tokio::test]
async fn create_refuses_bad_ipam_config_with_mobys_texts_and_creates_nothing() {
    let f = fixture().await;
    let before = f.service.list().len();
    for (subnet, range, gateway, text) in [
        (
            "10.40.0.1/24",
            "",
            "",
            "invalid subnet 10.40.0.1/24: it should be 10.40.0.0/24",
        ),
        (
            "10.40.0.0/24",
            "",
            "10.41.0.1",
            "invalid gateway 10.41.0.1: parent subnet 10.40.0.0/24 doesn't contain this address",
        ),
        (
            "10.40.0.0/24",
            "",
            "fd00::1",
            "invalid gateway fd00::1: parent subnet is an IPv4 block",
        ),
        (
            "10.40.0.0/24",
            "10.41.0.0/25",
            "",
            "invalid ip-range 10.41.0.0/25: parent subnet 10.40.0.0/24 doesn't contain ip-range",
        ),
        (
            "10.40.0.0/24",
            "10.40.0.0/16",
            "",
            "invalid ip-range 10.40.0.0/16: CIDR block is bigger than its parent subnet \
             10.40.0.0/24",
        ),
        (
            "",
            "",
            "10.1.1.1",
            "invalid gateway 10.1.1.1: parent subnet invalid Prefix doesn't contain this address",
        ),
        (
            "10.40.0.1/24",
            "10.40.0.9/25",
            "10.50.0.1",
            "invalid subnet 10.40.0.1/24: it should be 10.40.0.0/24\n\
             invalid ip-range 10.40.0.9/25: it should be 10.40.0.0/25\n\
             invalid gateway 10.50.0.1: parent subnet 10.40.0.1/24 doesn't contain this address",
        ),
    ] {
        let err = f
            .service
            .create(ipam_request("bad", subnet, range, gateway))
            .await
            .expect_err("refused");
        assert_eq!(
            err.to_string(),
            format!("invalid network config:\n{text}"),
            "{subnet} {range} {gateway}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert_eq!(f.service.list().len(), before, "nothing created");
    }
    assert!(f
        .fake
        .snapshot()
        .bridges
        .iter()
        .all(|b| !b.name.starts_with("br-")));
}

#[tokio::test]
async fn endpoint_settings_are_refused_at_create_and_connect_with_mobys_texts() {
    let f = fixture().await;
    f.service
        .create(request("user", "10.42.0.0/24"))
        .await
        .expect("create");
    f.service.create(request("auto", "")).await.expect("auto");
    let networking = |key: &str, ip: &str| -> berth_api::network::NetworkingConfig {
        serde_json::from_str(&format!(
            r#"{{"EndpointsConfig":{{"{key}":{{"IPAMConfig":{{"IPv4Address":"{ip}"}}}}}}}}"#
        ))
        .expect("networking")
    };
    let refused = |mode: &str, key: &str, ip: &str| {
        f.service
            .validate_create(mode, Some(&networking(key, ip)), "")
            .expect_err("refused")
    };
    // The docker CLI sends the default network's settings under `default`.
    let err = refused("default", "default", "172.17.0.9");
    assert_eq!(
        err.to_string(),
        "invalid config for network default: invalid endpoint settings:\n\
         user-specified IP address is supported on user-defined networks only"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let err = refused("user", "user", "10.43.0.9");
    assert_eq!(
        err.to_string(),
        "invalid config for network user: invalid endpoint settings:\n\
         no configured subnet contains IP address 10.43.0.9"
    );
    let err = refused("user", "user", "10.42.0.300");
    assert_eq!(
        err.to_string(),
        "invalid config for network user: invalid endpoint settings:\n\
         invalid IPv4 address: 10.42.0.300"
    );
    // Current moby (29.1+) takes an address in a subnet the daemon picked.
    let auto = f.service.get("auto").expect("auto").ipam_config[0]
        .subnet
        .clone();
    let inside = auto.replace(".0.0/16", ".0.77");
    f.service
        .validate_create("auto", Some(&networking("auto", &inside)), "")
        .expect("in the picked subnet");

    // Connect: refused whether or not the container runs, nothing remembered.
    let stopped = container('3', "stopped", r#"{"NetworkMode":"user"}"#, "null");
    let err = f
        .service
        .connect(
            "auto",
            &stopped,
            false,
            EndpointRequest {
                ipv4: Some(ip("10.42.0.5")),
                ..Default::default()
            },
        )
        .await
        .expect_err("outside auto's subnet");
    assert_eq!(
        err.to_string(),
        "invalid endpoint settings:\nno configured subnet contains IP address 10.42.0.5"
    );
    assert!(f
        .service
        .sandbox(&stopped.id)
        .is_none_or(|s| s.connected.is_empty()));
    // Every bad setting is listed, as moby's errors.Join words several.
    let err = f
        .service
        .connect(
            "bridge",
            &stopped,
            false,
            EndpointRequest {
                ipv4: Some(ip("10.42.0.5")),
                aliases: vec!["web".into()],
                ..Default::default()
            },
        )
        .await
        .expect_err("three problems");
    assert_eq!(
        err.to_string(),
        "invalid endpoint settings:\n\
         * user-specified IP address is supported on user-defined networks only\n\
         * network-scoped aliases are only supported for user-defined networks\n\
         * no configured subnet contains IP address 10.42.0.5"
    );

    let a = container('4', "a", r#"{"NetworkMode":"user"}"#, "null");
    let b = container('5', "b", r#"{"NetworkMode":"default"}"#, "null");
    let setup = f.service.setup(&a, None).await.expect("a");
    f.service.setup(&b, None).await.expect("b");
    let before = f.service.sandbox(&b.id);
    let err = f
        .service
        .connect(
            "user",
            &b,
            true,
            EndpointRequest {
                ipv4: Some(setup.addresses[0]),
                ..Default::default()
            },
        )
        .await
        .expect_err("a's address");
    assert_eq!(err.to_string(), "Address already in use");
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert_eq!(f.service.sandbox(&b.id), before, "sandbox as it was");
    assert_eq!(f.service.get("user").expect("user").endpoints.len(), 1);
    for id in [&a.id, &b.id] {
        f.service.teardown(id).await.expect("teardown");
    }
}
