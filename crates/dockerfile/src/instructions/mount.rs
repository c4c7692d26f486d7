//! `RUN --mount=...`, `--network=` and `--security=` with BuildKit's rules and error texts
//! (`instructions/commands_runmount.go`, `commands_runnetwork.go`, `commands_runsecurity.go`).

use super::suggest::{did_you_mean, search};
use super::values::{parse_go_uint, ram_in_bytes};

/// Why a `--mount`, `--network` or `--security` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    #[error("failed to parse csv mounts: {reason}")]
    Csv { reason: String },
    #[error("unsupported mount type {}{}", crate::quote::go_quote(.value), did_you_mean(.suggestion))]
    Type {
        value: String,
        suggestion: Option<String>,
    },
    #[error("unsupported sharing value {}{}", crate::quote::go_quote(.value), did_you_mean(.suggestion))]
    Sharing {
        value: String,
        suggestion: Option<String>,
    },
    #[error("invalid field '{field}' must be a key=value pair")]
    NotKeyValue { field: String },
    #[error("unexpected key '{key}' for mount type '{mount_type}'")]
    KeyForType { key: String, mount_type: String },
    #[error("unexpected key '{key}' in '{field}'{}", did_you_mean(.suggestion))]
    UnknownKey {
        key: String,
        field: String,
        suggestion: Option<String>,
    },
    #[error("invalid value for {key}: {value}")]
    Value { key: String, value: String },
    #[error("invalid value {value} for {key}")]
    Number { key: String, value: String },
    #[error("{key} not allowed for \"{mount_type}\" type mounts")]
    FileInfo {
        key: &'static str,
        mount_type: String,
    },
    #[error("'from' doesn't support variable expansion, define alias stage instead")]
    FromExpansion,
    #[error("secret mount should not have a from")]
    SecretFrom,
    #[error("secret mount should not define sharing")]
    SecretSharing,
    #[error("invalid secret mount. one of source, target required")]
    SecretTarget,
    #[error("both source and id can't be set")]
    SecretSourceAndId,
    #[error("invalid cache sharing set for {mount_type} mount")]
    SharingForType { mount_type: String },
    #[error("invalid network mode {}", crate::quote::go_quote(.0))]
    Network(String),
    #[error("security {} is not valid", crate::quote::go_quote(.0))]
    Security(String),
    #[error("device name already set to {0}")]
    DeviceName(String),
}

/// One `RUN --device=` (CDI device name, optionally required).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Device {
    pub name: String,
    pub required: bool,
}

/// Parses a `--device` value as BuildKit's `ParseDevice`: `name[,required[=bool]]` or
/// `name=...,required=...`.
pub fn parse_device(value: &str) -> Result<Device, MountError> {
    let mut d = Device::default();
    for field in csv_split(value)? {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        match (key.as_str(), val) {
            ("required", None) => d.required = true,
            (_, None) if d.name.is_empty() => d.name = field,
            (_, None) => return Err(MountError::NotKeyValue { field }),
            ("name", Some(_)) if !d.name.is_empty() => return Err(MountError::DeviceName(d.name)),
            ("name", Some(v)) => d.name = v,
            ("required", Some(v)) => d.required = parse_bool(&key, &v)?,
            _ if d.name.is_empty() => d.name = field,
            _ => {
                let suggestion = search(&key, &["name", "required"], true);
                return Err(MountError::UnknownKey {
                    key,
                    field,
                    suggestion,
                });
            }
        }
    }
    Ok(d)
}

/// The kind of a RUN mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// Cache mount sharing between concurrent builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSharing {
    Shared,
    Private,
    Locked,
}

/// One `--mount` of a RUN instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_type: MountType,
    pub from: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub size_limit: i64,
    pub cache_id: String,
    pub cache_sharing: Option<CacheSharing>,
    pub required: bool,
    pub env: Option<String>,
    pub mode: Option<u64>,
    pub uid: Option<u64>,
    pub gid: Option<u64>,
}

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    #[default]
    Default,
    None,
    Host,
}

/// `RUN --security=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    #[default]
    Sandbox,
    Insecure,
}

pub fn parse_network(value: &str) -> Result<NetworkMode, MountError> {
    match value {
        "" | "default" => Ok(NetworkMode::Default),
        "none" => Ok(NetworkMode::None),
        "host" => Ok(NetworkMode::Host),
        _ => Err(MountError::Network(value.to_string())),
    }
}

pub fn parse_security(value: &str) -> Result<Security, MountError> {
    match value {
        "" | "sandbox" => Ok(Security::Sandbox),
        "insecure" => Ok(Security::Insecure),
        _ => Err(MountError::Security(value.to_string())),
    }
}

/// Splits a CSV record (`a,"b,c",d`; `""` inside quotes is one quote).
pub(crate) fn csv_split(value: &str) -> Result<Vec<String>, MountError> {
    let mut fields = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(MountError::Csv {
                            reason: "extraneous or missing \" in quoted-field".to_string(),
                        })
                    }
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err(MountError::Csv {
                    reason: "extraneous or missing \" in quoted-field".to_string(),
                });
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| *c != ',') {
                if c == '"' {
                    return Err(MountError::Csv {
                        reason: "bare \" in non-quoted-field".to_string(),
                    });
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

const ALL_KEYS: [&str; 19] = [
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

fn parse_bool(key: &str, value: &str) -> Result<bool, MountError> {
    // Go's strconv.ParseBool.
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(MountError::Value {
            key: key.to_string(),
            value: value.to_string(),
        }),
    }
}

/// Parses one `--mount` value after expansion (BuildKit's `parseMount` with an expander).
pub fn parse_mount(value: &str) -> Result<Mount, MountError> {
    let mut m = Mount {
        mount_type: MountType::Bind,
        from: String::new(),
        source: String::new(),
        target: String::new(),
        read_only: false,
        size_limit: 0,
        cache_id: String::new(),
        cache_sharing: None,
        required: false,
        env: None,
        mode: None,
        uid: None,
        gid: None,
    };
    let mut ro_auto = true;
    for field in csv_split(value)? {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        let secret_like = matches!(m.mount_type, MountType::Secret | MountType::Ssh);
        let for_type = |key: &str, m: &Mount| MountError::KeyForType {
            key: key.to_string(),
            mount_type: m.mount_type.as_str().to_string(),
        };
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => m.read_only = true,
                "readwrite" | "rw" => m.read_only = false,
                "required" if secret_like => m.required = true,
                "required" => return Err(for_type(&key, &m)),
                _ => return Err(MountError::NotKeyValue { field }),
            }
            ro_auto = !matches!(key.as_str(), "readonly" | "ro" | "readwrite" | "rw") && ro_auto;
            continue;
        };
        let number = |key: &str, v: &str, base: u32| {
            parse_go_uint(v, base, 32).map_err(|_| MountError::Number {
                key: key.to_string(),
                value: v.to_string(),
            })
        };
        match key.as_str() {
            "type" => {
                m.mount_type = match value.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        let types = ["bind", "cache", "tmpfs", "secret", "ssh"];
                        let suggestion = search(&value, &types, true);
                        return Err(MountError::Type { value, suggestion });
                    }
                }
            }
            "from" => m.from = value,
            "source" | "src" => m.source = value,
            "target" | "dst" | "destination" => m.target = value,
            "readonly" | "ro" => {
                m.read_only = parse_bool(&key, &value)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.read_only = !parse_bool(&key, &value)?;
                ro_auto = false;
            }
            "required" if secret_like => m.required = parse_bool(&key, &value)?,
            "required" => return Err(for_type(&key, &m)),
            "size" if m.mount_type == MountType::Tmpfs => {
                m.size_limit = ram_in_bytes(&value).ok_or(MountError::Value { key, value })?;
            }
            "size" => return Err(for_type(&key, &m)),
            "id" => m.cache_id = value,
            "sharing" => {
                m.cache_sharing = Some(match value.to_ascii_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    _ => {
                        let modes = ["shared", "private", "locked"];
                        let suggestion = search(&value, &modes, true);
                        return Err(MountError::Sharing { value, suggestion });
                    }
                })
            }
            "mode" => m.mode = Some(number("mode", &value, 8)?),
            "uid" => m.uid = Some(number("uid", &value, 10)?),
            "gid" => m.gid = Some(number("gid", &value, 10)?),
            "env" => m.env = Some(value),
            _ => {
                let suggestion = search(&key, &ALL_KEYS, true);
                return Err(MountError::UnknownKey {
                    key,
                    field,
                    suggestion,
                });
            }
        }
    }
    validate(m, ro_auto)
}

fn validate(mut m: Mount, ro_auto: bool) -> Result<Mount, MountError> {
    let mount_type = m.mount_type.as_str().to_string();
    let file_info_allowed = matches!(
        m.mount_type,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info_allowed {
        for (key, set) in [
            ("mode", m.mode.is_some()),
            ("uid", m.uid.is_some()),
            ("gid", m.gid.is_some()),
        ] {
            if set {
                return Err(MountError::FileInfo { key, mount_type });
            }
        }
    }
    if ro_auto {
        m.read_only = !matches!(m.mount_type, MountType::Cache | MountType::Tmpfs);
    }
    if m.mount_type == MountType::Secret {
        if !m.from.is_empty() {
            return Err(MountError::SecretFrom);
        }
        if m.cache_sharing.is_some() {
            return Err(MountError::SecretSharing);
        }
        if m.source.is_empty() && m.target.is_empty() && m.cache_id.is_empty() {
            return Err(MountError::SecretTarget);
        }
        if !m.source.is_empty() && !m.cache_id.is_empty() {
            return Err(MountError::SecretSourceAndId);
        }
    }
    if m.cache_sharing.is_some() && m.mount_type != MountType::Cache {
        return Err(MountError::SharingForType { mount_type });
    }
    Ok(m)
}

/// The parse-time check BuildKit makes before expansion: `from=` may not use variables.
pub fn check_mount_from(value: &str) -> Result<(), MountError> {
    for field in csv_split(value)? {
        if let Some((key, v)) = field.split_once('=') {
            if key.eq_ignore_ascii_case("from") {
                if let Some(i) = v.find('$') {
                    if i != v.len() - 1 {
                        return Err(MountError::FromExpansion);
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_mount_defaults_to_read_write() {
        let m =
            parse_mount("type=cache,target=/root/.cache,id=go,sharing=locked,mode=0755").unwrap();
        assert_eq!(m.mount_type, MountType::Cache);
        assert_eq!(
            (m.target.as_str(), m.cache_id.as_str()),
            ("/root/.cache", "go")
        );
        assert_eq!(m.cache_sharing, Some(CacheSharing::Locked));
        assert_eq!(m.mode, Some(0o755));
        assert!(!m.read_only);
    }

    #[test]
    fn bind_mount_defaults_to_read_only() {
        let m = parse_mount("target=/src,from=builder,source=/out").unwrap();
        assert_eq!(m.mount_type, MountType::Bind);
        assert!(m.read_only);
        assert!(!parse_mount("type=bind,target=/x,rw").unwrap().read_only);
    }

    #[test]
    fn tmpfs_secret_and_ssh_mounts() {
        assert_eq!(
            parse_mount("type=tmpfs,target=/t,size=64m")
                .unwrap()
                .size_limit,
            64 << 20
        );
        let s = parse_mount("type=secret,id=aws,env=AWS,required").unwrap();
        assert!(s.required && s.read_only);
        assert_eq!(s.env.as_deref(), Some("AWS"));
        assert_eq!(parse_mount("type=ssh").unwrap().mount_type, MountType::Ssh);
    }

    #[test]
    fn bad_mounts_fail_with_buildkit_texts() {
        let cases = [
            (
                "type=cahce",
                "unsupported mount type \"cahce\" (did you mean cache?)",
            ),
            (
                "type=bind,target=/x,mode=0700",
                "mode not allowed for \"bind\" type mounts",
            ),
            (
                "type=bind,size=1m",
                "unexpected key 'size' for mount type 'bind'",
            ),
            (
                "type=secret",
                "invalid secret mount. one of source, target required",
            ),
            (
                "type=secret,id=a,from=b",
                "secret mount should not have a from",
            ),
            (
                "type=bind,sharing=shared",
                "invalid cache sharing set for bind mount",
            ),
            ("type=cache,sharing=x", "unsupported sharing value \"x\""),
            (
                "targt=/x",
                "unexpected key 'targt' in 'targt=/x' (did you mean target?)",
            ),
            ("bogus", "invalid field 'bogus' must be a key=value pair"),
            ("type=cache,uid=x", "invalid value x for uid"),
            ("ro=maybe", "invalid value for ro: maybe"),
        ];
        for (input, want) in cases {
            assert_eq!(parse_mount(input).unwrap_err().to_string(), want, "{input}");
        }
        assert_eq!(
            check_mount_from("from=$STAGE").unwrap_err().to_string(),
            "'from' doesn't support variable expansion, define alias stage instead"
        );
        assert!(check_mount_from("from=a$").is_ok());
    }

    #[test]
    fn network_and_security_values() {
        assert_eq!(parse_network("none").unwrap(), NetworkMode::None);
        assert_eq!(
            parse_network("bridge").unwrap_err().to_string(),
            "invalid network mode \"bridge\""
        );
        assert_eq!(parse_security("insecure").unwrap(), Security::Insecure);
        assert_eq!(
            parse_security("x").unwrap_err().to_string(),
            "security \"x\" is not valid"
        );
    }

    #[test]
    fn devices_parse_like_buildkit() {
        let d = parse_device("vendor.com/gpu=all,required").unwrap();
        assert_eq!((d.name.as_str(), d.required), ("vendor.com/gpu=all", true));
        let d = parse_device("name=nvidia.com/gpu,required=false").unwrap();
        assert_eq!((d.name.as_str(), d.required), ("nvidia.com/gpu", false));
        assert_eq!(
            parse_device("a,name=b").unwrap_err().to_string(),
            "device name already set to a"
        );
        assert_eq!(
            parse_device("a,nmae=b").unwrap_err().to_string(),
            "unexpected key 'nmae' in 'nmae=b' (did you mean name?)"
        );
    }

    #[test]
    fn csv_quotes_allow_commas() {
        assert_eq!(
            csv_split("a,\"b,c\",\"d\"\"e\"").unwrap(),
            ["a", "b,c", "d\"e"]
        );
        assert!(csv_split("a\"b").is_err());
    }
}
