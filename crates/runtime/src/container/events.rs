//! `events [--stats] [--interval]`: runc's event stream: one stats event, or stats every
//! interval plus "oom" events until the container stops.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::error::RuntimeError;
use crate::state::Status;

use super::Context;

/// runc's event envelope.
#[derive(Serialize)]
pub struct Event<T: Serialize> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
}

pub fn events(
    ctx: &Context,
    id: &str,
    stats_once: bool,
    interval: Duration,
    out: &mut dyn Write,
) -> Result<(), RuntimeError> {
    let state = ctx.load(id)?;
    if ctx.status(&state) == Status::Stopped {
        return Err(RuntimeError::NotRunning);
    }
    let manager = ctx.cgroup(&state)?;
    let emit = |out: &mut dyn Write, line: String| {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let stats_line = || -> Result<String, RuntimeError> {
        let stats = manager
            .stats()
            .map_err(|e| RuntimeError::Cgroup(e.to_string()))?;
        serde_json::to_string(&Event {
            kind: "stats",
            id: id.to_string(),
            data: Some(stats),
        })
        .map_err(|e| RuntimeError::io("encode stats", std::io::Error::other(e)))
    };
    if stats_once {
        emit(out, stats_line()?);
        return Ok(());
    }
    let mut ooms = manager.oom_kill_count().unwrap_or(0);
    let tick = Duration::from_millis(100).min(interval);
    let mut waited = interval;
    loop {
        if ctx.status(&state) == Status::Stopped {
            return Ok(());
        }
        let now = manager.oom_kill_count().unwrap_or(ooms);
        if now > ooms {
            ooms = now;
            let e: Event<()> = Event {
                kind: "oom",
                id: id.to_string(),
                data: None,
            };
            emit(out, serde_json::to_string(&e).unwrap_or_default());
        }
        if waited >= interval {
            waited = Duration::ZERO;
            match stats_line() {
                Ok(line) => emit(out, line),
                Err(_) if ctx.status(&state) == Status::Stopped => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        std::thread::sleep(tick);
        waited += tick;
    }
}
