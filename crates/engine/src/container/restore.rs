//! Rebuilding the container view when berthd starts (live restore is always on): load every
//! record, watch the shims of containers that were running (a shim that is gone yields its
//! durable exit record), and start the containers whose restart policy asks for it once the
//! network service is attached (a start before it would run without its networks).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{blocking, monitor, start, write_lock};
use super::{Container, ContainerError, ContainerRecord, Inner, Status};

/// Returns the containers to start at daemon start: [`start_at_boot`] starts them.
pub(super) async fn restore(inner: &Arc<Inner>) -> Result<Vec<Arc<Container>>, ContainerError> {
    let dir = inner.config.containers_dir();
    let records = blocking(move || {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ContainerError::io(format!("listing {}", dir.display()), e)),
        };
        let mut records = Vec::new();
        for entry in entries.flatten() {
            match ContainerRecord::load(&entry.path()) {
                Ok(record) => records.push(record),
                // A directory without a readable record is a create that never finished:
                // nothing refers to it, leave it for prune/GC rather than fail the daemon.
                Err(e) => eprintln!("berthd: skipping {}: {e}", entry.path().display()),
            }
        }
        Ok(records)
    })
    .await?;
    // The image service's container-to-image map is written without an fsync: the
    // records are the truth after a host crash.
    let uses = records
        .iter()
        .filter_map(|r| Some((r.id.clone(), berth_oci::Digest::parse(&r.image_id).ok()?)))
        .collect();
    if let Err(e) = inner.images.reconcile_rootfs_uses(uses) {
        eprintln!("berthd: recording which containers use which image: {e}");
    }
    let mut to_watch = Vec::new();
    let mut to_start = Vec::new();
    for mut record in records {
        if record.state.status == Status::Removing {
            // A removal interrupted by a crash: finish it by hand later (rm works).
            record.state.status = Status::Dead;
        }
        if record.state.status == Status::Restarting {
            // Between two runs: the exit is recorded and the old shim deleted already.
            record.state.status = Status::Exited;
        }
        let live = matches!(record.state.status, Status::Running | Status::Paused);
        let restart_at_boot = !live && restarts_at_daemon_start(&record);
        if write_lock(&inner.names)
            .reserve(&record.name, &record.id)
            .is_err()
        {
            eprintln!(
                "berthd: container {} has a duplicate name {}",
                record.id, record.name
            );
        }
        let container = Arc::new(Container::new(record));
        inner.insert(container.clone());
        if live {
            to_watch.push(container);
        } else if restart_at_boot {
            to_start.push(container);
        }
    }
    for container in to_watch {
        let run = container.run.fetch_add(1, Ordering::SeqCst) + 1;
        monitor::spawn(inner.clone(), container.clone(), run);
        super::health::monitor::spawn(inner.clone(), container, run, true);
    }
    Ok(to_start)
}

/// Starts the containers [`restore`] found to bring back, one after another, in the background.
pub(super) fn start_at_boot(inner: &Arc<Inner>, to_start: Vec<Arc<Container>>) {
    if to_start.is_empty() {
        return;
    }
    let inner = inner.clone();
    tokio::spawn(async move {
        for container in to_start {
            let _op = container.op.lock().await;
            if inner.holds(&container) && !container.is_running() {
                container.update(|r| r.state.has_been_manually_stopped = false);
                if let Err(e) = start::start_locked(&inner, &container).await {
                    eprintln!("berthd: restarting {}: {e}", container.id);
                }
            }
        }
    });
}

/// Docker brings back `always` containers (even stopped by hand), `unless-stopped` ones
/// not stopped by hand, and `on-failure` ones that failed within their retry budget.
fn restarts_at_daemon_start(record: &ContainerRecord) -> bool {
    let policy = &record.host_config.restart_policy;
    match policy.name.as_str() {
        "always" => true,
        "unless-stopped" => !record.state.has_been_manually_stopped,
        "on-failure" => {
            record.state.status == Status::Exited
                && monitor::should_restart(
                    policy,
                    record.state.exit_code,
                    record.state.has_been_manually_stopped,
                    record.state.restart_count,
                )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::container::RestartPolicy;

    fn record(policy: &str, manually_stopped: bool, code: i32) -> ContainerRecord {
        let mut record = ContainerRecord::default();
        record.host_config.restart_policy = RestartPolicy {
            name: policy.to_string(),
            maximum_retry_count: 0,
        };
        record.state.status = Status::Exited;
        record.state.has_been_manually_stopped = manually_stopped;
        record.state.exit_code = code;
        record
    }

    #[test]
    fn daemon_start_brings_back_what_docker_brings_back() {
        assert!(restarts_at_daemon_start(&record("always", true, 0)));
        assert!(restarts_at_daemon_start(&record(
            "unless-stopped",
            false,
            0
        )));
        assert!(!restarts_at_daemon_start(&record(
            "unless-stopped",
            true,
            0
        )));
        assert!(restarts_at_daemon_start(&record("on-failure", false, 1)));
        assert!(!restarts_at_daemon_start(&record("on-failure", false, 0)));
        assert!(!restarts_at_daemon_start(&record("no", false, 1)));
        assert!(!restarts_at_daemon_start(&record("", false, 1)));
    }
}
