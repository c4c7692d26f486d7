//! berthd's start: the kernel's network state brought back in line with the containers that
//! still run. Sandboxes of containers that are gone (endpoints, addresses, veths, pinned
//! namespaces) are removed and the embedded DNS of running ones restarted before the API is
//! served, under the op lock; berth's firewall, the slow part (libnftables is loaded, the
//! host's forward chains listed, the tables replaced), is applied once, in the background,
//! holding the firewall lock that every later firewall change waits for. So `/_ping`
//! answers while it runs, and a container started, connected or stopped meanwhile gets its
//! rules applied after the start-up ones, never overwritten by them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::OwnedMutexGuard;

use super::{blocking, NetworkError, NetworkService};

/// Defers firewall changes while alive (and stops deferring when dropped, even when the
/// reconcile is cancelled half-way).
struct Deferred<'a>(&'a AtomicBool);

impl<'a> Deferred<'a> {
    fn new(flag: &'a AtomicBool) -> Deferred<'a> {
        flag.store(true, Ordering::Release);
        Deferred(flag)
    }
}

impl Drop for Deferred<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl NetworkService {
    /// Keeps the sandboxes of `running` containers (re-applies their firewall rules and
    /// DNS) and removes endpoints, addresses, veths, namespaces and rules of every other
    /// container; returns once all of it, the firewall included, is done.
    pub async fn reconcile(self: &Arc<Self>, running: &[String]) -> Result<(), NetworkError> {
        let _op = self.op.lock().await;
        self.remove_stale(running).await;
        self.apply_firewall().await?;
        self.restart_dns(running).await;
        Ok(())
    }

    /// [`reconcile`](Self::reconcile) as berthd's start does it, holding `op` (taken before
    /// anything else could reach the service): stale sandboxes are removed and DNS restarted
    /// before this returns; the firewall is applied by a background task that holds the
    /// firewall lock from before `op` is released, so every firewall change after this
    /// returns waits for it. A failure there is logged: the next change re-applies the
    /// whole firewall anyway.
    pub async fn reconcile_at_start(self: &Arc<Self>, op: OwnedMutexGuard<()>, running: &[String]) {
        self.remove_stale(running).await;
        let turn = self.firewall.clone().lock_owned().await;
        let service = self.clone();
        tokio::spawn(async move {
            if let Err(e) = service.apply_firewall_in_turn(turn).await {
                eprintln!("berthd: applying the firewall at start: {e}");
            }
        });
        self.restart_dns(running).await;
        drop(op);
    }

    /// Tears down the sandbox of every container not in `running` and removes namespaces
    /// pinned by containers berth no longer knows; the caller holds the op lock. Their
    /// firewall changes are left to the caller's one application.
    async fn remove_stale(&self, running: &[String]) {
        let stale: Vec<String> = {
            let state = self.lock();
            let mut ids: Vec<String> = state
                .networks
                .values()
                .flat_map(|n| n.endpoints.keys().cloned())
                .chain(
                    state
                        .sandboxes
                        .values()
                        .filter(|s| s.netns.is_some())
                        .map(|s| s.container_id.clone()),
                )
                .filter(|id| !running.contains(id))
                .collect();
            ids.sort();
            ids.dedup();
            ids
        };
        {
            let _deferred = Deferred::new(&self.firewall_deferred);
            for id in &stale {
                let _ = self.teardown_locked(id).await;
            }
        }
        let dir = self.paths.netns.clone();
        let keep: Vec<String> = running.to_vec();
        let datapath = self.datapath.clone();
        let _ = blocking(move || {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !keep.contains(&name) {
                        let _ = datapath.remove_netns(&entry.path());
                    }
                }
            }
            Ok(())
        })
        .await;
    }

    /// Restarts the embedded DNS of each running container on a network that has one.
    async fn restart_dns(self: &Arc<Self>, running: &[String]) {
        let with_dns: Vec<String> = {
            let state = self.lock();
            running
                .iter()
                .filter(|id| {
                    state
                        .networks
                        .values()
                        .any(|n| n.embedded_dns() && n.endpoints.contains_key(*id))
                })
                .cloned()
                .collect()
        };
        for id in with_dns {
            if let Err(e) = self.start_dns(&id).await {
                eprintln!("berthd: restarting the embedded DNS of {id}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::mpsc::{Receiver, Sender};
    use std::sync::{Arc, Mutex};

    use berth_network::dns::Upstream;

    use super::super::datapath::{
        BridgeSpec, Datapath, DatapathError, DnsGuard, EndpointSpec, FakeDatapath, FirewallSpec,
        NameLookup,
    };
    use super::super::{NetworkDefaults, NetworkPaths, NetworkService, Subnet};
    use crate::container::ContainerRecord;
    use crate::events::EventBus;

    /// The fake datapath, plus: every firewall change is logged (the host ports it
    /// publishes, `None` for a removal of the tables), and the first one can be held
    /// inside the "kernel" until the test releases it.
    #[derive(Default)]
    struct Gated {
        fake: Arc<FakeDatapath>,
        /// (tell the test the held call entered, wait for its release)
        gate: Mutex<Option<(Sender<()>, Receiver<()>)>>,
        firewall_log: Mutex<Vec<Option<Vec<u16>>>>,
    }

    impl Gated {
        fn firewall_change(&self, ports: Option<Vec<u16>>) {
            let gate = self.gate.lock().expect("gate").take();
            if let Some((entered, release)) = gate {
                let _ = entered.send(());
                let _ = release.recv();
            }
            self.firewall_log.lock().expect("log").push(ports);
        }

        fn log(&self) -> Vec<Option<Vec<u16>>> {
            self.firewall_log.lock().expect("log").clone()
        }
    }

    impl Datapath for Arc<Gated> {
        fn create_netns(&self, path: &Path) -> Result<(), DatapathError> {
            self.fake.create_netns(path)
        }
        fn remove_netns(&self, path: &Path) -> Result<(), DatapathError> {
            self.fake.remove_netns(path)
        }
        fn ensure_bridge(&self, bridge: &BridgeSpec) -> Result<(), DatapathError> {
            self.fake.ensure_bridge(bridge)
        }
        fn delete_bridge(&self, name: &str) -> Result<(), DatapathError> {
            self.fake.delete_bridge(name)
        }
        fn attach(&self, endpoint: &EndpointSpec) -> Result<(), DatapathError> {
            self.fake.attach(endpoint)
        }
        fn detach(&self, host_veth: &str) -> Result<(), DatapathError> {
            self.fake.detach(host_veth)
        }
        fn apply_firewall(&self, state: &FirewallSpec) -> Result<(), DatapathError> {
            let mut ports: Vec<u16> = state.ports.iter().map(|p| p.host_port).collect();
            ports.sort();
            self.firewall_change(Some(ports));
            self.fake.apply_firewall(state)
        }
        fn clear_firewall(&self) -> Result<(), DatapathError> {
            self.firewall_change(None);
            self.fake.clear_firewall()
        }
        fn bridge_addresses(&self, name: &str) -> Result<Vec<Subnet>, DatapathError> {
            self.fake.bridge_addresses(name)
        }
        fn host_routes(&self) -> Result<Vec<Subnet>, DatapathError> {
            self.fake.host_routes()
        }
        fn serve_dns(
            &self,
            netns: &Path,
            container_id: String,
            lookup: Arc<dyn NameLookup>,
            upstream: Vec<Upstream>,
        ) -> Result<DnsGuard, DatapathError> {
            self.fake.serve_dns(netns, container_id, lookup, upstream)
        }
    }

    async fn open(root: &Path, datapath: Arc<Gated>) -> Arc<NetworkService> {
        NetworkService::open_with(
            NetworkPaths::under(&root.join("data"), &root.join("exec")),
            NetworkDefaults::default(),
            Arc::new(EventBus::new()),
            Arc::new(datapath),
        )
        .await
        .expect("open")
    }

    /// A container on network `app` publishing `port` on 127.0.0.1.
    fn publishing(id_char: char, name: &str, port: u16) -> ContainerRecord {
        let host_config = format!(
            r#"{{"NetworkMode":"app","PortBindings":{{"80/tcp":[{{"HostIp":"127.0.0.1","HostPort":"{port}"}}]}}}}"#
        );
        ContainerRecord {
            id: id_char.to_string().repeat(64),
            name: format!("/{name}"),
            host_config: serde_json::from_str(&host_config).expect("host config"),
            ..ContainerRecord::default()
        }
    }

    fn app_members(service: &NetworkService) -> Vec<String> {
        let app = service.get("app").expect("app");
        app.endpoints.keys().cloned().collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn start_up_reconcile_applies_the_firewall_before_any_later_change() {
        let dir = tempfile::tempdir().expect("dir");
        let fake = Arc::new(FakeDatapath::default());
        let live = publishing('a', "live", 18471);
        let dead = publishing('b', "dead", 18472);
        let next = publishing('c', "next", 18473);
        {
            let before = Arc::new(Gated {
                fake: fake.clone(),
                ..Gated::default()
            });
            let service = open(dir.path(), before).await;
            let mut request = berth_api::network::NetworkCreateRequest {
                name: "app".to_string(),
                ..Default::default()
            };
            request.ipam = Some(berth_api::network::Ipam {
                config: Some(vec![berth_api::network::IpamPool {
                    subnet: "10.37.0.0/24".to_string(),
                    ..Default::default()
                }]),
                ..Default::default()
            });
            service.create(request).await.expect("create");
            service.setup(&live, None).await.expect("live");
            service.setup(&dead, None).await.expect("dead");
            // berthd is killed here: `dead` exits while it is down.
        }
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel();
        let gated = Arc::new(Gated {
            fake: fake.clone(),
            gate: Mutex::new(Some((entered_tx, release_rx))),
            ..Gated::default()
        });
        let service = open(dir.path(), gated.clone()).await;
        let op = service.op.clone().lock_owned().await;
        service
            .reconcile_at_start(op, std::slice::from_ref(&live.id))
            .await;

        // Before the API is served: the dead container's endpoint and namespace are gone,
        // the live one's DNS is back; the firewall is still being applied.
        assert_eq!(app_members(&service), vec![live.id.clone()]);
        let kernel = fake.snapshot();
        assert_eq!(kernel.endpoints.len(), 1);
        assert_eq!(kernel.netns.len(), 1);
        assert_eq!(kernel.dns, vec![live.id.clone()]);
        tokio::task::spawn_blocking(move || entered_rx.recv())
            .await
            .expect("join")
            .expect("the start-up firewall change is under way");

        // A container started now saves its sandbox, then waits for the start-up
        // application before its own.
        let starting = {
            let service = service.clone();
            let next = next.clone();
            tokio::spawn(async move { service.setup(&next, None).await })
        };
        while service
            .sandbox(&next.id)
            .is_none_or(|sandbox| sandbox.ports.is_empty())
        {
            tokio::task::yield_now().await;
        }
        release_tx.send(()).expect("release");
        starting.await.expect("join").expect("next");
        service.firewall_settled().await;

        assert_eq!(
            gated.log(),
            vec![Some(vec![18471]), Some(vec![18471, 18473])],
            "the start-up rules (without the dead container's port) first, then the new one's"
        );
        let mut ports: Vec<u16> = fake
            .snapshot()
            .firewall
            .ports
            .iter()
            .map(|p| p.host_port)
            .collect();
        ports.sort();
        assert_eq!(ports, vec![18471, 18473]);
    }

    #[tokio::test]
    async fn stale_sandboxes_leave_one_firewall_change_at_start() {
        let dir = tempfile::tempdir().expect("dir");
        let fake = Arc::new(FakeDatapath::default());
        let one = publishing('d', "one", 18474);
        let two = publishing('e', "two", 18475);
        {
            let service = open(
                dir.path(),
                Arc::new(Gated {
                    fake: fake.clone(),
                    ..Gated::default()
                }),
            )
            .await;
            let mut request = berth_api::network::NetworkCreateRequest {
                name: "app".to_string(),
                ..Default::default()
            };
            request.ipam = Some(berth_api::network::Ipam {
                config: Some(vec![berth_api::network::IpamPool {
                    subnet: "10.38.0.0/24".to_string(),
                    ..Default::default()
                }]),
                ..Default::default()
            });
            service.create(request).await.expect("create");
            service.setup(&one, None).await.expect("one");
            service.setup(&two, None).await.expect("two");
        }
        // Nothing runs any more: both sandboxes are stale.
        let gated = Arc::new(Gated {
            fake: fake.clone(),
            ..Gated::default()
        });
        let service = open(dir.path(), gated.clone()).await;
        let op = service.op.clone().lock_owned().await;
        service.reconcile_at_start(op, &[]).await;
        service.firewall_settled().await;
        assert!(app_members(&service).is_empty());
        assert_eq!(
            gated.log(),
            vec![None],
            "one removal of the tables, no more"
        );
        let kernel = fake.snapshot();
        assert!(!kernel.firewall_present);
        assert!(kernel.endpoints.is_empty() && kernel.netns.is_empty());
    }
}
