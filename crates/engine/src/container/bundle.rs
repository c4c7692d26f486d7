//! The seam to the spec builder: merging the image config at create, and writing the OCI
//! bundle (`config.json` plus the /etc files) at start, both through [`crate::spec`].

use std::path::Path;

use berth_api::container::Config;

use super::{ContainerError, ContainerRecord};
use crate::spec::{self, SpecInput};

/// Merges the image's config into the request's, as Docker's daemon does at create.
pub fn merge_image_config(config: &mut Config, image: &berth_image::config::ContainerConfig) {
    spec::merge_image_config(config, image);
}

/// Writes `<dir>/config.json` (Docker's default spec for this container) and the
/// hostname, hosts and resolv.conf files it bind-mounts, for the rootfs mounted at `rootfs`.
pub fn write_config(
    dir: &Path,
    rootfs: &Path,
    record: &ContainerRecord,
    cgroup_parent: &str,
    sandbox: &crate::network::SandboxSetup,
    userns: Option<&spec::userns::IdMap>,
) -> Result<(), ContainerError> {
    let network = spec::EtcNetwork {
        addresses: sandbox.addresses.clone(),
        embedded_dns: sandbox.embedded_dns,
        host_gateway: sandbox.host_gateway,
    };
    spec::write_etc_files(dir, record, &network)
        .map_err(|e| ContainerError::io("writing the container's /etc files", e))?;
    let input = SpecInput {
        id: &record.id,
        record,
        rootfs,
        container_dir: dir,
        cgroup_parent,
        network_namespace: sandbox.netns.as_deref(),
    };
    let spec = spec::build(&input)?;
    if let Some(profile) = spec
        .process()
        .as_ref()
        .and_then(|p| p.apparmor_profile().clone())
    {
        spec::apparmor::AppArmorHost::detect()
            .ensure(&profile)
            .map_err(|e| ContainerError::InvalidArgument(e.to_string()))?;
    }
    let mut spec = serde_json::to_value(&spec)
        .map_err(|e| ContainerError::io("encoding config.json", std::io::Error::other(e)))?;
    if let Some(map) = userns {
        spec::userns::apply(&mut spec, map);
    }
    let bytes = serde_json::to_vec(&spec)
        .map_err(|e| ContainerError::io("encoding config.json", std::io::Error::other(e)))?;
    // Atomic: a crash never leaves a half-written bundle for the next start.
    let temp = dir.join("config.json.tmp");
    std::fs::write(&temp, bytes).map_err(|e| ContainerError::io("writing config.json", e))?;
    std::fs::rename(&temp, dir.join("config.json"))
        .map_err(|e| ContainerError::io("writing config.json", e))
}
