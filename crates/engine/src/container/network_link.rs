//! The seam to the network service: a container's sandbox (namespace, endpoints, ports,
//! DNS) is set up before its shim starts and torn down after its process exits.

use super::{ContainerError, ContainerRecord, Inner};
use crate::network::SandboxSetup;

/// Sets up the sandbox; `container:<name|id>` resolves the other container here.
pub(super) async fn setup(
    inner: &Inner,
    record: &ContainerRecord,
) -> Result<SandboxSetup, ContainerError> {
    let Some(networks) = inner.networks.get() else {
        return Ok(SandboxSetup::default());
    };
    let joined = match record.host_config.network_mode.strip_prefix("container:") {
        // The service refuses a container that has no running sandbox.
        Some(other) => Some(inner.get(other)?.id.clone()),
        None => None,
    };
    Ok(networks.setup(record, joined.as_deref()).await?)
}

/// At create: the networks exist and `--ip`/`--ip6`/`--network-alias`/`--mac-address`
/// fit them, so a bad request creates nothing.
pub(super) fn validate(
    inner: &Inner,
    config: &berth_api::container::Config,
    host_config: &berth_api::container::HostConfig,
    networking: Option<&berth_api::network::NetworkingConfig>,
) -> Result<(), ContainerError> {
    if let Some(networks) = inner.networks.get() {
        networks.validate_create(&host_config.network_mode, networking, &config.mac_address)?;
    }
    Ok(())
}

/// Undoes [`setup`] after the process exited; failures are logged (reconcile retries them
/// at the next berthd start).
pub(super) async fn teardown(inner: &Inner, id: &str) {
    if let Some(networks) = inner.networks.get() {
        if let Err(e) = networks.teardown(id).await {
            eprintln!("berthd: releasing the network of {id}: {e}");
        }
    }
}

/// `docker rm`: the sandbox record goes too.
pub(super) async fn forget(inner: &Inner, id: &str) {
    if let Some(networks) = inner.networks.get() {
        if let Err(e) = networks.forget(id).await {
            eprintln!("berthd: removing the network state of {id}: {e}");
        }
    }
}
