//! berth's own nftables tables (`table ip berth`, `table ip6 berth`): masquerade, published
//! ports (DNAT), hairpin, inter-container and internal-network isolation. Each [`apply`]
//! replaces both tables in ONE nft transaction and touches no other table (except
//! berth's own commented rules in the host's FORWARD chain with `allow_forward`).
//!
//! Why `nft -f -` with nft's text syntax (not the `nftables` crate's JSON): the ruleset is
//! generated as plain text that reads like the docs, is golden-tested byte for byte, and
//! nft reports errors against its lines; the JSON schema only adds a layer to get wrong and
//! a dependency. It is a blocking call on the caller's (blocking) thread, in process through
//! libnftables where it loads (see `nft.rs`), else by spawning `nft -f -`.
//!
//! The transaction is `add table` + `delete table` + `table { ... }`: `add` makes the
//! `delete` valid when the table is missing (nft 1.0.6 has no `destroy`), and the kernel
//! applies the whole batch or nothing, so there is never a moment without rules.
//!
//! # How the host's own firewall sees published traffic
//! Published ports are DNATed in berth's `prerouting` (and `output`, for the host itself)
//! chains at priority dstnat (-100), before any filter chain. A connection from another host
//! to `host:8080` therefore arrives at the host's `input` hook NEVER: after DNAT it is routed
//! to the container and crosses the `forward` hook instead. So a host `input` policy (ufw,
//! firewalld, `iptables -P INPUT DROP`) does not filter published ports, exactly as with
//! Docker; a host `forward` policy of drop, however, blocks them, and so does any drop in
//! any other table's forward chain: in nftables an `accept` only ends the chain it is in,
//! every base chain of the hook must accept: no rule in berth's tables can override it.
//!
//! To let published ports through a host whose iptables FORWARD policy is drop, set
//! [`FirewallState::allow_forward`]: berth then inserts its own accept rules (commented with
//! its table name, replaced by handle in the same transaction, nothing else touched) at the
//! top of iptables-nft's `filter FORWARD` chains, as Docker's DOCKER-FORWARD does. A drop
//! policy in some other nftables table (firewalld's, a hand-written `inet filter`) still
//! wins; its owner must accept `iifname "br-*"` and `oifname "br-*" ct status dnat` there.
//! To make published ports obey the host's input policy instead, filter them in the host's
//! forward chain on `ct status dnat` (they never reach `input`). berth's own forward chain
//! only ever drops (ICC off, internal networks, isolation between networks).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use ipnet::IpNet;

use crate::error::NetError;

/// The name of berth's tables in the `ip` and `ip6` families.
pub const TABLE: &str = "berth";

/// One bridge network's rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkRules {
    pub bridge: String,
    pub subnets: Vec<IpNet>,
    /// Masquerade traffic of the subnets leaving through any other interface.
    pub masquerade: bool,
    /// Inter-container communication on this bridge; false drops bridge → same bridge.
    pub icc: bool,
    /// No forwarding into or out of the bridge at all.
    pub internal: bool,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    fn keyword(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One published port (`-p [host_ip:]host_port:container_port/proto`); ranges are expanded
/// by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    /// None (or an unspecified address) publishes on every host address.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub proto: Proto,
    pub container_ip: IpAddr,
    pub container_port: u16,
    pub bridge: String,
}

/// Everything berth wants in the kernel's firewall, recomputed by the engine from all
/// networks and running containers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FirewallState {
    pub networks: Vec<NetworkRules>,
    pub ports: Vec<PortRule>,
    /// Let published ports and egress through a host whose FORWARD policy is drop: berth
    /// inserts, into the host's existing iptables-nft chains `ip filter FORWARD` and
    /// `ip6 filter FORWARD` (see [`HostForward`]), per non-internal berth bridge: accept
    /// established/related traffic to it, accept DNATed (published) connections to it and
    /// accept everything leaving it — Docker's DOCKER-FORWARD rules. Each rule carries the
    /// comment of berth's table name and is replaced (by handle) in the same transaction as
    /// berth's tables; nothing else in that chain is touched or reordered. A host without
    /// such a chain gets nothing (there is no drop policy of iptables to get past).
    pub allow_forward: bool,
}

/// The host's forward chain that [`FirewallState::allow_forward`] inserts into (in the `ip`
/// and `ip6` families).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostForward {
    pub table: String,
    pub chain: String,
}

impl Default for HostForward {
    /// iptables-nft's `filter` table and its `FORWARD` chain.
    fn default() -> HostForward {
        HostForward {
            table: "filter".into(),
            chain: "FORWARD".into(),
        }
    }
}

/// Replaces everything berth owns (`table ip berth`, `table ip6 berth`) in one nft
/// transaction; touches no other table (but see `allow_forward`). Also sets the sysctls the rules need: ip_forward
/// (and IPv6 forwarding when a non-internal network has an IPv6 subnet) and route_localnet
/// on berth's bridges (for published ports reached on 127.0.0.1).
pub fn apply(state: &FirewallState) -> Result<(), NetError> {
    apply_in(TABLE, state)
}

/// [`apply`] with another table name (tests run beside a live berthd with their own).
pub fn apply_in(table: &str, state: &FirewallState) -> Result<(), NetError> {
    apply_with(table, &HostForward::default(), state)
}

/// [`apply_in`] with another host forward chain (tests stand in for the host's firewall).
pub fn apply_with(table: &str, host: &HostForward, state: &FirewallState) -> Result<(), NetError> {
    let mut script = ruleset(table, state)?;
    check_name(&host.table)?;
    check_name(&host.chain)?;
    for family in [Family::V4, Family::V6] {
        host_forward_rules(&mut script, table, host, family, state);
    }
    set_sysctls(state)?;
    run_nft(&script)
}

/// Removes berth's tables; Ok if absent.
pub fn clear() -> Result<(), NetError> {
    clear_in(TABLE)
}

/// [`clear`] with another table name.
pub fn clear_in(table: &str) -> Result<(), NetError> {
    clear_with(table, &HostForward::default())
}

/// [`clear_in`] with another host forward chain.
pub fn clear_with(table: &str, host: &HostForward) -> Result<(), NetError> {
    check_name(table)?;
    check_name(&host.table)?;
    check_name(&host.chain)?;
    let mut script = String::new();
    for family in [Family::V4, Family::V6] {
        host_forward_rules(&mut script, table, host, family, &FirewallState::default());
    }
    for family in ["ip", "ip6"] {
        let _ = writeln!(script, "add table {family} {table}");
        let _ = writeln!(script, "delete table {family} {table}");
    }
    run_nft(&script)
}

/// The nft script [`apply_in`] runs: both tables, each deleted and recreated.
pub fn ruleset(table: &str, state: &FirewallState) -> Result<String, NetError> {
    check_name(table)?;
    for network in &state.networks {
        check_name(&network.bridge)?;
    }
    for port in &state.ports {
        check_name(&port.bridge)?;
    }
    let mut script = String::new();
    for family in [Family::V4, Family::V6] {
        family_table(&mut script, table, family, state);
    }
    Ok(script)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn table(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }
    fn matches(self, ip: &IpAddr) -> bool {
        matches!(
            (self, ip),
            (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_))
        )
    }
    fn net_matches(self, net: &IpNet) -> bool {
        self.matches(&net.addr())
    }
}

fn family_table(out: &mut String, table: &str, family: Family, state: &FirewallState) {
    let f = family.table();
    let _ = writeln!(out, "add table {f} {table}");
    let _ = writeln!(out, "delete table {f} {table}");
    let _ = writeln!(out, "table {f} {table} {{");
    // Published ports: to any local address, from other hosts (prerouting) and from the host
    // itself (output, 127.0.0.1 included).
    out.push_str(
        "\tchain prerouting {\n\t\ttype nat hook prerouting priority -100; policy accept;\n\
         \t\tfib daddr type local jump publish\n\t}\n",
    );
    out.push_str(
        "\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n\
         \t\tfib daddr type local jump publish\n\t}\n",
    );
    out.push_str("\tchain publish {\n");
    for port in state
        .ports
        .iter()
        .filter(|p| family.matches(&p.container_ip))
    {
        publish_rule(out, family, port);
    }
    out.push_str("\t}\n");
    out.push_str(
        "\tchain postrouting {\n\t\ttype nat hook postrouting priority 100; policy accept;\n",
    );
    for network in &state.networks {
        postrouting_rules(out, family, network);
    }
    out.push_str("\t}\n");
    out.push_str("\tchain forward {\n\t\ttype filter hook forward priority 0; policy accept;\n");
    forward_rules(out, state);
    out.push_str("\t}\n}\n");
}

fn publish_rule(out: &mut String, family: Family, port: &PortRule) {
    let f = family.table();
    let proto = port.proto.keyword();
    let _ = write!(out, "\t\t");
    match port.host_ip {
        Some(ip) if !ip.is_unspecified() => {
            if !family.matches(&ip) {
                // A v4 host address never forwards to a v6 container (and back), as Docker.
                out.truncate(out.len() - 2);
                return;
            }
            let _ = write!(out, "{f} daddr {ip} ");
        }
        _ => {}
    }
    let target = match port.container_ip {
        IpAddr::V4(ip) => format!("{ip}:{}", port.container_port),
        IpAddr::V6(ip) => format!("[{ip}]:{}", port.container_port),
    };
    let _ = writeln!(out, "{proto} dport {} dnat to {target}", port.host_port);
}

/// Deletes berth's earlier rules in the host's forward chain (found by their comment) and,
/// with `allow_forward`, inserts the current ones. Nothing when the chain does not exist.
fn host_forward_rules(
    out: &mut String,
    table: &str,
    host: &HostForward,
    family: Family,
    state: &FirewallState,
) {
    let f = family.table();
    let listing = format!("list chain {f} {} {}\n", host.table, host.chain);
    let Ok(listed) = crate::nft::run(&listing, true) else {
        return;
    };
    if !listed.success {
        return;
    }
    let (t, c) = (&host.table, &host.chain);
    for handle in commented_handles(&listed.stdout, table) {
        let _ = writeln!(out, "delete rule {f} {t} {c} handle {handle}");
    }
    if !state.allow_forward {
        return;
    }
    for network in state.networks.iter().filter(|n| !n.internal) {
        if !network.subnets.iter().any(|n| family.net_matches(n)) {
            continue;
        }
        let br = &network.bridge;
        for rule in [
            format!("iifname \"{br}\""),
            format!("oifname \"{br}\" ct status dnat"),
            format!("oifname \"{br}\" ct state established,related"),
        ] {
            let _ = writeln!(
                out,
                "insert rule {f} {t} {c} {rule} accept comment \"{table}\""
            );
        }
    }
}

/// Handles of the rules of an `nft -a list chain` output whose comment is `comment`.
fn commented_handles(listing: &str, comment: &str) -> Vec<u64> {
    let tag = format!("comment \"{comment}\"");
    listing
        .lines()
        .filter(|line| line.contains(&tag))
        .filter_map(|line| line.rsplit_once("# handle ")?.1.trim().parse().ok())
        .collect()
}

fn postrouting_rules(out: &mut String, family: Family, network: &NetworkRules) {
    let f = family.table();
    let bridge = &network.bridge;
    for subnet in network.subnets.iter().filter(|n| family.net_matches(n)) {
        if network.masquerade && !network.internal {
            let _ = writeln!(
                out,
                "\t\toifname != \"{bridge}\" {f} saddr {subnet} masquerade"
            );
        }
        // Hairpin: a container reaching a published port of its own bridge through a host
        // address; without this the reply would skip the host and never be un-DNATed.
        let _ = writeln!(
            out,
            "\t\toifname \"{bridge}\" {f} saddr {subnet} ct status dnat masquerade"
        );
    }
    if family == Family::V4 && !network.internal {
        // Published ports reached on 127.0.0.1 (needs route_localnet on the bridge).
        let _ = writeln!(
            out,
            "\t\toifname \"{bridge}\" ip saddr 127.0.0.0/8 masquerade"
        );
    }
}

fn forward_rules(out: &mut String, state: &FirewallState) {
    for network in &state.networks {
        let bridge = &network.bridge;
        if network.internal {
            let _ = writeln!(out, "\t\tiifname \"{bridge}\" oifname != \"{bridge}\" drop");
            let _ = writeln!(out, "\t\toifname \"{bridge}\" iifname != \"{bridge}\" drop");
        }
        if !network.icc {
            let _ = writeln!(out, "\t\tiifname \"{bridge}\" oifname \"{bridge}\" drop");
        }
    }
    // Different networks never talk to each other (Docker's DOCKER-ISOLATION chains).
    let bridges: Vec<&str> = state.networks.iter().map(|n| n.bridge.as_str()).collect();
    for bridge in &bridges {
        let others: Vec<String> = bridges
            .iter()
            .filter(|other| *other != bridge)
            .map(|other| format!("\"{other}\""))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                out,
                "\t\tiifname \"{bridge}\" oifname {{ {} }} drop",
                others.join(", ")
            );
        }
    }
}

/// Names that go into the script unquoted or in quotes: no quoting or escaping needed.
fn check_name(name: &str) -> Result<(), NetError> {
    let valid = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(NetError::InvalidInterfaceName(name.to_string()))
    }
}

fn set_sysctls(state: &FirewallState) -> Result<(), NetError> {
    let forwarding = state.networks.iter().filter(|n| !n.internal);
    let (mut v4, mut v6) = (false, false);
    for network in forwarding {
        v4 |= network.subnets.iter().any(|n| Family::V4.net_matches(n));
        v6 |= network.subnets.iter().any(|n| Family::V6.net_matches(n));
    }
    if v4 || !state.ports.is_empty() {
        write_sysctl(PathBuf::from("/proc/sys/net/ipv4/ip_forward"), "1")?;
    }
    if v6 {
        write_sysctl(PathBuf::from("/proc/sys/net/ipv6/conf/all/forwarding"), "1")?;
    }
    if state.networks.iter().any(|n| !n.icc) {
        bridge_netfilter(v6)?;
    }
    for network in &state.networks {
        let path = PathBuf::from(format!(
            "/proc/sys/net/ipv4/conf/{}/route_localnet",
            network.bridge
        ));
        // A bridge not created yet gets its value on the next apply.
        if path.exists() {
            write_sysctl(path, "1")?;
        }
    }
    Ok(())
}

/// ICC off drops bridge → same bridge in the ip forward hook, which sees bridged frames only
/// with br_netfilter and bridge-nf-call-iptables=1 (Docker loads the module for the same
/// reason; this kernel's nftables has no bridge-name matching in the bridge family).
fn bridge_netfilter(v6: bool) -> Result<(), NetError> {
    let v4_path = PathBuf::from("/proc/sys/net/bridge/bridge-nf-call-iptables");
    if !v4_path.exists() {
        // Best effort, as dockerd does; the check below says whether it worked.
        let _ = Command::new("modprobe")
            .arg("br_netfilter")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    if !v4_path.exists() {
        return Err(NetError::Sysctl {
            path: v4_path,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "icc=false needs the br_netfilter kernel module (modprobe br_netfilter)",
            ),
        });
    }
    write_sysctl(v4_path, "1")?;
    if v6 {
        write_sysctl(
            PathBuf::from("/proc/sys/net/bridge/bridge-nf-call-ip6tables"),
            "1",
        )?;
    }
    Ok(())
}

fn write_sysctl(path: PathBuf, value: &str) -> Result<(), NetError> {
    if std::fs::read_to_string(&path).is_ok_and(|current| current.trim() == value) {
        return Ok(());
    }
    std::fs::write(&path, value).map_err(|source| NetError::Sysctl { path, source })
}

fn run_nft(script: &str) -> Result<(), NetError> {
    let output = crate::nft::run(script, false)?;
    if output.success {
        Ok(())
    } else {
        Err(NetError::Nft {
            stderr: output.stderr.trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> FirewallState {
        FirewallState {
            networks: vec![
                NetworkRules {
                    bridge: "br-one".into(),
                    subnets: vec![
                        "172.18.0.0/16".parse().expect("net"),
                        "fd00:1::/64".parse().expect("net"),
                    ],
                    masquerade: true,
                    icc: true,
                    internal: false,
                },
                NetworkRules {
                    bridge: "br-two".into(),
                    subnets: vec!["172.19.0.0/16".parse().expect("net")],
                    masquerade: true,
                    icc: false,
                    internal: true,
                },
            ],
            ports: vec![
                PortRule {
                    host_ip: None,
                    host_port: 8080,
                    proto: Proto::Tcp,
                    container_ip: "172.18.0.2".parse().expect("ip"),
                    container_port: 80,
                    bridge: "br-one".into(),
                },
                PortRule {
                    host_ip: Some("127.0.0.1".parse().expect("ip")),
                    host_port: 5353,
                    proto: Proto::Udp,
                    container_ip: "172.18.0.3".parse().expect("ip"),
                    container_port: 53,
                    bridge: "br-one".into(),
                },
                PortRule {
                    host_ip: Some("::".parse().expect("ip")),
                    host_port: 8443,
                    proto: Proto::Tcp,
                    container_ip: "fd00:1::2".parse().expect("ip"),
                    container_port: 443,
                    bridge: "br-one".into(),
                },
            ],
            allow_forward: false,
        }
    }

    #[test]
    fn ruleset_golden_for_two_networks_and_three_ports() {
        let text = ruleset("berth", &state()).expect("ruleset");
        let expected = include_str!("../test_data/firewall/two_networks.nft");
        assert_eq!(text, expected, "generated:\n{text}");
    }

    #[test]
    fn empty_state_still_recreates_both_tables_with_their_chains() {
        let text = ruleset("berth", &FirewallState::default()).expect("ruleset");
        assert!(text.starts_with("add table ip berth\ndelete table ip berth\ntable ip berth {"));
        assert!(text.contains("add table ip6 berth\ndelete table ip6 berth\ntable ip6 berth {"));
        assert!(!text.contains("dnat to"));
        assert!(!text.contains("masquerade"));
    }

    #[test]
    fn a_v4_host_address_never_publishes_a_v6_container() {
        let mut state = state();
        state.ports = vec![PortRule {
            host_ip: Some("10.0.0.1".parse().expect("ip")),
            host_port: 1,
            proto: Proto::Tcp,
            container_ip: "fd00:1::2".parse().expect("ip"),
            container_port: 1,
            bridge: "br-one".into(),
        }];
        let text = ruleset("berth", &state).expect("ruleset");
        assert!(!text.contains("dnat to"), "{text}");
    }

    #[test]
    fn only_rules_with_berths_comment_are_picked_from_the_host_chain() {
        let listing = "table ip filter {\n\tchain FORWARD { # handle 1\n\
            \t\ttype filter hook forward priority filter; policy drop;\n\
            \t\tiifname \"br-a\" accept comment \"berth\" # handle 7\n\
            \t\tiifname \"eth0\" accept comment \"mine\" # handle 8\n\
            \t\tct state established accept # handle 9\n\
            \t\toifname \"br-a\" ct status dnat accept comment \"berth\" # handle 12\n\t}\n}\n";
        assert_eq!(commented_handles(listing, "berth"), vec![7, 12]);
        assert_eq!(commented_handles(listing, "other"), Vec::<u64>::new());
    }

    #[test]
    fn names_that_would_need_quoting_are_refused() {
        let mut state = state();
        state.networks[0].bridge = "br\"; flush ruleset".into();
        assert!(matches!(
            ruleset("berth", &state),
            Err(NetError::InvalidInterfaceName(_))
        ));
        assert!(ruleset("berth table", &FirewallState::default()).is_err());
    }
}
