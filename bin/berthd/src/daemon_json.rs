//! /etc/berth/daemon.json: Docker's daemon.json keys where berth has the feature. Unknown
//! keys are refused, as dockerd refuses them, so a typo never silently does nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_engine::EngineConfig;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DaemonJson {
    #[serde(default)]
    pub hosts: Vec<String>,
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub debug: Option<bool>,
    pub default_runtime: Option<String>,
    #[serde(default)]
    pub runtimes: BTreeMap<String, RuntimeEntry>,
    pub log_driver: Option<String>,
    #[serde(default)]
    pub log_opts: BTreeMap<String, String>,
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    pub cgroup_parent: Option<String>,
    /// The trust policy file for pulls (berth's; default /etc/berth/policy.json).
    pub signature_policy: Option<std::path::PathBuf>,
    /// Docker's `userns-remap` (read by main: it moves the data root).
    pub userns_remap: Option<String>,
    /// berth's: false makes user-namespaced containers use a chowned copy of their image
    /// layers even where the kernel has idmapped mounts (default true).
    pub userns_idmapped_mounts: Option<bool>,
    /// berth's: how a push compresses the layers berth keeps uncompressed, `gzip`
    /// (default, what dockerd pushes) or `zstd` (OCI zstd layers in an OCI manifest).
    pub push_compression: Option<berth_engine::image::PushCompression>,
    /// Name of the default bridge device berth creates (Docker: `docker0`; berth: `berth0`).
    pub bridge: Option<String>,
    /// The default bridge's gateway address and prefix (`172.17.0.1/16`); parsed by
    /// [`parse_bip`] so a bad value gets dockerd's start-up text.
    pub bip: Option<String>,
    /// Subnets for the default bridge and for networks created without `--subnet`.
    #[serde(default)]
    pub default_address_pools: Vec<AddressPool>,
    /// Always on in berth; accepted (and ignored) so Docker configurations load.
    #[serde(rename = "live-restore")]
    pub _live_restore: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct AddressPool {
    pub base: berth_engine::network::Subnet,
    pub size: u8,
}

#[derive(Debug, Deserialize)]
pub struct RuntimeEntry {
    pub path: PathBuf,
}

/// Reads the file; a missing file is an empty configuration.
pub fn load(path: &Path) -> anyhow::Result<DaemonJson> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "unable to configure the daemon with file {}",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DaemonJson::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

impl DaemonJson {
    pub fn apply(&self, config: &mut EngineConfig) -> anyhow::Result<()> {
        if let Some(debug) = self.debug {
            config.debug = debug;
        }
        for (name, runtime) in &self.runtimes {
            config.runtimes.insert(name.clone(), runtime.path.clone());
        }
        if let Some(runtime) = &self.default_runtime {
            config.default_runtime = runtime.clone();
        }
        if let Some(driver) = &self.log_driver {
            config.log_driver = driver.clone();
            config.log_opts.clear();
        }
        config.log_opts.extend(self.log_opts.clone());
        config.insecure_registries = self.insecure_registries.clone();
        config.registry_mirrors = self.registry_mirrors.clone();
        if let Some(parent) = &self.cgroup_parent {
            config.cgroup_parent = parent.clone();
        }
        if let Some(policy) = &self.signature_policy {
            config.signature_policy = policy.clone();
        }
        if let Some(idmapped) = self.userns_idmapped_mounts {
            config.userns_idmapped_mounts = idmapped;
        }
        if let Some(compression) = self.push_compression {
            config.push_compression = compression;
        }
        if let Some(bridge) = &self.bridge {
            config.network.bridge = bridge.clone();
        }
        config.network.bip = self.bip.as_deref().map(parse_bip).transpose()?;
        if !self.default_address_pools.is_empty() {
            let pools: Vec<_> = self
                .default_address_pools
                .iter()
                .map(|p| (p.base, p.size))
                .collect();
            config.network.address_pools = berth_engine::network::split_pools(&pools)?;
        }
        Ok(())
    }
}

/// `bip` (daemon.json or `--bip`) as dockerd reads it at start (getDefaultBridgeIPAMConf):
/// an IPv4 address with its prefix; dockerd then stops with `Error initializing network
/// controller: parse bip failed: invalid CIDR address: <value>`.
pub fn parse_bip(text: &str) -> anyhow::Result<berth_engine::network::Subnet> {
    match text.parse::<berth_engine::network::Subnet>() {
        Ok(bip) if bip.family() == 4 => Ok(bip),
        _ => anyhow::bail!(
            "Error initializing network controller: parse bip failed: invalid CIDR address: {text}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_bip_gets_dockerds_start_up_text() {
        for bad in ["300.1.1.1/16", "172.18.0.1", "172.18.0.1/33", "fd00::1/64"] {
            let file: DaemonJson =
                serde_json::from_str(&format!(r#"{{"bip": "{bad}"}}"#)).expect("parse");
            let mut config = EngineConfig::new("/d".into(), "/e".into());
            let err = file.apply(&mut config).expect_err("bad bip");
            assert_eq!(
                err.to_string(),
                format!(
                    "Error initializing network controller: parse bip failed: invalid CIDR \
                     address: {bad}"
                )
            );
        }
        let file: DaemonJson = serde_json::from_str(r#"{"bip": "10.66.0.1/24"}"#).expect("parse");
        let mut config = EngineConfig::new("/d".into(), "/e".into());
        file.apply(&mut config).expect("good bip");
        let bip = config.network.bip.expect("bip");
        assert_eq!(
            (bip.to_string(), bip.network().to_string()),
            ("10.66.0.1/24".into(), "10.66.0.0/24".into())
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_json::from_str::<DaemonJson>(r#"{"data-rot": "/x"}"#).expect_err("typo");
        assert!(err.to_string().contains("data-rot"), "{err}");
    }

    #[test]
    fn runtimes_and_log_options_apply() {
        let file: DaemonJson = serde_json::from_str(
            r#"{"runtimes": {"crun": {"path": "/usr/bin/crun"}}, "log-opts": {"max-size": "1m"}}"#,
        )
        .expect("parse");
        let mut config = EngineConfig::new("/d".into(), "/e".into());
        file.apply(&mut config).expect("apply");
        assert_eq!(config.runtimes["crun"], PathBuf::from("/usr/bin/crun"));
        assert_eq!(config.log_opts["max-size"], "1m");
        assert_eq!(config.log_opts["max-file"], "3");
    }

    #[test]
    fn push_compression_selects_gzip_or_zstd_and_refuses_others() {
        use berth_engine::image::PushCompression;
        let mut config = EngineConfig::new("/d".into(), "/e".into());
        assert_eq!(config.push_compression, PushCompression::Gzip, "default");
        let file: DaemonJson =
            serde_json::from_str(r#"{"push-compression": "zstd"}"#).expect("parse");
        file.apply(&mut config).expect("apply");
        assert_eq!(config.push_compression, PushCompression::Zstd);
        let err = serde_json::from_str::<DaemonJson>(r#"{"push-compression": "xz"}"#)
            .expect_err("unknown codec");
        assert!(err.to_string().contains("xz"), "{err}");
    }
}
