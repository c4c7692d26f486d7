//! Loading and validating a bundle's config.json: ociVersion 1.x, a process, a root
//! filesystem that exists, with errors that say which field is wrong.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("JSON specification file config.json not found in bundle {bundle}")]
    Missing { bundle: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config.json is not a valid runtime spec: {0}")]
    Parse(String),
    #[error(
        "unsupported spec version {version:?}: berth-runtime supports ociVersion 1.x (SemVer major 1)"
    )]
    Version { version: String },
    #[error("config.json has no {0}")]
    MissingField(&'static str),
    #[error("rootfs ({path}) does not exist")]
    NoRootfs { path: PathBuf },
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
}

/// A validated bundle: its absolute path, the spec and the absolute rootfs path.
#[derive(Debug)]
pub struct Bundle {
    pub path: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

/// Reads `<bundle>/config.json` and checks what the runtime relies on.
pub fn load(bundle: &Path) -> Result<Bundle, SpecError> {
    let path = std::path::absolute(bundle).map_err(|source| SpecError::Read {
        path: bundle.to_path_buf(),
        source,
    })?;
    let config = path.join("config.json");
    let bytes = match std::fs::read(&config) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SpecError::Missing { bundle: path })
        }
        Err(source) => {
            return Err(SpecError::Read {
                path: config,
                source,
            })
        }
    };
    let spec = parse(&bytes)?;
    let root = spec
        .root()
        .as_ref()
        .ok_or(SpecError::MissingField("root"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        path.join(root.path())
    };
    if !rootfs.is_dir() {
        return Err(SpecError::NoRootfs { path: rootfs });
    }
    Ok(Bundle { path, spec, rootfs })
}

/// Parses and validates config.json bytes (no filesystem access).
///
/// Unknown fields are ignored, as runc (and the runtime-spec's extensibility rule) does:
/// engines add fields newer than our oci-spec, and refusing them would break them. Only
/// the fields we act on are checked. Unknown capability names are dropped with a warning,
/// as runc does (oci-spec alone would refuse the whole file).
pub fn parse(bytes: &[u8]) -> Result<Spec, SpecError> {
    let mut raw: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| SpecError::Parse(e.to_string()))?;
    // The version first: a 2.x document may be shaped differently, say so rather than
    // report a field error.
    if let Some(version) = raw.get("ociVersion").and_then(|v| v.as_str()) {
        check_version(version)?;
    }
    let unknown = crate::capabilities::strip_unknown(&mut raw);
    if !unknown.is_empty() {
        crate::logging::warn(&format!(
            "ignoring unknown or unavailable capabilities: {unknown:?}"
        ));
    }
    let spec: Spec = serde_json::from_value(raw).map_err(|e| SpecError::Parse(e.to_string()))?;
    validate(&spec)?;
    Ok(spec)
}

/// ociVersion must be SemVer with major version 1; pre-release and build suffixes are
/// allowed. Minor versions only add fields (runtime-spec's SemVer promise), and unknown
/// fields are ignored as runc does, so a newer 1.x bundle (runtime-tools writes 1.3.0)
/// still runs; a different major version is refused.
fn check_version(version: &str) -> Result<(), SpecError> {
    let bad = || SpecError::Version {
        version: version.to_string(),
    };
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<u64> = core
        .split('.')
        .map(|p| p.parse::<u64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [1, _minor, _patch] => Ok(()),
        _ => Err(bad()),
    }
}

fn validate(spec: &Spec) -> Result<(), SpecError> {
    check_version(spec.version())?;
    let process = spec
        .process()
        .as_ref()
        .ok_or(SpecError::MissingField("process"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(SpecError::Invalid {
            field: "process.args".into(),
            reason: "args must not be empty".into(),
        });
    }
    if !process.cwd().is_absolute() {
        return Err(SpecError::Invalid {
            field: "process.cwd".into(),
            reason: format!("cwd {:?} is not an absolute path", process.cwd()),
        });
    }
    if let Some(mounts) = spec.mounts() {
        for m in mounts {
            if !m.destination().is_absolute() {
                return Err(SpecError::Invalid {
                    field: "mounts".into(),
                    reason: format!("mount destination {:?} is not absolute", m.destination()),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}}}"#;

    #[test]
    fn accepts_a_minimal_1x_spec() {
        let spec = parse(MINIMAL.as_bytes()).expect("valid spec");
        assert_eq!(spec.version(), "1.0.2");
    }

    #[test]
    fn refuses_wrong_oci_version() {
        let bad = MINIMAL.replace("1.0.2", "2.0.0");
        let err = parse(bad.as_bytes()).expect_err("version 2 refused");
        assert!(err
            .to_string()
            .contains("unsupported spec version \"2.0.0\""));
    }

    #[test]
    fn accepts_major_version_1_and_refuses_other_versions() {
        for ok in [
            "1.0.0",
            "1.0.2-dev",
            "1.1.0",
            "1.2.0",
            "1.2.1",
            "1.2.0-rc.1+build",
            "1.3.0",
        ] {
            let text = MINIMAL.replace("1.0.2", ok);
            assert!(parse(text.as_bytes()).is_ok(), "{ok}");
        }
        for bad in ["2.0.0", "0.9.0", "1.0", "1", "", "one", "1.x.0"] {
            let text = MINIMAL.replace("1.0.2", bad);
            let err = parse(text.as_bytes()).expect_err(bad);
            assert!(matches!(err, SpecError::Version { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_capabilities_are_dropped_and_unknown_fields_ignored() {
        let text = MINIMAL.replace(
            "\"cwd\":\"/\"",
            "\"cwd\":\"/\",\"capabilities\":{\"bounding\":[\"CAP_KILL\",\"CAP_BOGUS\"]},\"noSuchField\":1",
        );
        let spec = parse(text.as_bytes()).expect("parses");
        let caps = spec
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().as_ref())
            .and_then(|c| c.bounding().clone())
            .expect("bounding");
        assert_eq!(caps.len(), 1);
    }

    #[test]
    fn refuses_malformed_json_with_a_readable_error() {
        let err = parse(b"{\"ociVersion\": ").expect_err("malformed");
        assert!(err
            .to_string()
            .starts_with("config.json is not a valid runtime spec"));
    }

    #[test]
    fn refuses_relative_cwd_and_empty_args() {
        let bad = MINIMAL.replace("\"cwd\":\"/\"", "\"cwd\":\"tmp\"");
        assert!(parse(bad.as_bytes()).is_err());
        let bad = MINIMAL.replace("[\"sh\"]", "[]");
        assert!(parse(bad.as_bytes()).is_err());
    }

    #[test]
    fn load_reports_missing_rootfs_and_missing_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = load(dir.path()).expect_err("no config");
        assert!(matches!(err, SpecError::Missing { .. }));
        std::fs::write(dir.path().join("config.json"), MINIMAL).expect("write");
        let err = load(dir.path()).expect_err("no rootfs");
        assert!(err.to_string().contains("rootfs"), "{err}");
        std::fs::create_dir(dir.path().join("rootfs")).expect("mkdir");
        let bundle = load(dir.path()).expect("loads");
        assert_eq!(bundle.rootfs, dir.path().join("rootfs"));
    }
}
