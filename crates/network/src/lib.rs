//! berth-network: the host side of container networking — pinned network namespaces
//! (`netns`), bridges and veth pairs over rtnetlink (`bridge`), berth's own nftables tables
//! for NAT, port publishing and isolation (`firewall`), and the embedded DNS server
//! (`dns`).
//!
//! It does not decide anything about networks or containers (which subnet, which address,
//! which ports): the engine does, and IPAM lives in `ipam`. Every call here is synchronous and
//! does its namespace and netlink work on dedicated std threads; async callers use
//! `spawn_blocking`. Only `dns::serve` needs (and uses) the caller's tokio runtime.

pub mod bridge;
pub mod dns;
mod error;
pub mod firewall;
pub mod ipam;
mod netlink;
pub mod netns;
mod nft;

/// The address types of this crate's API, so callers need no second copy of `ipnet`.
pub use ipnet;

pub use bridge::{
    attach, bridge_addresses, delete_bridge, detach, ensure_bridge, host_routes, mac_for,
    BridgeConfig, Endpoint,
};
pub use dns::{serve, serve_with_domains, DnsHandle, Resolver, Upstream};
pub use error::{NetError, NetErrorKind};
pub use firewall::{FirewallState, HostForward, NetworkRules, PortRule, Proto};
pub use netns::{NetNs, NetnsError};
