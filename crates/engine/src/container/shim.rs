//! Launching a container's berth-shim and talking to it (blocking: call from
//! `spawn_blocking`). The shim's command line is its contract (see bin/berth-shim).

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_shim::client::{Client, ClientError};

use super::{ContainerError, ContainerRecord};
use crate::config::EngineConfig;

/// Everything the shim command line needs.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub shim_binary: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub runtime: PathBuf,
    pub runtime_root: PathBuf,
    pub socket: PathBuf,
    pub log_path: Option<PathBuf>,
    pub log_max_size: u64,
    pub log_max_file: u64,
    pub stdin: bool,
}

impl LaunchSpec {
    /// The launch of `record` under `config`.
    pub fn of(
        config: &EngineConfig,
        record: &ContainerRecord,
    ) -> Result<LaunchSpec, ContainerError> {
        let runtime = config
            .runtimes
            .get(&record.runtime)
            .cloned()
            .ok_or_else(|| {
                ContainerError::InvalidArgument(format!(
                    "unknown or invalid runtime name: {}",
                    record.runtime
                ))
            })?;
        let log_opts = record
            .host_config
            .log_config
            .config
            .clone()
            .unwrap_or_default();
        let log_max_size = match log_opts.get("max-size") {
            Some(text) => parse_size(text).ok_or_else(|| {
                ContainerError::InvalidArgument(format!("invalid max-size: {text}"))
            })?,
            None => 0,
        };
        let log_max_file = match log_opts.get("max-file") {
            Some(text) => text.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ContainerError::InvalidArgument(format!("invalid max-file: {text}"))
            })?,
            None => 1,
        };
        Ok(LaunchSpec {
            shim_binary: config.shim_binary.clone(),
            id: record.id.clone(),
            bundle: config.container_dir(&record.id),
            runtime,
            runtime_root: config.runtime_root(&record.runtime),
            socket: config.shim_socket(&record.id),
            log_path: record.log_path.clone(),
            log_max_size,
            log_max_file,
            stdin: record.config.open_stdin,
        })
    }
}

/// go-units' `RAMInBytes`: `10m` = 10 MiB, `512k`, `1g`, plain bytes; optional `b`/`ib`.
pub fn parse_size(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let value: f64 = number.parse().ok()?;
    let unit = unit.trim_end_matches("ib").trim_end_matches('b');
    let multiplier: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    };
    Some((value * multiplier as f64) as u64)
}

/// Starts the shim; it returns once `runtime create` worked (or failed, with its text).
pub fn launch(spec: &LaunchSpec) -> Result<(), ContainerError> {
    std::fs::create_dir_all(&spec.runtime_root)
        .map_err(|e| ContainerError::io(format!("creating {}", spec.runtime_root.display()), e))?;
    let mut command = Command::new(&spec.shim_binary);
    command
        .arg("--id")
        .arg(&spec.id)
        .arg("--bundle")
        .arg(&spec.bundle)
        .arg("--runtime")
        .arg(&spec.runtime)
        .arg("--runtime-root")
        .arg(&spec.runtime_root)
        .arg("--socket")
        .arg(&spec.socket);
    if let Some(log) = &spec.log_path {
        command
            .arg("--log-path")
            .arg(log)
            .arg("--log-max-size")
            .arg(spec.log_max_size.to_string())
            .arg("--log-max-file")
            .arg(spec.log_max_file.to_string());
    }
    if spec.stdin {
        command.arg("--stdin");
    }
    command.stdin(std::process::Stdio::null());
    let output = command
        .output()
        .map_err(|e| ContainerError::io(format!("running {}", spec.shim_binary.display()), e))?;
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stderr);
    let text = text.trim().trim_start_matches("berth-shim: ").to_string();
    Err(ContainerError::CreateTask(text))
}

/// A client of the container's shim.
pub fn connect(socket: &Path) -> Result<Client, ClientError> {
    Client::connect(socket).map(|(client, _)| client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sizes_parse_like_go_units_ram_in_bytes() {
        assert_eq!(parse_size("10m"), Some(10 * 1024 * 1024));
        assert_eq!(parse_size("512k"), Some(512 * 1024));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("2MB"), Some(2 << 20));
        assert_eq!(parse_size("1.5k"), Some(1536));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("10q"), None);
    }
}
