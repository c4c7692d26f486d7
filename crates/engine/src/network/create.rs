//! `docker network create` (validation, subnets, bridge options, Docker's texts) and the
//! predefined networks `bridge` (device `berth0`, Docker's 172.17.0.0/16 unless a host
//! route clashes), `host` and `none`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use berth_api::network::{IpamPool, NetworkCreateRequest};
use berth_network::ipam::{pick_subnet, Ipam, IpamError, Pool, Subnet};

use super::record::{Driver, IpamConfigRecord, NetworkRecord};
use super::{blocking, NetworkError, NetworkService};

/// Docker's bridge driver options.
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";
pub const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
pub const OPT_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";

/// A create request as the API hands it over.
pub type CreateNetwork = NetworkCreateRequest;

const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

impl NetworkService {
    /// `POST /networks/create`: returns the new network's ID.
    pub async fn create(&self, request: CreateNetwork) -> Result<String, NetworkError> {
        let _op = self.op.lock().await;
        let name = request.name.clone();
        if name.is_empty() {
            return Err(NetworkError::InvalidArgument(
                "network name cannot be empty".to_string(),
            ));
        }
        if PREDEFINED.contains(&name.as_str()) {
            return Err(NetworkError::Forbidden(format!(
                "{name} is a pre-defined network and cannot be created"
            )));
        }
        match request.driver.as_str() {
            "" | "bridge" => {}
            "host" | "null" => {
                return Err(NetworkError::Forbidden(format!(
                    "only one instance of \"{}\" network is allowed",
                    request.driver
                )))
            }
            other => {
                return Err(NetworkError::NotImplemented(format!(
                    "plugin \"{other}\" not found"
                )))
            }
        }
        if self.lock().networks.values().any(|n| n.name == name) {
            return Err(NetworkError::NameExists(name));
        }
        let routes = self.host_routes().await;
        let id = super::new_id();
        let record = {
            let state = self.lock();
            let taken: Vec<Subnet> = state
                .networks
                .values()
                .flat_map(|n| n.ipam.pools.iter().map(|p| p.subnet))
                .collect();
            build_record(&request, &id, &taken, &routes, &self.defaults.address_pools)?
        };
        self.persist(record.clone()).await?;
        self.publish(&record, "create", BTreeMap::new());
        Ok(id)
    }

    /// Routes of the host (berth's own bridges included); empty if they cannot be read.
    async fn host_routes(&self) -> Vec<Subnet> {
        let datapath = self.datapath.clone();
        blocking(move || Ok(datapath.host_routes()?))
            .await
            .unwrap_or_default()
    }

    /// The first IPv4 address (gateway/prefix) of an existing device called `bridge`.
    async fn own_bridge_address(&self, bridge: &str) -> Option<Subnet> {
        let datapath = self.datapath.clone();
        let bridge = bridge.to_string();
        blocking(move || Ok(datapath.bridge_addresses(&bridge)?))
            .await
            .ok()?
            .into_iter()
            .find(|a| a.family() == 4 && a.prefix < 31)
    }

    /// Creates `bridge`, `host` and `none` when the data root has none yet. A default bridge
    /// whose subnet is not daemon.json's `bip` (changed since the record was made) is made
    /// anew from it while no container is attached: dockerd builds its default bridge
    /// network from its configuration at every start.
    pub(super) async fn ensure_predefined(&self) -> Result<(), NetworkError> {
        if let Some(id) = self.default_bridge_off_bip() {
            let record = self.default_bridge(id).await?;
            eprintln!(
                "berthd: default bridge network: daemon.json bip changed, now {}",
                record
                    .ipam
                    .family(4)
                    .next()
                    .map(|p| p.subnet.to_string())
                    .unwrap_or_default()
            );
            self.persist(record).await?;
        }
        let missing: Vec<&str> = {
            let state = self.lock();
            PREDEFINED
                .iter()
                .copied()
                .filter(|name| {
                    !state
                        .networks
                        .values()
                        .any(|n| n.name == *name && n.predefined)
                })
                .collect()
        };
        for name in missing {
            let id = super::new_id();
            let record = match name {
                "bridge" => self.default_bridge(id).await?,
                "host" => simple_record(id, "host", Driver::Host),
                _ => simple_record(id, "none", Driver::Null),
            };
            self.persist(record).await?;
        }
        Ok(())
    }

    /// With a `bip`, the default bridge's device takes it at start, as dockerd sets its
    /// bridge up at every start (initBridgeDriver): a missing device is made, a device left
    /// by an earlier run with another address (a changed `bip`, stale state) loses it.
    /// Without a `bip` dockerd adopts the device's address (selectBIP), which the record
    /// already did when it was made; the device then waits for the first container. A
    /// failure is reported and left to the first container to retry.
    pub(super) async fn converge_default_bridge(&self) {
        let Some(record) = self
            .lock()
            .networks
            .values()
            .find(|n| n.predefined && n.driver == Driver::Bridge)
            .cloned()
        else {
            return;
        };
        let spec = super::datapath::BridgeSpec {
            name: record.bridge.clone(),
            mtu: record.mtu,
            addresses: record
                .ipam
                .pools
                .iter()
                .filter_map(|p| {
                    p.gateway.map(|addr| Subnet {
                        addr,
                        prefix: p.subnet.prefix,
                    })
                })
                .collect(),
            icc: record.icc,
            internal: record.internal,
        };
        let with_bip = self.defaults.bip.is_some();
        let datapath = self.datapath.clone();
        let result = blocking(move || {
            // No address: no device (or one berth has not set up yet).
            let mut have: Vec<Subnet> = datapath
                .bridge_addresses(&spec.name)
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a.family() == 4)
                .collect();
            have.sort();
            let mut want = spec.addresses.clone();
            want.sort();
            if with_bip && have != want {
                datapath.ensure_bridge(&spec)?;
            }
            Ok(())
        })
        .await;
        if let Err(e) = result {
            eprintln!("berthd: default bridge network: {e}");
        }
    }

    /// The ID of the default bridge network when daemon.json has a `bip` its record does not
    /// match and no container is attached to it.
    fn default_bridge_off_bip(&self) -> Option<String> {
        let bip = self.defaults.bip?;
        let state = self.lock();
        let record = state
            .networks
            .values()
            .find(|n| n.predefined && n.driver == Driver::Bridge)?;
        let current = record.ipam.family(4).next().map(|p| (p.subnet, p.gateway));
        (record.endpoints.is_empty() && current != Some((bip.network(), Some(bip.addr))))
            .then(|| record.id.clone())
    }

    async fn default_bridge(&self, id: String) -> Result<NetworkRecord, NetworkError> {
        let defaults = &self.defaults;
        let (subnet, gateway) = match defaults.bip {
            Some(bip) => (bip.network(), Some(bip.addr)),
            None => {
                let records: Vec<Subnet> = self
                    .lock()
                    .networks
                    .values()
                    .flat_map(|n| n.ipam.pools.iter().map(|p| p.subnet))
                    .collect();
                // The bridge device of an earlier run (a fresh data root, the device kept):
                // its route is its own, not a clash; reuse its subnet and gateway.
                if let Some(own) = self
                    .own_bridge_address(&defaults.bridge)
                    .await
                    .filter(|own| !records.iter().any(|r| r.overlaps(&own.network())))
                {
                    eprintln!(
                        "berthd: default bridge network: reusing {} of the existing {}",
                        own.network(),
                        defaults.bridge
                    );
                    (own.network(), Some(own.addr))
                } else {
                    let routes: Vec<Subnet> = self.host_routes().await;
                    let others: Vec<Subnet> = records.into_iter().chain(routes).collect();
                    let subnet = pick_subnet(&defaults.address_pools, &others)
                        .ok_or(IpamError::NoFreePool(4))?;
                    if Some(&subnet) != defaults.address_pools.first() {
                        eprintln!(
                            "berthd: default bridge network: {} is in use on this host (a route \
                         overlaps it, e.g. docker0), using {subnet} for {}",
                            defaults
                                .address_pools
                                .first()
                                .map(|s| s.to_string())
                                .unwrap_or_default(),
                            defaults.bridge
                        );
                    }
                    (subnet, None)
                }
            }
        };
        let pool = Pool::new(subnet, None, gateway)?;
        let gateway = pool.gateway.map(|g| g.to_string()).unwrap_or_default();
        let options = BTreeMap::from([
            (
                "com.docker.network.bridge.default_bridge".to_string(),
                "true".to_string(),
            ),
            (OPT_ICC.to_string(), "true".to_string()),
            (OPT_MASQUERADE.to_string(), "true".to_string()),
            (
                "com.docker.network.bridge.host_binding_ipv4".to_string(),
                "0.0.0.0".to_string(),
            ),
            (OPT_BRIDGE_NAME.to_string(), defaults.bridge.clone()),
            (OPT_MTU.to_string(), defaults.mtu.to_string()),
        ]);
        Ok(NetworkRecord {
            bridge: defaults.bridge.clone(),
            mtu: defaults.mtu,
            icc: true,
            masquerade: true,
            ipam_config: vec![IpamConfigRecord {
                subnet: subnet.to_string(),
                ip_range: String::new(),
                gateway,
            }],
            ipam: Ipam::new(vec![pool])?,
            options,
            ..simple_record(id, "bridge", Driver::Bridge)
        })
    }
}

fn simple_record(id: String, name: &str, driver: Driver) -> NetworkRecord {
    NetworkRecord {
        id,
        name: name.to_string(),
        driver,
        created: crate::container::now_text(),
        predefined: true,
        internal: false,
        attachable: false,
        enable_ipv6: false,
        bridge: String::new(),
        mtu: 0,
        icc: false,
        masquerade: false,
        ipam_config: Vec::new(),
        ipam: Ipam::default(),
        options: BTreeMap::new(),
        labels: BTreeMap::new(),
        endpoints: BTreeMap::new(),
    }
}

fn parse_ip(text: &str) -> Result<IpAddr, NetworkError> {
    text.parse()
        .map_err(|_| NetworkError::Ipam(IpamError::InvalidAddress(text.to_string())))
}

fn bool_option(
    options: &BTreeMap<String, String>,
    key: &str,
    default: bool,
) -> Result<bool, NetworkError> {
    match options.get(key).map(|v| v.trim()) {
        None | Some("") => Ok(default),
        Some("true" | "1" | "t" | "T" | "TRUE" | "True") => Ok(true),
        Some("false" | "0" | "f" | "F" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(NetworkError::InvalidArgument(format!(
            "failed to parse {key} value: strconv.ParseBool: parsing \"{other}\": invalid syntax"
        ))),
    }
}

/// moby's validateIpamConfig (daemon/network.go) with its texts, every problem on its own
/// line: a subnet with host bits set, an ip-range or gateway of the other family, outside
/// its subnet or (ip-range) bigger than it or with host bits set. IPv6 entries are not
/// checked unless IPv6 is enabled, as moby skips them. Entries without a subnet meet
/// Go's zero `netip.Prefix`, which prints as `invalid Prefix`. Unparsable values are
/// refused with `invalid CIDR address`/`invalid IP address` (moby fails its JSON decode).
fn validate_ipam_config(configs: &[IpamPool], enable_ipv6: bool) -> Result<(), NetworkError> {
    let mut problems = Vec::new();
    for config in configs {
        let subnet: Option<Subnet> = match config.subnet.as_str() {
            "" => None,
            text => Some(text.parse()?),
        };
        let family = subnet.map_or(4, |s| s.family());
        if family == 6 && !enable_ipv6 {
            continue;
        }
        let parent = subnet.map_or_else(|| "invalid Prefix".to_string(), |s| s.to_string());
        if let Some(subnet) = subnet.filter(|s| s.network() != *s) {
            problems.push(format!(
                "invalid subnet {subnet}: it should be {}",
                subnet.network()
            ));
        }
        if !config.ip_range.is_empty() {
            let range: Subnet = config.ip_range.parse()?;
            if range.family() != family {
                problems.push(format!(
                    "invalid ip-range {range}: parent subnet is an IPv{family} block"
                ));
            } else {
                if subnet.is_some_and(|s| range.prefix < s.prefix) {
                    problems.push(format!(
                        "invalid ip-range {range}: CIDR block is bigger than its parent subnet \
                         {parent}"
                    ));
                }
                if range.network() != range {
                    problems.push(format!(
                        "invalid ip-range {range}: it should be {}",
                        range.network()
                    ));
                }
                if !subnet.is_some_and(|s| s.overlaps(&range)) {
                    problems.push(format!(
                        "invalid ip-range {range}: parent subnet {parent} doesn't contain ip-range"
                    ));
                }
            }
        }
        if !config.gateway.is_empty() {
            let gateway = parse_ip(&config.gateway)?;
            let gateway_family = if gateway.is_ipv4() { 4 } else { 6 };
            if gateway_family != family {
                problems.push(format!(
                    "invalid gateway {gateway}: parent subnet is an IPv{family} block"
                ));
            } else if !subnet.is_some_and(|s| s.contains(gateway)) {
                problems.push(format!(
                    "invalid gateway {gateway}: parent subnet {parent} doesn't contain this address"
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(NetworkError::InvalidIpamConfig(problems.join("\n")))
    }
}

/// The record of a new user-defined bridge network (pure: subnets picked against `taken`
/// networks and host `routes`).
pub(super) fn build_record(
    request: &NetworkCreateRequest,
    id: &str,
    taken: &[Subnet],
    routes: &[Subnet],
    pools: &[Subnet],
) -> Result<NetworkRecord, NetworkError> {
    let options = request.options.clone().unwrap_or_default();
    let configs: Vec<IpamPool> = request
        .ipam
        .as_ref()
        .and_then(|i| i.config.clone())
        .unwrap_or_default();
    let enable_ipv6 = request.enable_ipv6.unwrap_or(false);
    validate_ipam_config(&configs, enable_ipv6)?;
    let mut ipam_pools = Vec::new();
    let mut ipam_config = Vec::new();
    for config in &configs {
        if config.subnet.is_empty() {
            continue;
        }
        let subnet: Subnet = config.subnet.parse()?;
        if subnet.family() == 6 && !enable_ipv6 {
            return Err(NetworkError::Forbidden(
                "non-IPv6 network with an IPv6 subnet: enable IPv6 with --ipv6".to_string(),
            ));
        }
        if taken.iter().any(|t| t.overlaps(&subnet)) {
            return Err(IpamError::Overlap.into());
        }
        let range = match config.ip_range.as_str() {
            "" => None,
            text => Some(text.parse::<Subnet>()?),
        };
        let gateway = match config.gateway.as_str() {
            "" => None,
            text => Some(parse_ip(text)?),
        };
        let pool = Pool::new(subnet, range, gateway)?;
        ipam_config.push(IpamConfigRecord {
            subnet: pool.subnet.to_string(),
            ip_range: config.ip_range.clone(),
            gateway: pool.gateway.map(|g| g.to_string()).unwrap_or_default(),
        });
        ipam_pools.push(pool);
    }
    if !ipam_pools.iter().any(|p| p.subnet.family() == 4) {
        let used: Vec<Subnet> = taken.iter().chain(routes).copied().collect();
        let subnet = pick_subnet(pools, &used).ok_or(IpamError::NoFreePool(4))?;
        let pool = Pool::new(subnet, None, None)?;
        ipam_config.insert(
            0,
            IpamConfigRecord {
                subnet: subnet.to_string(),
                ip_range: String::new(),
                gateway: pool.gateway.map(|g| g.to_string()).unwrap_or_default(),
            },
        );
        ipam_pools.insert(0, pool);
    }
    if enable_ipv6 && !ipam_pools.iter().any(|p| p.subnet.family() == 6) {
        // Docker 27+ picks a ULA /64 from its default IPv6 pool; berth derives one from
        // the network ID (fdXX:XXXX:XXXX::/64) so it is stable and unlikely to clash.
        let hex = &id[..10];
        let text = format!("fd{}:{}:{}::/64", &hex[0..2], &hex[2..6], &hex[6..10]);
        let subnet: Subnet = text.parse()?;
        let pool = Pool::new(subnet, None, None)?;
        ipam_config.push(IpamConfigRecord {
            subnet: subnet.to_string(),
            ip_range: String::new(),
            gateway: pool.gateway.map(|g| g.to_string()).unwrap_or_default(),
        });
        ipam_pools.push(pool);
    }
    let ipam = Ipam::new(ipam_pools)?;
    let bridge = match options.get(OPT_BRIDGE_NAME) {
        Some(name) if !name.is_empty() => {
            if name.len() > 15 {
                return Err(NetworkError::InvalidArgument(format!(
                    "bridge name {name} is too long (at most 15 characters)"
                )));
            }
            name.clone()
        }
        _ => format!("br-{}", &id[..12]),
    };
    let mtu = match options.get(OPT_MTU) {
        Some(text) if !text.is_empty() => text
            .parse::<u32>()
            .map_err(|_| NetworkError::InvalidArgument(format!("invalid MTU number: {text}")))?,
        _ => 1500,
    };
    Ok(NetworkRecord {
        id: id.to_string(),
        name: request.name.clone(),
        driver: Driver::Bridge,
        created: crate::container::now_text(),
        predefined: false,
        internal: request.internal,
        attachable: request.attachable,
        enable_ipv6,
        bridge,
        mtu,
        icc: bool_option(&options, OPT_ICC, true)?,
        masquerade: !request.internal && bool_option(&options, OPT_MASQUERADE, true)?,
        ipam_config,
        ipam,
        options,
        labels: request.labels.clone().unwrap_or_default(),
        endpoints: BTreeMap::new(),
    })
}
