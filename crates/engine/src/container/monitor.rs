//! One monitor per running container: waits for the exit through the shim, records it,
//! publishes `die`, then applies the restart policy (Docker's restart manager: no, always,
//! unless-stopped, on-failure[:N], backoff from 100 ms doubling, reset after 10 s up) or
//! `--rm`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use berth_api::container::RestartPolicy;
use berth_shim::protocol::ExitStatus;

use super::{remove, shim, start};
use super::{Container, Inner, Status};
use crate::stats::CgroupDirs;

/// Docker's first restart delay.
const BACKOFF_START: Duration = Duration::from_millis(100);
/// Docker's largest restart delay.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A run at least this long resets the backoff.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);

/// Starts the monitor of the current run of `container`.
pub(super) fn spawn(inner: Arc<Inner>, container: Arc<Container>, run: u64) {
    let socket = inner.config.shim_socket(&container.id);
    let memory_cgroup = memory_cgroup(
        &inner.config.container_dir(&container.id),
        container.record().state.pid,
    );
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A plain thread rather than spawn_blocking: a wait may last for days and must not keep
    // the runtime from shutting down.
    let spawned = std::thread::Builder::new()
        .name("berth-monitor".into())
        .stack_size(128 * 1024)
        .spawn(move || {
            // The cgroup outlives the exit until berthd deletes the shim, so the kernel's
            // OOM-kill counter can be compared across the run (Docker gets the same fact
            // from containerd's TaskOOM event).
            let kills_before = memory_cgroup.as_deref().and_then(oom_kills);
            let exit = wait_for_exit(&socket);
            let kills_after = memory_cgroup.as_deref().and_then(oom_kills);
            let oom = kills_after.unwrap_or(0) > kills_before.unwrap_or(0);
            let _ = tx.send((exit, oom));
        });
    if spawned.is_err() {
        return;
    }
    tokio::spawn(async move {
        if let Ok((exit, oom)) = rx.await {
            if oom {
                record_oom(&inner, &container);
            }
            on_exit(&inner, &container, exit, run).await;
        }
    });
}

/// The memory cgroup directory of the container's current run (from its bundle's
/// `cgroupsPath`, else the init's own cgroup).
fn memory_cgroup(container_dir: &Path, pid: u32) -> Option<PathBuf> {
    let spec: serde_json::Value = std::fs::read(container_dir.join("config.json"))
        .ok()
        .and_then(|text| serde_json::from_slice(&text).ok())?;
    let path = spec["linux"]["cgroupsPath"].as_str().unwrap_or("");
    match crate::stats::locate(Path::new("/sys/fs/cgroup"), Path::new("/proc"), path, pid) {
        CgroupDirs::V2(dir) => Some(dir),
        CgroupDirs::V1(mut dirs) => dirs.remove("memory"),
    }
}

/// How many processes the kernel's OOM killer killed in a memory cgroup: `oom_kill` of
/// `memory.events` (v2) or of `memory.oom_control` (v1, Linux 4.13+).
pub(crate) fn oom_kills(dir: &Path) -> Option<u64> {
    ["memory.events", "memory.oom_control"]
        .iter()
        .find_map(|file| std::fs::read_to_string(dir.join(file)).ok())
        .and_then(|text| parse_oom_kills(&text))
}

fn parse_oom_kills(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

/// `State.OOMKilled` and the `oom` event, before the exit is recorded (Docker's order).
fn record_oom(inner: &Inner, container: &Container) {
    container.update(|record| record.state.oom_killed = true);
    let _ = inner.persist(container);
    inner.publish(container, "oom", BTreeMap::new());
}

/// The exit of the init: from the shim, else from its durable record, else 255 (the shim
/// vanished without a record, as containerd reports a lost task).
fn wait_for_exit(socket: &std::path::Path) -> ExitStatus {
    if let Ok(client) = shim::connect(socket) {
        if let Ok(exit) = client.wait(None) {
            return exit;
        }
    }
    read_exit_record(socket).unwrap_or(ExitStatus {
        code: 255,
        exited_at_unix_nanos: now_nanos(),
    })
}

/// The shim's durable exit record, if it wrote one.
pub(super) fn read_exit_record(socket: &std::path::Path) -> Option<ExitStatus> {
    let bytes = std::fs::read(berth_shim::supervisor::exit_record_path(socket)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn nanos_text(nanos: u64) -> String {
    berth_api::time::format_rfc3339_nano(
        (nanos / 1_000_000_000) as i64,
        (nanos % 1_000_000_000) as u32,
    )
}

/// Records an exit: state, persistence, waiters, `die`.
pub(super) fn record_exit(inner: &Inner, container: &Container, exit: ExitStatus) -> Duration {
    let finished_at = nanos_text(exit.exited_at_unix_nanos);
    let started_at = container.update(|record| {
        if record.state.status != Status::Removing {
            record.state.status = Status::Exited;
        }
        record.state.exit_code = exit.code;
        record.state.pid = 0;
        record.state.finished_at = finished_at;
        record.state.started_at.clone()
    });
    let ran_for = berth_api::time::parse_rfc3339(&started_at)
        .map(|(secs, nanos)| {
            let started = secs as i128 * 1_000_000_000 + i128::from(nanos);
            let ran = i128::from(exit.exited_at_unix_nanos) - started;
            Duration::from_nanos(ran.clamp(0, i128::from(u64::MAX)) as u64)
        })
        .unwrap_or_default();
    // An `--rm` container's record is deleted right after this exit (a restored one too), so
    // its exit status is not worth an fsync on the path the CLI's wait takes.
    if !container.record().host_config.auto_remove {
        let _ = inner.persist(container);
    }
    container.lifecycle.send_modify(|l| {
        l.exits += 1;
        l.exit_code = exit.code;
        l.running = false;
    });
    let mut extra = BTreeMap::new();
    extra.insert("exitCode".to_string(), exit.code.to_string());
    extra.insert("execDuration".to_string(), ran_for.as_secs().to_string());
    inner.publish(container, "die", extra);
    ran_for
}

async fn on_exit(inner: &Arc<Inner>, container: &Arc<Container>, exit: ExitStatus, run: u64) {
    let ran_for = record_exit(inner, container, exit);
    if inner.is_shutting_down() {
        return;
    }
    let op = container.op.lock().await;
    // A verb holding the lock meanwhile (restart, rm) may have handled this exit already.
    if !inner.holds(container) || container.run.load(Ordering::SeqCst) != run {
        return;
    }
    let record = container.record();
    if record.host_config.auto_remove && record.state.status != Status::Removing {
        // `--rm` (never restarted): the removal deletes the shim while the layer goes.
        let _ = remove::remove_locked(inner, container, false).await;
        return;
    }
    start::cleanup_after_exit(inner, container).await;
    if record.state.status == Status::Removing {
        return;
    }
    let restart = should_restart(
        &record.host_config.restart_policy,
        exit.code,
        record.state.has_been_manually_stopped,
        record.state.restart_count,
    );
    if !restart {
        if record.host_config.auto_remove {
            let _ = remove::remove_locked(inner, container, false).await;
        }
        return;
    }
    let delay = next_backoff(container, ran_for);
    container.update(|record| record.state.status = Status::Restarting);
    let _ = inner.persist(container);
    drop(op);
    tokio::time::sleep(delay).await;
    let _op = container.op.lock().await;
    let record = container.record();
    if !inner.holds(container)
        || container.run.load(Ordering::SeqCst) != run
        || record.state.status != Status::Restarting
        || record.state.has_been_manually_stopped
        || inner.is_shutting_down()
    {
        if record.state.status == Status::Restarting {
            container.update(|record| record.state.status = Status::Exited);
            let _ = inner.persist(container);
        }
        return;
    }
    container.update(|record| record.state.restart_count += 1);
    // A failed restart leaves the container exited with the error recorded.
    let _ = start::start_locked(inner, container).await;
}

/// Docker's `RestartManager.ShouldRestart` (without the daemon-start case).
pub fn should_restart(
    policy: &RestartPolicy,
    exit_code: i32,
    manually_stopped: bool,
    restart_count: u32,
) -> bool {
    if manually_stopped {
        return false;
    }
    match policy.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            exit_code != 0
                && (policy.maximum_retry_count <= 0
                    || i64::from(restart_count) < policy.maximum_retry_count)
        }
        _ => false,
    }
}

/// 100 ms, doubling up to a minute; back to 100 ms after a run of 10 s or more.
fn next_backoff(container: &Container, ran_for: Duration) -> Duration {
    let mut backoff = match container.backoff.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    *backoff = if ran_for >= BACKOFF_RESET_AFTER || backoff.is_zero() {
        BACKOFF_START
    } else {
        (*backoff * 2).min(BACKOFF_MAX)
    };
    *backoff
}

impl Inner {
    /// Whether `container` is still one of ours (not removed meanwhile).
    pub(super) fn holds(&self, container: &Container) -> bool {
        super::read_lock(&self.containers)
            .get(&container.id)
            .is_some_and(|held| std::ptr::eq(held.as_ref(), container))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.to_string(),
            maximum_retry_count: max,
        }
    }

    #[test]
    fn restart_policies_follow_dockers_restart_manager() {
        assert!(!should_restart(&policy("", 0), 1, false, 0));
        assert!(!should_restart(&policy("no", 0), 1, false, 0));
        assert!(should_restart(&policy("always", 0), 0, false, 7));
        assert!(should_restart(&policy("unless-stopped", 0), 0, false, 0));
        assert!(
            !should_restart(&policy("always", 0), 0, true, 0),
            "manual stop"
        );
        assert!(
            !should_restart(&policy("on-failure", 0), 0, false, 0),
            "success"
        );
        assert!(should_restart(&policy("on-failure", 0), 3, false, 100));
        assert!(should_restart(&policy("on-failure", 2), 1, false, 1));
        assert!(
            !should_restart(&policy("on-failure", 2), 1, false, 2),
            "max reached"
        );
    }

    #[test]
    fn oom_kill_counts_parse_from_v1_oom_control_and_v2_events() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(parse_oom_kills(v1), Some(2));
        let v2 = "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(parse_oom_kills(v2), Some(1));
        assert_eq!(parse_oom_kills("under_oom 0\n"), None);
        let dir = tempfile::tempdir().expect("cgroup dir");
        assert_eq!(oom_kills(dir.path()), None);
        std::fs::write(dir.path().join("memory.oom_control"), v1).expect("write");
        assert_eq!(oom_kills(dir.path()), Some(2));
    }

    #[test]
    fn backoff_doubles_and_resets_after_a_long_run() {
        let container = Container::new(super::super::ContainerRecord::default());
        let short = Duration::from_secs(1);
        assert_eq!(next_backoff(&container, short), Duration::from_millis(100));
        assert_eq!(next_backoff(&container, short), Duration::from_millis(200));
        assert_eq!(next_backoff(&container, short), Duration::from_millis(400));
        assert_eq!(
            next_backoff(&container, Duration::from_secs(10)),
            Duration::from_millis(100)
        );
        for _ in 0..20 {
            next_backoff(&container, short);
        }
        assert_eq!(next_backoff(&container, short), BACKOFF_MAX);
    }
}
