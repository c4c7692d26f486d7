//! Daemon addresses: `unix:///path`, `tcp://host:port` (plain), and the environment
//! variables and default that choose one, as the docker CLI reads `DOCKER_HOST`.

use std::fmt;
use std::path::PathBuf;

/// Default socket of berthd.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    /// `host:port` of a plain TCP endpoint.
    Tcp(String),
}

/// Errors parsing a host address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("invalid bind address format: {0}")]
    InvalidAddress(String),
    #[error("unsupported protocol {protocol:?} in {address} (use unix:// or tcp://)")]
    UnsupportedProtocol { protocol: String, address: String },
}

impl Host {
    /// Parses an address as the docker CLI accepts it: `unix://PATH`, `tcp://HOST[:PORT]`
    /// (port 2375 by default), or a bare absolute path meaning a unix socket.
    pub fn parse(address: &str) -> Result<Host, HostError> {
        let address = address.trim();
        if address.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(address)));
        }
        let Some((protocol, rest)) = address.split_once("://") else {
            return Err(HostError::InvalidAddress(address.to_string()));
        };
        match protocol {
            "unix" if !rest.is_empty() => Ok(Host::Unix(PathBuf::from(rest))),
            "tcp" | "http" if !rest.is_empty() => {
                let rest = rest.trim_end_matches('/');
                if rest.contains(':') {
                    Ok(Host::Tcp(rest.to_string()))
                } else {
                    Ok(Host::Tcp(format!("{rest}:2375")))
                }
            }
            "unix" | "tcp" | "http" => Err(HostError::InvalidAddress(address.to_string())),
            other => Err(HostError::UnsupportedProtocol {
                protocol: other.to_string(),
                address: address.to_string(),
            }),
        }
    }

    /// The host chosen by `-H` (when given), else `BERTH_HOST`, else `DOCKER_HOST`, else
    /// the berthd default.
    pub fn resolve(flag: Option<&str>) -> Result<Host, HostError> {
        Self::resolve_with(flag, |name| std::env::var(name).ok())
    }

    /// [`Host::resolve`] with an explicit environment, for tests.
    pub fn resolve_with(
        flag: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Host, HostError> {
        if let Some(flag) = flag.filter(|value| !value.is_empty()) {
            return Host::parse(flag);
        }
        for name in ["BERTH_HOST", "DOCKER_HOST"] {
            if let Some(value) = env(name).filter(|value| !value.is_empty()) {
                return Host::parse(&value);
            }
        }
        Host::parse(DEFAULT_HOST)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Unix(path) => write!(f, "unix://{}", path.display()),
            Host::Tcp(address) => write!(f, "tcp://{address}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_like_the_docker_cli() {
        let cases = [
            (
                "unix:///run/berth/berth.sock",
                Ok(Host::Unix("/run/berth/berth.sock".into())),
            ),
            ("/tmp/d.sock", Ok(Host::Unix("/tmp/d.sock".into()))),
            (
                "tcp://127.0.0.1:2375",
                Ok(Host::Tcp("127.0.0.1:2375".into())),
            ),
            (
                "tcp://example.com",
                Ok(Host::Tcp("example.com:2375".into())),
            ),
            ("unix://", Err("invalid bind address format: unix://")),
            ("nonsense", Err("invalid bind address format: nonsense")),
            (
                "ssh://me@host",
                Err("unsupported protocol \"ssh\" in ssh://me@host (use unix:// or tcp://)"),
            ),
        ];
        for (text, expected) in cases {
            let got = Host::parse(text).map_err(|e| e.to_string());
            assert_eq!(got, expected.map_err(str::to_string), "{text}");
        }
    }

    #[test]
    fn flag_beats_berth_host_beats_docker_host_beats_default() {
        let env = |name: &str| match name {
            "BERTH_HOST" => Some("unix:///berth.sock".to_string()),
            "DOCKER_HOST" => Some("unix:///docker.sock".to_string()),
            _ => None,
        };
        let flag = Host::resolve_with(Some("unix:///flag.sock"), env).expect("flag");
        assert_eq!(flag, Host::Unix("/flag.sock".into()));
        let berth = Host::resolve_with(None, env).expect("berth");
        assert_eq!(berth, Host::Unix("/berth.sock".into()));
        let docker = Host::resolve_with(None, |name| {
            (name == "DOCKER_HOST").then(|| "tcp://h:1".to_string())
        })
        .expect("docker");
        assert_eq!(docker, Host::Tcp("h:1".into()));
        let default = Host::resolve_with(None, |_| None).expect("default");
        assert_eq!(default.to_string(), DEFAULT_HOST);
    }
}
