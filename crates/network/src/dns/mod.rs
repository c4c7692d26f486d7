//! The embedded DNS server at 127.0.0.11:53 (UDP and TCP) inside a container's network
//! namespace: A/AAAA/PTR for containers from a [`Resolver`], everything else forwarded
//! (`forward`: which upstreams, from which namespace, as Docker does).
//!
//! Built on hickory-proto's message codec with a small UDP/TCP loop of our own rather than
//! hickory-server: forwarded answers are relayed byte for byte (only our own answers are
//! built), which hickory-server's `ResponseHandler` (it wants a `MessageResponse`) cannot
//! do, and one query loop per socket is all this needs.
//!
//! The listening sockets are created inside the container's namespace (on a `NetNs::run`
//! thread) and then served on the caller's tokio runtime.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use crate::error::NetError;
use crate::netns::NetNs;

mod forward;

pub use forward::Upstream;
use forward::{read_framed, write_framed, Forwarder, NamespaceSockets};

/// Where the embedded server listens inside the container (Docker's address).
pub const DNS_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)), 53);

/// TTL of the answers about containers (Docker's embedded server uses 600 s).
const TTL: u32 = 600;

/// Names and addresses of the containers a container can see (network scoped).
pub trait Resolver: Send + Sync + 'static {
    /// A/AAAA records for `name` as seen from the container `from`, None if the name is not a
    /// container, alias or short id on its networks (then the query is forwarded upstream).
    /// `name` is lowercase without a trailing dot.
    fn lookup(&self, from: &str, name: &str) -> Option<Vec<IpAddr>>;
    /// The container name for `ip` as seen from `from`, None to forward the PTR query.
    fn reverse(&self, from: &str, ip: IpAddr) -> Option<String>;
    /// Whether `from` has a way out (an endpoint on a network that is not `--internal`):
    /// only then are the host's resolvers asked for it. Docker's forwarding policy
    /// (moby's `Sandbox.hasExternalAccess`): a container on internal networks only must not
    /// reach the outside through the daemon's namespace. Asked at every forwarded query, so
    /// live connect and disconnect count at once.
    fn external_access(&self, from: &str) -> bool;
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
    upstream: Vec<Upstream>,
) -> Result<DnsHandle, NetError> {
    serve_with_domains(netns, container_id, resolver, upstream, Vec::new())
}

/// [`serve`] for a container with search domains (`--dns-search`, `--domainname`): as
/// Docker's embedded server does, `web.<domain>` is also looked up as `web` when the full
/// name is not a container.
pub fn serve_with_domains(
    netns: &NetNs,
    container_id: String,
    resolver: Arc<dyn Resolver>,
    upstream: Vec<Upstream>,
    domains: Vec<String>,
) -> Result<DnsHandle, NetError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| NetError::NoRuntime)?;
    let (udp, tcp) = netns.run(|| bind(DNS_ADDR))??;
    let _guard = runtime.enter();
    let forwarder = Forwarder {
        upstream,
        sockets: Some(NamespaceSockets::new(netns.path().to_path_buf())),
    };
    serve_in(udp, tcp, container_id, resolver, forwarder, domains)
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

/// Serves already bound sockets on the current runtime, every upstream asked from the
/// caller's namespace whatever its `from_host` (tests on 127.0.0.1).
pub fn serve_sockets(
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    container_id: String,
    resolver: Arc<dyn Resolver>,
    upstream: Vec<Upstream>,
    domains: Vec<String>,
) -> Result<DnsHandle, NetError> {
    let forwarder = Forwarder {
        upstream,
        sockets: None,
    };
    serve_in(udp, tcp, container_id, resolver, forwarder, domains)
}

fn serve_in(
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    container_id: String,
    resolver: Arc<dyn Resolver>,
    forwarder: Forwarder,
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
        forwarder,
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
    forwarder: Forwarder,
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
        // Ours to fit the client's limit, as Docker's `resp.Truncate(maxSize)`: 512 bytes
        // or the EDNS payload size over UDP, 65535 over TCP.
        let limit = if over_tcp {
            usize::from(u16::MAX)
        } else {
            usize::from(request.max_payload())
        };
        return encode_within(local, limit, !over_tcp);
    }
    let external_access = ctx.resolver.external_access(&ctx.container_id);
    match ctx
        .forwarder
        .forward(query, over_tcp, external_access)
        .await
    {
        Some(reply) => Some(reply),
        // No upstream to ask (an internal network, no resolvers) or none answered:
        // SERVFAIL, as Docker's resolver replies.
        None => reply_code(&request, ResponseCode::ServFail),
    }
}

/// `reply` encoded in at most `limit` bytes: trailing answers dropped until it fits, the
/// TC bit set when `truncate_flag` (UDP: the client may ask again over TCP).
fn encode_within(mut reply: Message, limit: usize, truncate_flag: bool) -> Option<Vec<u8>> {
    let mut bytes = reply.to_vec().ok()?;
    while bytes.len() > limit {
        let mut answers = reply.take_answers();
        if answers.pop().is_none() {
            break;
        }
        reply.insert_answers(answers);
        reply.set_truncated(truncate_flag);
        bytes = reply.to_vec().ok()?;
    }
    Some(bytes)
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

#[cfg(test)]
mod tests;
