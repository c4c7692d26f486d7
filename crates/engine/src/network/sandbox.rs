//! A container's sandbox: its pinned network namespace (`<exec-root>/netns/<id>`), one
//! endpoint per network (`eth0`, `eth1`, ... with addresses from IPAM), its published
//! ports and its embedded DNS. Set up before the shim starts, torn down when the process
//! exits, changed live by `network connect`/`disconnect`. Records are saved before the
//! kernel is touched, so reconcile at the next start can undo anything half done.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_network::ipam::Subnet;
use serde::{Deserialize, Serialize};

use super::datapath::{BridgeSpec, EndpointSpec};
use super::endpoint::{
    check_request, format_mac, in_create_config, mac_for, parse_mac, requests_for,
};
use super::endpoint::{requests_of, EndpointRequest};
use super::ports::{self, PortMapping};
use super::record::{Driver, EndpointRecord, NetworkRecord};
use super::{blocking, dns, NetworkError, NetworkService};
use crate::container::ContainerRecord;

/// Per container, persisted at `<data-root>/networks/sandboxes/<id>.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub container_id: String,
    /// The pinned namespace while the container runs.
    #[serde(default)]
    pub netns: Option<PathBuf>,
    /// Published ports while the container runs.
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// Networks connected with `network connect` while the container was stopped or
    /// beyond those of its create request.
    #[serde(default)]
    pub connected: Vec<EndpointRequest>,
    /// Network IDs disconnected from the container's create-time networks.
    #[serde(default)]
    pub disconnected: Vec<String>,
    /// The embedded DNS's upstreams from `--dns` (empty: the host's resolvers), kept for
    /// the DNS restarted by reconcile after a berthd restart.
    #[serde(default)]
    pub dns: Vec<std::net::SocketAddr>,
    /// Containers started with `--network container:<this one>`: they live in this
    /// namespace too, so its veth pairs are deleted explicitly at teardown (see
    /// [`NetworkService::teardown`]). A stale entry only costs that explicit deletion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joined_by: Vec<String>,
}

impl SandboxRecord {
    fn path(dir: &Path, id: &str) -> PathBuf {
        dir.join(format!("{id}.json"))
    }

    /// Temp file and rename, not fsynced: a sandbox only matters while its container
    /// runs, and a host crash ends both (a berthd crash keeps the page cache).
    fn save(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let temp = dir.join(format!(".{}.tmp", self.container_id));
        std::fs::write(&temp, bytes)?;
        std::fs::rename(temp, Self::path(dir, &self.container_id))
    }

    pub(super) fn load_all(dir: &Path) -> std::io::Result<Vec<SandboxRecord>> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                if let Some(record) = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                {
                    all.push(record);
                }
            }
        }
        Ok(all)
    }
}

/// What the spec and the /etc files need from the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxSetup {
    /// The namespace to join (None: the spec's own private one, or the host's).
    pub netns: Option<PathBuf>,
    /// The container's own addresses for /etc/hosts.
    pub addresses: Vec<IpAddr>,
    /// A user-defined network is attached: resolv.conf names 127.0.0.11.
    pub embedded_dns: bool,
    /// The default bridge's gateway, for `--add-host name:host-gateway`.
    pub host_gateway: Option<IpAddr>,
}

/// `--dns` servers as the embedded DNS's upstreams (port 53); unparsable ones are left out
/// (the CLI and the API refuse them before).
fn dns_upstreams(record: &ContainerRecord) -> Vec<std::net::SocketAddr> {
    record
        .host_config
        .dns
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|server| server.parse::<IpAddr>().ok())
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .collect()
}

fn exposed_of(record: &ContainerRecord) -> Vec<String> {
    record
        .config
        .exposed_ports
        .as_ref()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

impl NetworkService {
    /// `POST /containers/create`: the networks exist and the endpoint settings fit them
    /// (Docker checks these at create since 25.0; 20.10 at start, after creating).
    pub fn validate_create(
        &self,
        network_mode: &str,
        networking: Option<&berth_api::network::NetworkingConfig>,
        mac_address: &str,
    ) -> Result<(), NetworkError> {
        if network_mode == "host"
            || network_mode == "none"
            || network_mode.starts_with("container:")
        {
            return Ok(());
        }
        for request in requests_for(network_mode, networking, mac_address)? {
            let network = self.get(&request.network)?;
            let key = match networking.and_then(|n| n.endpoints_config.as_ref()) {
                Some(configs) if request.network == "bridge" && !configs.contains_key("bridge") => {
                    "default"
                }
                _ => request.network.as_str(),
            };
            check_request(&network, &request).map_err(|e| in_create_config(key, e))?;
        }
        Ok(())
    }

    fn netns_path(&self, container_id: &str) -> PathBuf {
        self.paths.netns.join(container_id)
    }

    /// Before the shim starts: namespace, endpoints, ports, firewall and DNS for the
    /// container's bridge networks. `joined` is the ID of the container whose namespace a
    /// `container:<name|id>` container shares. Undone on failure.
    pub async fn setup(
        self: &Arc<Self>,
        record: &ContainerRecord,
        joined: Option<&str>,
    ) -> Result<SandboxSetup, NetworkError> {
        let mode = record.host_config.network_mode.as_str();
        if mode == "host" || mode == "none" {
            return Ok(SandboxSetup::default());
        }
        if mode.starts_with("container:") {
            let other = joined.unwrap_or_default();
            let _op = self.op.lock().await;
            let mut shared = self
                .sandbox(other)
                .filter(|s| s.netns.is_some())
                .ok_or_else(|| {
                    NetworkError::Forbidden(format!(
                        "cannot join network namespace of a non running container: {}",
                        mode.trim_start_matches("container:")
                    ))
                })?;
            let netns = shared.netns.clone();
            if !shared.joined_by.contains(&record.id) {
                shared.joined_by.push(record.id.clone());
                self.save_sandbox(shared).await?;
            }
            return Ok(SandboxSetup {
                netns,
                ..SandboxSetup::default()
            });
        }
        let _op = self.op.lock().await;
        match self.setup_locked(record).await {
            Ok(setup) => Ok(setup),
            Err(e) => {
                let _ = self.teardown_locked(&record.id).await;
                Err(e)
            }
        }
    }

    async fn setup_locked(
        self: &Arc<Self>,
        record: &ContainerRecord,
    ) -> Result<SandboxSetup, NetworkError> {
        let id = record.id.clone();
        let mut sandbox = self.sandbox(&id).unwrap_or_else(|| SandboxRecord {
            container_id: id.clone(),
            ..SandboxRecord::default()
        });
        // Resolve every wanted network first: a missing one fails before anything exists.
        let mut wanted: Vec<(NetworkRecord, EndpointRequest)> = Vec::new();
        for request in requests_of(record)?
            .into_iter()
            .chain(sandbox.connected.clone())
        {
            let network = self.get(&request.network)?;
            if sandbox.disconnected.contains(&network.id)
                || wanted.iter().any(|(n, _)| n.id == network.id)
            {
                continue;
            }
            if network.driver != Driver::Bridge {
                return Err(NetworkError::Forbidden(format!(
                    "container cannot be connected to network {} with a network mode of its own",
                    network.name
                )));
            }
            wanted.push((network, request));
        }
        let netns = self.netns_path(&id);
        sandbox.netns = Some(netns.clone());
        sandbox.dns = dns_upstreams(record);
        {
            // The record first (reconcile finds the namespace by it after a crash), then the
            // namespace, in one trip to the blocking pool.
            let datapath = self.datapath.clone();
            let path = netns.clone();
            let dir = self.paths.sandboxes.clone();
            let saved = sandbox.clone();
            blocking(move || {
                saved
                    .save(&dir)
                    .map_err(|e| NetworkError::io("writing the sandbox record", e))?;
                let _ = datapath.remove_netns(&path);
                Ok(datapath.create_netns(&path)?)
            })
            .await?;
            self.lock().sandboxes.insert(id.clone(), sandbox.clone());
        }
        let mut setup = SandboxSetup {
            netns: Some(netns),
            ..SandboxSetup::default()
        };
        for (network, request) in wanted {
            let endpoint = self.attach_locked(record, &network, &request).await?;
            setup.addresses.extend(endpoint.ipv4.map(|s| s.addr));
            setup.addresses.extend(endpoint.ipv6.map(|s| s.addr));
            setup.embedded_dns |= network.embedded_dns();
        }
        setup.host_gateway = self.default_gateway();
        // Ports, then the firewall with them.
        let in_use: Vec<PortMapping> = self
            .lock()
            .sandboxes
            .values()
            .filter(|s| s.container_id != id)
            .flat_map(|s| s.ports.clone())
            .collect();
        let host_config = record.host_config.clone();
        let exposed = exposed_of(record);
        let publishes = host_config
            .port_bindings
            .as_ref()
            .is_some_and(|bindings| !bindings.is_empty())
            || (host_config.publish_all_ports && !exposed.is_empty());
        let mut sandbox = self.sandbox(&id).unwrap_or(sandbox);
        // Most containers publish nothing: no bind probes, no second record write.
        if publishes || !sandbox.ports.is_empty() {
            let mapped = blocking(move || {
                ports::resolve(
                    &host_config,
                    &exposed,
                    &in_use,
                    ports::ephemeral_range(),
                    &ports::bind_probe,
                )
            })
            .await?;
            sandbox.ports = mapped;
            self.save_sandbox(sandbox).await?;
        }
        self.apply_firewall().await?;
        if setup.embedded_dns {
            self.start_dns(&id).await?;
        }
        Ok(setup)
    }

    /// The default bridge's gateway (`host-gateway`).
    pub fn default_gateway(&self) -> Option<IpAddr> {
        let state = self.lock();
        state
            .networks
            .values()
            .find(|n| n.predefined && n.driver == Driver::Bridge)
            .and_then(|n| n.ipam.family(4).next().and_then(|p| p.gateway))
    }

    pub(super) async fn start_dns(self: &Arc<Self>, id: &str) -> Result<(), NetworkError> {
        if self.dns_lock().contains_key(id) {
            return Ok(());
        }
        let datapath = self.datapath.clone();
        let netns = self.netns_path(id);
        let lookup = dns::ServiceLookup::new(self);
        // Docker's embedded DNS forwards to the container's `--dns` servers, if any, asked
        // from the container's namespace; else to the host's, asked from the host's.
        let upstream = self
            .sandbox(id)
            .map(|s| s.dns)
            .filter(|dns| !dns.is_empty())
            .map(|dns| {
                dns.into_iter()
                    .map(berth_network::dns::Upstream::container)
                    .collect()
            })
            .unwrap_or_else(|| self.upstream.clone());
        let container = id.to_string();
        let guard =
            blocking(move || Ok(datapath.serve_dns(&netns, container, lookup, upstream)?)).await?;
        self.dns_lock().insert(id.to_string(), guard);
        Ok(())
    }

    fn dns_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, super::datapath::DnsGuard>>
    {
        match self.dns.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub(super) async fn save_sandbox(&self, sandbox: SandboxRecord) -> Result<(), NetworkError> {
        let dir = self.paths.sandboxes.clone();
        let saved = sandbox.clone();
        blocking(move || {
            saved
                .save(&dir)
                .map_err(|e| NetworkError::io("writing the sandbox record", e))
        })
        .await?;
        self.lock()
            .sandboxes
            .insert(sandbox.container_id.clone(), sandbox);
        Ok(())
    }

    /// Allocates addresses, saves them with the network, then creates the veth pair.
    async fn attach_locked(
        self: &Arc<Self>,
        record: &ContainerRecord,
        network: &NetworkRecord,
        request: &EndpointRequest,
    ) -> Result<EndpointRecord, NetworkError> {
        let id = record.id.clone();
        if network.endpoints.contains_key(&id) {
            return Err(NetworkError::AlreadyConnected {
                container: record.name.trim_start_matches('/').to_string(),
                network: network.name.clone(),
            });
        }
        check_request(network, request)?;
        let used_ifnames: Vec<String> = self
            .endpoints_of(&id)
            .into_iter()
            .map(|(_, e)| e.ifname)
            .collect();
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !used_ifnames.contains(n))
            .unwrap_or_default();
        let mut updated = self.get(&network.id)?;
        let v4 = updated
            .ipam
            .allocate(4, request.ipv4, &network.name, &network.id)?;
        let v6 = if network.enable_ipv6 {
            match updated
                .ipam
                .allocate(6, request.ipv6, &network.name, &network.id)
            {
                Ok(v6) => Some(v6),
                Err(e) => {
                    updated.ipam.release(v4.ip);
                    return Err(e.into());
                }
            }
        } else {
            None
        };
        let mac = match &request.mac {
            Some(text) => parse_mac(text)?,
            None => mac_for(Some(v4.ip)),
        };
        let short = id.chars().take(12).collect::<String>();
        let name = record.name.trim_start_matches('/').to_string();
        let dns_names = if network.predefined {
            Vec::new()
        } else {
            let mut names = vec![name.clone()];
            names.extend(request.aliases.iter().cloned());
            names.push(short.clone());
            names.dedup();
            names
        };
        let endpoint = EndpointRecord {
            container_id: id.clone(),
            container_name: name,
            endpoint_id: super::new_id(),
            ifname: ifname.clone(),
            host_veth: format!("veth{}", &super::new_id()[..7]),
            mac: format_mac(mac),
            ipv4: Some(Subnet {
                addr: v4.ip,
                prefix: v4.prefix,
            }),
            gateway4: v4.gateway,
            ipv6: v6.map(|a| Subnet {
                addr: a.ip,
                prefix: a.prefix,
            }),
            gateway6: v6.and_then(|a| a.gateway),
            aliases: request.aliases.clone(),
            dns_names,
            requested_ipv4: request.ipv4.map(|i| i.to_string()).unwrap_or_default(),
            requested_ipv6: request.ipv6.map(|i| i.to_string()).unwrap_or_default(),
        };
        updated.endpoints.insert(id.clone(), endpoint.clone());
        let bridge = BridgeSpec {
            name: updated.bridge.clone(),
            mtu: updated.mtu,
            addresses: updated
                .ipam
                .pools
                .iter()
                .filter_map(|p| {
                    p.gateway.map(|gw| Subnet {
                        addr: gw,
                        prefix: p.subnet.prefix,
                    })
                })
                .collect(),
            icc: updated.icc,
            internal: updated.internal,
        };
        let spec = EndpointSpec {
            bridge: updated.bridge.clone(),
            host_veth: endpoint.host_veth.clone(),
            netns: self.netns_path(&id),
            ifname,
            mac,
            mtu: updated.mtu,
            ipv4: endpoint.ipv4,
            // Internal networks have no way out: no default route.
            gateway4: endpoint.gateway4.filter(|_| !updated.internal),
            ipv6: endpoint.ipv6,
            gateway6: endpoint.gateway6.filter(|_| !updated.internal),
        };
        // The record (addresses taken) before the kernel, in one trip to the blocking pool;
        // the service's copy is updated before a kernel failure is returned, so the
        // caller's teardown finds the endpoint and releases its addresses.
        let datapath = self.datapath.clone();
        let dir = self.paths.networks.clone();
        let saved = updated.clone();
        let attached = blocking(move || {
            saved
                .save_endpoints(&dir)
                .map_err(|e| NetworkError::io("writing the network record", e))?;
            let attached = datapath
                .ensure_bridge(&bridge)
                .and_then(|()| datapath.attach(&spec));
            Ok(attached)
        })
        .await?;
        self.lock()
            .networks
            .insert(updated.id.clone(), updated.clone());
        attached?;
        self.publish(
            &updated,
            "connect",
            BTreeMap::from([("container".to_string(), id)]),
        );
        Ok(endpoint)
    }

    /// Removes one endpoint (veth, addresses); the caller holds the op lock. Without
    /// `delete_veth` the pair is left to the kernel, which deletes it with the container's
    /// namespace.
    async fn detach_locked(
        &self,
        container_id: &str,
        network_id: &str,
        delete_veth: bool,
    ) -> Result<(), NetworkError> {
        let Ok(mut network) = self.get(network_id) else {
            return Ok(());
        };
        let Some(endpoint) = network.endpoints.remove(container_id) else {
            return Ok(());
        };
        if delete_veth {
            let datapath = self.datapath.clone();
            let veth = endpoint.host_veth.clone();
            blocking(move || Ok(datapath.detach(&veth)?)).await?;
        }
        for ip in endpoint.ipv4.iter().chain(endpoint.ipv6.iter()) {
            network.ipam.release(ip.addr);
        }
        self.persist_endpoints(network.clone()).await?;
        self.publish(
            &network,
            "disconnect",
            BTreeMap::from([("container".to_string(), container_id.to_string())]),
        );
        Ok(())
    }

    /// After the container's process exited (or its start failed): endpoints, addresses,
    /// ports, DNS and the namespace go. Idempotent.
    pub async fn teardown(&self, container_id: &str) -> Result<(), NetworkError> {
        let _op = self.op.lock().await;
        self.teardown_locked(container_id).await
    }

    /// The veth pairs go with the namespace: once its pin is unmounted and the container's
    /// processes are gone, nothing holds it and the kernel deletes it and every device in
    /// it, the pairs' host ends included, in its own work queue. An explicit deletion per
    /// pair costs the exit path a synchronous unregister (RCU grace periods, 10-20 ms on
    /// this 2-core host) for nothing. It is still done where something else may keep the
    /// namespace: a `container:` joiner, or the embedded DNS, whose sockets inside it close
    /// only when its aborted tasks are dropped. The kernel's deletion trails by a few
    /// milliseconds; an address released here can be handed out meanwhile, but its MAC is
    /// derived from it, so both ports would carry the same one until the old goes.
    pub(super) async fn teardown_locked(&self, container_id: &str) -> Result<(), NetworkError> {
        let had_dns = self.dns_lock().remove(container_id).is_some();
        self.forget_joiner(container_id).await?;
        let mut first_error = None;
        let mut sandbox = self.sandbox(container_id);
        let mut namespace_gone = false;
        if let Some(sandbox) = sandbox.as_mut() {
            if !had_dns && sandbox.joined_by.is_empty() {
                if let Some(netns) = sandbox.netns.take() {
                    let datapath = self.datapath.clone();
                    match blocking(move || Ok(datapath.remove_netns(&netns)?)).await {
                        Ok(()) => namespace_gone = true,
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
            }
        }
        let networks: Vec<String> = self
            .endpoints_of(container_id)
            .into_iter()
            .map(|(n, _)| n.id)
            .collect();
        for network in networks {
            if let Err(e) = self
                .detach_locked(container_id, &network, !namespace_gone)
                .await
            {
                first_error.get_or_insert(e);
            }
        }
        if let Some(mut sandbox) = sandbox {
            let had_ports = !sandbox.ports.is_empty();
            if let Some(netns) = sandbox.netns.take() {
                let datapath = self.datapath.clone();
                if let Err(e) = blocking(move || Ok(datapath.remove_netns(&netns)?)).await {
                    first_error.get_or_insert(e);
                }
            }
            sandbox.ports.clear();
            self.save_sandbox(sandbox).await?;
            // The last endpoint gone: the daemon's tables go with it (see apply_firewall).
            if had_ports || self.idle() {
                self.apply_firewall().await?;
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A `container:` joiner stopped: the namespace it shared no longer counts it.
    async fn forget_joiner(&self, container_id: &str) -> Result<(), NetworkError> {
        let joined: Vec<SandboxRecord> = self
            .lock()
            .sandboxes
            .values()
            .filter(|s| s.joined_by.iter().any(|j| j == container_id))
            .cloned()
            .collect();
        for mut sandbox in joined {
            sandbox.joined_by.retain(|j| j != container_id);
            self.save_sandbox(sandbox).await?;
        }
        Ok(())
    }

    /// `docker rm`: forgets the container's sandbox record (after [`teardown`]).
    pub async fn forget(&self, container_id: &str) -> Result<(), NetworkError> {
        self.teardown(container_id).await?;
        self.lock().sandboxes.remove(container_id);
        let path = SandboxRecord::path(&self.paths.sandboxes, container_id);
        blocking(move || match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(NetworkError::io("removing the sandbox record", e))
            }
            _ => Ok(()),
        })
        .await
    }

    /// `POST /networks/{id}/connect`: live when the container runs, else remembered for
    /// its next start.
    pub async fn connect(
        self: &Arc<Self>,
        network: &str,
        record: &ContainerRecord,
        running: bool,
        mut request: EndpointRequest,
    ) -> Result<(), NetworkError> {
        let _op = self.op.lock().await;
        let network = self.get(network)?;
        let mode = record.host_config.network_mode.as_str();
        if mode == "host" || mode == "none" || mode.starts_with("container:") {
            return Err(NetworkError::Forbidden(
                "container sharing network namespace with another container or host cannot be connected to any other network".to_string(),
            ));
        }
        if network.driver != Driver::Bridge {
            return Err(NetworkError::Forbidden(
                "container cannot be disconnected from host network or connected to host network"
                    .to_string(),
            ));
        }
        if network.endpoints.contains_key(&record.id) {
            return Err(NetworkError::AlreadyConnected {
                container: record.name.trim_start_matches('/').to_string(),
                network: network.name.clone(),
            });
        }
        // moby's updateNetworkConfig checks the settings whether or not the container runs:
        // a refused request is not remembered for the next start.
        check_request(&network, &request)?;
        request.network = network.id.clone();
        let before = self.sandbox(&record.id).unwrap_or_else(|| SandboxRecord {
            container_id: record.id.clone(),
            ..SandboxRecord::default()
        });
        let mut sandbox = before.clone();
        sandbox.disconnected.retain(|n| *n != network.id);
        sandbox.connected.retain(|r| r.network != network.id);
        sandbox.connected.push(request.clone());
        let live = running && sandbox.netns.is_some();
        self.save_sandbox(sandbox).await?;
        if live {
            if let Err(e) = self.attach_locked(record, &network, &request).await {
                // An address in use or an exhausted network: the sandbox is as it was.
                let _ = self.save_sandbox(before).await;
                return Err(e);
            }
            self.apply_firewall().await?;
            if network.embedded_dns() {
                self.start_dns(&record.id).await?;
            }
        }
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect(
        &self,
        network: &str,
        record: &ContainerRecord,
        force: bool,
    ) -> Result<(), NetworkError> {
        let _op = self.op.lock().await;
        let network = self.get(network)?;
        if network.driver != Driver::Bridge {
            return Err(NetworkError::Forbidden(
                "container cannot be disconnected from host network or connected to host network"
                    .to_string(),
            ));
        }
        let mut sandbox = self.sandbox(&record.id).unwrap_or_else(|| SandboxRecord {
            container_id: record.id.clone(),
            ..SandboxRecord::default()
        });
        let configured = requests_of(record)
            .unwrap_or_default()
            .iter()
            .chain(sandbox.connected.iter())
            .filter_map(|r| self.get(&r.network).ok())
            .any(|n| n.id == network.id && !sandbox.disconnected.contains(&n.id));
        let attached = network.endpoints.contains_key(&record.id);
        if !configured && !attached && !force {
            return Err(NetworkError::NotConnected {
                container: record.id.clone(),
                network: network.name.clone(),
            });
        }
        sandbox.connected.retain(|r| r.network != network.id);
        if !sandbox.disconnected.contains(&network.id) {
            sandbox.disconnected.push(network.id.clone());
        }
        self.save_sandbox(sandbox).await?;
        if attached {
            self.detach_locked(&record.id, &network.id, true).await?;
            self.apply_firewall().await?;
        }
        Ok(())
    }
}
