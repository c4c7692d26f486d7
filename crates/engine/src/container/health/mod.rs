//! Healthchecks (moby's `daemon/health.go`): the probe settings a container runs with (image
//! HEALTHCHECK merged with `--health-*`), the state machine behind `State.Health` (status,
//! failing streak, last five results), the interval schedule with the start period, and
//! berth's own on-unhealthy action (`berth.health.on-unhealthy` label: none, restart, stop,
//! kill), which Docker lacks.
//!
//! - [`probe`]: one probe run as an exec in the container through its shim.
//! - [`monitor`]: the per-run task that schedules probes, records results, publishes
//!   `health_status: ...` and applies the on-unhealthy action.

pub(super) mod monitor;
mod probe;

use std::time::Duration;

use berth_api::container::{Config, HealthConfig};
use serde::{Deserialize, Serialize};

use super::ContainerError;

/// Longest probe output kept (Docker's `maxOutputLen`); longer output ends with `...`.
pub const MAX_OUTPUT_LEN: usize = 4096;
/// Results kept in `State.Health.Log` (Docker's `maxLogEntries`).
pub const MAX_LOG_ENTRIES: usize = 5;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: u32 = 3;
/// Docker's `container.MinimumDuration` for every healthcheck duration.
const MINIMUM_DURATION: i64 = 1_000_000;

/// The label naming what berthd does when the container turns unhealthy.
pub const ON_UNHEALTHY_LABEL: &str = "berth.health.on-unhealthy";

/// `State.Health.Status` values (without Docker's `none`, which means no healthcheck).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One probe run, as `State.Health.Log[]` shows it (times are Go RFC 3339 nano text).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub start: String,
    pub end: String,
    /// 0 healthy; anything else (including Docker's -1 for a timeout or failed exec) fails.
    pub exit_code: i64,
    pub output: String,
}

/// `State.Health`, persisted in the container record so that it survives berthd restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthState {
    pub status: HealthStatus,
    pub failing_streak: u32,
    pub log: Vec<ProbeResult>,
}

impl HealthState {
    /// Docker's `handleProbeResult`: appends to the log (keeping the last five), resets the
    /// streak on success, otherwise counts the failure unless the container is still
    /// `starting` within its start period, and turns `unhealthy` once the streak reaches
    /// `retries`. Returns the new status when it changed.
    pub fn record(
        &mut self,
        result: ProbeResult,
        retries: u32,
        since_start: Duration,
        start_period: Duration,
    ) -> Option<HealthStatus> {
        let old = self.status;
        let success = result.exit_code == 0;
        self.log.push(result);
        if self.log.len() > MAX_LOG_ENTRIES {
            let excess = self.log.len() - MAX_LOG_ENTRIES;
            self.log.drain(..excess);
        }
        if success {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else {
            let in_grace = self.status == HealthStatus::Starting && since_start < start_period;
            if !in_grace {
                self.failing_streak += 1;
                if self.failing_streak >= retries.max(1) {
                    self.status = HealthStatus::Unhealthy;
                }
            }
        }
        (self.status != old).then_some(self.status)
    }

    /// A new run starts `starting` with no streak; the log is kept (as Docker's
    /// `initHealthMonitor`).
    pub fn reset_for_new_run(&mut self) {
        self.status = HealthStatus::Starting;
        self.failing_streak = 0;
    }
}

/// What berthd does when a container turns unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnUnhealthy {
    #[default]
    None,
    /// Stops and starts the container again; counts as a restart of its restart policy
    /// (`RestartCount` grows, an exhausted `on-failure:N` leaves it stopped).
    Restart,
    /// Stops it as `docker stop` does; it stays stopped.
    Stop,
    /// SIGKILLs it without marking it stopped by hand, so its restart policy decides.
    Kill,
}

impl OnUnhealthy {
    /// The action `config`'s labels ask for; unknown values were refused at create.
    pub fn of(config: &Config) -> OnUnhealthy {
        let label = config
            .labels
            .as_ref()
            .and_then(|labels| labels.get(ON_UNHEALTHY_LABEL).cloned());
        label
            .map_or(Ok(OnUnhealthy::None), |value| Self::parse(&value))
            .unwrap_or_default()
    }

    pub fn parse(text: &str) -> Result<OnUnhealthy, ContainerError> {
        match text {
            "" | "none" => Ok(OnUnhealthy::None),
            "restart" => Ok(OnUnhealthy::Restart),
            "stop" => Ok(OnUnhealthy::Stop),
            "kill" => Ok(OnUnhealthy::Kill),
            other => Err(ContainerError::InvalidArgument(format!(
                "invalid {ON_UNHEALTHY_LABEL} label value \"{other}\": use none, restart, stop or kill"
            ))),
        }
    }
}

/// How one container is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSettings {
    /// The command run in the container (`CMD-SHELL` already wrapped in the shell).
    pub argv: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u32,
    pub on_unhealthy: OnUnhealthy,
}

impl HealthSettings {
    /// Docker's `getProbe` plus defaults: `None` without a healthcheck, for `NONE`, an
    /// empty command or an unknown test type.
    pub fn of(config: &Config) -> Option<HealthSettings> {
        let health = config.healthcheck.as_ref()?;
        let test = health.test.as_ref()?;
        let (kind, rest) = test.split_first()?;
        let argv = match kind.as_str() {
            "CMD" => rest.to_vec(),
            "CMD-SHELL" => {
                let mut shell = config
                    .shell
                    .as_ref()
                    .map(|s| s.0.clone())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string()]);
                shell.extend(rest.iter().cloned());
                shell
            }
            _ => return None,
        };
        if argv.is_empty() {
            return None;
        }
        let duration = |nanos: i64, default: Duration| {
            if nanos > 0 {
                Duration::from_nanos(nanos as u64)
            } else {
                default
            }
        };
        Some(HealthSettings {
            argv,
            interval: duration(health.interval, DEFAULT_INTERVAL),
            timeout: duration(health.timeout, DEFAULT_TIMEOUT),
            start_period: duration(health.start_period, Duration::ZERO),
            start_interval: duration(health.start_interval, DEFAULT_START_INTERVAL),
            retries: u32::try_from(health.retries)
                .ok()
                .filter(|r| *r > 0)
                .unwrap_or(DEFAULT_RETRIES),
            on_unhealthy: OnUnhealthy::of(config),
        })
    }

    /// Docker's `getInterval`: the start interval while `starting` inside the start period,
    /// never past the end of the start period, the interval otherwise.
    pub fn next_delay(&self, since_start: Duration, status: HealthStatus) -> Duration {
        if since_start >= self.start_period {
            return self.interval;
        }
        let remaining = self.start_period - since_start;
        if remaining < self.interval {
            return remaining;
        }
        if status == HealthStatus::Starting {
            self.start_interval
        } else {
            self.interval
        }
    }
}

/// Docker's `validateHealthCheck` texts, plus the on-unhealthy label.
pub fn validate(config: &Config) -> Result<(), ContainerError> {
    if let Some(health) = &config.healthcheck {
        check_durations(health)?;
    }
    if let Some(value) = config
        .labels
        .as_ref()
        .and_then(|labels| labels.get(ON_UNHEALTHY_LABEL))
    {
        OnUnhealthy::parse(value)?;
    }
    Ok(())
}

fn check_durations(health: &HealthConfig) -> Result<(), ContainerError> {
    let fields = [
        ("Interval", health.interval),
        ("Timeout", health.timeout),
        ("StartPeriod", health.start_period),
        ("StartInterval", health.start_interval),
    ];
    for (name, value) in fields {
        if value != 0 && value < MINIMUM_DURATION {
            return Err(ContainerError::InvalidArgument(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if health.retries < 0 {
        return Err(ContainerError::InvalidArgument(
            "Retries in Healthcheck cannot be negative".to_string(),
        ));
    }
    Ok(())
}

/// Go's `time.Duration.String()` for the timeout text (`30s`, `500ms`, `1m30s`).
pub fn go_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", trim_fraction(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim_fraction(nanos, 1_000_000));
    }
    let total_secs = nanos / 1_000_000_000;
    let (hours, minutes) = (total_secs / 3600, (total_secs / 60) % 60);
    let seconds = trim_fraction(nanos % 60_000_000_000, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// `value / unit` with the fraction's trailing zeros dropped (`1.5`, `2`).
fn trim_fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let fraction = value % unit;
    if fraction == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i64) -> ProbeResult {
        ProbeResult {
            exit_code: code,
            ..ProbeResult::default()
        }
    }

    const LATE: Duration = Duration::from_secs(100);

    #[test]
    fn failures_turn_unhealthy_after_retries_and_one_success_heals() {
        let mut state = HealthState::default();
        assert_eq!(state.record(result(1), 3, LATE, Duration::ZERO), None);
        assert_eq!(state.record(result(1), 3, LATE, Duration::ZERO), None);
        assert_eq!(state.failing_streak, 2);
        assert_eq!(
            state.record(result(1), 3, LATE, Duration::ZERO),
            Some(HealthStatus::Unhealthy)
        );
        assert_eq!(state.record(result(1), 3, LATE, Duration::ZERO), None);
        assert_eq!(state.failing_streak, 4);
        assert_eq!(
            state.record(result(0), 3, LATE, Duration::ZERO),
            Some(HealthStatus::Healthy)
        );
        assert_eq!(state.failing_streak, 0);
    }

    #[test]
    fn failures_inside_the_start_period_do_not_count_while_starting() {
        let period = Duration::from_secs(10);
        let mut state = HealthState::default();
        for _ in 0..5 {
            assert_eq!(
                state.record(result(1), 1, Duration::from_secs(2), period),
                None
            );
        }
        assert_eq!(state.failing_streak, 0);
        assert_eq!(state.status, HealthStatus::Starting);
        // Once healthy, the start period no longer shields failures.
        state.record(result(0), 1, Duration::from_secs(3), period);
        assert_eq!(
            state.record(result(1), 1, Duration::from_secs(4), period),
            Some(HealthStatus::Unhealthy)
        );
    }

    #[test]
    fn the_log_keeps_the_last_five_results_oldest_first() {
        let mut state = HealthState::default();
        for code in 0..8 {
            state.record(result(code), 3, LATE, Duration::ZERO);
        }
        let codes: Vec<i64> = state.log.iter().map(|r| r.exit_code).collect();
        assert_eq!(codes, vec![3, 4, 5, 6, 7]);
    }

    #[test]
    fn a_new_run_resets_status_and_streak_but_keeps_the_log() {
        let mut state = HealthState::default();
        for _ in 0..3 {
            state.record(result(1), 3, LATE, Duration::ZERO);
        }
        state.reset_for_new_run();
        assert_eq!(state.status, HealthStatus::Starting);
        assert_eq!(state.failing_streak, 0);
        assert_eq!(state.log.len(), 3);
    }

    fn config(json: &str) -> Config {
        serde_json::from_str(json).expect("config")
    }

    #[test]
    fn settings_follow_dockers_probe_types_and_defaults() {
        let shell = HealthSettings::of(&config(
            r#"{"Healthcheck":{"Test":["CMD-SHELL","test -f /ok"],"Retries":2}}"#,
        ))
        .expect("settings");
        assert_eq!(shell.argv, ["/bin/sh", "-c", "test -f /ok"]);
        assert_eq!(shell.retries, 2);
        assert_eq!(shell.interval, DEFAULT_INTERVAL);
        assert_eq!(shell.timeout, DEFAULT_TIMEOUT);
        assert_eq!(shell.start_interval, DEFAULT_START_INTERVAL);
        let custom_shell = HealthSettings::of(&config(
            r#"{"Shell":["/bin/ash","-c"],"Healthcheck":{"Test":["CMD-SHELL","true"]}}"#,
        ))
        .expect("settings");
        assert_eq!(custom_shell.argv, ["/bin/ash", "-c", "true"]);
        let cmd = HealthSettings::of(&config(
            r#"{"Healthcheck":{"Test":["CMD","cat","/ok"],"Interval":2000000000}}"#,
        ))
        .expect("settings");
        assert_eq!(cmd.argv, ["cat", "/ok"]);
        assert_eq!(cmd.interval, Duration::from_secs(2));
        assert_eq!(cmd.retries, DEFAULT_RETRIES);
        for none in [
            r#"{}"#,
            r#"{"Healthcheck":{"Test":["NONE"]}}"#,
            r#"{"Healthcheck":{"Test":[]}}"#,
            r#"{"Healthcheck":{"Test":["CMD"]}}"#,
            r#"{"Healthcheck":{"Test":["WHAT","x"]}}"#,
        ] {
            assert_eq!(HealthSettings::of(&config(none)), None, "{none}");
        }
    }

    #[test]
    fn the_schedule_uses_the_start_interval_only_while_starting_in_the_start_period() {
        let mut settings = HealthSettings::of(&config(
            r#"{"Healthcheck":{"Test":["CMD","true"],"Interval":30000000000,"StartPeriod":60000000000,"StartInterval":2000000000}}"#,
        ))
        .expect("settings");
        let s = Duration::from_secs;
        assert_eq!(settings.next_delay(s(0), HealthStatus::Starting), s(2));
        assert_eq!(settings.next_delay(s(0), HealthStatus::Healthy), s(30));
        assert_eq!(settings.next_delay(s(50), HealthStatus::Starting), s(10));
        assert_eq!(settings.next_delay(s(61), HealthStatus::Starting), s(30));
        settings.start_period = Duration::ZERO;
        assert_eq!(settings.next_delay(s(0), HealthStatus::Starting), s(30));
    }

    #[test]
    fn create_refuses_what_docker_refuses() {
        let cases = [
            (
                r#"{"Healthcheck":{"Interval":5}}"#,
                "Interval in Healthcheck cannot be less than 1ms",
            ),
            (
                r#"{"Healthcheck":{"Timeout":999999}}"#,
                "Timeout in Healthcheck cannot be less than 1ms",
            ),
            (
                r#"{"Healthcheck":{"Retries":-1}}"#,
                "Retries in Healthcheck cannot be negative",
            ),
            (
                r#"{"Labels":{"berth.health.on-unhealthy":"reboot"}}"#,
                "invalid berth.health.on-unhealthy label value \"reboot\": use none, restart, stop or kill",
            ),
        ];
        for (json, text) in cases {
            assert_eq!(validate(&config(json)).expect_err(json).to_string(), text);
        }
        assert!(validate(&config(
            r#"{"Healthcheck":{"Interval":1000000},"Labels":{"berth.health.on-unhealthy":"kill"}}"#
        ))
        .is_ok());
        assert_eq!(
            OnUnhealthy::of(&config(
                r#"{"Labels":{"berth.health.on-unhealthy":"restart"}}"#
            )),
            OnUnhealthy::Restart
        );
        assert_eq!(OnUnhealthy::of(&config("{}")), OnUnhealthy::None);
    }

    #[test]
    fn durations_print_as_go_does() {
        let cases = [
            (Duration::from_secs(30), "30s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::ZERO, "0s"),
        ];
        for (duration, text) in cases {
            assert_eq!(go_duration(duration), text);
        }
    }
}
