//! Networks: the predefined `bridge`, `host` and `none`, user-defined bridge networks
//! persisted under `<data-root>/networks/`, and each container's sandbox (its network
//! namespace, endpoints, published ports and embedded DNS). Docker's nouns and texts; the
//! Docker JSON shapes are built by berth-server. Kernel work goes through [`Datapath`] in
//! `spawn_blocking`, never on a tokio worker.
//!
//! # Layout
//! - `record`: the persisted network record with its IPAM state and endpoints.
//! - `create`: `network create` validation and defaults (subnets, options).
//! - `sandbox`: a container's namespace and endpoints (start, exit, connect, disconnect).
//! - `ports`: `-p`/`-P` bindings to host ports (random ports from the ephemeral range).
//! - `firewall`: berth's whole nftables state computed from networks and sandboxes.
//! - `reconcile`: berthd's start: stale sandboxes removed before the API is served, the
//!   firewall applied in the background behind the firewall lock.
//! - `dns`: the embedded DNS's name lookups (network scoped).
//! - `datapath`: the kernel seam and its fake; `kernel`: the real one (berth-network).

mod create;
pub mod datapath;
mod dns;
mod endpoint;
mod firewall;
mod kernel;
pub mod ports;
mod reconcile;
pub mod record;
mod sandbox;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_network::ipam::IpamError;
pub use berth_network::ipam::Subnet;

use crate::error::ErrorKind;
use crate::events::EventBus;

pub use create::CreateNetwork;
pub use datapath::{Datapath, DatapathError, FakeDatapath};
pub use endpoint::EndpointRequest;
pub use ports::PortMapping;
pub use record::{Driver, EndpointRecord, IpamConfigRecord, NetworkRecord};
pub use sandbox::{SandboxRecord, SandboxSetup};

/// Failures of network operations, with Docker's texts.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    NameExists(String),
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    /// moby since 28.2 (libnetwork's ActiveEndpointsError names each endpoint as
    /// `name:"<container>" id:"<endpoint id, 12 hex>"`); dockerd 20.10 printed
    /// `network <name> id <id> has active endpoints`.
    #[error("error while removing network: network {name} has active endpoints ({endpoints})")]
    ActiveEndpoints { name: String, endpoints: String },
    /// moby's validateEndpointSettings: `context` is `invalid config for network <key>: `
    /// at container create and empty at `network connect`.
    #[error("{context}invalid endpoint settings:\n{detail}")]
    InvalidEndpoint { context: String, detail: String },
    /// moby's validateIpamConfig at `network create` (every problem, one per line).
    #[error("invalid network config:\n{0}")]
    InvalidIpamConfig(String),
    #[error("endpoint with name {container} already exists in network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error("Bind for {host}:{port} failed: port is already allocated")]
    PortAllocated { host: String, port: u16 },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Datapath(#[from] DatapathError),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("background task failed: {0}")]
    Join(String),
}

impl NetworkError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            NetworkError::NotFound(_) => ErrorKind::NotFound,
            NetworkError::NameExists(_) => ErrorKind::Conflict,
            NetworkError::Predefined(_)
            | NetworkError::ActiveEndpoints { .. }
            | NetworkError::AlreadyConnected { .. }
            | NetworkError::NotConnected { .. }
            | NetworkError::Forbidden(_) => ErrorKind::Forbidden,
            NetworkError::InvalidArgument(_)
            | NetworkError::InvalidEndpoint { .. }
            | NetworkError::InvalidIpamConfig(_) => ErrorKind::InvalidArgument,
            NetworkError::NotImplemented(_) => ErrorKind::NotImplemented,
            NetworkError::Ipam(e) => match e {
                IpamError::Exhausted { .. } | IpamError::NoFreePool(_) => ErrorKind::Unavailable,
                IpamError::InUse(_) | IpamError::Overlap => ErrorKind::Forbidden,
                _ => ErrorKind::InvalidArgument,
            },
            NetworkError::PortAllocated { .. }
            | NetworkError::Datapath(_)
            | NetworkError::Io { .. }
            | NetworkError::Join(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> NetworkError {
        NetworkError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Daemon-wide network settings (daemon.json `bridge`, `bip`, `default-address-pools`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkDefaults {
    /// The default bridge's device (Docker: `docker0`; berth: `berth0`).
    pub bridge: String,
    /// `bip`: the default bridge's gateway address and prefix; else Docker's default pools.
    pub bip: Option<Subnet>,
    /// Subnets for the default bridge and user networks without `--subnet`.
    pub address_pools: Vec<Subnet>,
    pub mtu: u32,
}

impl NetworkDefaults {
    /// This daemon's nftables tables (`table ip <name>`, `table ip6 <name>`): `berth` for
    /// the default bridge `berth0`, else `berth-<bridge>`, so berthds with bridges of their
    /// own (the e2e suite runs several) never replace each other's rules.
    pub fn firewall_table(&self) -> String {
        if self.bridge == NetworkDefaults::default().bridge {
            "berth".to_string()
        } else {
            format!("berth-{}", self.bridge)
        }
    }
}

impl Default for NetworkDefaults {
    fn default() -> NetworkDefaults {
        NetworkDefaults {
            bridge: "berth0".to_string(),
            bip: None,
            address_pools: berth_network::ipam::default_ipv4_pools(),
            mtu: 1500,
        }
    }
}

/// Where the service keeps its files.
#[derive(Debug, Clone)]
pub struct NetworkPaths {
    /// `<data-root>/networks`: one record per network.
    pub networks: PathBuf,
    /// `<data-root>/networks/sandboxes`: one record per container with a namespace.
    pub sandboxes: PathBuf,
    /// `<exec-root>/netns`: pinned namespaces of containers.
    pub netns: PathBuf,
}

impl NetworkPaths {
    pub fn under(data_root: &Path, exec_root: &Path) -> NetworkPaths {
        NetworkPaths {
            networks: data_root.join("networks"),
            sandboxes: data_root.join("networks").join("sandboxes"),
            netns: exec_root.join("netns"),
        }
    }
}

pub(crate) struct State {
    networks: BTreeMap<String, NetworkRecord>,
    sandboxes: BTreeMap<String, SandboxRecord>,
}

/// The network service: one per engine.
pub struct NetworkService {
    paths: NetworkPaths,
    defaults: NetworkDefaults,
    events: Arc<EventBus>,
    datapath: Arc<dyn Datapath>,
    state: Mutex<State>,
    /// Serialises changes that touch the kernel or the firewall (never held by readers).
    op: Arc<tokio::sync::Mutex<()>>,
    /// Orders firewall applications: each computes the ruleset from the state while it
    /// holds this lock and applies it before releasing it, so the last one applied is
    /// always the newest. Taken after `op` where both are held; berthd's start holds it
    /// alone, in the background, while the API is already served (`reconcile`).
    firewall: Arc<tokio::sync::Mutex<()>>,
    /// Set while the start-up reconcile removes stale sandboxes: their firewall changes are
    /// left to its one application in the background.
    firewall_deferred: AtomicBool,
    /// Embedded DNS servers by container ID.
    dns: Mutex<HashMap<String, datapath::DnsGuard>>,
    /// The host's resolvers, the embedded DNS's upstreams.
    upstream: Vec<berth_network::dns::Upstream>,
}

impl NetworkService {
    /// The engine's service: opened over the configured roots with the kernel datapath,
    /// handed to the containers, then reconciled with the containers that still run:
    /// sandboxes, namespaces and DNS before this returns, the firewall in the background
    /// (every later firewall change waits for it, see [`reconcile_at_start`]).
    ///
    /// [`reconcile_at_start`]: NetworkService::reconcile_at_start
    pub async fn start(
        config: &crate::EngineConfig,
        containers: &crate::container::Containers,
        events: Arc<EventBus>,
    ) -> Result<Arc<NetworkService>, NetworkError> {
        let paths = NetworkPaths::under(&config.data_root, &config.exec_root);
        let service = Self::open_with(
            paths,
            config.network.clone(),
            events,
            Arc::new(kernel::Kernel {
                table: config.network.firewall_table(),
            }),
        )
        .await?;
        // Taken before the containers can reach the service: a container restarted by its
        // policy sets up its sandbox only after the reconcile below.
        let op = service.op.clone().lock_owned().await;
        // Listed before the containers restarted by their policy are let start.
        let running: Vec<String> = containers
            .list()
            .iter()
            .filter(|c| c.is_running())
            .map(|c| c.id.clone())
            .collect();
        containers.use_networks(service.clone());
        service.reconcile_at_start(op, &running).await;
        Ok(service)
    }

    /// Opens the service over `paths` with the given datapath.
    pub async fn open_with(
        paths: NetworkPaths,
        defaults: NetworkDefaults,
        events: Arc<EventBus>,
        datapath: Arc<dyn Datapath>,
    ) -> Result<Arc<NetworkService>, NetworkError> {
        let (networks, sandboxes) = {
            let paths = paths.clone();
            blocking(move || load_state(&paths)).await?
        };
        let upstream = dns::host_upstreams(Path::new("/etc/resolv.conf"));
        let service = Arc::new(NetworkService {
            paths,
            defaults,
            events,
            datapath,
            state: Mutex::new(State {
                networks,
                sandboxes,
            }),
            op: Arc::new(tokio::sync::Mutex::new(())),
            firewall: Arc::new(tokio::sync::Mutex::new(())),
            firewall_deferred: AtomicBool::new(false),
            dns: Mutex::new(HashMap::new()),
            upstream,
        });
        service.ensure_predefined().await?;
        service.converge_default_bridge().await;
        Ok(service)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn paths(&self) -> &NetworkPaths {
        &self.paths
    }

    /// Every network, by name.
    pub fn list(&self) -> Vec<NetworkRecord> {
        let mut all: Vec<NetworkRecord> = self.lock().networks.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Docker's `FindNetwork`: full ID, then name, then unique ID prefix.
    pub fn get(&self, name_or_id: &str) -> Result<NetworkRecord, NetworkError> {
        let state = self.lock();
        find(&state.networks, name_or_id).cloned()
    }

    /// The sandbox (namespace, ports) of a container, if it has one.
    pub fn sandbox(&self, container_id: &str) -> Option<SandboxRecord> {
        self.lock().sandboxes.get(container_id).cloned()
    }

    /// Endpoints of a container on every network, with the network, in attach order.
    pub fn endpoints_of(&self, container_id: &str) -> Vec<(NetworkRecord, EndpointRecord)> {
        let state = self.lock();
        let mut found: Vec<(NetworkRecord, EndpointRecord)> = state
            .networks
            .values()
            .filter_map(|n| {
                n.endpoints
                    .get(container_id)
                    .map(|e| (n.clone(), e.clone()))
            })
            .collect();
        found.sort_by_key(|a| ifindex(&a.1.ifname));
        found
    }

    /// `docker network rm`.
    pub async fn remove(&self, name_or_id: &str) -> Result<(), NetworkError> {
        let _op = self.op.lock().await;
        let record = self.get(name_or_id)?;
        if record.predefined {
            return Err(NetworkError::Predefined(record.name));
        }
        if !record.endpoints.is_empty() {
            let endpoints: Vec<String> = record
                .endpoints
                .values()
                .map(|e| {
                    format!(
                        "name:{:?} id:{:?}",
                        e.container_name,
                        &e.endpoint_id[..12.min(e.endpoint_id.len())]
                    )
                })
                .collect();
            return Err(NetworkError::ActiveEndpoints {
                name: record.name,
                endpoints: endpoints.join(", "),
            });
        }
        self.remove_record(&record).await
    }

    async fn remove_record(&self, record: &NetworkRecord) -> Result<(), NetworkError> {
        let dir = self.paths.networks.clone();
        let id = record.id.clone();
        blocking(move || {
            NetworkRecord::remove_file(&dir, &id)
                .map_err(|e| NetworkError::io("removing the network record", e))
        })
        .await?;
        self.lock().networks.remove(&record.id);
        if !record.bridge.is_empty() {
            let datapath = self.datapath.clone();
            let bridge = record.bridge.clone();
            // The bridge is gone from the state already; a failure here leaves a device
            // that reconcile removes at the next start.
            let _ = blocking(move || Ok(datapath.delete_bridge(&bridge)?)).await;
        }
        let _ = self.apply_firewall().await;
        self.publish(record, "destroy", BTreeMap::new());
        Ok(())
    }

    /// `docker network prune`: user networks without endpoints (label filters as Docker).
    pub async fn prune(&self, filters: &berth_api::Filters) -> Result<Vec<String>, NetworkError> {
        let _op = self.op.lock().await;
        let candidates: Vec<NetworkRecord> = self
            .list()
            .into_iter()
            .filter(|n| !n.predefined && n.endpoints.is_empty())
            .filter(|n| prune_filter(filters, n))
            .collect();
        let mut removed = Vec::new();
        for record in candidates {
            self.remove_record(&record).await?;
            removed.push(record.name);
        }
        Ok(removed)
    }

    pub(crate) fn publish(
        &self,
        network: &NetworkRecord,
        action: &str,
        mut attributes: BTreeMap<String, String>,
    ) {
        attributes.insert("name".to_string(), network.name.clone());
        attributes.insert("type".to_string(), network.driver.as_str().to_string());
        self.events
            .publish("network", action, &network.id, attributes);
    }

    /// Saves one network record (atomic) and keeps it in memory.
    pub(crate) async fn persist(&self, record: NetworkRecord) -> Result<(), NetworkError> {
        self.persist_with(record, NetworkRecord::save).await
    }

    /// [`persist`](Self::persist) after a change of endpoints only (see
    /// [`NetworkRecord::save_endpoints`]).
    pub(crate) async fn persist_endpoints(
        &self,
        record: NetworkRecord,
    ) -> Result<(), NetworkError> {
        self.persist_with(record, NetworkRecord::save_endpoints)
            .await
    }

    async fn persist_with(
        &self,
        record: NetworkRecord,
        save: fn(&NetworkRecord, &std::path::Path) -> std::io::Result<()>,
    ) -> Result<(), NetworkError> {
        let dir = self.paths.networks.clone();
        let saved = record.clone();
        blocking(move || {
            save(&saved, &dir).map_err(|e| NetworkError::io("writing the network record", e))
        })
        .await?;
        self.lock().networks.insert(record.id.clone(), record);
        Ok(())
    }

    /// Recomputes berth's firewall from every network and sandbox and applies it. With no
    /// endpoint on any network (no container runs with a network of its own) the daemon's
    /// tables are removed instead: they would only hold rules for idle bridges. Waits for
    /// an application in progress (the start-up one included), see `firewall`.
    pub(crate) async fn apply_firewall(&self) -> Result<(), NetworkError> {
        if self.firewall_deferred.load(Ordering::Acquire) {
            return Ok(());
        }
        let turn = self.firewall.clone().lock_owned().await;
        self.apply_firewall_in_turn(turn).await
    }

    /// [`apply_firewall`](Self::apply_firewall) once the firewall lock is held: the guard
    /// moves into the blocking work, so a caller that stops waiting (a dropped request)
    /// cannot let a newer ruleset in before this one is applied.
    async fn apply_firewall_in_turn(
        &self,
        turn: tokio::sync::OwnedMutexGuard<()>,
    ) -> Result<(), NetworkError> {
        let (spec, idle) = {
            let state = self.lock();
            let idle = state.networks.values().all(|n| n.endpoints.is_empty());
            (firewall::compute(&state.networks, &state.sandboxes), idle)
        };
        let datapath = self.datapath.clone();
        blocking(move || {
            let _turn = turn;
            if idle && spec.ports.is_empty() {
                return Ok(datapath.clear_firewall()?);
            }
            Ok(datapath.apply_firewall(&spec)?)
        })
        .await
    }

    /// Waits until no firewall application is in progress (berthd's stop waits for the
    /// start-up one).
    pub async fn firewall_settled(&self) {
        drop(self.firewall.lock().await);
    }

    /// True when no network has an endpoint (the firewall tables are then removed).
    pub(crate) fn idle(&self) -> bool {
        self.lock()
            .networks
            .values()
            .all(|n| n.endpoints.is_empty())
    }
}

fn ifindex(ifname: &str) -> u32 {
    ifname.trim_start_matches("eth").parse().unwrap_or(u32::MAX)
}

/// Docker's `FindNetwork` over a map by ID.
pub(crate) fn find<'a>(
    networks: &'a BTreeMap<String, NetworkRecord>,
    name_or_id: &str,
) -> Result<&'a NetworkRecord, NetworkError> {
    if let Some(record) = networks.get(name_or_id) {
        return Ok(record);
    }
    if let Some(record) = networks.values().find(|n| n.name == name_or_id) {
        return Ok(record);
    }
    let matches: Vec<&NetworkRecord> = if name_or_id.is_empty() {
        Vec::new()
    } else {
        networks
            .values()
            .filter(|n| n.id.starts_with(name_or_id))
            .collect()
    };
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(NetworkError::NotFound(name_or_id.to_string())),
        _ => Err(NetworkError::InvalidArgument(format!(
            "network {name_or_id} is ambiguous ({} matches found based on ID prefix)",
            matches.len()
        ))),
    }
}

/// `until` and `label`/`label!` filters of `network prune`.
fn prune_filter(filters: &berth_api::Filters, network: &NetworkRecord) -> bool {
    if filters.contains("label") && !filters.match_key_values("label", &network.labels) {
        return false;
    }
    if filters.contains("label!") && filters.match_key_values("label!", &network.labels) {
        return false;
    }
    true
}

/// The networks and the sandboxes (per container) by ID, as saved.
type SavedState = (
    BTreeMap<String, NetworkRecord>,
    BTreeMap<String, SandboxRecord>,
);

fn load_state(paths: &NetworkPaths) -> Result<SavedState, NetworkError> {
    for dir in [&paths.networks, &paths.sandboxes] {
        std::fs::create_dir_all(dir)
            .map_err(|e| NetworkError::io(format!("creating {}", dir.display()), e))?;
    }
    let (records, _skipped) = NetworkRecord::load_all(&paths.networks)
        .map_err(|e| NetworkError::io("reading the network records", e))?;
    let networks = records.into_iter().map(|r| (r.id.clone(), r)).collect();
    let sandboxes = SandboxRecord::load_all(&paths.sandboxes)
        .map_err(|e| NetworkError::io("reading the sandbox records", e))?
        .into_iter()
        .map(|s| (s.container_id.clone(), s))
        .collect();
    Ok((networks, sandboxes))
}

/// Runs blocking work (file I/O, the datapath) off the async workers.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, NetworkError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, NetworkError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| NetworkError::Join(e.to_string()))?
}

/// A 64-hex ID from the kernel's random bytes (network and endpoint IDs).
pub(crate) fn new_id() -> String {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: getrandom writes at most `len - filled` bytes into the rest of the array.
        let n = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if n <= 0 {
            break;
        }
        filled += n as usize;
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// daemon.json's `default-address-pools`: each `base` split into subnets of `size` bits
/// (at most 4096 subnets per base, plenty for local networks).
pub fn split_pools(pools: &[(Subnet, u8)]) -> Result<Vec<Subnet>, NetworkError> {
    let mut out = Vec::new();
    for (base, size) in pools {
        let base = base.network();
        let width = if base.addr.is_ipv4() { 32 } else { 128 };
        if *size < base.prefix || *size > width {
            return Err(NetworkError::InvalidArgument(format!(
                "invalid default address pool: size {size} does not fit base {base}"
            )));
        }
        let count = 1u128 << (size - base.prefix).min(12);
        let step = 1u128 << (width - size);
        for i in 0..count {
            let Some(addr) = base.nth(i * step) else {
                break;
            };
            out.push(Subnet {
                addr,
                prefix: *size,
            });
        }
    }
    Ok(out)
}
