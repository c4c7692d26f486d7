//! What the embedded DNS (127.0.0.11 in containers on user-defined networks) answers:
//! container names, `--network-alias`es and short IDs of containers sharing a user-defined
//! network with the asker (network scoped, `name.network` qualified too), round-robin for
//! shared aliases; everything else goes to the host's resolvers.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use berth_network::dns::Upstream;

use super::datapath::NameLookup;
use super::record::Driver;
use super::NetworkService;

/// The service's view for the DNS server (weak: a server never keeps the service alive).
pub(super) struct ServiceLookup {
    pub(super) service: Weak<NetworkService>,
    pub(super) turn: AtomicUsize,
}

impl ServiceLookup {
    pub(super) fn new(service: &Arc<NetworkService>) -> Arc<ServiceLookup> {
        Arc::new(ServiceLookup {
            service: Arc::downgrade(service),
            turn: AtomicUsize::new(0),
        })
    }
}

impl NameLookup for ServiceLookup {
    fn lookup(&self, from: &str, name: &str) -> Option<Vec<IpAddr>> {
        let service = self.service.upgrade()?;
        let mut ips = resolve(&service, from, name);
        if ips.is_empty() {
            return None;
        }
        let len = ips.len();
        ips.rotate_left(self.turn.fetch_add(1, Ordering::Relaxed) % len);
        Some(ips)
    }

    fn reverse(&self, from: &str, ip: IpAddr) -> Option<String> {
        let service = self.service.upgrade()?;
        let state = service.lock();
        state
            .networks
            .values()
            .filter(|n| n.embedded_dns() && n.endpoints.contains_key(from))
            .find_map(|n| {
                n.endpoints
                    .values()
                    .find(|e| {
                        e.ipv4.map(|s| s.addr) == Some(ip) || e.ipv6.map(|s| s.addr) == Some(ip)
                    })
                    .map(|e| format!("{}.{}", e.container_name, n.name))
            })
    }

    /// Docker's `hasExternalAccess`: an endpoint on a bridge network that is not internal.
    fn external_access(&self, from: &str) -> bool {
        let Some(service) = self.service.upgrade() else {
            return false;
        };
        let state = service.lock();
        state
            .networks
            .values()
            .any(|n| n.driver == Driver::Bridge && !n.internal && n.endpoints.contains_key(from))
    }
}

/// Addresses of `name` as seen from container `from` (both families; the server picks).
pub(super) fn resolve(service: &NetworkService, from: &str, name: &str) -> Vec<IpAddr> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let state = service.lock();
    let mut ips = Vec::new();
    for network in state
        .networks
        .values()
        .filter(|n| n.embedded_dns() && n.endpoints.contains_key(from))
    {
        let suffix = format!(".{}", network.name.to_ascii_lowercase());
        let wanted = name.strip_suffix(&suffix).unwrap_or(&name);
        for endpoint in network.endpoints.values() {
            let matches = endpoint
                .dns_names
                .iter()
                .chain(std::iter::once(&endpoint.container_name))
                .any(|n| n.eq_ignore_ascii_case(wanted));
            if matches {
                ips.extend(endpoint.ipv4.map(|s| s.addr));
                ips.extend(endpoint.ipv6.map(|s| s.addr));
            }
        }
    }
    ips.sort();
    ips.dedup();
    ips
}

/// The host's nameservers as upstreams (port 53), asked from berthd's namespace as Docker
/// asks the servers of the host's resolv.conf from the host's.
pub(super) fn host_upstreams(resolv_conf: &Path) -> Vec<Upstream> {
    let text = std::fs::read_to_string(resolv_conf).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some("nameserver"))
                .then(|| fields.next())
                .flatten()
        })
        .filter_map(|server| server.split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| Upstream::host(SocketAddr::new(ip, 53)))
        .collect()
}
