//! berth's whole firewall state, computed from the bridge networks (masquerade, ICC,
//! internal) and the published ports of every running container: the datapath replaces
//! what berth owns with it in one transaction, so recomputing is always safe.

use std::collections::BTreeMap;

use super::datapath::{FirewallSpec, NetworkRules, PortRule};
use super::record::{Driver, NetworkRecord};
use super::sandbox::SandboxRecord;

pub(super) fn compute(
    networks: &BTreeMap<String, NetworkRecord>,
    sandboxes: &BTreeMap<String, SandboxRecord>,
) -> FirewallSpec {
    let mut spec = FirewallSpec::default();
    for network in networks.values().filter(|n| n.driver == Driver::Bridge) {
        spec.networks.push(NetworkRules {
            bridge: network.bridge.clone(),
            subnets: network.ipam.pools.iter().map(|p| p.subnet).collect(),
            masquerade: network.masquerade,
            icc: network.icc,
            internal: network.internal,
        });
    }
    for sandbox in sandboxes.values().filter(|s| !s.ports.is_empty()) {
        // Ports go to the container's first endpoint on a network with egress (eth0 when
        // it is one), as Docker publishes through the gateway endpoint.
        let mut endpoints: Vec<(&NetworkRecord, &super::EndpointRecord)> = networks
            .values()
            .filter(|n| n.driver == Driver::Bridge && !n.internal)
            .filter_map(|n| n.endpoints.get(&sandbox.container_id).map(|e| (n, e)))
            .collect();
        endpoints.sort_by_key(|(_, e)| super::ifindex(&e.ifname));
        let Some((network, endpoint)) = endpoints.first() else {
            continue;
        };
        for mapping in &sandbox.ports {
            let host_addr = mapping.host_addr();
            let container_ip = match host_addr {
                Some(std::net::IpAddr::V6(_)) => endpoint.ipv6.map(|s| s.addr),
                _ => endpoint.ipv4.map(|s| s.addr),
            };
            let Some(container_ip) = container_ip else {
                continue;
            };
            spec.ports.push(PortRule {
                host_ip: host_addr,
                host_port: mapping.host_port,
                proto: mapping.proto,
                container_ip,
                container_port: mapping.container_port,
                bridge: network.bridge.clone(),
            });
        }
    }
    spec
}
