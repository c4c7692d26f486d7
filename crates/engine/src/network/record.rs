//! The persisted record of one network (`<data-root>/networks/<id>.json`, atomic: temp file,
//! fsync, rename) with its IPAM state and its endpoints, so that an address is never leaked
//! or handed out twice across berthd restarts. Container starts and exits change only the
//! endpoints and the IPAM state; they write the whole record to `<id>.endpoints.json`
//! instead, renamed into place but never synced (see [`NetworkRecord::save_endpoints`]).

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

    /// The endpoint file of a network: its newest endpoints and IPAM state.
    fn endpoints_path(dir: &Path, id: &str) -> PathBuf {
        dir.join(format!("{id}.endpoints.json"))
    }

    /// Writes `<dir>/<id>.json` atomically (temp file, fsync, rename, fsync of the dir) and
    /// removes the endpoint file, which the record now supersedes. Only done for a record
    /// without endpoints (network create, predefined networks and the default bridge
    /// remade for a changed `bip` when nothing is attached), so an endpoint file that a
    /// crash between the rename and the unlink leaves behind lists none either; at worst
    /// it brings back the `bip` before the change, which the next start changes again.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomic(
            dir,
            &format!(".{}.json.tmp", self.id),
            &Self::path(dir, &self.id),
            &bytes,
            true,
        )?;
        match std::fs::remove_file(Self::endpoints_path(dir, &self.id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// [`save`](Self::save) for a change of endpoints only (a container attached or
    /// detached), on every container start and exit on a bridge network: the whole record
    /// goes to `<id>.endpoints.json`, written to a temp file and renamed (so a berthd crash
    /// never leaves it torn: the page cache keeps every completed write), but neither file
    /// nor directory is synced. Only a host crash can lose or tear it, and a host crash
    /// ends every container: [`load_all`](Self::load_all) then falls back to `<id>.json`
    /// (or an older endpoint file), whose endpoints all belong to dead containers, and
    /// reconcile at the next start releases them and their addresses. So no address is
    /// ever held by a running container and free in the record, and the two syncs per
    /// `docker run` (one at attach, one at detach) are saved.
    pub fn save_endpoints(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let temp = format!(".{}.endpoints.json.tmp", self.id);
        write_atomic(
            dir,
            &temp,
            &Self::endpoints_path(dir, &self.id),
            &bytes,
            false,
        )
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
            if name.ends_with(".endpoints.json") {
                continue;
            }
            let read = |path: &Path| {
                std::fs::read(path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<NetworkRecord>(&b).ok())
            };
            let Some(base) = read(&path) else {
                skipped.push(path.display().to_string());
                continue;
            };
            // The endpoint file is newer whenever it exists; one a host crash tore is
            // ignored (see save_endpoints).
            match read(&Self::endpoints_path(dir, &base.id)) {
                Some(newer) if newer.id == base.id => records.push(newer),
                _ => records.push(base),
            }
        }
        Ok((records, skipped))
    }

    /// Removes the record (its endpoint file first: a crash in between keeps the record
    /// whole, as before the removal).
    pub fn remove_file(dir: &Path, id: &str) -> std::io::Result<()> {
        for path in [Self::endpoints_path(dir, id), Self::path(dir, id)] {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Writes `bytes` to `dir/temp`, syncs it if asked, and renames it to `path`.
fn write_atomic(
    dir: &Path,
    temp: &str,
    path: &Path,
    bytes: &[u8],
    sync: bool,
) -> std::io::Result<()> {
    let temp = dir.join(temp);
    {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_data()?;
        }
    }
    std::fs::rename(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_network::ipam::Pool;

    fn record() -> NetworkRecord {
        let mut ipam = Ipam::new(vec![Pool::new(
            "10.20.0.0/24".parse().expect("subnet"),
            None,
            None,
        )
        .expect("pool")])
        .expect("ipam");
        ipam.allocate(4, None, "n", "i").expect("ip");
        NetworkRecord {
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
        }
    }

    #[test]
    fn record_round_trips_and_skips_temp_files() {
        let dir = tempfile::tempdir().expect("dir");
        let record = record();
        record.save(dir.path()).expect("save");
        std::fs::write(dir.path().join(".x.json.tmp"), "{").expect("temp");
        let (records, skipped) = NetworkRecord::load_all(dir.path()).expect("load");
        assert_eq!(records, vec![record.clone()]);
        assert!(skipped.is_empty());
        assert!(!dir.path().join(".x.json.tmp").exists());
        NetworkRecord::remove_file(dir.path(), &record.id).expect("rm");
        NetworkRecord::remove_file(dir.path(), &record.id).expect("rm twice");
    }

    #[test]
    fn endpoint_saves_win_until_a_full_save_or_removal() {
        let dir = tempfile::tempdir().expect("dir");
        let base = record();
        base.save(dir.path()).expect("save");
        let mut attached = base.clone();
        attached.endpoints.insert(
            "c".repeat(64),
            EndpointRecord {
                container_id: "c".repeat(64),
                ..EndpointRecord::default()
            },
        );
        attached
            .ipam
            .allocate(4, None, "n", "i")
            .expect("second ip");
        attached.save_endpoints(dir.path()).expect("save endpoints");
        let (records, _) = NetworkRecord::load_all(dir.path()).expect("load");
        assert_eq!(
            records,
            vec![attached.clone()],
            "the endpoint file is newer"
        );
        base.save(dir.path()).expect("full save");
        let (records, _) = NetworkRecord::load_all(dir.path()).expect("load");
        assert_eq!(records, vec![base.clone()], "a full save supersedes it");
        attached.save_endpoints(dir.path()).expect("save endpoints");
        NetworkRecord::remove_file(dir.path(), &base.id).expect("rm");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }

    #[test]
    fn a_torn_endpoint_file_falls_back_to_the_synced_record() {
        // What a host crash can leave of an unsynced rename: an empty or zero-filled file.
        let dir = tempfile::tempdir().expect("dir");
        let base = record();
        base.save(dir.path()).expect("save");
        for torn in [&b""[..], &[0u8; 64][..], &b"{\"id\": \"aa"[..]] {
            std::fs::write(NetworkRecord::endpoints_path(dir.path(), &base.id), torn)
                .expect("torn");
            let (records, skipped) = NetworkRecord::load_all(dir.path()).expect("load");
            assert_eq!(records, vec![base.clone()]);
            assert!(skipped.is_empty());
        }
    }
}
