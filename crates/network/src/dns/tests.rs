//! Tests of the embedded DNS server: local answers, truncation, forwarding rules.

use super::forward::{read_framed, write_framed};
use super::*;
use hickory_proto::op::{Edns, Query};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::net::{TcpStream, UdpSocket};

struct FakeResolver {
    names: HashMap<String, Vec<IpAddr>>,
    external_access: AtomicBool,
}

impl Resolver for FakeResolver {
    fn lookup(&self, from: &str, name: &str) -> Option<Vec<IpAddr>> {
        assert_eq!(from, "c1");
        self.names.get(name).cloned()
    }
    fn reverse(&self, _from: &str, ip: IpAddr) -> Option<String> {
        self.names
            .iter()
            .find(|(_, ips)| ips.contains(&ip))
            .map(|(name, _)| name.clone())
    }
    fn external_access(&self, from: &str) -> bool {
        assert_eq!(from, "c1");
        self.external_access.load(Ordering::Relaxed)
    }
}

fn resolver(external_access: bool) -> Arc<dyn Resolver> {
    let mut names = HashMap::new();
    names.insert("web".to_string(), vec!["172.18.0.2".parse().expect("ip")]);
    names.insert(
        "pool".to_string(),
        vec![
            "172.18.0.3".parse().expect("ip"),
            "172.18.0.4".parse().expect("ip"),
            "172.18.0.5".parse().expect("ip"),
        ],
    );
    // Forty addresses for one alias: more than a 512-byte UDP answer holds.
    names.insert(
        "crowd".to_string(),
        (1..=40)
            .map(|i| IpAddr::V4(Ipv4Addr::new(172, 19, 0, i)))
            .collect(),
    );
    Arc::new(FakeResolver {
        names,
        external_access: AtomicBool::new(external_access),
    })
}

fn start(upstream: Vec<SocketAddr>) -> DnsHandle {
    start_with(upstream.into_iter().map(Upstream::host).collect(), true)
}

fn start_with(upstream: Vec<Upstream>, external_access: bool) -> DnsHandle {
    let (udp, tcp) = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    serve_sockets(
        udp,
        tcp,
        "c1".into(),
        resolver(external_access),
        upstream,
        vec!["Corp.Example.".into()],
    )
    .expect("serve")
}

fn query(name: &str, kind: RecordType, id: u16) -> Vec<u8> {
    let mut message = Message::new();
    message
        .set_id(id)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).expect("name"), kind));
    message.to_vec().expect("encode")
}

async fn ask_udp(server: SocketAddr, bytes: &[u8]) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.send_to(bytes, server).await.expect("send");
    let mut buf = vec![0u8; 4096];
    let len = tokio::time::timeout(Duration::from_secs(10), socket.recv(&mut buf))
        .await
        .expect("an answer")
        .expect("recv");
    Message::from_vec(&buf[..len]).expect("decode")
}

async fn ask_tcp(server: SocketAddr, bytes: &[u8]) -> Message {
    let mut stream = TcpStream::connect(server).await.expect("connect");
    write_framed(&mut stream, bytes).await.expect("send");
    let reply = tokio::time::timeout(Duration::from_secs(20), read_framed(&mut stream))
        .await
        .expect("an answer")
        .expect("read")
        .expect("a reply");
    Message::from_vec(&reply).expect("decode")
}

fn addresses(message: &Message) -> Vec<IpAddr> {
    message
        .answers()
        .iter()
        .filter_map(|record| match record.data() {
            Some(RData::A(a)) => Some(IpAddr::V4(a.0)),
            Some(RData::AAAA(aaaa)) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect()
}

/// An upstream on 127.0.0.1: UDP answers 192.0.2.<tag> (with TC set for "big.example."),
/// TCP answers 192.0.2.<tag + 1>; "missing.example." is NXDOMAIN, "broken.example."
/// SERVFAIL, "refused.example." REFUSED.
async fn fake_upstream(tag: u8) -> (SocketAddr, Vec<JoinHandle<()>>) {
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = udp.local_addr().expect("addr");
    let tcp = TcpListener::bind(addr).await.expect("bind tcp");
    let udp_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((len, peer)) = udp.recv_from(&mut buf).await {
            let request = Message::from_vec(&buf[..len]).expect("query");
            let name = request.queries()[0].name().to_ascii();
            let mut reply = upstream_reply(&request, Ipv4Addr::new(192, 0, 2, tag));
            if name == "big.example." {
                reply.set_truncated(true);
            }
            let _ = udp.send_to(&reply.to_vec().expect("encode"), peer).await;
        }
    });
    let tcp_task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = tcp.accept().await {
            while let Ok(Some(bytes)) = read_framed(&mut stream).await {
                let request = Message::from_vec(&bytes).expect("query");
                let reply = upstream_reply(&request, Ipv4Addr::new(192, 0, 2, tag + 1));
                let _ = write_framed(&mut stream, &reply.to_vec().expect("encode")).await;
            }
        }
    });
    (addr, vec![udp_task, tcp_task])
}

fn upstream_reply(request: &Message, ip: Ipv4Addr) -> Message {
    let mut reply = response_to(request);
    let query = &request.queries()[0];
    match query.name().to_ascii().as_str() {
        "missing.example." => {
            reply.set_response_code(ResponseCode::NXDomain);
        }
        "broken.example." => {
            reply.set_response_code(ResponseCode::ServFail);
        }
        "refused.example." => {
            reply.set_response_code(ResponseCode::Refused);
        }
        _ => {
            reply.add_answer(Record::from_rdata(
                query.name().clone(),
                60,
                RData::A(A(ip)),
            ));
        }
    }
    reply
}

/// A local address nothing listens on (UDP and TCP).
fn closed_port() -> SocketAddr {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    addr
}

#[tokio::test]
async fn container_names_are_case_insensitive_and_a_trailing_dot_is_fine() {
    let server = start(vec![]);
    for (name, id) in [("web", 1), ("WEB.", 2), ("Web", 3)] {
        let reply = ask_udp(server.udp_addr(), &query(name, RecordType::A, id)).await;
        assert_eq!(reply.id(), id);
        assert_eq!(reply.response_code(), ResponseCode::NoError);
        assert_eq!(
            addresses(&reply),
            vec!["172.18.0.2".parse::<IpAddr>().expect("ip")]
        );
        assert_eq!(reply.answers()[0].ttl(), TTL);
    }
}

#[tokio::test]
async fn a_name_with_a_search_domain_is_looked_up_without_it() {
    let server = start(vec![]);
    let reply = ask_udp(
        server.udp_addr(),
        &query("web.corp.example.", RecordType::A, 19),
    )
    .await;
    assert_eq!(
        addresses(&reply),
        vec!["172.18.0.2".parse::<IpAddr>().expect("ip")]
    );
    let reply = ask_udp(
        server.udp_addr(),
        &query("web.other.example.", RecordType::A, 20),
    )
    .await;
    assert_eq!(
        reply.response_code(),
        ResponseCode::ServFail,
        "not a search domain: forwarded, and no upstream to ask"
    );
}

#[tokio::test]
async fn several_addresses_rotate_from_one_query_to_the_next() {
    let server = start(vec![]);
    let first = addresses(&ask_udp(server.udp_addr(), &query("pool", RecordType::A, 7)).await);
    let second = addresses(&ask_udp(server.udp_addr(), &query("pool", RecordType::A, 8)).await);
    assert_eq!(first.len(), 3);
    assert_ne!(first, second);
    let (mut a, mut b) = (first.clone(), second.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b, "the same addresses in another order");
    assert_eq!(first[1], second[0], "rotated by one");
}

#[tokio::test]
async fn aaaa_for_a_v4_only_container_is_an_empty_noerror() {
    let server = start(vec![]);
    let reply = ask_udp(server.udp_addr(), &query("web", RecordType::AAAA, 9)).await;
    assert_eq!(reply.response_code(), ResponseCode::NoError);
    assert!(reply.answers().is_empty());
}

#[tokio::test]
async fn ptr_of_a_container_address_names_the_container() {
    let server = start(vec![]);
    let reply = ask_udp(
        server.udp_addr(),
        &query("2.0.18.172.in-addr.arpa.", RecordType::PTR, 10),
    )
    .await;
    match reply.answers().first().and_then(|record| record.data()) {
        Some(RData::PTR(ptr)) => assert_eq!(ptr.0.to_ascii(), "web."),
        other => panic!("no PTR answer: {other:?}"),
    }
}

#[tokio::test]
async fn other_names_are_forwarded_and_the_upstream_answer_relayed() {
    let (upstream, _tasks) = fake_upstream(53).await;
    let server = start(vec![upstream]);
    let reply = ask_udp(server.udp_addr(), &query("example.com.", RecordType::A, 11)).await;
    assert_eq!(reply.id(), 11);
    assert_eq!(
        addresses(&reply),
        vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53))]
    );
    let reply = ask_udp(
        server.udp_addr(),
        &query("missing.example.", RecordType::A, 12),
    )
    .await;
    assert_eq!(reply.response_code(), ResponseCode::NXDomain);
}

#[tokio::test]
async fn a_truncated_upstream_answer_is_relayed_and_the_tcp_retry_forwarded_over_tcp() {
    let (upstream, _tasks) = fake_upstream(53).await;
    let server = start(vec![upstream]);
    let reply = ask_udp(server.udp_addr(), &query("big.example.", RecordType::A, 13)).await;
    assert!(reply.truncated(), "the TC bit reaches the client");
    assert_eq!(
        addresses(&reply),
        vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53))]
    );
    let reply = ask_tcp(server.tcp_addr(), &query("big.example.", RecordType::A, 21)).await;
    assert!(!reply.truncated());
    assert_eq!(
        addresses(&reply),
        vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 54))],
        "the TCP query went to the upstream over TCP"
    );
}

#[tokio::test]
async fn unreachable_upstreams_and_no_upstream_give_servfail() {
    let server = start(vec![closed_port()]);
    let reply = ask_udp(server.udp_addr(), &query("example.com.", RecordType::A, 14)).await;
    assert_eq!(reply.response_code(), ResponseCode::ServFail);
    let reply = ask_tcp(server.tcp_addr(), &query("example.com.", RecordType::A, 22)).await;
    assert_eq!(reply.response_code(), ResponseCode::ServFail);
    let server = start(vec![]);
    let reply = ask_udp(server.udp_addr(), &query("example.com.", RecordType::A, 15)).await;
    assert_eq!(reply.response_code(), ResponseCode::ServFail);
    assert_eq!(reply.id(), 15);
}

#[tokio::test]
async fn servfail_refused_and_silence_move_on_to_the_next_upstream_nxdomain_does_not() {
    let (first, _first_tasks) = fake_upstream(60).await;
    let (second, _second_tasks) = fake_upstream(70).await;
    let server = start(vec![closed_port(), first, second]);
    let reply = ask_udp(server.udp_addr(), &query("example.com.", RecordType::A, 23)).await;
    assert_eq!(
        addresses(&reply),
        vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 60))],
        "an unreachable upstream is skipped"
    );
    for (name, id) in [("broken.example.", 24), ("refused.example.", 25)] {
        let reply = ask_udp(server.udp_addr(), &query(name, RecordType::A, id)).await;
        assert_eq!(
            reply.response_code(),
            ResponseCode::ServFail,
            "{name}: every upstream failed"
        );
    }
    let reply = ask_udp(
        server.udp_addr(),
        &query("missing.example.", RecordType::A, 26),
    )
    .await;
    assert_eq!(reply.response_code(), ResponseCode::NXDomain);
}

/// An upstream that first echoes each query back unchanged (QR clear, as a socket that
/// connected to its own port receives it), then answers 192.0.2.99.
async fn echoing_upstream() -> (SocketAddr, JoinHandle<()>) {
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = udp.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((len, peer)) = udp.recv_from(&mut buf).await {
            let _ = udp.send_to(&buf[..len], peer).await;
            let request = Message::from_vec(&buf[..len]).expect("query");
            let reply = upstream_reply(&request, Ipv4Addr::new(192, 0, 2, 99));
            let _ = udp.send_to(&reply.to_vec().expect("encode"), peer).await;
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_datagram_that_is_no_response_is_not_taken_for_the_answer() {
    let (upstream, _task) = echoing_upstream().await;
    let server = start(vec![upstream]);
    let reply = ask_udp(server.udp_addr(), &query("example.com.", RecordType::A, 28)).await;
    assert_eq!(
        addresses(&reply),
        vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99))],
        "the echoed query (same id, no QR bit) was skipped"
    );
}

#[test]
fn a_socket_connected_to_its_own_port_is_no_upstream() {
    let upstream: SocketAddr = "127.0.0.1:5353".parse().expect("addr");
    assert!(super::forward::connected_to_itself(Ok(upstream), upstream));
    let other: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
    assert!(!super::forward::connected_to_itself(Ok(other), upstream));
    let error = std::io::Error::other("not connected");
    assert!(!super::forward::connected_to_itself(Err(error), upstream));
}

#[tokio::test]
async fn at_most_three_upstreams_are_asked() {
    let (fourth, _tasks) = fake_upstream(80).await;
    let server = start(vec![closed_port(), closed_port(), closed_port(), fourth]);
    let reply = ask_udp(server.udp_addr(), &query("example.com.", RecordType::A, 27)).await;
    assert_eq!(reply.response_code(), ResponseCode::ServFail);
}

#[tokio::test]
async fn without_external_access_only_the_containers_own_upstreams_are_asked() {
    let (host, _host_tasks) = fake_upstream(90).await;
    let (own, _own_tasks) = fake_upstream(100).await;
    let server = start_with(vec![Upstream::host(host)], false);
    let reply = ask_udp(server.udp_addr(), &query("example.com.", RecordType::A, 28)).await;
    assert_eq!(
        reply.response_code(),
        ResponseCode::ServFail,
        "the host's resolver is not asked for an internal-only container"
    );
    let reply = ask_udp(server.udp_addr(), &query("web", RecordType::A, 29)).await;
    assert_eq!(
        addresses(&reply),
        vec!["172.18.0.2".parse::<IpAddr>().expect("ip")],
        "container names still resolve"
    );
    let server = start_with(vec![Upstream::host(host), Upstream::container(own)], false);
    let reply = ask_udp(server.udp_addr(), &query("example.com.", RecordType::A, 30)).await;
    assert_eq!(
        addresses(&reply),
        vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100))]
    );
}

#[tokio::test]
async fn a_local_answer_too_big_for_udp_is_truncated_with_tc_and_whole_over_tcp() {
    let server = start(vec![]);
    let reply = ask_udp(server.udp_addr(), &query("crowd", RecordType::A, 31)).await;
    assert!(reply.truncated());
    assert!(!addresses(&reply).is_empty() && addresses(&reply).len() < 40);
    let reply = ask_tcp(server.tcp_addr(), &query("crowd", RecordType::A, 32)).await;
    assert!(!reply.truncated());
    assert_eq!(addresses(&reply).len(), 40);
    // A client announcing a 4096-byte EDNS buffer gets everything over UDP.
    let mut message = Message::from_vec(&query("crowd", RecordType::A, 33)).expect("decode");
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    message.set_edns(edns);
    let reply = ask_udp(server.udp_addr(), &message.to_vec().expect("encode")).await;
    assert!(!reply.truncated());
    assert_eq!(addresses(&reply).len(), 40);
}

#[tokio::test]
async fn tcp_queries_are_answered_on_the_same_port() {
    let server = start(vec![]);
    let mut stream = TcpStream::connect(server.tcp_addr())
        .await
        .expect("connect");
    for id in [16, 17] {
        write_framed(&mut stream, &query("web", RecordType::A, id))
            .await
            .expect("send");
        let bytes = read_framed(&mut stream)
            .await
            .expect("read")
            .expect("reply");
        let reply = Message::from_vec(&bytes).expect("decode");
        assert_eq!(reply.id(), id);
        assert_eq!(
            addresses(&reply),
            vec!["172.18.0.2".parse::<IpAddr>().expect("ip")]
        );
    }
}

#[tokio::test]
async fn garbage_gets_formerr_and_a_dropped_handle_stops_the_server() {
    let server = start(vec![]);
    let addr = server.udp_addr();
    let reply = ask_udp(addr, &[0x12, 0x34, 0xff]).await;
    assert_eq!(reply.id(), 0x1234);
    assert_eq!(reply.response_code(), ResponseCode::FormErr);
    drop(server);
    tokio::task::yield_now().await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket
        .send_to(&query("web", RecordType::A, 18), addr)
        .await
        .expect("send");
    let mut buf = [0u8; 512];
    let answered = tokio::time::timeout(Duration::from_millis(300), socket.recv(&mut buf)).await;
    assert!(!matches!(answered, Ok(Ok(_))), "a stopped server answered");
}
