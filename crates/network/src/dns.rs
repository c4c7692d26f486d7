//! The embedded DNS server at 127.0.0.11:53 (UDP and TCP) inside a container's network
//! namespace: A/AAAA/PTR for containers from a [`Resolver`], everything else forwarded.
//!
//! Built on hickory-proto's message codec with a small UDP/TCP loop of our own rather than
//! hickory-server: forwarded answers are relayed byte for byte (only our own answers are
//! built), which hickory-server's `ResponseHandler` (it wants a `MessageResponse`) cannot
//! do, and one query loop per socket is all this needs.
//!
//! The sockets are created inside the container's namespace (on a `NetNs::run` thread) and
//! then served on the caller's tokio runtime; forwarding sockets are created by that runtime
//! in berthd's own namespace, so the host's resolvers (loopback ones included) are reachable
//! even from containers whose network has no route out, as Docker forwards from the host
//! namespace for loopback resolvers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use crate::error::NetError;
use crate::netns::NetNs;

/// Where the embedded server listens inside the container (Docker's address).
pub const DNS_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)), 53);

/// TTL of the answers about containers (Docker's embedded server uses 600 s).
const TTL: u32 = 600;
/// How long one upstream gets to answer before the next is tried.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// Names and addresses of the containers a container can see (network scoped).
pub trait Resolver: Send + Sync + 'static {
    /// A/AAAA records for `name` as seen from the container `from`, None if the name is not a
    /// container, alias or short id on its networks (then the query is forwarded upstream).
    /// `name` is lowercase without a trailing dot.
    fn lookup(&self, from: &str, name: &str) -> Option<Vec<IpAddr>>;
    /// The container name for `ip` as seen from `from`, None to forward the PTR query.
    fn reverse(&self, from: &str, ip: IpAddr) -> Option<String>;
}

/// A running server; dropping it (or [`DnsHandle::stop`]) stops it.
#[derive(Debug)]
pub struct DnsHandle {
    tasks: Vec<JoinHandle<()>>,
    udp: SocketAddr,
    tcp: SocketAddr,
}

impl DnsHandle {
    /// Stops the server (same as dropping it).
    pub fn stop(self) {}

    /// The bound UDP address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp
    }

    /// The bound TCP address.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp
    }
}

impl Drop for DnsHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Binds 127.0.0.11:53 (UDP and TCP) inside `netns` and serves it on the current tokio
/// runtime. Must be called from within a runtime (a blocking-pool thread is fine).
pub fn serve(
    netns: &NetNs,
    container_id: String,
    resolver: Arc<dyn Resolver>,
    upstream: Vec<SocketAddr>,
) -> Result<DnsHandle, NetError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| NetError::NoRuntime)?;
    let (udp, tcp) = netns.run(|| bind(DNS_ADDR))??;
    let _guard = runtime.enter();
    serve_sockets(udp, tcp, container_id, resolver, upstream, Vec::new())
}

/// [`serve`] for a container with search domains (`--dns-search`, `--domainname`): as
/// Docker's embedded server does, `web.<domain>` is also looked up as `web` when the full
/// name is not a container.
pub fn serve_with_domains(
    netns: &NetNs,
    container_id: String,
    resolver: Arc<dyn Resolver>,
    upstream: Vec<SocketAddr>,
    domains: Vec<String>,
) -> Result<DnsHandle, NetError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| NetError::NoRuntime)?;
    let (udp, tcp) = netns.run(|| bind(DNS_ADDR))??;
    let _guard = runtime.enter();
    serve_sockets(udp, tcp, container_id, resolver, upstream, domains)
}

/// Binds UDP and TCP on `addr` in the calling thread's namespace.
pub fn bind(addr: SocketAddr) -> Result<(std::net::UdpSocket, std::net::TcpListener), NetError> {
    let bind_err = |source| NetError::DnsBind { addr, source };
    let udp = std::net::UdpSocket::bind(addr).map_err(bind_err)?;
    let tcp_addr = SocketAddr::new(addr.ip(), udp.local_addr().map_err(bind_err)?.port());
    let tcp = std::net::TcpListener::bind(tcp_addr).map_err(bind_err)?;
    udp.set_nonblocking(true).map_err(bind_err)?;
    tcp.set_nonblocking(true).map_err(bind_err)?;
    Ok((udp, tcp))
}

/// Serves already bound sockets on the current runtime (`serve` after binding in a netns;
/// tests on 127.0.0.1).
pub fn serve_sockets(
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    container_id: String,
    resolver: Arc<dyn Resolver>,
    upstream: Vec<SocketAddr>,
    domains: Vec<String>,
) -> Result<DnsHandle, NetError> {
    tokio::runtime::Handle::try_current().map_err(|_| NetError::NoRuntime)?;
    let udp_addr = udp.local_addr().map_err(|source| NetError::DnsBind {
        addr: DNS_ADDR,
        source,
    })?;
    let tcp_addr = tcp.local_addr().map_err(|source| NetError::DnsBind {
        addr: DNS_ADDR,
        source,
    })?;
    let udp = UdpSocket::from_std(udp).map_err(|source| NetError::DnsBind {
        addr: udp_addr,
        source,
    })?;
    let tcp = TcpListener::from_std(tcp).map_err(|source| NetError::DnsBind {
        addr: tcp_addr,
        source,
    })?;
    let ctx = Arc::new(Context {
        container_id,
        resolver,
        upstream,
        domains: domains
            .iter()
            .map(|domain| domain.trim_matches('.').to_ascii_lowercase())
            .filter(|domain| !domain.is_empty())
            .collect(),
        rotation: AtomicUsize::new(0),
    });
    let tasks = vec![
        tokio::spawn(udp_loop(Arc::new(udp), ctx.clone())),
        tokio::spawn(tcp_loop(tcp, ctx)),
    ];
    Ok(DnsHandle {
        tasks,
        udp: udp_addr,
        tcp: tcp_addr,
    })
}

struct Context {
    container_id: String,
    resolver: Arc<dyn Resolver>,
    upstream: Vec<SocketAddr>,
    /// Search domains, lowercase without dots at either end.
    domains: Vec<String>,
    rotation: AtomicUsize,
}

async fn udp_loop(socket: Arc<UdpSocket>, ctx: Arc<Context>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let query = buf[..len].to_vec();
        let (socket, ctx) = (socket.clone(), ctx.clone());
        tokio::spawn(async move {
            if let Some(reply) = answer(&query, &ctx, false).await {
                let _ = socket.send_to(&reply, peer).await;
            }
        });
    }
}

async fn tcp_loop(listener: TcpListener, ctx: Arc<Context>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(tcp_client(stream, ctx.clone()));
    }
}

async fn tcp_client(mut stream: TcpStream, ctx: Arc<Context>) {
    while let Ok(Some(query)) = read_framed(&mut stream).await {
        let Some(reply) = answer(&query, &ctx, true).await else {
            return;
        };
        if write_framed(&mut stream, &reply).await.is_err() {
            return;
        }
    }
}

async fn read_framed(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message).await?;
    Ok(Some(message))
}

async fn write_framed(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(message.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "message too long"))?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

/// The reply to one query: ours for containers, the upstream's bytes otherwise. None when
/// the bytes are not even a DNS header (nothing to reply to).
async fn answer(query: &[u8], ctx: &Context, over_tcp: bool) -> Option<Vec<u8>> {
    let Ok(request) = Message::from_vec(query) else {
        let id = u16::from_be_bytes([*query.first()?, *query.get(1)?]);
        return encode(&Message::error_msg(
            id,
            OpCode::Query,
            ResponseCode::FormErr,
        ));
    };
    if request.message_type() != MessageType::Query {
        return None;
    }
    if request.op_code() != OpCode::Query || request.queries().len() != 1 {
        return reply_code(&request, ResponseCode::NotImp);
    }
    if let Some(local) = local_answer(&request, ctx) {
        return encode(&local);
    }
    match forward(query, &ctx.upstream, over_tcp).await {
        Some(reply) => Some(reply),
        // Nowhere to ask (an internal network, no resolvers): the name does not exist.
        None if ctx.upstream.is_empty() => reply_code(&request, ResponseCode::NXDomain),
        None => reply_code(&request, ResponseCode::ServFail),
    }
}

fn reply_code(request: &Message, code: ResponseCode) -> Option<Vec<u8>> {
    let mut reply = response_to(request);
    reply.set_response_code(code);
    encode(&reply)
}

fn encode(message: &Message) -> Option<Vec<u8>> {
    message.to_vec().ok()
}

fn response_to(request: &Message) -> Message {
    let mut reply = Message::new();
    reply
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .add_queries(request.queries().to_vec());
    reply
}

/// Our own answer for container names and addresses, None to forward.
fn local_answer(request: &Message, ctx: &Context) -> Option<Message> {
    let query = request.queries().first()?;
    let name = query.name();
    match query.query_type() {
        RecordType::A | RecordType::AAAA => {
            let wanted = normalize(name);
            let ips = lookup(ctx, &wanted)?;
            let v4 = query.query_type() == RecordType::A;
            let mut records: Vec<Record> = ips
                .into_iter()
                .filter_map(|ip| match ip {
                    IpAddr::V4(ip) if v4 => Some(RData::A(A(ip))),
                    IpAddr::V6(ip) if !v4 => Some(RData::AAAA(AAAA(ip))),
                    _ => None,
                })
                .map(|rdata| Record::from_rdata(name.clone(), TTL, rdata))
                .collect();
            // Round robin: every query starts one further along the list.
            if !records.is_empty() {
                let turn = ctx.rotation.fetch_add(1, Ordering::Relaxed) % records.len();
                records.rotate_left(turn);
            }
            let mut reply = response_to(request);
            reply.set_authoritative(true).add_answers(records);
            Some(reply)
        }
        RecordType::PTR => {
            let ip = name.parse_arpa_name().ok()?.addr();
            let target = ctx.resolver.reverse(&ctx.container_id, ip)?;
            let target = Name::from_ascii(format!("{}.", target.trim_end_matches('.'))).ok()?;
            let mut reply = response_to(request);
            reply.set_authoritative(true).add_answer(Record::from_rdata(
                name.clone(),
                TTL,
                RData::PTR(PTR(target)),
            ));
            Some(reply)
        }
        _ => None,
    }
}

/// The resolver's answer for `name`, or for `name` without one of the search domains.
fn lookup(ctx: &Context, name: &str) -> Option<Vec<IpAddr>> {
    if let Some(ips) = ctx.resolver.lookup(&ctx.container_id, name) {
        return Some(ips);
    }
    ctx.domains.iter().find_map(|domain| {
        let short = name.strip_suffix(domain.as_str())?.strip_suffix('.')?;
        if short.is_empty() {
            return None;
        }
        ctx.resolver.lookup(&ctx.container_id, short)
    })
}

/// Docker's name matching: case-insensitive, a trailing dot is fine.
fn normalize(name: &Name) -> String {
    name.to_lowercase()
        .to_ascii()
        .trim_end_matches('.')
        .to_string()
}

/// Asks each upstream in turn over UDP (TCP when the client used TCP or the UDP answer is
/// truncated); the first answer with the query's id wins.
async fn forward(query: &[u8], upstream: &[SocketAddr], over_tcp: bool) -> Option<Vec<u8>> {
    for server in upstream {
        let reply = if over_tcp {
            tokio::time::timeout(UPSTREAM_TIMEOUT, forward_tcp(query, *server)).await
        } else {
            tokio::time::timeout(UPSTREAM_TIMEOUT, forward_udp(query, *server)).await
        };
        if let Ok(Some(reply)) = reply {
            return Some(reply);
        }
    }
    None
}

async fn forward_udp(query: &[u8], server: SocketAddr) -> Option<Vec<u8>> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.ok()?;
    socket.connect(server).await.ok()?;
    socket.send(query).await.ok()?;
    let mut buf = vec![0u8; 65535];
    loop {
        let len = socket.recv(&mut buf).await.ok()?;
        let reply = &buf[..len];
        if reply.len() < 3 || reply[..2] != query[..2] {
            continue; // not the answer to this query
        }
        // TC bit: the answer did not fit, ask again over TCP.
        if reply[2] & 0x02 != 0 {
            return forward_tcp(query, server).await;
        }
        return Some(reply.to_vec());
    }
}

async fn forward_tcp(query: &[u8], server: SocketAddr) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(server).await.ok()?;
    write_framed(&mut stream, query).await.ok()?;
    read_framed(&mut stream).await.ok()?
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use std::collections::HashMap;

    struct FakeResolver(HashMap<String, Vec<IpAddr>>);

    impl Resolver for FakeResolver {
        fn lookup(&self, from: &str, name: &str) -> Option<Vec<IpAddr>> {
            assert_eq!(from, "c1");
            self.0.get(name).cloned()
        }
        fn reverse(&self, _from: &str, ip: IpAddr) -> Option<String> {
            self.0
                .iter()
                .find(|(_, ips)| ips.contains(&ip))
                .map(|(name, _)| name.clone())
        }
    }

    fn resolver() -> Arc<dyn Resolver> {
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
        Arc::new(FakeResolver(names))
    }

    fn start(upstream: Vec<SocketAddr>) -> DnsHandle {
        let (udp, tcp) = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        serve_sockets(
            udp,
            tcp,
            "c1".into(),
            resolver(),
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

    /// An upstream on 127.0.0.1: UDP answers 192.0.2.53 (with TC set for "big.example."),
    /// TCP answers 192.0.2.54; "missing.example." is NXDOMAIN.
    async fn fake_upstream() -> (SocketAddr, Vec<JoinHandle<()>>) {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = udp.local_addr().expect("addr");
        let tcp = TcpListener::bind(addr).await.expect("bind tcp");
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((len, peer)) = udp.recv_from(&mut buf).await {
                let request = Message::from_vec(&buf[..len]).expect("query");
                let name = request.queries()[0].name().to_ascii();
                let mut reply = upstream_reply(&request, Ipv4Addr::new(192, 0, 2, 53));
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
                    let reply = upstream_reply(&request, Ipv4Addr::new(192, 0, 2, 54));
                    let _ = write_framed(&mut stream, &reply.to_vec().expect("encode")).await;
                }
            }
        });
        (addr, vec![udp_task, tcp_task])
    }

    fn upstream_reply(request: &Message, ip: Ipv4Addr) -> Message {
        let mut reply = response_to(request);
        let query = &request.queries()[0];
        if query.name().to_ascii() == "missing.example." {
            reply.set_response_code(ResponseCode::NXDomain);
        } else {
            reply.add_answer(Record::from_rdata(
                query.name().clone(),
                60,
                RData::A(A(ip)),
            ));
        }
        reply
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
            ResponseCode::NXDomain,
            "not a search domain"
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
        let (upstream, _tasks) = fake_upstream().await;
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
    async fn a_truncated_upstream_answer_is_asked_again_over_tcp() {
        let (upstream, _tasks) = fake_upstream().await;
        let server = start(vec![upstream]);
        let reply = ask_udp(server.udp_addr(), &query("big.example.", RecordType::A, 13)).await;
        assert!(!reply.truncated());
        assert_eq!(
            addresses(&reply),
            vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 54))]
        );
    }

    #[tokio::test]
    async fn unreachable_upstreams_give_servfail_and_no_upstream_gives_nxdomain() {
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let closed_addr = closed.local_addr().expect("addr");
        drop(closed);
        let server = start(vec![closed_addr]);
        let reply = ask_udp(server.udp_addr(), &query("example.com.", RecordType::A, 14)).await;
        assert_eq!(reply.response_code(), ResponseCode::ServFail);
        let server = start(vec![]);
        let reply = ask_udp(server.udp_addr(), &query("example.com.", RecordType::A, 15)).await;
        assert_eq!(reply.response_code(), ResponseCode::NXDomain);
        assert_eq!(reply.id(), 15);
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
        let answered =
            tokio::time::timeout(Duration::from_millis(300), socket.recv(&mut buf)).await;
        assert!(!matches!(answered, Ok(Ok(_))), "a stopped server answered");
    }
}
