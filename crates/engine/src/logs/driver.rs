//! Log drivers at create time (moby's `mergeAndVerifyLogConfig` and each driver's
//! `ValidateLogOpt`): the daemon's default driver and options are merged in, the driver is
//! checked, its options are checked with Docker's texts, and the log file the shim writes is
//! chosen.
//!
//! - `json-file`: Docker's format; berth rotates it by default (daemon `log-opts`).
//! - `local`: accepted with Docker's option set and defaults (max-size 20m, max-file 5), but
//!   written in the json-file format rather than Docker's protobuf framing, under
//!   `local-logs/container.log`; `compress` is accepted and not applied. Reading works as
//!   for json-file.
//! - `none`: no log file; `docker logs` answers Docker's
//!   `configured logging driver does not support reading`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_api::container::host_config::LogConfig;

use crate::error::ErrorKind;

/// Options every driver but `none` takes (moby's `ValidateLogOpts` before the driver's own).
const COMMON_OPTS: &[&str] = &["mode", "max-buffer-size"];
const JSON_FILE_OPTS: &[&str] = &[
    "max-file",
    "max-size",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
];
const LOCAL_OPTS: &[&str] = JSON_FILE_OPTS;
/// Drivers Docker ships that berth does not implement.
const DOCKER_ONLY: &[&str] = &[
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "etwlogs",
    "gcplogs",
    "logentries",
];

/// Refused log configurations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogDriverError {
    /// Docker's text for a driver nobody registered.
    #[error("logger: no log driver named '{0}' is registered")]
    Unknown(String),
    #[error("the {0} log driver is not supported by berth (use json-file, local or none)")]
    Unsupported(String),
    #[error("unknown log opt '{key}' for json-file log driver")]
    JsonFileOpt { key: String },
    #[error("unknown log opt '{key}' for log driver local")]
    LocalOpt { key: String },
    #[error("logger: logging mode not supported: {0}")]
    Mode(String),
    #[error("logger: max-buffer-size option is only supported with 'mode=non-blocking'")]
    BufferSize,
    #[error("invalid value for {key}: {value}")]
    Value { key: &'static str, value: String },
    #[error("max-file cannot be less than 1")]
    MaxFile,
}

impl LogDriverError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// Merges the daemon's defaults into `config` (type when empty; options key by key when
/// the container uses the daemon's driver) and validates the result.
pub fn resolve(
    config: &mut LogConfig,
    daemon_driver: &str,
    daemon_opts: &BTreeMap<String, String>,
) -> Result<(), LogDriverError> {
    if config.r#type.is_empty() {
        config.r#type = daemon_driver.to_string();
    }
    let opts = config.config.get_or_insert_with(BTreeMap::new);
    if config.r#type == daemon_driver {
        for (key, value) in daemon_opts {
            opts.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    match config.r#type.as_str() {
        "none" => return Ok(()),
        "json-file" => check_keys(opts, JSON_FILE_OPTS, |key| LogDriverError::JsonFileOpt {
            key,
        })?,
        "local" => {
            check_keys(opts, LOCAL_OPTS, |key| LogDriverError::LocalOpt { key })?;
            // Docker's local driver defaults, applied when nothing set them.
            opts.entry("max-size".to_string())
                .or_insert_with(|| "20m".to_string());
            opts.entry("max-file".to_string())
                .or_insert_with(|| "5".to_string());
        }
        other if DOCKER_ONLY.contains(&other) => {
            return Err(LogDriverError::Unsupported(other.to_string()))
        }
        other => return Err(LogDriverError::Unknown(other.to_string())),
    }
    check_mode(opts)?;
    check_rotation(opts)
}

fn check_keys(
    opts: &BTreeMap<String, String>,
    allowed: &[&str],
    error: impl Fn(String) -> LogDriverError,
) -> Result<(), LogDriverError> {
    for key in opts.keys() {
        if !allowed.contains(&key.as_str()) && !COMMON_OPTS.contains(&key.as_str()) {
            return Err(error(key.clone()));
        }
    }
    Ok(())
}

fn check_mode(opts: &BTreeMap<String, String>) -> Result<(), LogDriverError> {
    let mode = opts.get("mode").map(String::as_str).unwrap_or("");
    if !matches!(mode, "" | "blocking" | "non-blocking") {
        return Err(LogDriverError::Mode(mode.to_string()));
    }
    if opts.contains_key("max-buffer-size") && mode != "non-blocking" {
        return Err(LogDriverError::BufferSize);
    }
    Ok(())
}

fn check_rotation(opts: &BTreeMap<String, String>) -> Result<(), LogDriverError> {
    if let Some(size) = opts.get("max-size") {
        if crate::container::parse_log_size(size).is_none() {
            return Err(LogDriverError::Value {
                key: "max-size",
                value: size.clone(),
            });
        }
    }
    if let Some(files) = opts.get("max-file") {
        match files.parse::<i64>() {
            Ok(n) if n >= 1 => {}
            Ok(_) => return Err(LogDriverError::MaxFile),
            Err(_) => {
                return Err(LogDriverError::Value {
                    key: "max-file",
                    value: files.clone(),
                })
            }
        }
    }
    Ok(())
}

/// The file the shim writes for `driver` in container directory `dir` (creating what it
/// needs), or `None` for `none`.
pub fn prepare_log_path(dir: &Path, id: &str, driver: &str) -> std::io::Result<Option<PathBuf>> {
    match driver {
        "json-file" => Ok(Some(dir.join(format!("{id}-json.log")))),
        "local" => {
            let logs = dir.join("local-logs");
            std::fs::create_dir_all(&logs)?;
            Ok(Some(logs.join("container.log")))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_config(driver: &str, opts: &[(&str, &str)]) -> LogConfig {
        LogConfig {
            r#type: driver.to_string(),
            config: (!opts.is_empty()).then(|| {
                opts.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
        }
    }

    fn daemon_opts() -> BTreeMap<String, String> {
        [("max-size", "10m"), ("max-file", "3")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_daemon_default_fills_type_and_options_key_by_key() {
        let mut config = log_config("", &[("max-file", "7")]);
        resolve(&mut config, "json-file", &daemon_opts()).expect("valid");
        assert_eq!(config.r#type, "json-file");
        let opts = config.config.expect("opts");
        assert_eq!(opts["max-file"], "7", "the container's own option wins");
        assert_eq!(opts["max-size"], "10m");
    }

    #[test]
    fn local_gets_dockers_defaults_not_the_json_file_ones() {
        let mut config = log_config("local", &[]);
        resolve(&mut config, "json-file", &daemon_opts()).expect("valid");
        let opts = config.config.expect("opts");
        assert_eq!(opts["max-size"], "20m");
        assert_eq!(opts["max-file"], "5");
    }

    #[test]
    fn options_are_refused_with_dockers_texts() {
        let cases = [
            (
                log_config("json-file", &[("x", "1")]),
                "unknown log opt 'x' for json-file log driver",
            ),
            (
                log_config("local", &[("tagz", "1")]),
                "unknown log opt 'tagz' for log driver local",
            ),
            (
                log_config("nosuch", &[]),
                "logger: no log driver named 'nosuch' is registered",
            ),
            (
                log_config("json-file", &[("mode", "fast")]),
                "logger: logging mode not supported: fast",
            ),
            (
                log_config("json-file", &[("max-buffer-size", "1m")]),
                "logger: max-buffer-size option is only supported with 'mode=non-blocking'",
            ),
            (
                log_config("json-file", &[("max-file", "0")]),
                "max-file cannot be less than 1",
            ),
            (
                log_config("local", &[("max-size", "lots")]),
                "invalid value for max-size: lots",
            ),
        ];
        for (mut config, text) in cases {
            let error = resolve(&mut config, "json-file", &BTreeMap::new()).expect_err(text);
            assert_eq!(error.to_string(), text);
        }
        let mut syslog = log_config("syslog", &[]);
        assert!(matches!(
            resolve(&mut syslog, "json-file", &BTreeMap::new()),
            Err(LogDriverError::Unsupported(_))
        ));
    }

    #[test]
    fn none_takes_any_option_and_writes_no_file() {
        let mut config = log_config("none", &[("whatever", "1")]);
        resolve(&mut config, "json-file", &daemon_opts()).expect("valid");
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            prepare_log_path(dir.path(), "abc", "none").expect("path"),
            None
        );
        let local = prepare_log_path(dir.path(), "abc", "local")
            .expect("path")
            .expect("a file");
        assert!(local.parent().expect("dir").is_dir());
        assert_eq!(
            prepare_log_path(dir.path(), "abc", "json-file").expect("path"),
            Some(dir.path().join("abc-json.log"))
        );
    }
}
