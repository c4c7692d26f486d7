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
