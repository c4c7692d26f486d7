//! The seam between the network service and the kernel: namespaces, bridges, veth pairs,
//! berth's nftables state and the embedded DNS, as a small synchronous trait (callers run
//! it in `spawn_blocking`). `kernel.rs` implements it with berth-network; [`FakeDatapath`]
//! records what it is asked so the service is tested without root.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_network::dns::Upstream;
use berth_network::ipam::Subnet;

/// A bridge device with its gateway addresses (`172.17.0.1/16`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    pub name: String,
    pub mtu: u32,
    pub addresses: Vec<Subnet>,
    pub icc: bool,
    pub internal: bool,
}

/// One veth pair from a bridge into a container's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    pub bridge: String,
    pub host_veth: String,
    pub netns: PathBuf,
    pub ifname: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub ipv4: Option<Subnet>,
    pub gateway4: Option<IpAddr>,
    pub ipv6: Option<Subnet>,
    pub gateway6: Option<IpAddr>,
}

/// Filter/NAT rules of one bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    pub bridge: String,
    pub subnets: Vec<Subnet>,
    pub masquerade: bool,
    pub icc: bool,
    pub internal: bool,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One published port: host address and port to the container's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub proto: Proto,
    pub container_ip: IpAddr,
    pub container_port: u16,
    pub bridge: String,
}

/// Everything berth owns in the firewall, applied at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallSpec {
    pub networks: Vec<NetworkRules>,
    pub ports: Vec<PortRule>,
}

/// Answers the embedded DNS's questions for one container (network scoped).
pub trait NameLookup: Send + Sync + 'static {
    fn lookup(&self, from: &str, name: &str) -> Option<Vec<IpAddr>>;
    fn reverse(&self, from: &str, ip: IpAddr) -> Option<String>;
    /// Whether `from` has a network with a way out (not `--internal`): only then does the
    /// embedded DNS ask the host's resolvers for it, as Docker's does.
    fn external_access(&self, from: &str) -> bool;
}

/// A running DNS server; dropping it stops the server.
pub type DnsGuard = Box<dyn std::any::Any + Send>;

#[derive(Debug, thiserror::Error)]
#[error("{context}")]
pub struct DatapathError {
    pub context: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl DatapathError {
    pub fn new(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> DatapathError {
        DatapathError {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// Kernel operations of the network service; each is idempotent where the name says so.
pub trait Datapath: Send + Sync + 'static {
    fn create_netns(&self, path: &Path) -> Result<(), DatapathError>;
    /// Unpins the namespace; Ok if already gone. Once nothing else holds it, the kernel
    /// deletes it with every veth pair that has an end inside.
    fn remove_netns(&self, path: &Path) -> Result<(), DatapathError>;
    /// Idempotent.
    fn ensure_bridge(&self, bridge: &BridgeSpec) -> Result<(), DatapathError>;
    /// Ok if missing.
    fn delete_bridge(&self, name: &str) -> Result<(), DatapathError>;
    fn attach(&self, endpoint: &EndpointSpec) -> Result<(), DatapathError>;
    /// Ok if missing.
    fn detach(&self, host_veth: &str) -> Result<(), DatapathError>;
    /// Replaces berth's whole firewall state atomically.
    fn apply_firewall(&self, state: &FirewallSpec) -> Result<(), DatapathError>;
    /// Removes this daemon's firewall tables (and its rules in the host's forward chain);
    /// Ok if absent. The kernel datapath does it a moment later unless an application
    /// comes first (`kernel.rs`).
    fn clear_firewall(&self) -> Result<(), DatapathError>;
    /// Addresses (gateway/prefix) of an existing bridge device; empty if there is none.
    fn bridge_addresses(&self, name: &str) -> Result<Vec<Subnet>, DatapathError>;
    /// Routes on the host, to pick subnets that clash with nothing.
    fn host_routes(&self) -> Result<Vec<Subnet>, DatapathError>;
    /// Serves 127.0.0.11:53 inside `netns` (needs a tokio runtime on this thread).
    fn serve_dns(
        &self,
        netns: &Path,
        container_id: String,
        lookup: Arc<dyn NameLookup>,
        upstream: Vec<Upstream>,
    ) -> Result<DnsGuard, DatapathError>;
}

/// What the fake was asked to do, in order.
#[derive(Debug, Clone, Default)]
pub struct FakeState {
    pub netns: Vec<PathBuf>,
    pub bridges: Vec<BridgeSpec>,
    pub endpoints: Vec<EndpointSpec>,
    pub firewall: FirewallSpec,
    /// Whether the daemon's firewall tables exist (applied and not cleared since).
    pub firewall_present: bool,
    pub dns: Vec<String>,
    pub routes: Vec<Subnet>,
}

/// An in-memory datapath: keeps the namespaces, bridges and endpoints that would exist.
#[derive(Debug, Default)]
pub struct FakeDatapath {
    pub state: Mutex<FakeState>,
}

impl FakeDatapath {
    pub fn snapshot(&self) -> FakeState {
        match self.state.lock() {
            Ok(state) => state.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        match self.state.lock() {
            Ok(mut state) => f(&mut state),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

struct FakeDns(Arc<FakeDatapath>, String);

impl Drop for FakeDns {
    fn drop(&mut self) {
        let id = self.1.clone();
        self.0.with(|s| s.dns.retain(|d| *d != id));
    }
}

impl Datapath for Arc<FakeDatapath> {
    fn create_netns(&self, path: &Path) -> Result<(), DatapathError> {
        self.with(|s| s.netns.push(path.to_path_buf()));
        Ok(())
    }
    /// As the kernel does, the veth pairs with an end in the namespace go with it.
    fn remove_netns(&self, path: &Path) -> Result<(), DatapathError> {
        self.with(|s| {
            s.netns.retain(|p| p != path);
            s.endpoints.retain(|e| e.netns != path);
        });
        Ok(())
    }
    fn ensure_bridge(&self, bridge: &BridgeSpec) -> Result<(), DatapathError> {
        self.with(|s| {
            s.bridges.retain(|b| b.name != bridge.name);
            s.bridges.push(bridge.clone());
        });
        Ok(())
    }
    fn delete_bridge(&self, name: &str) -> Result<(), DatapathError> {
        self.with(|s| s.bridges.retain(|b| b.name != name));
        Ok(())
    }
    fn attach(&self, endpoint: &EndpointSpec) -> Result<(), DatapathError> {
        self.with(|s| s.endpoints.push(endpoint.clone()));
        Ok(())
    }
    fn detach(&self, host_veth: &str) -> Result<(), DatapathError> {
        self.with(|s| s.endpoints.retain(|e| e.host_veth != host_veth));
        Ok(())
    }
    fn apply_firewall(&self, state: &FirewallSpec) -> Result<(), DatapathError> {
        self.with(|s| {
            s.firewall = state.clone();
            s.firewall_present = true;
        });
        Ok(())
    }
    fn clear_firewall(&self) -> Result<(), DatapathError> {
        self.with(|s| {
            s.firewall = FirewallSpec::default();
            s.firewall_present = false;
        });
        Ok(())
    }
    fn bridge_addresses(&self, name: &str) -> Result<Vec<Subnet>, DatapathError> {
        Ok(self
            .snapshot()
            .bridges
            .into_iter()
            .filter(|b| b.name == name)
            .flat_map(|b| b.addresses)
            .collect())
    }
    fn host_routes(&self) -> Result<Vec<Subnet>, DatapathError> {
        Ok(self.snapshot().routes)
    }
    fn serve_dns(
        &self,
        _netns: &Path,
        container_id: String,
        _lookup: Arc<dyn NameLookup>,
        _upstream: Vec<Upstream>,
    ) -> Result<DnsGuard, DatapathError> {
        self.with(|s| s.dns.push(container_id.clone()));
        Ok(Box::new(FakeDns(self.clone(), container_id)))
    }
}
