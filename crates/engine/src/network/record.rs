//! The persisted record of one network (`<data-root>/networks/<id>.json`, atomic: temp file,
//! fsync, rename) with its IPAM state and its endpoints, so that an address is never leaked
//! or handed out twice across berthd restarts.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use berth_network::ipam::{Ipam, Subnet};
use serde::{Deserialize, Serialize};

/// Docker's network drivers berth has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Bridge,
    Host,
    Null,
}

impl Driver {
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Host => "host",
            Driver::Null => "null",
        }
    }
}

/// One `IPAM.Config` entry as the user gave it (or as berth picked it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamConfigRecord {
    pub subnet: String,
    #[serde(default)]
    pub ip_range: String,
    #[serde(default)]
    pub gateway: String,
}

/// A container attached to a network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub container_id: String,
    /// The container's name without the leading `/`.
    pub container_name: String,
    pub endpoint_id: String,
    /// `eth0`, `eth1`, ... inside the container.
    pub ifname: String,
    /// The host end of the veth pair (`veth` + 7 hex).
    pub host_veth: String,
    /// `02:42:ac:11:00:02`.
    pub mac: String,
    pub ipv4: Option<Subnet>,
    pub gateway4: Option<IpAddr>,
    pub ipv6: Option<Subnet>,
    pub gateway6: Option<IpAddr>,
    /// `--network-alias` values (user-defined networks).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Names the embedded DNS answers for this endpoint: container name, aliases, short id.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// `--ip`/`--ip6` as requested (inspect's `IPAMConfig`).
    #[serde(default)]
    pub requested_ipv4: String,
    #[serde(default)]
    pub requested_ipv6: String,
}

/// Everything berthd keeps about a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// 64 lowercase hex characters.
    pub id: String,
    pub name: String,
    pub driver: Driver,
    /// Go RFC 3339 nano creation time.
    pub created: String,
    /// `bridge`, `host` and `none` exist always and cannot be removed.
    #[serde(default)]
    pub predefined: bool,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub enable_ipv6: bool,
    /// The Linux bridge device (empty for host and null).
    #[serde(default)]
    pub bridge: String,
    #[serde(default)]
    pub mtu: u32,
    /// Inter-container communication on this bridge.
    #[serde(default)]
    pub icc: bool,
    /// Egress NAT for the network's subnets.
    #[serde(default)]
    pub masquerade: bool,
    #[serde(default)]
    pub ipam_config: Vec<IpamConfigRecord>,
    #[serde(default)]
    pub ipam: Ipam,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Attached containers by container ID.
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointRecord>,
}

impl NetworkRecord {
    /// User-defined bridge networks get the embedded DNS; the default bridge does not.
    pub fn embedded_dns(&self) -> bool {
        self.driver == Driver::Bridge && !self.predefined
    }

    pub fn path(dir: &Path, id: &str) -> PathBuf {
        dir.join(format!("{id}.json"))
    }

    /// Writes `<dir>/<id>.json` atomically (temp file, fsync, rename, fsync of the dir).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        self.write(dir)?;
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// [`save`](Self::save) for a change of endpoints only (a container attached or
    /// detached): the data is synced before the rename, so the file is never empty or
    /// torn, but the directory is not, so a host crash may bring back the previous
    /// version. That is harmless: a host crash ends every container, and reconcile at the
    /// next start releases whatever endpoints the record still lists. It saves one of the
    /// two syncs on every container start and exit on a bridge network.
    pub fn save_endpoints(&self, dir: &Path) -> std::io::Result<()> {
        self.write(dir)
    }

    fn write(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let path = Self::path(dir, &self.id);
        let temp = dir.join(format!(".{}.json.tmp", self.id));
        {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(&bytes)?;
            file.sync_data()?;
        }
        std::fs::rename(&temp, &path)
    }

    /// Every record in `dir` (temp files and unreadable records are skipped and named).
    pub fn load_all(dir: &Path) -> std::io::Result<(Vec<NetworkRecord>, Vec<String>)> {
        let mut records = Vec::new();
        let mut skipped = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((records, skipped)),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') || !name.ends_with(".json") {
                let _ = name.ends_with(".tmp") && std::fs::remove_file(&path).is_ok();
                continue;
            }
            match std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<NetworkRecord>(&b).ok())
            {
                Some(record) => records.push(record),
                None => skipped.push(path.display().to_string()),
            }
        }
        Ok((records, skipped))
    }

    pub fn remove_file(dir: &Path, id: &str) -> std::io::Result<()> {
        match std::fs::remove_file(Self::path(dir, id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_network::ipam::Pool;

    #[test]
    fn record_round_trips_and_skips_temp_files() {
        let dir = tempfile::tempdir().expect("dir");
        let mut ipam = Ipam::new(vec![Pool::new(
            "10.20.0.0/24".parse().expect("subnet"),
            None,
            None,
        )
        .expect("pool")])
        .expect("ipam");
        ipam.allocate(4, None, "n", "i").expect("ip");
        let record = NetworkRecord {
            id: "a".repeat(64),
            name: "n".into(),
            driver: Driver::Bridge,
            created: "2026-01-01T00:00:00Z".into(),
            predefined: false,
            internal: false,
            attachable: false,
            enable_ipv6: false,
            bridge: "br-aaaaaaaaaaaa".into(),
            mtu: 1500,
            icc: true,
            masquerade: true,
            ipam_config: vec![],
            ipam,
            options: BTreeMap::new(),
            labels: BTreeMap::new(),
            endpoints: BTreeMap::new(),
        };
        record.save(dir.path()).expect("save");
        std::fs::write(dir.path().join(".x.json.tmp"), "{").expect("temp");
        let (records, skipped) = NetworkRecord::load_all(dir.path()).expect("load");
        assert_eq!(records, vec![record.clone()]);
        assert!(skipped.is_empty());
        assert!(!dir.path().join(".x.json.tmp").exists());
        NetworkRecord::remove_file(dir.path(), &record.id).expect("rm");
        NetworkRecord::remove_file(dir.path(), &record.id).expect("rm twice");
    }
}
