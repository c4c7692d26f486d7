//! Forwarding of the queries the embedded DNS does not answer itself: which upstreams are
//! asked, from which network namespace, and which of their answers is relayed.
//!
//! Docker's rules (moby's libnetwork resolver since 27.2, `forwardExtDNS`/`dialExtDNS`, and
//! `TransformForIntNS`): servers read from the host's resolv.conf are asked from the host's
//! namespace (for berthd: its own), `--dns` servers from the container's namespace, so they
//! are reached (or not) exactly as the container's own traffic is; a `--dns 127.0.0.53`
//! names a server on the container's loopback. A container whose networks are all
//! `--internal` never gets the host's servers asked for it. At most three upstreams are
//! tried, in order; a SERVFAIL or REFUSED answer, a timeout or an unreachable server moves
//! on to the next; any other answer (NXDOMAIN included) is relayed byte for byte, a
//! truncated UDP answer too (the client asks again over TCP, which is then forwarded over
//! TCP). When no upstream answers, the client gets SERVFAIL.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustix::thread::LinkNameSpaceType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::sync::oneshot;

/// How long one upstream gets to answer before the next is tried.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// Docker asks at most this many upstreams (libnetwork's `maxExtDNS`).
const MAX_UPSTREAMS: usize = 3;
/// A container namespace's socket thread ends after this long without a request.
const SOCKET_THREAD_IDLE: Duration = Duration::from_secs(30);

/// An upstream resolver of the embedded DNS and the namespace its queries leave from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Upstream {
    pub addr: SocketAddr,
    /// Asked from berthd's (the host's) namespace, as Docker does for the servers of the
    /// host's resolv.conf (libnetwork's `HostLoopback`); else from the container's
    /// namespace, as Docker does for `--dns` servers.
    pub from_host: bool,
}

impl Upstream {
    /// A server of the host's resolv.conf (asked from the host's namespace).
    pub fn host(addr: SocketAddr) -> Upstream {
        Upstream {
            addr,
            from_host: true,
        }
    }

    /// A `--dns` server (asked from the container's namespace).
    pub fn container(addr: SocketAddr) -> Upstream {
        Upstream {
            addr,
            from_host: false,
        }
    }
}

/// Where the forwarding sockets come from.
pub(super) struct Forwarder {
    pub(super) upstream: Vec<Upstream>,
    /// The container's namespace (None: tests serving on the host's loopback, where every
    /// upstream is asked from the caller's namespace).
    pub(super) sockets: Option<NamespaceSockets>,
}

impl Forwarder {
    /// The first usable upstream answer to `query`, None when none answered.
    /// `external_access` false (internal networks only) leaves the host's servers out.
    pub(super) async fn forward(
        &self,
        query: &[u8],
        over_tcp: bool,
        external_access: bool,
    ) -> Option<Vec<u8>> {
        let candidates = self
            .upstream
            .iter()
            .filter(|upstream| external_access || !upstream.from_host)
            .take(MAX_UPSTREAMS);
        for upstream in candidates {
            let exchange = self.exchange(query, *upstream, over_tcp);
            let Ok(Some(reply)) = tokio::time::timeout(UPSTREAM_TIMEOUT, exchange).await else {
                continue;
            };
            // RCODE is the low nibble of byte 3: 2 SERVFAIL, 5 REFUSED.
            if matches!(reply.get(3).map(|b| b & 0x0f), Some(2) | Some(5)) {
                continue;
            }
            return Some(reply);
        }
        None
    }

    async fn exchange(&self, query: &[u8], upstream: Upstream, over_tcp: bool) -> Option<Vec<u8>> {
        let v6 = upstream.addr.is_ipv6();
        let in_container = match &self.sockets {
            Some(sockets) if !upstream.from_host => Some(sockets),
            _ => None,
        };
        if over_tcp {
            let socket = match in_container {
                Some(sockets) => {
                    let fd = sockets.socket(SocketType::STREAM, v6).await.ok()?;
                    TcpSocket::from_std_stream(std::net::TcpStream::from(fd))
                }
                None if v6 => TcpSocket::new_v6().ok()?,
                None => TcpSocket::new_v4().ok()?,
            };
            let mut stream = socket.connect(upstream.addr).await.ok()?;
            if connected_to_itself(stream.local_addr(), upstream.addr) {
                return None;
            }
            exchange_tcp(&mut stream, query)
                .await
                .filter(|reply| is_response(reply))
        } else {
            let socket = match in_container {
                Some(sockets) => {
                    let fd = sockets.socket(SocketType::DGRAM, v6).await.ok()?;
                    UdpSocket::from_std(std::net::UdpSocket::from(fd)).ok()?
                }
                None => {
                    let local: SocketAddr = if v6 {
                        (Ipv6Addr::UNSPECIFIED, 0).into()
                    } else {
                        (Ipv4Addr::UNSPECIFIED, 0).into()
                    };
                    UdpSocket::bind(local).await.ok()?
                }
            };
            socket.connect(upstream.addr).await.ok()?;
            if connected_to_itself(socket.local_addr(), upstream.addr) {
                return None;
            }
            exchange_udp(&socket, query).await
        }
    }
}

/// Whether a socket bound to an ephemeral port was given the upstream's own address (an
/// upstream on a free local port): its "answer" would be the query itself.
pub(super) fn connected_to_itself(local: io::Result<SocketAddr>, upstream: SocketAddr) -> bool {
    local.is_ok_and(|local| local.port() == upstream.port() && local.ip() == upstream.ip())
}

/// Whether `message` is a DNS response (QR, the top bit of byte 2, set) with a full header.
fn is_response(message: &[u8]) -> bool {
    message.len() >= 12 && message[2] & 0x80 != 0
}

/// One query over a connected UDP socket; the response with the query's id, truncated or
/// not (a datagram that is no response, or answers another id, is ignored).
async fn exchange_udp(socket: &UdpSocket, query: &[u8]) -> Option<Vec<u8>> {
    socket.send(query).await.ok()?;
    let mut buf = vec![0u8; 65535];
    loop {
        let len = socket.recv(&mut buf).await.ok()?;
        let reply = &buf[..len];
        if is_response(reply) && reply[..2] == query[..2] {
            return Some(reply.to_vec());
        }
    }
}

async fn exchange_tcp(stream: &mut TcpStream, query: &[u8]) -> Option<Vec<u8>> {
    write_framed(stream, query).await.ok()?;
    read_framed(stream).await.ok()?
}

/// One length-prefixed DNS message (RFC 1035 §4.2.2), None at a clean end of stream.
pub(super) async fn read_framed(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message).await?;
    Ok(Some(message))
}

pub(super) async fn write_framed(stream: &mut TcpStream, message: &[u8]) -> io::Result<()> {
    let len = u16::try_from(message.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "message too long"))?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

/// Makes sockets inside a container's network namespace: a socket belongs to the namespace
/// of the thread that created it, so a dedicated std thread `setns()`s into the namespace
/// and creates them there (never a tokio worker: DESIGN.md); the sockets are then used on
/// the runtime like any other. The thread is started on demand and ends after
/// [`SOCKET_THREAD_IDLE`] without a request, so an idle container costs no thread.
pub(super) struct NamespaceSockets {
    netns: PathBuf,
    worker: Mutex<Option<mpsc::Sender<SocketJob>>>,
}

struct SocketJob {
    kind: SocketType,
    v6: bool,
    reply: oneshot::Sender<io::Result<OwnedFd>>,
}

impl NamespaceSockets {
    pub(super) fn new(netns: PathBuf) -> NamespaceSockets {
        NamespaceSockets {
            netns,
            worker: Mutex::new(None),
        }
    }

    /// A new non-blocking, close-on-exec socket of `kind` made in the namespace.
    async fn socket(&self, kind: SocketType, v6: bool) -> io::Result<OwnedFd> {
        // Twice: the idle thread may end between our send and its receive.
        for _ in 0..2 {
            let (reply, answer) = oneshot::channel();
            let job = SocketJob { kind, v6, reply };
            if self.sender()?.send(job).is_err() {
                self.forget();
                continue;
            }
            match answer.await {
                Ok(result) => return result,
                Err(_) => self.forget(),
            }
        }
        Err(io::Error::other(format!(
            "no socket thread in network namespace {}",
            self.netns.display()
        )))
    }

    fn sender(&self) -> io::Result<mpsc::Sender<SocketJob>> {
        let mut worker = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = worker.as_ref() {
            return Ok(sender.clone());
        }
        let (sender, jobs) = mpsc::channel();
        let netns = self.netns.clone();
        std::thread::Builder::new()
            .name("berth-dns-netns".into())
            .spawn(move || socket_thread(&netns, &jobs))?;
        *worker = Some(sender.clone());
        Ok(sender)
    }

    fn forget(&self) {
        *self.worker.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Enters `netns` and makes sockets until idle; answers every job with the entry's error
/// when the namespace cannot be entered (it is gone: the container stopped).
fn socket_thread(netns: &std::path::Path, jobs: &mpsc::Receiver<SocketJob>) {
    let entered = std::fs::File::open(netns).and_then(|file| {
        rustix::thread::move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network))
            .map_err(io::Error::from)
    });
    while let Ok(job) = jobs.recv_timeout(SOCKET_THREAD_IDLE) {
        let made = match &entered {
            Ok(()) => {
                let family = if job.v6 {
                    AddressFamily::INET6
                } else {
                    AddressFamily::INET
                };
                rustix::net::socket_with(
                    family,
                    job.kind,
                    SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
                    None,
                )
                .map_err(io::Error::from)
            }
            Err(err) => Err(io::Error::new(err.kind(), err.to_string())),
        };
        let _ = job.reply.send(made);
    }
}
