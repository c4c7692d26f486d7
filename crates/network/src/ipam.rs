//! IP address management of bridge networks: subnets (`Subnet`), one pool per subnet with its
//! gateway and optional `--ip-range`, and the addresses handed out (`Ipam`). Pure and
//! serialisable: the engine saves the state with the network record (atomic write), so an
//! address is never leaked or handed out twice across restarts. No I/O.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an address or a pool cannot be had; texts are Docker's (libnetwork's ipam and
/// network allocation errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    #[error("invalid IP address: {0}")]
    InvalidAddress(String),
    /// Every address of the network's pools of this family is in use.
    #[error(
        "no available IPv{family} addresses on this network's address pools: {network} ({id})"
    )]
    Exhausted {
        family: u8,
        network: String,
        id: String,
    },
    #[error("Address already in use")]
    InUse(IpAddr),
    /// A requested address outside every subnet of the network (moby 26+; 25.0 said
    /// `no configured subnet or ip-range contain the IP address`, 20.10 `Invalid address
    /// <ip>: It does not belong to any of this network's subnets`).
    #[error("no configured subnet contains IP address {0}")]
    OutOfRange(IpAddr),
    #[error("invalid pool request: Pool overlaps with other one on this address space")]
    Overlap,
    #[error("no matching subnet for gateway {0}")]
    GatewayOutsideSubnet(IpAddr),
    #[error("no matching subnet for range {0}")]
    RangeOutsideSubnet(Subnet),
    #[error("could not find an available, non-overlapping IPv{0} address pool among the defaults to assign to the network")]
    NoFreePool(u8),
}

impl IpamError {
    /// Whether the error is the caller's (a bad or conflicting request) rather than a full
    /// network: API edges answer 400/403 for these, 503 for exhaustion.
    pub fn is_exhausted(&self) -> bool {
        matches!(self, IpamError::Exhausted { .. } | IpamError::NoFreePool(_))
    }
}

/// An address with a prefix length (`172.17.0.0/16`, `fd00::/64`); the address is kept
/// as given (`172.17.0.1/16` names the gateway of `172.17.0.0/16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Subnet, IpamError> {
        if prefix > bits(addr) {
            return Err(IpamError::InvalidCidr(format!("{addr}/{prefix}")));
        }
        Ok(Subnet { addr, prefix })
    }

    /// 4 or 6.
    pub fn family(&self) -> u8 {
        if self.addr.is_ipv4() {
            4
        } else {
            6
        }
    }

    fn mask(&self) -> u128 {
        let width = u32::from(bits(self.addr));
        let host_bits = width - u32::from(self.prefix);
        let all = if width == 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        if host_bits >= 128 {
            0
        } else {
            all & !((1u128 << host_bits) - 1)
        }
    }

    /// The subnet with its host bits cleared (`172.17.0.1/16` → `172.17.0.0/16`).
    pub fn network(&self) -> Subnet {
        Subnet {
            addr: from_u128(self.addr, to_u128(self.addr) & self.mask()),
            prefix: self.prefix,
        }
    }

    fn first(&self) -> u128 {
        to_u128(self.addr) & self.mask()
    }

    fn last(&self) -> u128 {
        let width = bits(self.addr);
        let all = if width == 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        self.first() | (all & !self.mask())
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && (to_u128(ip) & self.mask()) == self.first()
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.addr.is_ipv4() == other.addr.is_ipv4()
            && self.first() <= other.last()
            && other.first() <= self.last()
    }

    /// The `n`th address of the subnet (0 is the network address).
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        let value = self.first().checked_add(n)?;
        (value <= self.last()).then(|| from_u128(self.addr, value))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = IpamError;

    fn from_str(text: &str) -> Result<Subnet, IpamError> {
        let invalid = || IpamError::InvalidCidr(text.to_string());
        let (addr, prefix) = text.split_once('/').ok_or_else(invalid)?;
        let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        Subnet::new(addr, prefix).map_err(|_| invalid())
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Subnet, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn bits(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// An address of the same family as `like` (values are in range by construction).
fn from_u128(like: IpAddr, value: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(value as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// One subnet of a network: its gateway, its `--ip-range` and the addresses in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// The subnet with host bits cleared.
    pub subnet: Subnet,
    /// `--ip-range`: dynamic addresses come from here (a specific `--ip` may be anywhere in
    /// the subnet, as Docker allows).
    #[serde(default)]
    pub ip_range: Option<Subnet>,
    /// The bridge's address (Docker: the first host address unless `--gateway`).
    pub gateway: Option<IpAddr>,
    /// Addresses handed to endpoints (the gateway is not in here).
    #[serde(default)]
    pub allocated: BTreeSet<IpAddr>,
}

impl Pool {
    /// A pool for `subnet` with Docker's defaults: the gateway is `gateway` or the first
    /// host address; `ip_range` must lie inside the subnet.
    pub fn new(
        subnet: Subnet,
        ip_range: Option<Subnet>,
        gateway: Option<IpAddr>,
    ) -> Result<Pool, IpamError> {
        let network = subnet.network();
        if let Some(range) = ip_range {
            if range.family() != subnet.family()
                || range.prefix < network.prefix
                || !network.contains(range.addr)
            {
                return Err(IpamError::RangeOutsideSubnet(range));
            }
        }
        let gateway = match gateway {
            Some(gw) if !network.contains(gw) => return Err(IpamError::GatewayOutsideSubnet(gw)),
            Some(gw) => Some(gw),
            // A /32 or /128 (or /31) has no room for a gateway.
            None => network.nth(1).filter(|gw| Some(*gw) != broadcast(&network)),
        };
        Ok(Pool {
            subnet: network,
            ip_range: ip_range.map(|r| r.network()),
            gateway,
            allocated: BTreeSet::new(),
        })
    }

    /// Whether `ip` can never be handed out: network address, IPv4 broadcast, gateway.
    fn reserved(&self, ip: IpAddr) -> bool {
        Some(ip) == self.subnet.nth(0) && self.subnet.prefix < bits(ip).saturating_sub(1)
            || Some(ip) == broadcast(&self.subnet)
            || Some(ip) == self.gateway
    }

    /// Reserves `ip` (a specific `--ip`/`--ip6`).
    pub fn allocate_specific(&mut self, ip: IpAddr) -> Result<IpAddr, IpamError> {
        if !self.subnet.contains(ip) {
            return Err(IpamError::OutOfRange(ip));
        }
        if self.reserved(ip) || self.allocated.contains(&ip) {
            return Err(IpamError::InUse(ip));
        }
        self.allocated.insert(ip);
        Ok(ip)
    }

    /// The lowest free address of the range (or subnet); None when all are taken.
    pub fn allocate_next(&mut self) -> Option<IpAddr> {
        let range = self.ip_range.unwrap_or(self.subnet);
        let (first, last) = (range.first(), range.last());
        let mut value = first;
        // Walk the allocated set in order alongside the candidates: O(allocated) per call.
        let mut taken = self
            .allocated
            .range(from_u128(range.addr, first)..)
            .map(|ip| to_u128(*ip))
            .peekable();
        loop {
            if value > last {
                return None;
            }
            while taken.peek().is_some_and(|t| *t < value) {
                taken.next();
            }
            let ip = from_u128(range.addr, value);
            if taken.peek() == Some(&value) || self.reserved(ip) {
                value = value.checked_add(1)?;
                continue;
            }
            self.allocated.insert(ip);
            return Some(ip);
        }
    }

    /// Gives `ip` back; false if it was not allocated here.
    pub fn release(&mut self, ip: IpAddr) -> bool {
        self.allocated.remove(&ip)
    }
}

/// The IPv4 broadcast address of a subnet with room for one (none for IPv6, /31, /32).
fn broadcast(subnet: &Subnet) -> Option<IpAddr> {
    (subnet.addr.is_ipv4() && subnet.prefix < 31).then(|| from_u128(subnet.addr, subnet.last()))
}

/// An address handed to an endpoint, with what its interface needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned {
    pub ip: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
}

/// All pools of one network (IPv4 and IPv6 subnets).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipam {
    pub pools: Vec<Pool>,
}

impl Ipam {
    /// Pools for the given subnets; subnets of the same network may not overlap.
    pub fn new(pools: Vec<Pool>) -> Result<Ipam, IpamError> {
        for (i, a) in pools.iter().enumerate() {
            if pools[i + 1..].iter().any(|b| a.subnet.overlaps(&b.subnet)) {
                return Err(IpamError::Overlap);
            }
        }
        Ok(Ipam { pools })
    }

    /// The pools of one family (4 or 6).
    pub fn family(&self, family: u8) -> impl Iterator<Item = &Pool> {
        self.pools
            .iter()
            .filter(move |p| p.subnet.family() == family)
    }

    /// An address of `family` for an endpoint: `requested` if given (it must lie in one
    /// of the subnets and be free), else the lowest free one of the first pool with room.
    /// `network` and `id` only name the network in the exhaustion error.
    pub fn allocate(
        &mut self,
        family: u8,
        requested: Option<IpAddr>,
        network: &str,
        id: &str,
    ) -> Result<Assigned, IpamError> {
        let assigned = |pool: &Pool, ip: IpAddr| Assigned {
            ip,
            prefix: pool.subnet.prefix,
            gateway: pool.gateway,
        };
        if let Some(ip) = requested {
            let pool = self
                .pools
                .iter_mut()
                .find(|p| p.subnet.contains(ip))
                .ok_or(IpamError::OutOfRange(ip))?;
            let ip = pool.allocate_specific(ip)?;
            return Ok(assigned(pool, ip));
        }
        for pool in self
            .pools
            .iter_mut()
            .filter(|p| p.subnet.family() == family)
        {
            if let Some(ip) = pool.allocate_next() {
                return Ok(assigned(pool, ip));
            }
        }
        Err(IpamError::Exhausted {
            family,
            network: network.to_string(),
            id: id.to_string(),
        })
    }

    /// Gives `ip` back to its pool; false if no pool had it allocated.
    pub fn release(&mut self, ip: IpAddr) -> bool {
        self.pools.iter_mut().any(|p| p.release(ip))
    }

    /// Number of addresses handed out (gateways not counted).
    pub fn in_use(&self) -> usize {
        self.pools.iter().map(|p| p.allocated.len()).sum()
    }
}

/// Docker's default local address pools: `172.17.0.0/16` ... `172.31.0.0/16`, then
/// `192.168.0.0/20` ... `192.168.240.0/20` (moby's `ipamutils` defaults).
pub fn default_ipv4_pools() -> Vec<Subnet> {
    let mut pools: Vec<Subnet> = (17..=31)
        .map(|b| Subnet {
            addr: IpAddr::V4(Ipv4Addr::new(172, b, 0, 0)),
            prefix: 16,
        })
        .collect();
    pools.extend((0..16).map(|i| Subnet {
        addr: IpAddr::V4(Ipv4Addr::new(192, 168, i * 16, 0)),
        prefix: 20,
    }));
    pools
}

/// The first of `candidates` that overlaps none of `used` (other networks' subnets and the
/// host's routes).
pub fn pick_subnet(candidates: &[Subnet], used: &[Subnet]) -> Option<Subnet> {
    candidates
        .iter()
        .find(|c| !used.iter().any(|u| u.overlaps(c)))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(text: &str) -> Subnet {
        text.parse().expect("subnet")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn ipam(text: &str) -> Ipam {
        Ipam::new(vec![Pool::new(subnet(text), None, None).expect("pool")]).expect("ipam")
    }

    #[test]
    fn subnets_parse_display_and_clear_host_bits() {
        let s = subnet("172.17.0.1/16");
        assert_eq!(s.to_string(), "172.17.0.1/16");
        assert_eq!(s.network().to_string(), "172.17.0.0/16");
        assert!(s.contains(ip("172.17.255.254")));
        assert!(!s.contains(ip("172.18.0.1")));
        assert_eq!(subnet("fd00:1::5/64").network().to_string(), "fd00:1::/64");
        for bad in [
            "172.17.0.0",
            "172.17.0.0/33",
            "x/8",
            "10.0.0.0/-1",
            "::/129",
        ] {
            assert_eq!(
                bad.parse::<Subnet>(),
                Err(IpamError::InvalidCidr(bad.to_string()))
            );
        }
        assert!(subnet("0.0.0.0/0").contains(ip("8.8.8.8")));
    }

    #[test]
    fn overlap_is_symmetric_and_family_bound() {
        assert!(subnet("10.0.0.0/8").overlaps(&subnet("10.1.0.0/16")));
        assert!(subnet("10.1.0.0/16").overlaps(&subnet("10.0.0.0/8")));
        assert!(!subnet("10.1.0.0/16").overlaps(&subnet("10.2.0.0/16")));
        assert!(!subnet("::/0").overlaps(&subnet("10.0.0.0/8")));
        assert_eq!(
            Ipam::new(vec![
                Pool::new(subnet("10.0.0.0/8"), None, None).expect("a"),
                Pool::new(subnet("10.9.0.0/16"), None, None).expect("b"),
            ]),
            Err(IpamError::Overlap)
        );
    }

    #[test]
    fn first_addresses_skip_network_and_gateway() {
        let mut ipam = ipam("172.17.0.0/16");
        let a = ipam.allocate(4, None, "bridge", "id").expect("a");
        assert_eq!(a.ip, ip("172.17.0.2"));
        assert_eq!(a.prefix, 16);
        assert_eq!(a.gateway, Some(ip("172.17.0.1")));
        assert_eq!(
            ipam.allocate(4, None, "bridge", "id").expect("b").ip,
            ip("172.17.0.3")
        );
    }

    #[test]
    fn released_addresses_are_reused_lowest_first() {
        let mut ipam = ipam("10.5.0.0/24");
        let ips: Vec<IpAddr> = (0..3)
            .map(|_| ipam.allocate(4, None, "n", "i").expect("ip").ip)
            .collect();
        assert!(ipam.release(ips[1]));
        assert!(!ipam.release(ips[1]), "double release is refused");
        assert_eq!(ipam.allocate(4, None, "n", "i").expect("ip").ip, ips[1]);
    }

    #[test]
    fn thousand_allocate_release_cycles_leak_nothing() {
        let mut ipam = ipam("10.6.0.0/29");
        let keep = ipam.allocate(4, None, "n", "i").expect("keep").ip;
        for cycle in 0..1000 {
            let a = ipam.allocate(4, None, "n", "i").expect("a").ip;
            let b = ipam.allocate(4, None, "n", "i").expect("b").ip;
            assert_ne!(a, b);
            assert_ne!(a, keep);
            // Round-trip through JSON as the engine persists it between operations.
            let text = serde_json::to_string(&ipam).expect("encode");
            ipam = serde_json::from_str(&text).expect("decode");
            assert!(ipam.release(if cycle % 2 == 0 { a } else { b }));
            assert!(ipam.release(if cycle % 2 == 0 { b } else { a }));
            assert_eq!(ipam.in_use(), 1, "cycle {cycle}");
        }
        assert_eq!(
            ipam.allocate(4, None, "n", "i").expect("next").ip,
            ip("10.6.0.3")
        );
    }

    #[test]
    fn exhaustion_uses_dockers_text() {
        // /30: network .0, gateway .1, one host .2, broadcast .3.
        let mut ipam = ipam("10.7.0.0/30");
        assert_eq!(
            ipam.allocate(4, None, "tiny", "abc").expect("one").ip,
            ip("10.7.0.2")
        );
        let err = ipam.allocate(4, None, "tiny", "abc").expect_err("full");
        assert_eq!(
            err.to_string(),
            "no available IPv4 addresses on this network's address pools: tiny (abc)"
        );
        assert!(err.is_exhausted());
    }

    #[test]
    fn ip_range_limits_dynamic_addresses_only() {
        let pool =
            Pool::new(subnet("10.8.0.0/16"), Some(subnet("10.8.5.0/30")), None).expect("pool");
        assert_eq!(pool.gateway, Some(ip("10.8.0.1")));
        let mut ipam = Ipam::new(vec![pool]).expect("ipam");
        let got: Vec<IpAddr> = (0..4)
            .map(|_| ipam.allocate(4, None, "n", "i").expect("ip").ip)
            .collect();
        assert_eq!(
            got,
            ["10.8.5.0", "10.8.5.1", "10.8.5.2", "10.8.5.3"]
                .map(ip)
                .to_vec()
        );
        assert!(ipam.allocate(4, None, "n", "i").is_err());
        // A specific address outside the range but inside the subnet is allowed.
        assert_eq!(
            ipam.allocate(4, Some(ip("10.8.9.9")), "n", "i")
                .expect("specific")
                .ip,
            ip("10.8.9.9")
        );
        assert_eq!(
            Pool::new(subnet("10.8.0.0/16"), Some(subnet("10.9.0.0/24")), None),
            Err(IpamError::RangeOutsideSubnet(subnet("10.9.0.0/24")))
        );
    }

    #[test]
    fn specific_addresses_are_checked() {
        let mut ipam = ipam("10.9.0.0/24");
        assert_eq!(
            ipam.allocate(4, Some(ip("10.9.0.7")), "n", "i")
                .expect("ip")
                .ip,
            ip("10.9.0.7")
        );
        let taken = ipam
            .allocate(4, Some(ip("10.9.0.7")), "n", "i")
            .expect_err("taken");
        assert_eq!(taken.to_string(), "Address already in use");
        assert_eq!(
            ipam.allocate(4, Some(ip("10.9.0.1")), "n", "i"),
            Err(IpamError::InUse(ip("10.9.0.1"))),
            "the gateway is taken"
        );
        assert_eq!(
            ipam.allocate(4, Some(ip("10.10.0.7")), "n", "i")
                .expect_err("outside")
                .to_string(),
            "no configured subnet contains IP address 10.10.0.7"
        );
        // Dynamic allocation skips the specific one.
        for expected in 2..=6 {
            ipam.allocate(4, None, "n", "i").expect("dynamic");
            assert!(ipam.pools[0]
                .allocated
                .contains(&ip(&format!("10.9.0.{expected}"))));
        }
        assert_eq!(
            ipam.allocate(4, None, "n", "i").expect("next").ip,
            ip("10.9.0.8")
        );
    }

    #[test]
    fn gateway_must_be_inside_the_subnet() {
        assert_eq!(
            Pool::new(subnet("10.11.0.0/24"), None, Some(ip("10.12.0.1")))
                .expect_err("gw")
                .to_string(),
            "no matching subnet for gateway 10.12.0.1"
        );
        let pool = Pool::new(subnet("10.11.0.0/24"), None, Some(ip("10.11.0.254"))).expect("gw");
        let mut ipam = Ipam::new(vec![pool]).expect("ipam");
        assert_eq!(
            ipam.allocate(4, None, "n", "i").expect("ip").ip,
            ip("10.11.0.1")
        );
    }

    #[test]
    fn ipv6_pools_have_no_broadcast_and_stay_separate() {
        let mut ipam = Ipam::new(vec![
            Pool::new(subnet("10.13.0.0/24"), None, None).expect("v4"),
            Pool::new(subnet("fd00:13::/64"), None, None).expect("v6"),
        ])
        .expect("ipam");
        let v6 = ipam.allocate(6, None, "n", "i").expect("v6");
        assert_eq!(v6.ip, ip("fd00:13::2"));
        assert_eq!(v6.gateway, Some(ip("fd00:13::1")));
        assert_eq!(v6.prefix, 64);
        assert_eq!(
            ipam.allocate(4, None, "n", "i").expect("v4").ip,
            ip("10.13.0.2")
        );
        assert_eq!(
            ipam.allocate(6, None, "n", "i").expect("v6").ip,
            ip("fd00:13::3")
        );
        assert_eq!(ipam.family(6).count(), 1);
        let err = Ipam::default()
            .allocate(6, None, "n", "i")
            .expect_err("none");
        assert!(err.to_string().starts_with("no available IPv6 addresses"));
    }

    #[test]
    fn default_pool_skips_used_subnets() {
        let pools = default_ipv4_pools();
        assert_eq!(pools[0], subnet("172.17.0.0/16"));
        assert_eq!(pools.last(), Some(&subnet("192.168.240.0/20")));
        assert_eq!(pick_subnet(&pools, &[]), Some(subnet("172.17.0.0/16")));
        // A host route such as a real docker0 (172.17.0.0/16) pushes berth to 172.18.
        let used = [subnet("172.17.0.1/16"), subnet("10.0.0.0/8")];
        assert_eq!(pick_subnet(&pools, &used), Some(subnet("172.18.0.0/16")));
        assert_eq!(pick_subnet(&pools, &[subnet("0.0.0.0/0")]), None);
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut ipam = ipam("10.14.0.0/24");
        ipam.allocate(4, None, "n", "i").expect("ip");
        let text = serde_json::to_string(&ipam).expect("encode");
        assert!(text.contains("\"10.14.0.0/24\""), "{text}");
        let back: Ipam = serde_json::from_str(&text).expect("decode");
        assert_eq!(back, ipam);
    }
}
