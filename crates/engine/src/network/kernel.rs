//! The real datapath: berth-network's netns, bridge/veth, nftables and DNS functions behind
//! the service's [`Datapath`] seam (called from `spawn_blocking`).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

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
        let config = bridge::BridgeConfig {
            name: spec.name.clone(),
            mtu: spec.mtu,
            ipv4: spec.addresses.iter().filter_map(v4).collect(),
            ipv6: spec.addresses.iter().filter_map(v6).collect(),
            icc: spec.icc,
            internal: spec.internal,
        };
        bridge::ensure_bridge(&config)
            .map_err(|e| DatapathError::new(format!("creating bridge {}", spec.name), e))
    }

    fn delete_bridge(&self, name: &str) -> Result<(), DatapathError> {
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

    fn apply_firewall(&self, spec: &FirewallSpec) -> Result<(), DatapathError> {
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

    fn clear_firewall(&self) -> Result<(), DatapathError> {
        firewall::clear_in(&self.table).map_err(|e| {
            DatapathError::new(format!("removing berth's nftables table {}", self.table), e)
        })
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
