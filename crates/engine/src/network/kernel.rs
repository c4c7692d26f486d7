//! The real datapath: berth-network's netns, bridge/veth, nftables and DNS functions behind
//! the service's [`Datapath`] seam (called from `spawn_blocking`).
//!
//! Kernel work the engine asks for again and again is skipped when it would change nothing
//! (issue 5: the default bridge's cost per `docker run --rm`): a firewall state equal to the
//! one this process applied last is not applied again, a daemon's tables that lose their
//! last endpoint stay for [`FIREWALL_LINGER`] before they are removed (a container started
//! meanwhile finds them in place), and a bridge ensured with the same settings is only
//! checked for existence.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use berth_network::ipam::Subnet;
use berth_network::ipnet;
use berth_network::{bridge, dns, firewall, netns};

use super::datapath::{
    BridgeSpec, Datapath, DatapathError, DnsGuard, EndpointSpec, FirewallSpec, NameLookup, Proto,
};

/// berth-network on this host; `table` names this daemon's nftables tables.
pub struct Kernel {
    pub table: String,
}

/// How long a daemon's tables stay after its last endpoint went. Back-to-back `run --rm`
/// of containers without published ports then touch no nftables at all; an idle daemon
/// still ends up with no tables, as before, just this much later.
pub(super) const FIREWALL_LINGER: Duration = Duration::from_secs(2);

/// What this process last did to one daemon's tables. Process-wide, keyed by table name:
/// the tables are host state, whichever `Kernel` value asks.
#[derive(Default)]
struct TableState {
    /// The state last applied with success; None when unknown (nothing done yet, or the
    /// last change failed part way) or when the tables were removed.
    applied: Option<FirewallSpec>,
    /// True once a removal succeeded and nothing was applied since.
    cleared: bool,
    /// Bumped by every request; a lingering removal runs only if no request came after it.
    generation: u64,
}

fn tables() -> MutexGuard<'static, HashMap<String, TableState>> {
    static TABLES: OnceLock<Mutex<HashMap<String, TableState>>> = OnceLock::new();
    TABLES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Bridges this process ensured, with the settings they were ensured with.
fn ensured_bridges() -> MutexGuard<'static, HashMap<String, BridgeSpec>> {
    static BRIDGES: OnceLock<Mutex<HashMap<String, BridgeSpec>>> = OnceLock::new();
    BRIDGES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The sysctls an application sets on bridges (route_localnet, for published ports reached
/// on 127.0.0.1) are only set on bridges that exist then; a bridge made after the last
/// application (a network's first container) needs one more even when the rules are equal.
fn bridge_sysctls_hold(spec: &FirewallSpec) -> bool {
    spec.networks.iter().all(|network| {
        let path = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", network.bridge);
        match std::fs::read_to_string(path) {
            Ok(value) => value.trim() == "1",
            // No such bridge (yet): an application would not set it either.
            Err(_) => true,
        }
    })
}

impl Kernel {
    fn apply_now(&self, spec: &FirewallSpec) -> Result<(), DatapathError> {
        let state = firewall::FirewallState {
            networks: spec
                .networks
                .iter()
                .map(|n| firewall::NetworkRules {
                    bridge: n.bridge.clone(),
                    subnets: n.subnets.iter().filter_map(net).collect(),
                    masquerade: n.masquerade,
                    icc: n.icc,
                    internal: n.internal,
                })
                .collect(),
            ports: spec
                .ports
                .iter()
                .map(|p| firewall::PortRule {
                    host_ip: p.host_ip,
                    host_port: p.host_port,
                    proto: match p.proto {
                        Proto::Tcp => firewall::Proto::Tcp,
                        Proto::Udp => firewall::Proto::Udp,
                    },
                    container_ip: p.container_ip,
                    container_port: p.container_port,
                    bridge: p.bridge.clone(),
                })
                .collect(),
            // Published ports and egress work under a host FORWARD drop policy, as Docker's.
            allow_forward: true,
        };
        firewall::apply_in(&self.table, &state).map_err(|e| {
            DatapathError::new(format!("applying berth's nftables table {}", self.table), e)
        })
    }
}

/// Removes `table` after [`FIREWALL_LINGER`] unless another request for it came meanwhile.
fn clear_later(table: String, generation: u64) {
    let spawned = std::thread::Builder::new()
        .name("berth-nft-linger".into())
        .spawn(move || {
            std::thread::sleep(FIREWALL_LINGER);
            let mut all = tables();
            let state = all.entry(table.clone()).or_default();
            if state.generation != generation {
                return;
            }
            state.applied = None;
            match firewall::clear_in(&table) {
                Ok(()) => state.cleared = true,
                Err(e) => eprintln!("berthd: removing berth's nftables table {table}: {e}"),
            }
        });
    if let Err(e) = spawned {
        eprintln!("berthd: cannot start the thread that removes idle nftables tables: {e}");
    }
}

fn v4(subnet: &Subnet) -> Option<ipnet::Ipv4Net> {
    match subnet.addr {
        IpAddr::V4(addr) => ipnet::Ipv4Net::new(addr, subnet.prefix).ok(),
        IpAddr::V6(_) => None,
    }
}

fn v6(subnet: &Subnet) -> Option<ipnet::Ipv6Net> {
    match subnet.addr {
        IpAddr::V6(addr) => ipnet::Ipv6Net::new(addr, subnet.prefix).ok(),
        IpAddr::V4(_) => None,
    }
}

fn net(subnet: &Subnet) -> Option<ipnet::IpNet> {
    ipnet::IpNet::new(subnet.addr, subnet.prefix).ok()
}

/// Bridges the service's lookups to berth-network's resolver trait.
struct Resolver(Arc<dyn NameLookup>);

impl dns::Resolver for Resolver {
    fn lookup(&self, from: &str, name: &str) -> Option<Vec<IpAddr>> {
        self.0.lookup(from, name)
    }
    fn reverse(&self, from: &str, ip: IpAddr) -> Option<String> {
        self.0.reverse(from, ip)
    }
    fn external_access(&self, from: &str) -> bool {
        self.0.external_access(from)
    }
}

impl Datapath for Kernel {
    fn create_netns(&self, path: &Path) -> Result<(), DatapathError> {
        netns::NetNs::create(path).map(|_| ()).map_err(|e| {
            DatapathError::new(format!("creating network namespace {}", path.display()), e)
        })
    }

    fn remove_netns(&self, path: &Path) -> Result<(), DatapathError> {
        netns::NetNs::remove(path).map_err(|e| {
            DatapathError::new(format!("removing network namespace {}", path.display()), e)
        })
    }

    fn ensure_bridge(&self, spec: &BridgeSpec) -> Result<(), DatapathError> {
        if ensured_bridges().get(&spec.name) == Some(spec) && bridge::link_exists(&spec.name) {
            return Ok(());
        }
        let config = bridge::BridgeConfig {
            name: spec.name.clone(),
            mtu: spec.mtu,
            ipv4: spec.addresses.iter().filter_map(v4).collect(),
            ipv6: spec.addresses.iter().filter_map(v6).collect(),
            icc: spec.icc,
            internal: spec.internal,
        };
        bridge::ensure_bridge(&config)
            .map_err(|e| DatapathError::new(format!("creating bridge {}", spec.name), e))?;
        ensured_bridges().insert(spec.name.clone(), spec.clone());
        Ok(())
    }

    fn delete_bridge(&self, name: &str) -> Result<(), DatapathError> {
        ensured_bridges().remove(name);
        bridge::delete_bridge(name)
            .map_err(|e| DatapathError::new(format!("deleting bridge {name}"), e))
    }

    fn attach(&self, spec: &EndpointSpec) -> Result<(), DatapathError> {
        let endpoint = bridge::Endpoint {
            bridge: spec.bridge.clone(),
            host_veth: spec.host_veth.clone(),
            netns: spec.netns.clone(),
            ifname: spec.ifname.clone(),
            mac: spec.mac,
            mtu: spec.mtu,
            ipv4: spec.ipv4.as_ref().and_then(v4),
            gateway4: match spec.gateway4 {
                Some(IpAddr::V4(gw)) => Some(gw),
                _ => None,
            },
            ipv6: spec.ipv6.as_ref().and_then(v6),
            gateway6: match spec.gateway6 {
                Some(IpAddr::V6(gw)) => Some(gw),
                _ => None,
            },
        };
        bridge::attach(&endpoint).map_err(|e| {
            DatapathError::new(
                format!("attaching {} to bridge {}", spec.ifname, spec.bridge),
                e,
            )
        })
    }

    fn detach(&self, host_veth: &str) -> Result<(), DatapathError> {
        bridge::detach(host_veth)
            .map_err(|e| DatapathError::new(format!("removing veth {host_veth}"), e))
    }

    /// Skipped when `spec` is what this process applied last and the bridges' sysctls are
    /// in place: every container start and exit asks, most change nothing (no published
    /// port, another container on the network already). Any request cancels a lingering
    /// removal.
    fn apply_firewall(&self, spec: &FirewallSpec) -> Result<(), DatapathError> {
        let mut all = tables();
        let state = all.entry(self.table.clone()).or_default();
        state.generation += 1;
        if state.applied.as_ref() == Some(spec) && bridge_sysctls_hold(spec) {
            return Ok(());
        }
        state.applied = None;
        state.cleared = false;
        self.apply_now(spec)?;
        state.applied = Some(spec.clone());
        Ok(())
    }

    /// Tables this process applied are removed [`FIREWALL_LINGER`] later, on a thread of
    /// its own, unless a request comes first; others (stale ones found at berthd's start)
    /// at once; nothing when this process removed them already. A berthd stopped within
    /// the linger leaves its tables to the next start, which removes them at once.
    fn clear_firewall(&self) -> Result<(), DatapathError> {
        let mut all = tables();
        let state = all.entry(self.table.clone()).or_default();
        state.generation += 1;
        if state.cleared {
            return Ok(());
        }
        if state.applied.is_some() {
            clear_later(self.table.clone(), state.generation);
            return Ok(());
        }
        firewall::clear_in(&self.table).map_err(|e| {
            DatapathError::new(format!("removing berth's nftables table {}", self.table), e)
        })?;
        state.cleared = true;
        Ok(())
    }

    fn bridge_addresses(&self, name: &str) -> Result<Vec<Subnet>, DatapathError> {
        let addresses = bridge::bridge_addresses(name)
            .map_err(|e| DatapathError::new(format!("reading the addresses of {name}"), e))?;
        Ok(addresses
            .into_iter()
            .filter_map(|a| Subnet::new(a.addr(), a.prefix_len()).ok())
            .collect())
    }

    fn host_routes(&self) -> Result<Vec<Subnet>, DatapathError> {
        let routes = bridge::host_routes()
            .map_err(|e| DatapathError::new("reading the host's routes", e))?;
        Ok(routes
            .into_iter()
            .filter_map(|r| Subnet::new(r.addr(), r.prefix_len()).ok())
            .collect())
    }

    fn serve_dns(
        &self,
        netns_path: &Path,
        container_id: String,
        lookup: Arc<dyn NameLookup>,
        upstream: Vec<dns::Upstream>,
    ) -> Result<DnsGuard, DatapathError> {
        let ns = netns::NetNs::open(netns_path).map_err(|e| {
            DatapathError::new(
                format!("opening network namespace {}", netns_path.display()),
                e,
            )
        })?;
        let handle = dns::serve(&ns, container_id, Arc::new(Resolver(lookup)), upstream)
            .map_err(|e| DatapathError::new("starting the embedded DNS server", e))?;
        Ok(Box::new(handle))
    }
}
