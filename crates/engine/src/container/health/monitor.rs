//! The health monitor of one container run (moby's `monitor` in `daemon/health.go`): waits
//! the scheduled delay, probes, records the result in `State.Health`, publishes
//! `health_status: <status>` on a change and, on turning unhealthy, applies the container's
//! on-unhealthy action. It ends when the run ends (exit, stop, restart, removal) and skips
//! probes while the container is paused. Started by `start` for every run and by `restore`
//! for containers that outlived the previous berthd (whose health state is kept).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::probe::{ExecProbe, Probe};
use super::{HealthSettings, HealthState, HealthStatus, OnUnhealthy, ProbeResult};
use crate::container::stop::StopOptions;
use crate::container::{start, stop, Container, Inner, Lifecycle, Status};

/// What the monitor loop needs from the container it watches (a fake in tests).
pub(crate) trait HealthTarget: Send + Sync {
    /// False once the watched run is over: the loop ends.
    fn alive(&self) -> bool;
    fn paused(&self) -> bool;
    /// Time since the run started (for the start period).
    fn since_start(&self) -> Duration;
    fn status(&self) -> HealthStatus;
    /// Records a result; returns the new status when it changed.
    fn record(&self, result: ProbeResult) -> Option<HealthStatus>;
    /// Called once per status change, after it was recorded.
    fn changed(&self, status: HealthStatus);
}

/// Probes until the run ends (`lifecycle` reports an exit or `alive` turns false).
pub(crate) async fn run_loop(
    settings: &HealthSettings,
    probe: &dyn Probe,
    target: &dyn HealthTarget,
    mut lifecycle: tokio::sync::watch::Receiver<Lifecycle>,
) {
    let baseline = lifecycle.borrow_and_update().exits;
    let mut ended = Box::pin(async move {
        let _ = lifecycle
            .wait_for(|l| !l.running || l.exits != baseline || l.removed)
            .await;
    });
    loop {
        let delay = settings.next_delay(target.since_start(), target.status());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = &mut ended => return,
        }
        if !target.alive() {
            return;
        }
        if target.paused() {
            continue;
        }
        let result = tokio::select! {
            result = probe.run() => result,
            _ = &mut ended => return,
        };
        if !target.alive() {
            return;
        }
        if let Some(status) = target.record(result) {
            target.changed(status);
        }
    }
}

/// Starts the monitor of run `run` of `container`: a fresh run starts `starting`
/// (`restored` keeps the state a restarted berthd found). Without a healthcheck the
/// container has no `State.Health`.
pub(in crate::container) fn spawn(
    inner: Arc<Inner>,
    container: Arc<Container>,
    run: u64,
    restored: bool,
) {
    let record = container.record();
    let Some(settings) = HealthSettings::of(&record.config) else {
        if record.state.health.is_some() {
            container.update(|record| record.state.health = None);
            let _ = inner.persist(&container);
        }
        return;
    };
    if !restored || record.state.health.is_none() {
        container.update(|record| {
            record
                .state
                .health
                .get_or_insert_with(HealthState::default)
                .reset_for_new_run()
        });
        let _ = inner.persist(&container);
    }
    let lifecycle = container.lifecycle();
    tokio::spawn(async move {
        let probe = ExecProbe {
            inner: inner.clone(),
            container: container.clone(),
            argv: settings.argv.clone(),
            timeout: settings.timeout,
        };
        let target = ContainerTarget {
            inner,
            container,
            run,
            settings: settings.clone(),
        };
        run_loop(&settings, &probe, &target, lifecycle).await;
    });
}

/// The real container behind the loop.
struct ContainerTarget {
    inner: Arc<Inner>,
    container: Arc<Container>,
    run: u64,
    settings: HealthSettings,
}

impl HealthTarget for ContainerTarget {
    fn alive(&self) -> bool {
        !self.inner.is_shutting_down()
            && self.inner.holds(&self.container)
            && self.container.run.load(Ordering::SeqCst) == self.run
            && self.container.is_running()
    }

    fn paused(&self) -> bool {
        self.container.record().state.status == Status::Paused
    }

    fn since_start(&self) -> Duration {
        let started = self.container.record().state.started_at;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        berth_api::time::parse_rfc3339(&started)
            .and_then(|(secs, nanos)| {
                let started = Duration::new(u64::try_from(secs).ok()?, nanos);
                now.checked_sub(started)
            })
            .unwrap_or_default()
    }

    fn status(&self) -> HealthStatus {
        self.container
            .record()
            .state
            .health
            .map(|h| h.status)
            .unwrap_or_default()
    }

    fn record(&self, result: ProbeResult) -> Option<HealthStatus> {
        let since_start = self.since_start();
        let changed = self.container.update(|record| {
            record
                .state
                .health
                .get_or_insert_with(HealthState::default)
                .record(
                    result,
                    self.settings.retries,
                    since_start,
                    self.settings.start_period,
                )
        });
        // Every result is persisted: `docker inspect` after a berthd restart shows the log
        // as it was (one small atomic write per probe interval).
        let _ = self.inner.persist(&self.container);
        changed
    }

    fn changed(&self, status: HealthStatus) {
        self.inner.publish(
            &self.container,
            &format!("health_status: {}", status.as_str()),
            BTreeMap::new(),
        );
        if status == HealthStatus::Unhealthy && self.settings.on_unhealthy != OnUnhealthy::None {
            let (inner, container) = (self.inner.clone(), self.container.clone());
            let (run, action) = (self.run, self.settings.on_unhealthy);
            tokio::spawn(async move { act(&inner, &container, run, action).await });
        }
    }
}

/// Applies the on-unhealthy action to run `run` (nothing when that run is over already).
async fn act(inner: &Arc<Inner>, container: &Arc<Container>, run: u64, action: OnUnhealthy) {
    let same_run = |c: &Container| c.run.load(Ordering::SeqCst) == run && c.is_running();
    match action {
        OnUnhealthy::None => {}
        OnUnhealthy::Stop => {
            let _op = container.op.lock().await;
            if same_run(container) {
                let _ = stop::stop_locked(inner, container, &StopOptions::default()).await;
                inner.publish(container, "stop", BTreeMap::new());
            }
        }
        OnUnhealthy::Kill => {
            if same_run(container) {
                // Not marked as stopped by hand: the restart policy treats it as a crash.
                let _ = stop::send_signal(inner, container, libc::SIGKILL, true).await;
            }
        }
        OnUnhealthy::Restart => {
            let _op = container.op.lock().await;
            if !same_run(container) {
                return;
            }
            let record = container.record();
            let policy = &record.host_config.restart_policy;
            let exhausted = policy.name == "on-failure"
                && policy.maximum_retry_count > 0
                && i64::from(record.state.restart_count) >= policy.maximum_retry_count;
            if stop::stop_locked(inner, container, &StopOptions::default())
                .await
                .is_err()
            {
                return;
            }
            start::cleanup_after_exit(inner, container).await;
            if exhausted {
                // The policy's retry budget is spent: it stays stopped, as an exhausted
                // on-failure container does.
                return;
            }
            container.update(|record| {
                record.state.has_been_manually_stopped = false;
                record.state.restart_count += 1;
            });
            if let Err(e) = start::start_locked(inner, container).await {
                eprintln!("berthd: restarting unhealthy {}: {e}", container.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Mutex;

    /// Answers exit codes from a script (then 0), counting calls.
    struct ScriptedProbe {
        codes: Mutex<VecDeque<i64>>,
        calls: Mutex<Vec<tokio::time::Instant>>,
    }

    impl Probe for ScriptedProbe {
        fn run(&self) -> Pin<Box<dyn Future<Output = ProbeResult> + Send + '_>> {
            Box::pin(async move {
                self.calls
                    .lock()
                    .expect("calls")
                    .push(tokio::time::Instant::now());
                let code = self.codes.lock().expect("codes").pop_front().unwrap_or(0);
                ProbeResult {
                    exit_code: code,
                    ..ProbeResult::default()
                }
            })
        }
    }

    struct FakeTarget {
        started: tokio::time::Instant,
        state: Mutex<HealthState>,
        changes: Mutex<Vec<HealthStatus>>,
        paused: std::sync::atomic::AtomicBool,
        settings: HealthSettings,
    }

    impl HealthTarget for FakeTarget {
        fn alive(&self) -> bool {
            true
        }
        fn paused(&self) -> bool {
            self.paused.load(Ordering::SeqCst)
        }
        fn since_start(&self) -> Duration {
            self.started.elapsed()
        }
        fn status(&self) -> HealthStatus {
            self.state.lock().expect("state").status
        }
        fn record(&self, result: ProbeResult) -> Option<HealthStatus> {
            let since = self.since_start();
            self.state.lock().expect("state").record(
                result,
                self.settings.retries,
                since,
                self.settings.start_period,
            )
        }
        fn changed(&self, status: HealthStatus) {
            self.changes.lock().expect("changes").push(status);
        }
    }

    fn settings(interval: u64, start_period: u64, retries: u32) -> HealthSettings {
        HealthSettings {
            argv: vec!["true".into()],
            interval: Duration::from_secs(interval),
            timeout: Duration::from_secs(1),
            start_period: Duration::from_secs(start_period),
            start_interval: Duration::from_secs(1),
            retries,
            on_unhealthy: OnUnhealthy::None,
        }
    }

    fn fixture(codes: &[i64], settings: HealthSettings) -> (ScriptedProbe, FakeTarget) {
        let probe = ScriptedProbe {
            codes: Mutex::new(codes.iter().copied().collect()),
            calls: Mutex::new(Vec::new()),
        };
        let target = FakeTarget {
            started: tokio::time::Instant::now(),
            state: Mutex::new(HealthState::default()),
            changes: Mutex::new(Vec::new()),
            paused: std::sync::atomic::AtomicBool::new(false),
            settings,
        };
        (probe, target)
    }

    fn running() -> tokio::sync::watch::Sender<Lifecycle> {
        tokio::sync::watch::Sender::new(Lifecycle {
            running: true,
            ..Lifecycle::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_flipping_probe_moves_healthy_unhealthy_healthy_on_schedule() {
        let settings = settings(10, 0, 2);
        let (probe, target) = fixture(&[0, 1, 1, 1, 0], settings.clone());
        let lifecycle = running();
        let receiver = lifecycle.subscribe();
        let looping = run_loop(&settings, &probe, &target, receiver);
        tokio::pin!(looping);
        // Five probes at 10 s intervals, then the container exits.
        tokio::select! {
            _ = &mut looping => panic!("the loop ended on its own"),
            _ = tokio::time::sleep(Duration::from_secs(55)) => {}
        }
        lifecycle.send_modify(|l| {
            l.running = false;
            l.exits += 1;
        });
        looping.await;
        let calls = probe.calls.lock().expect("calls").clone();
        assert_eq!(calls.len(), 5);
        let offsets: Vec<u64> = calls
            .iter()
            .map(|t| (*t - target.started).as_secs())
            .collect();
        assert_eq!(offsets, vec![10, 20, 30, 40, 50]);
        assert_eq!(
            *target.changes.lock().expect("changes"),
            vec![
                HealthStatus::Healthy,
                HealthStatus::Unhealthy,
                HealthStatus::Healthy
            ]
        );
        assert_eq!(target.state.lock().expect("state").log.len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn the_start_period_probes_at_the_start_interval_without_counting_failures() {
        let mut settings = settings(10, 13, 1);
        settings.start_interval = Duration::from_secs(1);
        let (probe, target) = fixture(&[1, 1, 1, 1, 1, 1, 1], settings.clone());
        let lifecycle = running();
        let looping = run_loop(&settings, &probe, &target, lifecycle.subscribe());
        tokio::pin!(looping);
        tokio::select! {
            _ = &mut looping => panic!("the loop ended on its own"),
            _ = tokio::time::sleep(Duration::from_secs(24)) => {}
        }
        lifecycle.send_modify(|l| l.running = false);
        looping.await;
        let offsets: Vec<u64> = probe
            .calls
            .lock()
            .expect("calls")
            .iter()
            .map(|t| (*t - target.started).as_secs())
            .collect();
        // Every second while more than an interval of the 13 s start period is left, then
        // at its end (Docker's getInterval), then every 10 s; failures count from then on.
        assert_eq!(offsets, vec![1, 2, 3, 4, 13, 23]);
        assert_eq!(
            *target.changes.lock().expect("changes"),
            vec![HealthStatus::Unhealthy]
        );
        assert_eq!(target.state.lock().expect("state").failing_streak, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_container_is_not_probed_and_a_stop_ends_the_monitor() {
        let settings = settings(1, 0, 3);
        let (probe, target) = fixture(&[], settings.clone());
        target.paused.store(true, Ordering::SeqCst);
        let lifecycle = running();
        let looping = run_loop(&settings, &probe, &target, lifecycle.subscribe());
        tokio::pin!(looping);
        tokio::select! {
            _ = &mut looping => panic!("the loop ended on its own"),
            _ = tokio::time::sleep(Duration::from_millis(5500)) => {}
        }
        assert!(probe.calls.lock().expect("calls").is_empty());
        lifecycle.send_modify(|l| l.removed = true);
        looping.await;
        assert!(target.changes.lock().expect("changes").is_empty());
    }
}
