//! `update`: change a running container's resources from a linux.resources JSON file
//! (`--resources`, "-" for stdin) or runc's flags (--memory, --cpu-shares, --pids-limit...).

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use crate::error::RuntimeError;
use crate::state::Status;

use super::Context;

/// runc's update flags, as given on the command line.
#[derive(Debug, Default, Clone)]
pub struct UpdateFlags {
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub kernel_memory: Option<String>,
    pub kernel_memory_tcp: Option<String>,
    pub cpu_shares: Option<String>,
    pub cpu_period: Option<String>,
    pub cpu_quota: Option<String>,
    pub cpu_rt_period: Option<String>,
    pub cpu_rt_runtime: Option<String>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<String>,
    pub blkio_weight: Option<String>,
}

fn bad(flag: &str, value: &str) -> RuntimeError {
    RuntimeError::InvalidArgument {
        flag: format!("--{flag}"),
        value: value.to_string(),
    }
}

/// Docker's RAMInBytes: "1024", "10k", "64m", "1.5g" (binary units); "-1" is unlimited.
pub fn parse_bytes(flag: &str, s: &str) -> Result<i64, RuntimeError> {
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let num: f64 = num.parse().map_err(|_| bad(flag, s))?;
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad(flag, s)),
    };
    Ok((num * mult) as i64)
}

fn int(flag: &str, s: &str) -> Result<i64, RuntimeError> {
    s.parse().map_err(|_| bad(flag, s))
}

/// The linux.resources JSON the flags describe (only the fields given).
pub fn resources_from_flags(f: &UpdateFlags) -> Result<Value, RuntimeError> {
    let mut memory = Map::new();
    let mut cpu = Map::new();
    let put = |map: &mut Map<String, Value>, key: &str, v: Value| {
        map.insert(key.to_string(), v);
    };
    for (flag, key, value) in [
        ("memory", "limit", &f.memory),
        ("memory-reservation", "reservation", &f.memory_reservation),
        ("memory-swap", "swap", &f.memory_swap),
        ("kernel-memory", "kernel", &f.kernel_memory),
        ("kernel-memory-tcp", "kernelTCP", &f.kernel_memory_tcp),
    ] {
        if let Some(v) = value {
            put(&mut memory, key, json!(parse_bytes(flag, v)?));
        }
    }
    for (flag, key, value) in [
        ("cpu-shares", "shares", &f.cpu_shares),
        ("cpu-period", "period", &f.cpu_period),
        ("cpu-quota", "quota", &f.cpu_quota),
        ("cpu-rt-period", "realtimePeriod", &f.cpu_rt_period),
        ("cpu-rt-runtime", "realtimeRuntime", &f.cpu_rt_runtime),
    ] {
        if let Some(v) = value {
            put(&mut cpu, key, json!(int(flag, v)?));
        }
    }
    if let Some(v) = &f.cpuset_cpus {
        put(&mut cpu, "cpus", json!(v));
    }
    if let Some(v) = &f.cpuset_mems {
        put(&mut cpu, "mems", json!(v));
    }
    let mut out = Map::new();
    if !memory.is_empty() {
        out.insert("memory".into(), Value::Object(memory));
    }
    if !cpu.is_empty() {
        out.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(v) = &f.pids_limit {
        out.insert("pids".into(), json!({ "limit": int("pids-limit", v)? }));
    }
    if let Some(v) = &f.blkio_weight {
        out.insert(
            "blockIO".into(),
            json!({ "weight": int("blkio-weight", v)? }),
        );
    }
    Ok(Value::Object(out))
}

/// Deep-merges `patch` into `base` (objects merge, everything else replaces).
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// Applies `patch` (linux.resources JSON) to the container and records it in its state.
pub fn update(ctx: &Context, id: &str, patch: &Value) -> Result<(), RuntimeError> {
    let mut state = ctx.load(id)?;
    if ctx.status(&state) == Status::Stopped {
        return Err(RuntimeError::NotRunning);
    }
    let delta: LinuxResources =
        serde_json::from_value(patch.clone()).map_err(|e| bad("resources", &e.to_string()))?;
    ctx.cgroup(&state)?
        .set(&delta)
        .map_err(|e| RuntimeError::Cgroup(e.to_string()))?;
    let mut config =
        serde_json::to_value(&state.config).map_err(|e| bad("state", &e.to_string()))?;
    merge(&mut config, &json!({ "linux": { "resources": patch } }));
    state.config = serde_json::from_value(config).map_err(|e| bad("state", &e.to_string()))?;
    state.save(&ctx.root)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_use_binary_units_like_docker() {
        assert_eq!(parse_bytes("memory", "1024").expect("plain"), 1024);
        assert_eq!(parse_bytes("memory", "64m").expect("m"), 64 << 20);
        assert_eq!(parse_bytes("memory", "1G").expect("g"), 1 << 30);
        assert_eq!(parse_bytes("memory", "10kb").expect("kb"), 10 << 10);
        assert_eq!(parse_bytes("memory", "-1").expect("unlimited"), -1);
        assert!(parse_bytes("memory", "lots").is_err());
    }

    #[test]
    fn flags_become_only_the_resources_given() {
        let f = UpdateFlags {
            memory: Some("100m".into()),
            cpu_shares: Some("512".into()),
            pids_limit: Some("20".into()),
            ..Default::default()
        };
        let v = resources_from_flags(&f).expect("resources");
        assert_eq!(
            v,
            json!({"memory":{"limit":104857600},"cpu":{"shares":512},"pids":{"limit":20}})
        );
        let r: LinuxResources = serde_json::from_value(v).expect("valid LinuxResources");
        assert_eq!(r.pids().as_ref().map(|p| p.limit()), Some(20));
    }

    #[test]
    fn merge_keeps_untouched_fields() {
        let mut base = json!({"memory":{"limit":1,"swap":2},"cpu":{"shares":3}});
        merge(&mut base, &json!({"memory":{"limit":5}}));
        assert_eq!(
            base,
            json!({"memory":{"limit":5,"swap":2},"cpu":{"shares":3}})
        );
    }
}
