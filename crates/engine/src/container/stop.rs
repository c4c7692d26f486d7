//! `stop` (stop signal, timeout, then SIGKILL), `kill` and `restart`, as Docker's
//! `containerStop`, `killWithSignal` and `containerRestart`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::{blocking, shim, signal, start};
use super::{Container, ContainerError, Inner, Status};

/// Docker's default stop timeout in seconds.
const DEFAULT_STOP_TIMEOUT: i64 = 10;

/// `?t=` and `?signal=` of stop and restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopOptions {
    /// Seconds to wait before SIGKILL; negative waits forever.
    pub timeout: Option<i64>,
    pub signal: Option<String>,
}

pub(super) async fn stop_verb(
    inner: &Arc<Inner>,
    container: &Arc<Container>,
    options: StopOptions,
) -> Result<(), ContainerError> {
    let _op = container.op.lock().await;
    if !container.is_running() {
        if container.record().state.status == Status::Restarting {
            mark_stopped(inner, container);
            container.update(|record| record.state.status = Status::Exited);
            inner.persist(container)?;
            inner.publish(container, "stop", BTreeMap::new());
            return Ok(());
        }
        return Err(ContainerError::NotModified);
    }
    stop_locked(inner, container, &options).await?;
    inner.publish(container, "stop", BTreeMap::new());
    Ok(())
}

fn mark_stopped(inner: &Inner, container: &Container) {
    container.update(|record| record.state.has_been_manually_stopped = true);
    let _ = inner.persist(container);
}

/// Sends the stop signal, waits for the exit up to the timeout, then SIGKILLs. The caller
/// holds the operation lock.
pub(super) async fn stop_locked(
    inner: &Arc<Inner>,
    container: &Arc<Container>,
    options: &StopOptions,
) -> Result<(), ContainerError> {
    let record = container.record();
    let signal_text = options
        .signal
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| Some(record.config.stop_signal.clone()).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "SIGTERM".to_string());
    let stop_signal = signal::parse(&signal_text)?;
    let timeout = options
        .timeout
        .or(record.config.stop_timeout)
        .unwrap_or(DEFAULT_STOP_TIMEOUT);
    mark_stopped(inner, container);
    if record.state.status == Status::Paused {
        // A frozen process cannot act on its stop signal: thaw it first, as Docker does.
        let _ = super::runtime_cli::run_runtime(inner, &record, &["resume"]).await;
        container.update(|record| record.state.status = Status::Running);
    }
    if stop_signal != libc::SIGKILL {
        send_signal(inner, container, stop_signal, false).await?;
        let wait = if timeout < 0 {
            None
        } else {
            Some(Duration::from_secs(timeout as u64))
        };
        if wait_not_running(container, wait).await {
            return Ok(());
        }
    }
    send_signal(inner, container, libc::SIGKILL, true).await?;
    wait_not_running(container, None).await;
    Ok(())
}

/// Signals the init through the shim (`all` signals every process), publishing `kill`.
/// A process that exited meanwhile is not an error.
pub(super) async fn send_signal(
    inner: &Inner,
    container: &Container,
    signal: i32,
    all: bool,
) -> Result<(), ContainerError> {
    let mut extra = BTreeMap::new();
    extra.insert("signal".to_string(), signal.to_string());
    inner.publish(container, "kill", extra);
    let socket = inner.config.shim_socket(&container.id);
    let result = blocking(move || {
        let client = shim::connect(&socket)
            .map_err(|e| ContainerError::shim("connecting to the shim", e))?;
        client
            .kill(None, signal, all)
            .map_err(|e| ContainerError::shim("signalling the container", e))
    })
    .await;
    match result {
        Err(_) if !container.is_running() => Ok(()),
        Err(ContainerError::Shim { source, .. })
            if source.kind() == berth_shim::protocol::ErrorKind::Conflict =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Waits until the container is not running; false when `limit` passed first.
pub(super) async fn wait_not_running(container: &Container, limit: Option<Duration>) -> bool {
    let mut lifecycle = container.lifecycle();
    let done = lifecycle.wait_for(|l| !l.running);
    match limit {
        Some(limit) => matches!(tokio::time::timeout(limit, done).await, Ok(Ok(_))),
        None => done.await.is_ok(),
    }
}

pub(super) async fn kill_verb(
    inner: &Arc<Inner>,
    container: &Arc<Container>,
    signal_text: Option<&str>,
) -> Result<(), ContainerError> {
    let signal = match signal_text.filter(|s| !s.is_empty()) {
        Some(text) => signal::parse(text)?,
        None => libc::SIGKILL,
    };
    if !container.is_running() {
        return Err(ContainerError::NotRunning(container.id.clone()));
    }
    if container.record().state.status == Status::Paused && signal != libc::SIGKILL {
        return Err(ContainerError::Paused(container.id.clone()));
    }
    mark_stopped(inner, container);
    send_signal(inner, container, signal, false).await?;
    if signal == libc::SIGKILL {
        wait_not_running(container, None).await;
    }
    Ok(())
}

pub(super) async fn restart_verb(
    inner: &Arc<Inner>,
    container: &Arc<Container>,
    options: StopOptions,
) -> Result<(), ContainerError> {
    let _op = container.op.lock().await;
    if container.is_running() {
        stop_locked(inner, container, &options).await?;
    }
    // The monitor cleans up after the exit, but it waits for this lock: do it here.
    start::cleanup_after_exit(inner, container).await;
    container.update(|record| record.state.has_been_manually_stopped = false);
    start::start_locked(inner, container).await?;
    inner.publish(container, "restart", BTreeMap::new());
    Ok(())
}
