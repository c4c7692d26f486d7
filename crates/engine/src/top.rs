//! `docker top`: the host's `ps` (default `-ef`) limited to the container's processes, read
//! from its cgroup's `cgroup.procs` (moby's `daemon/top_unix.go`).

use std::path::Path;
use std::sync::Arc;

use berth_api::container::ops::ContainerTopResponse;

use crate::container::{ContainerError, Status};
use crate::error::ErrorKind;
use crate::stats::{locate, CgroupDirs};
use crate::Engine;

/// Failures of top, with Docker's texts.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("Container {0} is restarting, wait until the container is running")]
    Restarting(String),
    #[error("specifying \"{0}\" is not allowed")]
    PsArgs(String),
    #[error("Couldn't find PID field in ps output")]
    NoPidColumn,
    #[error("Unexpected pid '{0}'")]
    BadPid(String),
    #[error("ps: {0}")]
    Ps(String),
    #[error("the top task was cancelled")]
    Cancelled,
}

impl TopError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            TopError::Container(e) => e.kind(),
            TopError::NotRunning(_) | TopError::Restarting(_) => ErrorKind::Conflict,
            TopError::PsArgs(_) => ErrorKind::InvalidArgument,
            TopError::NoPidColumn | TopError::BadPid(_) | TopError::Ps(_) | TopError::Cancelled => {
                ErrorKind::Internal
            }
        }
    }
}

/// Refuses `-o x=PID...` style renames of the PID column other than `pid=`, as Docker.
pub fn validate_ps_args(args: &str) -> Result<(), TopError> {
    let words: Vec<&str> = args.split_whitespace().collect();
    for (i, word) in words.iter().enumerate() {
        // Docker's pattern `\s+([^\s]*)=\s*(PID[^\s]*)`: a key ending in `=` followed by a
        // PID-like header, in the same word or the next one.
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        if i == 0 && !args.starts_with(char::is_whitespace) {
            continue;
        }
        let header = if value.is_empty() {
            words.get(i + 1).copied().unwrap_or("")
        } else {
            value
        };
        if header.starts_with("PID") && key != "pid" {
            return Err(TopError::PsArgs(format!("{key}={header}")));
        }
    }
    Ok(())
}

/// Splits `ps` output into titles and the rows of `pids`; a thread line (`-` in the PID
/// column, from `-L`/`m`) belongs to the process above it. The last column keeps its spaces.
pub fn parse_ps_output(output: &str, pids: &[u32]) -> Result<ContainerTopResponse, TopError> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    let pid_index = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or(TopError::NoPidColumn)?;
    let mut processes = Vec::new();
    let mut previous_contained = false;
    for line in lines {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let Some(pid_field) = fields.get(pid_index) else {
            continue;
        };
        let contained = if *pid_field == "-" {
            previous_contained
        } else {
            let pid: u32 = pid_field
                .parse()
                .map_err(|_| TopError::BadPid(pid_field.to_string()))?;
            previous_contained = pids.contains(&pid);
            previous_contained
        };
        if contained {
            let split = titles.len().saturating_sub(1).min(fields.len());
            let mut row: Vec<String> = fields[..split].iter().map(|f| f.to_string()).collect();
            row.push(fields[split..].join(" "));
            processes.push(row);
        }
    }
    Ok(ContainerTopResponse {
        titles: Some(titles),
        processes: Some(processes),
    })
}

/// Pids of the processes in the container's cgroup (`cgroup.procs` of the pids or memory
/// controller on v1, of the unified cgroup on v2).
pub fn cgroup_pids(dirs: &CgroupDirs) -> Vec<u32> {
    let candidates: Vec<std::path::PathBuf> = match dirs {
        CgroupDirs::V2(dir) => vec![dir.clone()],
        CgroupDirs::V1(map) => ["pids", "memory", "cpu"]
            .iter()
            .filter_map(|c| map.get(*c).cloned())
            .collect(),
    };
    for dir in candidates {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            let pids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if !pids.is_empty() {
                return pids;
            }
        }
    }
    Vec::new()
}

/// `GET /containers/{id}/top?ps_args=`.
pub async fn top(
    engine: &Arc<Engine>,
    name: &str,
    ps_args: &str,
) -> Result<ContainerTopResponse, TopError> {
    let ps_args = if ps_args.is_empty() { "-ef" } else { ps_args }.to_string();
    validate_ps_args(&ps_args)?;
    let container = engine.containers.get(name)?;
    let record = container.record();
    match record.state.status {
        Status::Running | Status::Paused => {}
        Status::Restarting => return Err(TopError::Restarting(record.id)),
        _ => return Err(TopError::NotRunning(record.id)),
    }
    let container_dir = engine.config.container_dir(&record.id);
    let pid = record.state.pid;
    tokio::task::spawn_blocking(move || {
        let spec: serde_json::Value = std::fs::read(container_dir.join("config.json"))
            .ok()
            .and_then(|text| serde_json::from_slice(&text).ok())
            .unwrap_or_default();
        let path = spec["linux"]["cgroupsPath"].as_str().unwrap_or("");
        let dirs = locate(Path::new("/sys/fs/cgroup"), Path::new("/proc"), path, pid);
        let mut pids = cgroup_pids(&dirs);
        if pids.is_empty() && pid > 0 {
            pids.push(pid);
        }
        let output = run_ps(&ps_args, &pids)?;
        parse_ps_output(&output, &pids)
    })
    .await
    .map_err(|_| TopError::Cancelled)?
}

/// `ps ARGS -qPIDS`, and `ps ARGS` when ps refuses `-q` with those options (as Docker).
fn run_ps(args: &str, pids: &[u32]) -> Result<String, TopError> {
    let args: Vec<&str> = args.split(' ').collect();
    let quick = format!(
        "-q{}",
        pids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let first = std::process::Command::new("ps")
        .args(&args)
        .arg(&quick)
        .output();
    if let Ok(output) = &first {
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
    }
    let output = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| TopError::Ps(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr.lines().next().unwrap_or("").to_string();
        return Err(TopError::Ps(if line.is_empty() {
            format!("exit status {}", output.status.code().unwrap_or(-1))
        } else {
            line
        }));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: &str = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
root           1       0  0 07:00 ?        00:00:01 /sbin/init\n\
root         100       1  0 07:01 ?        00:00:00 sleep 1000 --long arg\n\
root         101     100  0 07:01 ?        00:00:00 sh -c x\n";

    #[test]
    fn only_the_containers_pids_are_kept_and_the_command_keeps_its_spaces() {
        let top = parse_ps_output(PS, &[100]).expect("parse");
        assert_eq!(
            top.titles.as_deref().map(<[String]>::len),
            Some(8),
            "{:?}",
            top.titles
        );
        let rows = top.processes.expect("rows");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][1], "100");
        assert_eq!(rows[0][7], "sleep 1000 --long arg");
    }

    #[test]
    fn thread_lines_follow_their_process() {
        let ps = "PID TID CMD\n100 - sleep\n- 100 -\n- 102 -\n200 - other\n- 201 -\n";
        let rows = parse_ps_output(ps, &[100])
            .expect("parse")
            .processes
            .expect("rows");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2], vec!["-", "102", "-"]);
    }

    #[test]
    fn output_without_a_pid_column_is_refused() {
        assert!(matches!(
            parse_ps_output("USER CMD\nroot x\n", &[1]),
            Err(TopError::NoPidColumn)
        ));
        assert!(matches!(
            parse_ps_output("PID CMD\nabc x\n", &[1]),
            Err(TopError::BadPid(_))
        ));
    }

    #[test]
    fn renaming_the_pid_column_is_refused_like_docker() {
        assert!(validate_ps_args("-ef").is_ok());
        assert!(validate_ps_args("-o pid=PID,comm").is_ok());
        let err = validate_ps_args("-o user= PID").expect_err("renamed");
        assert_eq!(err.to_string(), "specifying \"user=PID\" is not allowed");
        assert!(validate_ps_args("aux -o foo=PIDX").is_err());
    }

    #[test]
    fn cgroup_procs_give_the_pids() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("cgroup.procs"), "5\n7\n").expect("write");
        assert_eq!(
            cgroup_pids(&CgroupDirs::V2(dir.path().to_path_buf())),
            vec![5, 7]
        );
    }

    #[test]
    fn ps_runs_on_the_host_and_finds_this_process() {
        let me = std::process::id();
        let output = run_ps("-ef", &[me]).expect("ps");
        let top = parse_ps_output(&output, &[me]).expect("parse");
        let rows = top.processes.expect("rows");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][1], me.to_string());
    }
}
