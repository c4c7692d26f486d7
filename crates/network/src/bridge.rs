//! Bridge devices, veth endpoints, addresses and routes over rtnetlink. Every function runs
//! its netlink work on a dedicated std thread (host namespace) or via `NetNs::run` (container
//! namespace), each with its own current-thread runtime; nothing shells out to `ip`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use futures::TryStreamExt;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader};
use rtnetlink::{Handle, IpVersion};

use crate::error::NetError;
use crate::netlink::{self, add_address, block_on, failed, require_link};
use crate::netns::NetNs;

/// A bridge network's device, as the engine wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// Device name, at most 15 bytes (`br-<12 hex of the network id>` like Docker's).
    pub name: String,
    pub mtu: u32,
    /// Gateway address with the subnet's prefix, e.g. 172.18.0.1/16.
    pub ipv4: Vec<Ipv4Net>,
    pub ipv6: Vec<Ipv6Net>,
    /// Inter-container communication; enforced by the firewall, kept here for the record.
    pub icc: bool,
    /// No traffic in or out of the network; enforced by the firewall.
    pub internal: bool,
}

/// One container interface on a bridge: a veth pair whose host end is a bridge port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub bridge: String,
    /// Host end, e.g. "veth" + 7 hex digits.
    pub host_veth: String,
    /// The container's pinned network namespace.
    pub netns: PathBuf,
    /// Name inside the container (eth0, eth1, ...).
    pub ifname: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub ipv4: Option<Ipv4Net>,
    pub gateway4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Net>,
    pub gateway6: Option<Ipv6Addr>,
}

/// Docker's MAC for a container address: 02:42 followed by the four IPv4 bytes
/// (libnetwork's `netutils.GenerateMACFromIP`).
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

/// Creates the bridge if missing, converges its addresses to the gateway addresses (an
/// address left from an earlier configuration, e.g. another daemon.json `bip`, is removed,
/// as dockerd replaces the bridge's address), sets MTU and up. Idempotent.
pub fn ensure_bridge(cfg: &BridgeConfig) -> Result<(), NetError> {
    check_ifname(&cfg.name)?;
    let cfg = cfg.clone();
    on_host(move |handle| async move {
        let index = match netlink::link_index(&handle, &cfg.name).await? {
            Some(index) => index,
            None => {
                let mut request = handle.link().add();
                *request.message_mut() = netlink::up_link_message(vec![
                    LinkAttribute::IfName(cfg.name.clone()),
                    LinkAttribute::Mtu(cfg.mtu),
                    LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
                ]);
                match request.execute().await {
                    Ok(()) => {}
                    // Created meanwhile by a concurrent caller: carry on with it.
                    Err(err) if netlink::errno(&err) == Some(libc::EEXIST) => {}
                    Err(source) => {
                        return Err(NetError::Netlink {
                            op: format!("add bridge {}", cfg.name),
                            source: Box::new(source),
                        })
                    }
                }
                require_link(&handle, &cfg.name).await?
            }
        };
        remove_stale_addresses(&handle, index, &cfg).await?;
        for net in &cfg.ipv4 {
            add_address(&handle, index, IpAddr::V4(net.addr()), net.prefix_len()).await?;
        }
        for net in &cfg.ipv6 {
            add_address(&handle, index, IpAddr::V6(net.addr()), net.prefix_len()).await?;
        }
        handle
            .link()
            .set(index)
            .mtu(cfg.mtu)
            .up()
            .execute()
            .await
            .map_err(failed(format!("set bridge {} up", cfg.name)))
    })
}

/// Whether a link called `name` exists in the caller's network namespace (one ioctl, no
/// netlink connection and no thread).
pub fn link_exists(name: &str) -> bool {
    if check_ifname(name).is_err() {
        return false;
    }
    let Ok(name) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::if_nametoindex(name.as_ptr()) != 0 }
}

/// Deletes the bridge; Ok if it does not exist.
pub fn delete_bridge(name: &str) -> Result<(), NetError> {
    check_ifname(name)?;
    delete_link_by_name(name.to_string())
}

/// Creates the veth pair of `ep`: the host end becomes a port of the bridge and goes up; the
/// peer is created directly inside the container's namespace as `ifname` (so it never clashes
/// with a host device), gets its MAC, MTU, addresses and default routes, and goes up.
/// A leftover host end of the same name (a crash mid-attach) is replaced.
pub fn attach(ep: &Endpoint) -> Result<(), NetError> {
    check_ifname(&ep.host_veth)?;
    check_ifname(&ep.ifname)?;
    let ns = NetNs::open(&ep.netns)?;
    let ns_file = ns.file()?;
    let host = ep.clone();
    on_host(move |handle| async move {
        let bridge = require_link(&handle, &host.bridge).await?;
        if let Some(stale) = netlink::link_index(&handle, &host.host_veth).await? {
            netlink::delete_link(&handle, stale, &host.host_veth).await?;
        }
        // The peer must not carry IFF_UP here (the kernel answers ENOTCONN): it is set up
        // from inside the namespace once its addresses are in place.
        let mut peer = LinkMessage::default();
        peer.attributes = vec![
            LinkAttribute::IfName(host.ifname.clone()),
            LinkAttribute::Mtu(host.mtu),
            LinkAttribute::Address(host.mac.to_vec()),
            LinkAttribute::NetNsFd(ns_file.as_raw_fd()),
        ];
        let mut request = handle.link().add();
        *request.message_mut() = netlink::up_link_message(vec![
            LinkAttribute::IfName(host.host_veth.clone()),
            LinkAttribute::Mtu(host.mtu),
            LinkAttribute::Controller(bridge),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
            ]),
        ]);
        let added = request
            .execute()
            .await
            .map_err(failed(format!("add veth {}", host.host_veth)));
        drop(ns_file);
        added
    })?;
    // Hairpin mode on the port, as Docker sets it without its userland proxy: with
    // br_netfilter a container reaching its own published port through a host address is
    // DNATed in the bridge path and must go back out of the port it came in by.
    let hairpin = PathBuf::from(format!(
        "/sys/class/net/{}/brif/{}/hairpin_mode",
        ep.bridge, ep.host_veth
    ));
    if let Err(source) = std::fs::write(&hairpin, "1") {
        let _ = detach(&ep.host_veth);
        return Err(NetError::Sysctl {
            path: hairpin,
            source,
        });
    }
    let inner = ep.clone();
    let configured = ns
        .run(move || block_on(|handle| configure_peer(handle, inner)))
        .map_err(NetError::from)
        .and_then(|result| result);
    if configured.is_err() {
        // Leave nothing half-attached behind: the pair goes with its host end.
        let _ = detach(&ep.host_veth);
    }
    configured
}

async fn configure_peer(handle: Handle, ep: Endpoint) -> Result<(), NetError> {
    let index = require_link(&handle, &ep.ifname).await?;
    if let Some(net) = ep.ipv4 {
        add_address(&handle, index, IpAddr::V4(net.addr()), net.prefix_len()).await?;
    }
    if let Some(net) = ep.ipv6 {
        add_address(&handle, index, IpAddr::V6(net.addr()), net.prefix_len()).await?;
    }
    handle
        .link()
        .set(index)
        .up()
        .execute()
        .await
        .map_err(failed(format!("set {} up", ep.ifname)))?;
    if let Some(gateway) = ep.gateway4 {
        let added = handle
            .route()
            .add()
            .v4()
            .gateway(gateway)
            .output_interface(index)
            .execute()
            .await;
        route_added(added, format!("add default route via {gateway}"))?;
    }
    if let Some(gateway) = ep.gateway6 {
        let added = handle
            .route()
            .add()
            .v6()
            .gateway(gateway)
            .output_interface(index)
            .execute()
            .await;
        route_added(added, format!("add default route via {gateway}"))?;
    }
    Ok(())
}

/// A default route that already exists (another network gave the gateway) is kept, as
/// Docker keeps the gateway of the first network.
fn route_added(result: Result<(), rtnetlink::Error>, op: String) -> Result<(), NetError> {
    match result {
        Ok(()) => Ok(()),
        Err(err) if netlink::errno(&err) == Some(libc::EEXIST) => Ok(()),
        Err(source) => Err(NetError::Netlink {
            op,
            source: Box::new(source),
        }),
    }
}

/// Deletes the veth pair by its host end; Ok if it does not exist.
pub fn detach(host_veth: &str) -> Result<(), NetError> {
    check_ifname(host_veth)?;
    delete_link_by_name(host_veth.to_string())
}

/// Destinations of the host's main-table routes (IPv4 and IPv6, default routes left out),
/// to pick a subnet that clashes with nothing.
pub fn host_routes() -> Result<Vec<IpNet>, NetError> {
    on_host(|handle| async move {
        let mut nets = Vec::new();
        for version in [IpVersion::V4, IpVersion::V6] {
            let mut routes = handle.route().get(version).execute();
            while let Some(route) = routes.try_next().await.map_err(failed("list routes"))? {
                if let Some(net) = route_destination(&route.header, &route.attributes) {
                    nets.push(net);
                }
            }
        }
        nets.sort();
        nets.dedup();
        Ok(nets)
    })
}

/// The addresses (with their prefix, e.g. `172.17.0.1/16`) of the link called `name`,
/// link-local IPv6 ones left out; empty when there is no such link. The engine reuses the
/// subnet of its own bridge left from an earlier run instead of taking its route for a
/// clash.
pub fn bridge_addresses(name: &str) -> Result<Vec<IpNet>, NetError> {
    check_ifname(name)?;
    let name = name.to_string();
    on_host(move |handle| async move {
        let Some(index) = netlink::link_index(&handle, &name).await? else {
            return Ok(Vec::new());
        };
        let found = link_addresses(&handle, index, &name).await?;
        Ok(found.into_iter().map(|(net, _)| net).collect())
    })
}

/// The addresses of the link at `index` with their netlink messages (for deletion),
/// link-local IPv6 ones left out.
async fn link_addresses(
    handle: &Handle,
    index: u32,
    name: &str,
) -> Result<Vec<(IpNet, AddressMessage)>, NetError> {
    let mut found = Vec::new();
    let mut addresses = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    while let Some(message) = addresses
        .try_next()
        .await
        .map_err(failed(format!("list addresses of {name}")))?
    {
        // The filter is applied by rtnetlink after the dump; check the index anyway.
        if message.header.index != index {
            continue;
        }
        let prefix = message.header.prefix_len;
        let addr = message
            .attributes
            .iter()
            .find_map(|attr| match attr {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            })
            .or_else(|| {
                message.attributes.iter().find_map(|attr| match attr {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
        let Some(addr) = addr else { continue };
        if matches!(addr, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80) {
            continue;
        }
        if let Ok(net) = IpNet::new(addr, prefix) {
            found.push((net, message));
        }
    }
    Ok(found)
}

/// Deletes the bridge's addresses that `cfg` does not list (IPv6 link-local ones stay):
/// moby's bridge driver likewise replaces a bridge's IPv4 address that differs from the
/// configured one (`setupBridgeIPv4`) and removes unwanted IPv6 addresses.
async fn remove_stale_addresses(
    handle: &Handle,
    index: u32,
    cfg: &BridgeConfig,
) -> Result<(), NetError> {
    let wanted: Vec<IpNet> = cfg
        .ipv4
        .iter()
        .map(|net| IpNet::V4(*net))
        .chain(cfg.ipv6.iter().map(|net| IpNet::V6(*net)))
        .collect();
    for (net, message) in link_addresses(handle, index, &cfg.name).await? {
        if stale_address(&net, &wanted) {
            match handle.address().del(message).execute().await {
                Ok(()) => {}
                // Gone meanwhile (a secondary removed with its primary).
                Err(err) if netlink::errno(&err) == Some(libc::EADDRNOTAVAIL) => {}
                Err(source) => {
                    return Err(NetError::Netlink {
                        op: format!("delete address {net} of {}", cfg.name),
                        source: Box::new(source),
                    })
                }
            }
        }
    }
    Ok(())
}

/// An address on the bridge that is not one of the gateway addresses (address and prefix).
fn stale_address(net: &IpNet, wanted: &[IpNet]) -> bool {
    !wanted.contains(net)
}

fn route_destination(header: &RouteHeader, attributes: &[RouteAttribute]) -> Option<IpNet> {
    let table = attributes
        .iter()
        .find_map(|attr| match attr {
            RouteAttribute::Table(table) => Some(*table),
            _ => None,
        })
        .unwrap_or(u32::from(header.table));
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) || header.destination_prefix_length == 0 {
        return None;
    }
    let prefix = header.destination_prefix_length;
    attributes.iter().find_map(|attr| match attr {
        RouteAttribute::Destination(RouteAddress::Inet(ip)) => Ipv4Net::new(*ip, prefix)
            .ok()
            .map(|net| IpNet::V4(net.trunc())),
        RouteAttribute::Destination(RouteAddress::Inet6(ip)) => Ipv6Net::new(*ip, prefix)
            .ok()
            .map(|net| IpNet::V6(net.trunc())),
        _ => None,
    })
}

fn delete_link_by_name(name: String) -> Result<(), NetError> {
    on_host(move |handle| async move {
        match netlink::link_index(&handle, &name).await? {
            Some(index) => netlink::delete_link(&handle, index, &name).await,
            None => Ok(()),
        }
    })
}

/// Runs netlink work on a dedicated std thread of the host namespace (the caller's).
fn on_host<T, F, Fut>(f: F) -> Result<T, NetError>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, NetError>>,
{
    let thread = std::thread::Builder::new()
        .name("berth-netlink".into())
        .spawn(move || block_on(f))
        .map_err(NetError::Thread)?;
    thread.join().map_err(|_| NetError::Panicked)?
}

/// Linux interface names: 1 to 15 bytes (IFNAMSIZ - 1), no '/', ':' or whitespace.
fn check_ifname(name: &str) -> Result<(), NetError> {
    let valid = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0');
    if valid {
        Ok(())
    } else {
        Err(NetError::InvalidInterfaceName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_for_is_docker_02_42_then_the_ipv4_bytes() {
        assert_eq!(
            mac_for(Ipv4Addr::new(172, 17, 0, 2)),
            [0x02, 0x42, 0xac, 0x11, 0x00, 0x02]
        );
        assert_eq!(
            mac_for(Ipv4Addr::new(10, 255, 1, 200)),
            [0x02, 0x42, 10, 255, 1, 200]
        );
    }

    #[test]
    fn interface_names_follow_the_kernel_rules() {
        for good in ["eth0", "br-0123456789ab", "veth1234567", "a"] {
            check_ifname(good).expect(good);
        }
        for bad in ["", "br-0123456789abc", "a/b", "a b", "a:b", ".", ".."] {
            assert!(
                matches!(check_ifname(bad), Err(NetError::InvalidInterfaceName(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn link_exists_sees_loopback_and_not_a_made_up_name() {
        assert!(link_exists("lo"));
        assert!(!link_exists("berth-no-such"));
        assert!(!link_exists("a/b"));
    }

    #[test]
    fn invalid_names_are_refused_before_any_netlink_work() {
        assert!(matches!(
            delete_bridge("much-too-long-bridge"),
            Err(NetError::InvalidInterfaceName(_))
        ));
        assert!(matches!(detach(""), Err(NetError::InvalidInterfaceName(_))));
    }

    fn route(
        table: u8,
        prefix: u8,
        dest: Option<RouteAddress>,
    ) -> (RouteHeader, Vec<RouteAttribute>) {
        let header = RouteHeader {
            table,
            destination_prefix_length: prefix,
            ..Default::default()
        };
        let attributes = dest.map(RouteAttribute::Destination).into_iter().collect();
        (header, attributes)
    }

    #[test]
    fn route_destinations_keep_main_table_subnets_only() {
        let (h, a) = route(
            254,
            16,
            Some(RouteAddress::Inet(Ipv4Addr::new(172, 17, 0, 0))),
        );
        assert_eq!(
            route_destination(&h, &a),
            Some("172.17.0.0/16".parse().expect("net"))
        );
        let (h, a) = route(254, 0, None);
        assert_eq!(route_destination(&h, &a), None, "default route");
        let (h, a) = route(255, 32, Some(RouteAddress::Inet(Ipv4Addr::LOCALHOST)));
        assert_eq!(route_destination(&h, &a), None, "local table");
        let (h, a) = route(
            254,
            64,
            Some(RouteAddress::Inet6("fd00:1:2:3::".parse().expect("ip"))),
        );
        assert_eq!(
            route_destination(&h, &a),
            Some("fd00:1:2:3::/64".parse().expect("net"))
        );
    }
}
