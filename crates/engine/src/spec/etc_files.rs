//! The container's `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`, written into its
//! directory and bind-mounted by the spec, as Docker (libnetwork's sandbox) writes them for
//! `--network none`, `--network host` and bridge networks (the container's own address in
//! /etc/hosts; the embedded DNS at 127.0.0.11 in resolv.conf on user-defined networks).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::container::ContainerRecord;

/// Docker's /etc/hosts when it builds one (etchosts' default block).
const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Docker's fallback when no usable nameserver is left (libnetwork's `defaultIPv4Dns`).
const FALLBACK_DNS: &str = "nameserver 8.8.8.8\nnameserver 8.8.4.4";

/// What the network service decided that the /etc files show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcNetwork {
    /// The container's addresses on bridge networks: `ip\thostname` lines in /etc/hosts.
    pub addresses: Vec<std::net::IpAddr>,
    /// A user-defined network is attached: resolv.conf names the embedded DNS.
    pub embedded_dns: bool,
    /// What `--add-host name:host-gateway` resolves to (the default bridge's gateway).
    pub host_gateway: Option<std::net::IpAddr>,
}

/// The embedded DNS server's address inside containers (Docker's).
const EMBEDDED_DNS: &str = "127.0.0.11";

/// The host files a container's files derive from.
#[derive(Debug, Clone)]
pub struct HostFiles {
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
    pub hostname: String,
}

impl HostFiles {
    /// The host's files; with systemd-resolved's stub (only `127.0.0.53`), its upstream
    /// file, as Docker does.
    pub fn detect() -> HostFiles {
        let etc = PathBuf::from("/etc/resolv.conf");
        let upstream = PathBuf::from("/run/systemd/resolve/resolv.conf");
        let stub_only = std::fs::read_to_string(&etc).is_ok_and(|text| {
            let servers = nameservers(&text);
            servers == ["127.0.0.53"]
        });
        let resolv_conf = if stub_only && upstream.exists() {
            upstream
        } else {
            etc
        };
        HostFiles {
            hosts: PathBuf::from("/etc/hosts"),
            resolv_conf,
            hostname: super::HostInfo::detect().hostname,
        }
    }
}

/// Writes `hostname`, `hosts` and `resolv.conf` into `container_dir` from the host's files.
pub fn write_etc_files(
    container_dir: &Path,
    record: &ContainerRecord,
    network: &EtcNetwork,
) -> io::Result<()> {
    write_etc_files_with(container_dir, record, &HostFiles::detect(), network)
}

/// [`write_etc_files`] with the host's files given, for a container without bridge networks.
pub fn write_etc_files_from(
    container_dir: &Path,
    record: &ContainerRecord,
    host: &HostFiles,
) -> io::Result<()> {
    write_etc_files_with(container_dir, record, host, &EtcNetwork::default())
}

/// [`write_etc_files`] with the host's files given.
pub fn write_etc_files_with(
    container_dir: &Path,
    record: &ContainerRecord,
    host: &HostFiles,
    network: &EtcNetwork,
) -> io::Result<()> {
    let hc = &record.host_config;
    let host_network = hc.network_mode == "host";
    let hostname = super::hostname(record, &host.hostname);
    write_atomic(
        &container_dir.join("hostname"),
        format!("{hostname}\n").as_bytes(),
    )?;

    let extra_hosts = hc.extra_hosts.as_deref().unwrap_or_default();
    let hosts = if host_network && extra_hosts.is_empty() {
        read_or_empty(&host.hosts)?
    } else {
        let mut text = DEFAULT_HOSTS.to_string();
        for entry in extra_hosts {
            // `name:ip` (the ip may hold colons) or `name=ip`.
            let (name, ip) = entry
                .split_once('=')
                .or_else(|| entry.split_once(':'))
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("invalid extra host: {entry}"),
                    )
                })?;
            let ip = match (ip, network.host_gateway) {
                ("host-gateway", Some(gateway)) => gateway.to_string(),
                ("host-gateway", None) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "unable to derive the IP value for host-gateway",
                    ))
                }
                (ip, _) => ip.to_string(),
            };
            text.push_str(&format!("{ip}\t{name}\n"));
        }
        // libnetwork's etchosts: the container's own record last, `fqdn short`.
        let names = if record.config.domainname.is_empty() {
            hostname.clone()
        } else {
            format!("{hostname}.{} {hostname}", record.config.domainname)
        };
        for ip in &network.addresses {
            text.push_str(&format!("{ip}\t{names}\n"));
        }
        text
    };
    write_atomic(&container_dir.join("hosts"), hosts.as_bytes())?;

    let host_resolv = read_or_empty(&host.resolv_conf)?;
    let dns = hc.dns.as_deref().unwrap_or_default();
    let search = hc.dns_search.as_deref().unwrap_or_default();
    let options = hc.dns_options.as_deref().unwrap_or_default();
    let resolv = if network.embedded_dns {
        // The embedded DNS answers container names and forwards the rest upstream. As
        // moby's TransformForIntNS: the host's options are kept unless --dns-option replaces
        // them, an ndots that is not a number >= 0 is dropped, and ndots:0 is added when
        // none is left (so a dotted name goes to the embedded DNS as given first).
        let mut options = if options.is_empty() {
            line_words(&host_resolv, "options")
        } else {
            options.to_vec()
        };
        options.retain(|o| {
            o.strip_prefix("ndots:")
                .is_none_or(|n| n.parse::<i64>().is_ok_and(|n| n >= 0))
        });
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.push("ndots:0".to_string());
        }
        let search = if search.is_empty() {
            line_words(&host_resolv, "search")
        } else {
            search.to_vec()
        };
        build_resolv_conf(&[EMBEDDED_DNS.to_string()], &search, &options)
    } else if !dns.is_empty() || !search.is_empty() || !options.is_empty() {
        let pick = |mine: &[String], theirs: Vec<String>| {
            if mine.is_empty() {
                theirs
            } else {
                mine.to_vec()
            }
        };
        build_resolv_conf(
            &pick(dns, nameservers(&host_resolv)),
            &pick(search, line_words(&host_resolv, "search")),
            &pick(options, line_words(&host_resolv, "options")),
        )
    } else if host_network {
        host_resolv
    } else {
        filter_resolv_conf(&host_resolv)
    };
    write_atomic(&container_dir.join("resolv.conf"), resolv.as_bytes())
}

/// Live `network connect`/`disconnect` of a running container: `ip\tnames` lines are added
/// for `add` and every line of an address in `remove` dropped from `<container_dir>/hosts`,
/// as libnetwork's etchosts Add/Delete do. Rewritten in place (truncate and write), not
/// renamed: the container sees the file through a bind mount of its inode.
pub fn update_hosts(
    container_dir: &Path,
    record: &ContainerRecord,
    add: &[std::net::IpAddr],
    remove: &[std::net::IpAddr],
) -> io::Result<()> {
    let path = container_dir.join("hosts");
    let current = read_or_empty(&path)?;
    let text = hosts_with(&current, record, add, remove);
    if text == current {
        return Ok(());
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)?;
    file.write_all(text.as_bytes())
}

fn hosts_with(
    current: &str,
    record: &ContainerRecord,
    add: &[std::net::IpAddr],
    remove: &[std::net::IpAddr],
) -> String {
    let mut text: String = current
        .split_inclusive('\n')
        .filter(|line| {
            let first = line.split_whitespace().next().unwrap_or_default();
            !first
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| remove.contains(&ip) || add.contains(&ip))
        })
        .collect();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let hostname = super::hostname(record, "");
    let names = if record.config.domainname.is_empty() {
        hostname.clone()
    } else {
        format!("{hostname}.{} {hostname}", record.config.domainname)
    };
    for ip in add {
        text.push_str(&format!("{ip}\t{names}\n"));
    }
    text
}

fn read_or_empty(path: &Path) -> io::Result<String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// Temp file, rename: a running container never sees a half-written file. Not fsynced:
/// these files are written afresh at every start, so after a crash nothing reads them
/// before they are rewritten (an fsync each cost 10-40 ms per start on a busy host).
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
    }
    std::fs::rename(&temp, path)
}

fn nameservers(text: &str) -> Vec<String> {
    line_words(text, "nameserver")
}

/// Words after `keyword` on its lines as moby's resolvconf parser reads them: `search`
/// (or the obsolete `domain`): the last line wins; `options`: every line's, in order;
/// `nameserver`: one per line, all of them.
fn line_words(text: &str, keyword: &str) -> Vec<String> {
    let mut words = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let first = fields.next();
        if first != Some(keyword) && !(keyword == "search" && first == Some("domain")) {
            continue;
        }
        match keyword {
            "nameserver" => words.extend(fields.next().map(str::to_string)),
            "options" => words.extend(fields.map(str::to_string)),
            _ => {
                let line_words: Vec<String> = fields.map(str::to_string).collect();
                if !line_words.is_empty() {
                    words = line_words;
                }
            }
        }
    }
    words
}

/// libnetwork's `resolvconf.Build`: search, nameservers, options.
fn build_resolv_conf(dns: &[String], search: &[String], options: &[String]) -> String {
    let mut text = String::new();
    let search = search.join(" ");
    if !search.is_empty() && search.trim() != "." {
        text.push_str(&format!("search {search}\n"));
    }
    for server in dns {
        text.push_str(&format!("nameserver {server}\n"));
    }
    let options = options.join(" ");
    if !options.trim().is_empty() {
        text.push_str(&format!("options {options}\n"));
    }
    text
}

/// libnetwork's `FilterResolvDNS` without IPv6: drops localhost and IPv6 nameservers (a
/// container cannot reach the host's loopback) and falls back to Google's DNS when none
/// are left.
fn filter_resolv_conf(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let mut fields = line.split_whitespace();
        if fields.next() == Some("nameserver") {
            let server = fields.next().unwrap_or_default();
            let ip: Option<std::net::IpAddr> =
                server.split('%').next().and_then(|s| s.parse().ok());
            if ip.is_some_and(|ip| ip.is_loopback() || ip.is_ipv6()) {
                continue;
            }
        }
        out.push_str(line);
    }
    if nameservers(&out).is_empty() {
        out.push('\n');
        out.push_str(FALLBACK_DNS);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
        host: HostFiles,
    }

    fn fixture(hosts: &str, resolv: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("host")).expect("mkdir");
        std::fs::create_dir(dir.path().join("c")).expect("mkdir");
        std::fs::write(dir.path().join("host/hosts"), hosts).expect("hosts");
        std::fs::write(dir.path().join("host/resolv.conf"), resolv).expect("resolv");
        let host = HostFiles {
            hosts: dir.path().join("host/hosts"),
            resolv_conf: dir.path().join("host/resolv.conf"),
            hostname: "vm".into(),
        };
        Fixture { dir, host }
    }

    fn written(f: &Fixture, host_config: &str, config: &str) -> [String; 3] {
        let record = ContainerRecord {
            id: "c3ceb3622f70aaaabbbbccccddddeeeeffff00001111222233334444555566667777".into(),
            config: serde_json::from_str(config).expect("config"),
            host_config: serde_json::from_str(host_config).expect("host config"),
            ..ContainerRecord::default()
        };
        let dir = f.dir.path().join("c");
        write_etc_files_from(&dir, &record, &f.host).expect("write");
        ["hostname", "hosts", "resolv.conf"]
            .map(|name| std::fs::read_to_string(dir.join(name)).expect("read"))
    }

    #[test]
    fn bridge_networks_add_the_containers_address_and_the_embedded_dns() {
        let f = fixture(
            HOST_HOSTS,
            "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp\n",
        );
        let record = ContainerRecord {
            id: "c3ceb3622f70aaaabbbbccccddddeeeeffff00001111222233334444555566667777".into(),
            config: serde_json::from_str(r#"{"Hostname":"web","Domainname":"example.com"}"#)
                .expect("config"),
            host_config: serde_json::from_str(
                r#"{"NetworkMode":"app","ExtraHosts":["gw:host-gateway"]}"#,
            )
            .expect("host config"),
            ..ContainerRecord::default()
        };
        let dir = f.dir.path().join("c");
        let network = EtcNetwork {
            addresses: vec!["10.1.0.2".parse().expect("ip")],
            embedded_dns: true,
            host_gateway: Some("172.17.0.1".parse().expect("gw")),
        };
        write_etc_files_with(&dir, &record, &f.host, &network).expect("write");
        let hosts = std::fs::read_to_string(dir.join("hosts")).expect("hosts");
        assert_eq!(
            hosts,
            format!("{DEFAULT_HOSTS}172.17.0.1\tgw\n10.1.0.2\tweb.example.com web\n")
        );
        let resolv = std::fs::read_to_string(dir.join("resolv.conf")).expect("resolv");
        assert_eq!(
            resolv,
            "search corp\nnameserver 127.0.0.11\noptions ndots:0\n"
        );
        // The default bridge: the host's resolvers, loopback filtered.
        let network = EtcNetwork {
            embedded_dns: false,
            ..network
        };
        write_etc_files_with(&dir, &record, &f.host, &network).expect("write");
        let resolv = std::fs::read_to_string(dir.join("resolv.conf")).expect("resolv");
        assert_eq!(resolv, "nameserver 10.0.0.2\nsearch corp\n");
    }

    const HOST_HOSTS: &str = "127.0.0.1 localhost\n127.0.0.1 vm\n";

    #[test]
    fn none_network_gets_dockers_default_hosts_and_filtered_resolv_conf() {
        let f = fixture(HOST_HOSTS, "nameserver 10.255.255.53\n");
        let [hostname, hosts, resolv] = written(&f, r#"{"NetworkMode":"none"}"#, "{}");
        assert_eq!(hostname, "c3ceb3622f70\n");
        assert_eq!(hosts, DEFAULT_HOSTS);
        assert_eq!(resolv, "nameserver 10.255.255.53\n");
    }

    #[test]
    fn host_network_copies_the_hosts_files_and_hostname() {
        let f = fixture(HOST_HOSTS, "nameserver 127.0.0.1\n");
        let [hostname, hosts, resolv] = written(&f, r#"{"NetworkMode":"host"}"#, "{}");
        assert_eq!(hostname, "vm\n");
        assert_eq!(hosts, HOST_HOSTS);
        assert_eq!(resolv, "nameserver 127.0.0.1\n");
    }

    #[test]
    fn extra_hosts_and_dns_flags_build_the_files_as_docker() {
        let f = fixture(
            HOST_HOSTS,
            "nameserver 10.255.255.53\nsearch host.example\n",
        );
        for mode in ["none", "host"] {
            let [hostname, hosts, resolv] = written(
                &f,
                &format!(
                    r#"{{"NetworkMode":"{mode}","ExtraHosts":["foo:1.2.3.4"],"Dns":["9.9.9.9"],
                        "DnsSearch":["s.example"],"DnsOptions":["ndots:2"]}}"#
                ),
                r#"{"Hostname":"hh","Domainname":"example.com"}"#,
            );
            assert_eq!(hostname, "hh\n");
            assert_eq!(hosts, format!("{DEFAULT_HOSTS}1.2.3.4\tfoo\n"));
            assert_eq!(
                resolv,
                "search s.example\nnameserver 9.9.9.9\noptions ndots:2\n"
            );
        }
    }

    #[test]
    fn dns_flags_fill_missing_parts_from_the_host() {
        let f = fixture("", "nameserver 10.0.0.1\nsearch a.example b.example\n");
        let [_, _, resolv] = written(
            &f,
            r#"{"NetworkMode":"none","DnsOptions":["ndots:1"]}"#,
            "{}",
        );
        assert_eq!(
            resolv,
            "search a.example b.example\nnameserver 10.0.0.1\noptions ndots:1\n"
        );
    }

    #[test]
    fn live_connect_and_disconnect_add_and_drop_the_containers_hosts_lines() {
        let record: ContainerRecord = ContainerRecord {
            config: serde_json::from_str(r#"{"Hostname":"box"}"#).expect("config"),
            ..ContainerRecord::default()
        };
        let start = format!("{DEFAULT_HOSTS}172.17.0.2\tbox\n");
        let ip: std::net::IpAddr = "10.40.0.3".parse().expect("ip");
        let connected = hosts_with(&start, &record, &[ip], &[]);
        assert_eq!(connected, format!("{start}10.40.0.3\tbox\n"));
        assert_eq!(hosts_with(&connected, &record, &[ip], &[]), connected);
        assert_eq!(hosts_with(&connected, &record, &[], &[ip]), start);
    }

    #[test]
    fn embedded_dns_keeps_host_options_and_adds_ndots_0_as_moby_does() {
        let f = fixture(
            "",
            "nameserver 10.0.0.2\noptions edns0 ndots:x\noptions attempts:3\ndomain corp\n",
        );
        let networks = |options: &str| {
            let dir = tempfile::tempdir().expect("dir");
            let record = ContainerRecord {
                host_config: serde_json::from_str(&format!(r#"{{"NetworkMode":"user"{options}}}"#))
                    .expect("host config"),
                ..ContainerRecord::default()
            };
            let network = EtcNetwork {
                embedded_dns: true,
                ..EtcNetwork::default()
            };
            write_etc_files_with(dir.path(), &record, &f.host, &network).expect("write");
            std::fs::read_to_string(dir.path().join("resolv.conf")).expect("resolv")
        };
        assert_eq!(
            networks(""),
            "search corp\nnameserver 127.0.0.11\noptions edns0 attempts:3 ndots:0\n",
            "host options kept, the malformed ndots dropped, ndots:0 added"
        );
        assert_eq!(
            networks(r#","DnsOptions":["ndots:3","timeout:2"]"#),
            "search corp\nnameserver 127.0.0.11\noptions ndots:3 timeout:2\n",
            "--dns-option replaces the host's options and its ndots is kept"
        );
        assert_eq!(
            networks(r#","DnsOptions":["ndots:-1"]"#),
            "search corp\nnameserver 127.0.0.11\noptions ndots:0\n"
        );
    }

    #[test]
    fn loopback_only_resolvers_fall_back_to_public_dns() {
        let f = fixture("", "nameserver 127.0.0.53\nnameserver ::1\noptions edns0\n");
        let [_, _, resolv] = written(&f, r#"{"NetworkMode":"none"}"#, "{}");
        assert_eq!(
            resolv,
            "options edns0\n\nnameserver 8.8.8.8\nnameserver 8.8.4.4"
        );
    }
}
