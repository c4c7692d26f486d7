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
    #[error("unsupported spec version {version:?}: berth-runtime supports ociVersion 1.x")]
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
pub fn parse(bytes: &[u8]) -> Result<Spec, SpecError> {
    let spec: Spec = serde_json::from_slice(bytes).map_err(|e| SpecError::Parse(e.to_string()))?;
    validate(&spec)?;
    Ok(spec)
}

fn validate(spec: &Spec) -> Result<(), SpecError> {
    let version = spec.version();
    if !version.starts_with("1.") {
        return Err(SpecError::Version {
            version: version.clone(),
        });
    }
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
