//! Published ports: `-p [ip:][hostport[-end]:]port[/proto]` bindings as the API carries them
//! (`HostConfig.PortBindings`) and `-P` (`PublishAllPorts` over `ExposedPorts`), resolved to
//! host ports: fixed ones checked against every other published port, random ones taken from
//! the kernel's ephemeral range as Docker's port allocator does. Pure apart from the
//! `available` probe the caller passes.

use std::collections::BTreeMap;
use std::net::IpAddr;

use berth_api::container::{HostConfig, PortBinding};
use serde::{Deserialize, Serialize};

use super::datapath::Proto;
use super::NetworkError;

/// One published port of a container, as `docker port` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// As given (`""` for every address).
    pub host_ip: String,
    pub host_port: u16,
    pub proto: Proto,
    pub container_port: u16,
}

impl PortMapping {
    /// The host address the rule matches (None: every address).
    pub fn host_addr(&self) -> Option<IpAddr> {
        self.host_ip
            .parse()
            .ok()
            .filter(|ip: &IpAddr| !ip.is_unspecified())
    }

    /// `80/tcp`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.proto.as_str())
    }

    /// Docker's `HostIp` (`0.0.0.0` for every address).
    pub fn shown_host_ip(&self) -> String {
        if self.host_ip.is_empty() {
            "0.0.0.0".to_string()
        } else {
            self.host_ip.clone()
        }
    }

    fn clashes(&self, other: &PortMapping) -> bool {
        self.proto == other.proto
            && self.host_port == other.host_port
            && (self.host_addr().is_none()
                || other.host_addr().is_none()
                || self.host_addr() == other.host_addr())
    }
}

/// `NetworkSettings.Ports`: every exposed or published port, `null` when not published.
pub fn port_map(
    exposed: &[String],
    published: &[PortMapping],
) -> BTreeMap<String, Option<Vec<PortBinding>>> {
    let mut map: BTreeMap<String, Option<Vec<PortBinding>>> = exposed
        .iter()
        .map(|key| (normalise_key(key), None))
        .collect();
    for mapping in published {
        map.entry(mapping.key())
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: mapping.shown_host_ip(),
                host_port: mapping.host_port.to_string(),
            });
    }
    map
}

fn normalise_key(key: &str) -> String {
    if key.contains('/') {
        key.to_string()
    } else {
        format!("{key}/tcp")
    }
}

fn parse_key(key: &str) -> Result<(u16, Proto), NetworkError> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" | "" => Proto::Tcp,
        "udp" => Proto::Udp,
        other => {
            return Err(NetworkError::InvalidArgument(format!(
                "invalid proto: {other}"
            )))
        }
    };
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            NetworkError::InvalidArgument(format!("invalid port specification: \"{key}\""))
        })?;
    Ok((port, proto))
}

/// Host port spec of one binding: None for random, else an inclusive range.
fn parse_host_port(text: &str) -> Result<Option<(u16, u16)>, NetworkError> {
    let text = text.trim();
    if text.is_empty() || text == "0" {
        return Ok(None);
    }
    let invalid = || NetworkError::InvalidArgument(format!("invalid hostPort: {text}"));
    let (start, end) = text.split_once('-').unwrap_or((text, text));
    let start: u16 = start.parse().map_err(|_| invalid())?;
    let end: u16 = end.parse().map_err(|_| invalid())?;
    if start == 0 || end < start {
        return Err(invalid());
    }
    Ok(Some((start, end)))
}

/// The kernel's ephemeral port range (Docker's port allocator uses it for random ports).
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut fields = text.split_whitespace().map(|f| f.parse::<u16>().ok());
            Some((fields.next()??, fields.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// Whether nothing on the host listens on `ip:port` (a bind probe).
pub fn bind_probe(ip: Option<IpAddr>, port: u16, proto: Proto) -> bool {
    let ip = ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    match proto {
        Proto::Tcp => std::net::TcpListener::bind((ip, port)).is_ok(),
        Proto::Udp => std::net::UdpSocket::bind((ip, port)).is_ok(),
    }
}

/// One wanted publication: container port, protocol, host IP (empty: any) and host port
/// range (None: a random port).
type Wanted = (u16, Proto, String, Option<(u16, u16)>);

/// Resolves the container's bindings to host ports. `in_use` are the other containers'
/// mappings; `available` probes the host for random ports.
pub fn resolve(
    host_config: &HostConfig,
    exposed: &[String],
    in_use: &[PortMapping],
    range: (u16, u16),
    available: &dyn Fn(Option<IpAddr>, u16, Proto) -> bool,
) -> Result<Vec<PortMapping>, NetworkError> {
    let mut wanted: Vec<Wanted> = Vec::new();
    let bindings = host_config.port_bindings.clone().unwrap_or_default();
    for (key, list) in &bindings {
        let (port, proto) = parse_key(key)?;
        let list = list.clone().unwrap_or_default();
        if list.is_empty() {
            wanted.push((port, proto, String::new(), None));
        }
        for binding in list {
            if !binding.host_ip.is_empty() && binding.host_ip.parse::<IpAddr>().is_err() {
                return Err(NetworkError::InvalidArgument(format!(
                    "invalid IP address: {}",
                    binding.host_ip
                )));
            }
            wanted.push((
                port,
                proto,
                binding.host_ip.clone(),
                parse_host_port(&binding.host_port)?,
            ));
        }
    }
    if host_config.publish_all_ports {
        for key in exposed {
            let (port, proto) = parse_key(key)?;
            if !wanted.iter().any(|w| w.0 == port && w.1 == proto) {
                wanted.push((port, proto, String::new(), None));
            }
        }
    }
    let mut taken: Vec<PortMapping> = in_use.to_vec();
    let mut result = Vec::new();
    for (container_port, proto, host_ip, host_ports) in wanted {
        let candidate = |host_port| PortMapping {
            host_ip: host_ip.clone(),
            host_port,
            proto,
            container_port,
        };
        let chosen = match host_ports {
            Some((start, end)) => {
                let free = (start..=end)
                    .map(candidate)
                    .find(|m| !taken.iter().any(|t| t.clashes(m)));
                match free {
                    Some(m) => m,
                    None => {
                        return Err(NetworkError::PortAllocated {
                            host: candidate(start).shown_host_ip(),
                            port: start,
                        })
                    }
                }
            }
            None => (range.0..=range.1)
                .map(candidate)
                .find(|m| {
                    !taken.iter().any(|t| t.clashes(m))
                        && available(m.host_addr(), m.host_port, proto)
                })
                .ok_or_else(|| {
                    NetworkError::InvalidArgument("all ports are allocated".to_string())
                })?,
        };
        taken.push(chosen.clone());
        result.push(chosen);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_config(json: &str) -> HostConfig {
        serde_json::from_str(json).expect("host config")
    }

    fn always(_: Option<IpAddr>, _: u16, _: Proto) -> bool {
        true
    }

    #[test]
    fn fixed_random_and_ranged_ports_resolve() {
        let hc = host_config(
            r#"{"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":""}],
                "53/udp":[{"HostIp":"","HostPort":"5353"}],
                "81/tcp":[{"HostIp":"","HostPort":"9000-9002"}]}}"#,
        );
        let other = PortMapping {
            host_ip: String::new(),
            host_port: 9000,
            proto: Proto::Tcp,
            container_port: 1,
        };
        let got = resolve(&hc, &[], &[other], (40000, 40010), &always).expect("ports");
        assert_eq!(
            got,
            vec![
                PortMapping {
                    host_ip: String::new(),
                    host_port: 5353,
                    proto: Proto::Udp,
                    container_port: 53
                },
                PortMapping {
                    host_ip: "127.0.0.1".into(),
                    host_port: 40000,
                    proto: Proto::Tcp,
                    container_port: 80
                },
                PortMapping {
                    host_ip: String::new(),
                    host_port: 9001,
                    proto: Proto::Tcp,
                    container_port: 81
                },
            ]
        );
    }

    #[test]
    fn a_taken_fixed_port_uses_dockers_text() {
        let hc = host_config(r#"{"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]}}"#);
        let other = PortMapping {
            host_ip: "127.0.0.1".into(),
            host_port: 8080,
            proto: Proto::Tcp,
            container_port: 80,
        };
        let err = resolve(
            &hc,
            &[],
            std::slice::from_ref(&other),
            (40000, 40010),
            &always,
        )
        .expect_err("taken");
        assert_eq!(
            err.to_string(),
            "Bind for 0.0.0.0:8080 failed: port is already allocated"
        );
        // The same port over UDP is free.
        let hc = host_config(r#"{"PortBindings":{"80/udp":[{"HostIp":"","HostPort":"8080"}]}}"#);
        assert!(resolve(&hc, &[], &[other], (40000, 40010), &always).is_ok());
    }

    #[test]
    fn publish_all_gives_exposed_ports_random_ports_skipping_busy_ones_per_protocol() {
        let hc = host_config(r#"{"PublishAllPorts":true}"#);
        let busy = |_: Option<IpAddr>, port: u16, _: Proto| port != 40000;
        let got = resolve(
            &hc,
            &["80/tcp".into(), "90/udp".into()],
            &[],
            (40000, 40010),
            &busy,
        )
        .expect("ports");
        assert_eq!(
            got.iter().map(|m| m.host_port).collect::<Vec<_>>(),
            vec![40001, 40001]
        );
        let map = port_map(&["80/tcp".into(), "90/udp".into(), "7/tcp".into()], &got);
        assert_eq!(map["7/tcp"], None);
        assert_eq!(
            map["80/tcp"],
            Some(vec![PortBinding {
                host_ip: "0.0.0.0".into(),
                host_port: "40001".into()
            }])
        );
    }

    #[test]
    fn bad_specs_are_refused() {
        let hc = host_config(r#"{"PortBindings":{"x/tcp":[]}}"#);
        assert!(resolve(&hc, &[], &[], (1, 2), &always).is_err());
        let hc = host_config(r#"{"PortBindings":{"80/sctp":[]}}"#);
        assert!(resolve(&hc, &[], &[], (1, 2), &always).is_err());
        let hc = host_config(r#"{"PortBindings":{"80/tcp":[{"HostIp":"nope","HostPort":"1"}]}}"#);
        assert!(resolve(&hc, &[], &[], (1, 2), &always).is_err());
    }
}
