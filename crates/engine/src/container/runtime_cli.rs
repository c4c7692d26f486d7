//! Verbs that go straight to the OCI runtime's command line (the runc contract): pause,
//! resume, and `update --resources -` of a running container.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use berth_api::container::{ContainerUpdateRequest, Resources};
use serde_json::{json, Map, Value};

use super::{blocking, Container, ContainerError, ContainerRecord, Inner, Status};

/// Runs `<runtime> --root <root> <args...> <id>` with `stdin` piped in when given.
pub(super) async fn run_runtime(
    inner: &Inner,
    record: &ContainerRecord,
    args: &[&str],
) -> Result<(), ContainerError> {
    run_runtime_with_input(inner, record, args, None).await
}

async fn run_runtime_with_input(
    inner: &Inner,
    record: &ContainerRecord,
    args: &[&str],
    input: Option<Vec<u8>>,
) -> Result<(), ContainerError> {
    let binary = inner
        .config
        .runtimes
        .get(&record.runtime)
        .cloned()
        .ok_or_else(|| {
            ContainerError::InvalidArgument(format!(
                "unknown or invalid runtime name: {}",
                record.runtime
            ))
        })?;
    let root = inner.config.runtime_root(&record.runtime);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let id = record.id.clone();
    blocking(move || {
        let mut command = Command::new(&binary);
        command.arg("--root").arg(&root).args(&args).arg(&id);
        command
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let what = format!("{} {}", binary.display(), args.join(" "));
        let mut child = command
            .spawn()
            .map_err(|e| ContainerError::io(format!("running {what}"), e))?;
        if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(&bytes)
                .map_err(|e| ContainerError::io(format!("writing to {what}"), e))?;
        }
        let output = child
            .wait_with_output()
            .map_err(|e| ContainerError::io(format!("running {what}"), e))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(ContainerError::io(
                what,
                std::io::Error::other(String::from_utf8_lossy(&output.stderr).trim().to_string()),
            ))
        }
    })
    .await
}

/// `pause` (true) or `unpause` (false).
pub(super) async fn pause(
    inner: &Arc<Inner>,
    container: &Arc<Container>,
    pause: bool,
) -> Result<(), ContainerError> {
    let _op = container.op.lock().await;
    let record = container.record();
    match (pause, record.state.status) {
        (true, Status::Paused) => return Err(ContainerError::AlreadyPaused(container.id.clone())),
        (false, Status::Running) => return Err(ContainerError::NotPaused(container.id.clone())),
        (_, Status::Running | Status::Paused) => {}
        _ => return Err(ContainerError::NotRunning(container.id.clone())),
    }
    let verb = if pause { "pause" } else { "resume" };
    run_runtime(inner, &record, &[verb]).await?;
    container.update(|record| {
        record.state.status = if pause {
            Status::Paused
        } else {
            Status::Running
        }
    });
    inner.persist(container)?;
    inner.publish(
        container,
        if pause { "pause" } else { "unpause" },
        BTreeMap::new(),
    );
    Ok(())
}

/// `docker update`: records the new resources and restart policy, and applies the
/// resources to a running container through `<runtime> update --resources -`.
pub(super) async fn update(
    inner: &Arc<Inner>,
    container: &Arc<Container>,
    update: ContainerUpdateRequest,
) -> Result<Vec<String>, ContainerError> {
    let _op = container.op.lock().await;
    let record = container.record();
    if !update.restart_policy.name.is_empty() {
        if record.host_config.auto_remove && update.restart_policy.name != "no" {
            return Err(ContainerError::InvalidArgument(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .to_string(),
            ));
        }
        if !["no", "always", "unless-stopped", "on-failure"]
            .contains(&update.restart_policy.name.as_str())
        {
            return Err(ContainerError::InvalidArgument(format!(
                "invalid restart policy '{}'",
                update.restart_policy.name
            )));
        }
    }
    let mut resources = record.host_config.resources.clone();
    merge_resources(&mut resources, &update.resources);
    if container.is_running() {
        let json = linux_resources(&resources);
        let bytes = serde_json::to_vec(&json).unwrap_or_default();
        run_runtime_with_input(inner, &record, &["update", "--resources", "-"], Some(bytes))
            .await
            .map_err(|e| {
                ContainerError::InvalidArgument(format!(
                    "Cannot update container {}: {e}",
                    container.id
                ))
            })?;
    }
    container.update(|record| {
        record.host_config.resources = resources;
        if !update.restart_policy.name.is_empty() {
            record.host_config.restart_policy = update.restart_policy.clone();
        }
    });
    inner.persist(container)?;
    inner.publish(container, "update", BTreeMap::new());
    Ok(Vec::new())
}

/// Docker's `UpdateContainer`: every non-zero field of the update replaces the old one.
fn merge_resources(into: &mut Resources, from: &Resources) {
    macro_rules! take {
        ($($field:ident),*) => {$(
            if is_set(&from.$field) {
                into.$field = from.$field.clone();
            }
        )*};
    }
    take!(
        cpu_shares,
        memory,
        nano_cpus,
        blkio_weight,
        cpu_period,
        cpu_quota,
        cpu_realtime_period,
        cpu_realtime_runtime,
        cpuset_cpus,
        cpuset_mems,
        memory_reservation,
        memory_swap,
        pids_limit
    );
}

fn is_set<T: Default + PartialEq>(value: &T) -> bool {
    *value != T::default()
}

/// The OCI `LinuxResources` of the fields `update` can change.
fn linux_resources(resources: &Resources) -> Value {
    let mut memory = Map::new();
    let put = |map: &mut Map<String, Value>, key: &str, value: i64| {
        if value != 0 {
            map.insert(key.to_string(), json!(value));
        }
    };
    put(&mut memory, "limit", resources.memory);
    put(&mut memory, "reservation", resources.memory_reservation);
    put(&mut memory, "swap", resources.memory_swap);
    let mut cpu = Map::new();
    put(&mut cpu, "shares", resources.cpu_shares);
    let (quota, period) = if resources.nano_cpus > 0 {
        (resources.nano_cpus * 100_000 / 1_000_000_000, 100_000)
    } else {
        (resources.cpu_quota, resources.cpu_period)
    };
    put(&mut cpu, "quota", quota);
    put(&mut cpu, "period", period);
    if !resources.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(resources.cpuset_cpus));
    }
    if !resources.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(resources.cpuset_mems));
    }
    let mut out = Map::new();
    out.insert("memory".into(), Value::Object(memory));
    out.insert("cpu".into(), Value::Object(cpu));
    if let Some(limit) = resources.pids_limit.filter(|l| *l != 0) {
        out.insert("pids".into(), json!({ "limit": limit }));
    }
    if resources.blkio_weight != 0 {
        out.insert(
            "blockIO".into(),
            json!({ "weight": resources.blkio_weight }),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_keeps_fields_the_request_leaves_zero() {
        let mut current = Resources {
            memory: 100 << 20,
            cpu_shares: 512,
            ..Resources::default()
        };
        let update = Resources {
            memory: 200 << 20,
            ..Resources::default()
        };
        merge_resources(&mut current, &update);
        assert_eq!(current.memory, 200 << 20);
        assert_eq!(current.cpu_shares, 512);
    }

    #[test]
    fn nano_cpus_become_quota_over_a_100ms_period() {
        let json = linux_resources(&Resources {
            nano_cpus: 1_500_000_000,
            pids_limit: Some(10),
            ..Resources::default()
        });
        assert_eq!(json["cpu"]["quota"], 150_000);
        assert_eq!(json["cpu"]["period"], 100_000);
        assert_eq!(json["pids"]["limit"], 10);
        assert!(json["memory"].as_object().is_some_and(|m| m.is_empty()));
    }
}
