//! `ps [--format json] ID [ps options]`: the container's pids, as a JSON array or as the
//! host's `ps` output filtered to them (runc runs `ps -ef` by default).

use std::process::Command;

use crate::error::{IoContext, RuntimeError};

use super::Context;

/// The pids in the container's cgroup.
pub fn pids(ctx: &Context, id: &str) -> Result<Vec<i32>, RuntimeError> {
    let state = ctx.load(id)?;
    let mut pids = ctx
        .cgroup(&state)?
        .pids()
        .map_err(|e| RuntimeError::Cgroup(e.to_string()))?;
    pids.sort_unstable();
    Ok(pids)
}

/// Runs `ps` with `args` (default `-ef`) and keeps the header and the container's rows.
pub fn table(ctx: &Context, id: &str, args: &[String]) -> Result<String, RuntimeError> {
    let pids = pids(ctx, id)?;
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let out = Command::new("ps").args(&args).output().context("run ps")?;
    if !out.status.success() {
        return Err(RuntimeError::InvalidArgument {
            flag: "ps arguments".into(),
            value: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    filter_ps(&String::from_utf8_lossy(&out.stdout), &pids)
}

/// Keeps the header and rows whose PID column is one of `pids`.
pub fn filter_ps(output: &str, pids: &[i32]) -> Result<String, RuntimeError> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or("");
    let column = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| RuntimeError::InvalidArgument {
            flag: "ps output".into(),
            value: "couldn't find PID field in ps output".into(),
        })?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_keeps_header_and_matching_pid_rows() {
        let ps = "UID   PID  PPID  C STIME TTY   TIME CMD\nroot    1     0  0 04:00 ?  00:00 init\nroot  4242    1  0 04:00 ?  00:00 sleep 100\n";
        let out = filter_ps(ps, &[4242]).expect("filter");
        assert_eq!(out, "UID   PID  PPID  C STIME TTY   TIME CMD\nroot  4242    1  0 04:00 ?  00:00 sleep 100\n");
        assert!(filter_ps("NOPE\n", &[1]).is_err());
    }
}
