//! `create` / `run` flags and the `POST /containers/create` body they become, following
//! docker's `opts.parse`: Config, HostConfig and NetworkingConfig from the command line.

use std::collections::BTreeMap;

use clap::{ArgAction, Args};
use serde_json::{json, Map, Value};

#[derive(Args, Debug, Clone)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long)]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set meta data on a container
    #[arg(short, long)]
    pub label: Vec<String>,
    /// Connect a container to a network
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long)]
    pub ip6: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long, alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long)]
    pub mac_address: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Bind mount a volume
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long)]
    pub volumes_from: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Secret to expose at /run/secrets: name[,target=,uid=,gid=,mode=] (berth extension)
    #[arg(long)]
    pub secret: Vec<String>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    #[arg(long)]
    pub cap_add: Vec<String>,
    #[arg(long)]
    pub cap_drop: Vec<String>,
    #[arg(long)]
    pub security_opt: Vec<String>,
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Memory limit
    #[arg(short, long)]
    pub memory: Option<String>,
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<i64>,
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    #[arg(long)]
    pub domainname: Option<String>,
    #[arg(long)]
    pub stop_signal: Option<String>,
    #[arg(long)]
    pub stop_timeout: Option<i64>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    #[arg(long)]
    pub log_driver: Option<String>,
    #[arg(long)]
    pub log_opt: Vec<String>,
    #[arg(long)]
    pub health_cmd: Option<String>,
    #[arg(long)]
    pub health_interval: Option<String>,
    #[arg(long)]
    pub health_retries: Option<i64>,
    #[arg(long)]
    pub health_timeout: Option<String>,
    #[arg(long)]
    pub health_start_period: Option<String>,
    #[arg(long)]
    pub health_start_interval: Option<String>,
    /// Action when the container turns unhealthy: none, restart, stop or kill (berth only;
    /// sets the berth.health.on-unhealthy label, which the docker CLI can set with --label)
    #[arg(long)]
    pub health_on_unhealthy: Option<String>,
    #[arg(long)]
    pub no_healthcheck: bool,
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pub pull: String,
    #[arg(long)]
    pub runtime: Option<String>,
    /// Proxy received signals to the process
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    #[arg(long)]
    pub detach_keys: Option<String>,
    #[arg(long)]
    pub add_host: Vec<String>,
    #[arg(long)]
    pub dns: Vec<String>,
    #[arg(long)]
    pub dns_search: Vec<String>,
    #[arg(long, alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short, long)]
    pub attach: Vec<String>,
    #[arg(long)]
    pub shm_size: Option<String>,
    #[arg(long)]
    pub group_add: Vec<String>,
    #[arg(long)]
    pub device: Vec<String>,
    #[arg(long)]
    pub ipc: Option<String>,
    /// User namespace: host, auto (a fresh range from /etc/subuid) or
    /// map=<container>:<host>:<size>[,...] (u:/g: prefix for uids or gids only)
    #[arg(long)]
    pub userns: Option<String>,
    #[arg(long)]
    pub pid: Option<String>,
    #[arg(long)]
    pub uts: Option<String>,
    #[arg(long)]
    pub cgroupns: Option<String>,
    #[arg(long)]
    pub cgroup_parent: Option<String>,
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub oom_score_adj: i64,
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Write the container ID to the file
    #[arg(long)]
    pub cidfile: Option<String>,
    /// Suppress the pull output
    #[arg(short, long)]
    pub quiet: bool,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
    pub command: Vec<String>,
}

impl RunArgs {
    pub fn image(&self) -> &str {
        self.command.first().map(String::as_str).unwrap_or("")
    }
}

/// Errors in flag values, worded as docker's.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    #[error("invalid argument \"{value}\" for \"{flag}\" flag: {reason}")]
    Invalid {
        flag: String,
        value: String,
        reason: String,
    },
    #[error("open {path}: no such file or directory")]
    EnvFile { path: String },
    #[error("{0} is not a valid mac address")]
    MacAddress(String),
    #[error("conflicting options: cannot specify both {first} and {second}")]
    Conflict {
        first: &'static str,
        second: &'static str,
    },
}

fn invalid(flag: &str, value: &str, reason: &str) -> FlagError {
    FlagError::Invalid {
        flag: flag.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// `--ulimit name=soft[:hard]` flags as the API's `Ulimits` (shared by run/create and
/// build).
pub fn parse_ulimits(specs: &[String]) -> Result<Vec<serde_json::Value>, FlagError> {
    let mut ulimits = Vec::new();
    for spec in specs {
        let (name, limits) = spec
            .split_once('=')
            .ok_or_else(|| invalid("ulimit", spec, "invalid ulimit argument"))?;
        let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
        let soft: i64 = soft
            .parse()
            .map_err(|_| invalid("ulimit", spec, "invalid ulimit soft value"))?;
        let hard: i64 = hard
            .parse()
            .map_err(|_| invalid("ulimit", spec, "invalid ulimit hard value"))?;
        ulimits.push(json!({"Name": name, "Soft": soft, "Hard": hard}));
    }
    Ok(ulimits)
}

/// `--shm-size` and the like: go-units `RAMInBytes`, or the flag's error.
pub fn parse_size(flag: &str, text: &str) -> Result<i64, FlagError> {
    ram_in_bytes(text).ok_or_else(|| invalid(flag, text, "invalid size"))
}

/// go-units `RAMInBytes`: `512m`, `1g`, `1024` (binary multiples).
pub fn ram_in_bytes(text: &str) -> Option<i64> {
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let number: f64 = number.parse().ok()?;
    let multiplier: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    Some((number * multiplier) as i64)
}

/// Go's `time.ParseDuration` in nanoseconds (`1m30s`, `500ms`, `2h`).
pub fn go_duration(text: &str) -> Option<i64> {
    let mut rest = text.trim();
    if rest == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let split = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, after) = rest.split_at(split);
        let number: f64 = number.parse().ok()?;
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number * scale;
        rest = after;
    }
    Some(total as i64)
}

fn env_value(entry: &str) -> Option<String> {
    if entry.contains('=') {
        Some(entry.to_string())
    } else {
        std::env::var(entry)
            .ok()
            .map(|value| format!("{entry}={value}"))
    }
}

fn read_env_files(paths: &[String]) -> Result<Vec<String>, FlagError> {
    let mut out = Vec::new();
    for path in paths {
        let text =
            std::fs::read_to_string(path).map_err(|_| FlagError::EnvFile { path: path.clone() })?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.extend(env_value(line));
        }
    }
    Ok(out)
}

/// `[ip:][hostPort:]containerPort[/proto]` into (port key, binding).
fn parse_publish(spec: &str) -> Result<Vec<(String, Option<Value>)>, FlagError> {
    let (body, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    let parts: Vec<&str> = if body.starts_with('[') {
        let close = body
            .find(']')
            .ok_or_else(|| invalid("publish", spec, "invalid IP"))?;
        let ip = &body[1..close];
        let rest: Vec<&str> = body[close + 1..]
            .trim_start_matches(':')
            .split(':')
            .collect();
        std::iter::once(ip).chain(rest).collect()
    } else {
        body.split(':').collect()
    };
    let (ip, host, container) = match parts.as_slice() {
        [container] => ("", "", *container),
        [host, container] => ("", *host, *container),
        [ip, host, container] => (*ip, *host, *container),
        _ => return Err(invalid("publish", spec, "invalid port format")),
    };
    let range = |text: &str| -> Result<(u32, u32), FlagError> {
        let (start, end) = text.split_once('-').unwrap_or((text, text));
        let start: u32 = start.parse().map_err(|_| {
            invalid(
                "publish",
                spec,
                &format!("invalid containerPort: {container}"),
            )
        })?;
        let end: u32 = end.parse().map_err(|_| {
            invalid(
                "publish",
                spec,
                &format!("invalid containerPort: {container}"),
            )
        })?;
        Ok((start, end))
    };
    let (start, end) = range(container)?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(range(host)?)
    };
    let mut out = Vec::new();
    for (i, port) in (start..=end).enumerate() {
        let key = format!("{port}/{proto}");
        let host_port = match host_range {
            Some((hs, he)) if he > hs && he - hs == end - start => (hs + i as u32).to_string(),
            Some((hs, he)) if he > hs => format!("{hs}-{he}"),
            Some((hs, _)) => hs.to_string(),
            None => String::new(),
        };
        out.push((key, Some(json!({"HostIp": ip, "HostPort": host_port}))));
    }
    Ok(out)
}

fn parse_mount(spec: &str) -> Result<Value, FlagError> {
    let mut mount = Map::new();
    let mut kind = "volume".to_string();
    let mut tmpfs = Map::new();
    let mut volume: Option<Value> = None;
    for field in spec.split(',') {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        match key.to_ascii_lowercase().as_str() {
            "type" => kind = value.to_string(),
            "source" | "src" => {
                mount.insert("Source".into(), json!(value));
            }
            "target" | "destination" | "dst" => {
                mount.insert("Target".into(), json!(value));
            }
            "readonly" | "ro" => {
                mount.insert(
                    "ReadOnly".into(),
                    json!(value.is_empty() || value == "true" || value == "1"),
                );
            }
            "tmpfs-size" => {
                tmpfs.insert("SizeBytes".into(), json!(ram_in_bytes(value).unwrap_or(0)));
            }
            "tmpfs-mode" => {
                tmpfs.insert(
                    "Mode".into(),
                    json!(u32::from_str_radix(value, 8).unwrap_or(0)),
                );
            }
            "bind-propagation" => {
                mount.insert("BindOptions".into(), json!({"Propagation": value}));
            }
            "consistency" => {
                mount.insert("Consistency".into(), json!(value));
            }
            "bind-nonrecursive" => {
                let options = mount.entry("BindOptions").or_insert_with(|| json!({}));
                options["NonRecursive"] =
                    json!(value.is_empty() || value == "true" || value == "1");
            }
            "volume-nocopy" | "volume-subpath" | "volume-driver" | "volume-label"
            | "volume-opt" => {
                let options = volume.get_or_insert_with(|| json!({}));
                match key.to_ascii_lowercase().as_str() {
                    "volume-nocopy" => {
                        options["NoCopy"] =
                            json!(value.is_empty() || value == "true" || value == "1")
                    }
                    "volume-subpath" => options["Subpath"] = json!(value),
                    "volume-driver" => options["DriverConfig"]["Name"] = json!(value),
                    "volume-label" => {
                        let (k, v) = value.split_once('=').unwrap_or((value, ""));
                        options["Labels"][k] = json!(v);
                    }
                    _ => {
                        let (k, v) = value.split_once('=').unwrap_or((value, ""));
                        options["DriverConfig"]["Options"][k] = json!(v);
                    }
                }
            }
            _ => {
                return Err(invalid(
                    "mount",
                    spec,
                    &format!("unexpected key '{key}' in '{field}'"),
                ))
            }
        }
    }
    if !mount.contains_key("Target") {
        return Err(invalid("mount", spec, "target is required"));
    }
    mount.insert("Type".into(), json!(kind));
    if !tmpfs.is_empty() {
        mount.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    if let Some(volume) = volume {
        mount.insert("VolumeOptions".into(), volume);
    }
    Ok(Value::Object(mount))
}

fn key_values(entries: &[String]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|entry| match entry.split_once('=') {
            Some((key, value)) => (key.to_string(), value.to_string()),
            None => (entry.to_string(), String::new()),
        })
        .collect()
}

/// `--label` values plus `berth.health.on-unhealthy` from `--health-on-unhealthy`.
fn labels_with_health_action(
    labels: &[String],
    action: &Option<String>,
) -> BTreeMap<String, String> {
    let mut labels = labels.to_vec();
    if let Some(action) = action {
        labels.push(format!("berth.health.on-unhealthy={action}"));
    }
    key_values(&labels)
}

fn duration_flag(flag: &str, value: &Option<String>) -> Result<i64, FlagError> {
    match value {
        None => Ok(0),
        Some(text) => go_duration(text)
            .ok_or_else(|| invalid(flag, text, &format!("time: invalid duration \"{text}\""))),
    }
}

/// Builds the create body (`Config` with `HostConfig` and `NetworkingConfig`).
pub fn create_body(args: &RunArgs) -> Result<Value, FlagError> {
    if args.rm
        && args
            .restart
            .as_deref()
            .is_some_and(|policy| !policy.is_empty() && policy != "no")
    {
        return Err(FlagError::Conflict {
            first: "--restart",
            second: "--rm",
        });
    }
    let image = args.image().to_string();
    let command: Vec<String> = args.command.iter().skip(1).cloned().collect();
    let mut env = read_env_files(&args.env_file)?;
    env.extend(args.env.iter().filter_map(|entry| env_value(entry)));
    let attach: Vec<String> = args.attach.iter().map(|a| a.to_ascii_lowercase()).collect();
    let (attach_stdin, attach_stdout, attach_stderr) = if args.detach {
        (false, false, false)
    } else if attach.is_empty() {
        (args.interactive, true, true)
    } else {
        (
            attach.iter().any(|a| a == "stdin"),
            attach.iter().any(|a| a == "stdout"),
            attach.iter().any(|a| a == "stderr"),
        )
    };
    let mut exposed = Map::new();
    let mut bindings = Map::new();
    for spec in &args.publish {
        for (key, binding) in parse_publish(spec)? {
            exposed.insert(key.clone(), json!({}));
            let list = bindings.entry(key).or_insert_with(|| json!([]));
            if let (Some(binding), Some(list)) = (binding, list.as_array_mut()) {
                list.push(binding);
            }
        }
    }
    for spec in &args.expose {
        let (port, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
        exposed.insert(format!("{port}/{proto}"), json!({}));
    }
    let mut binds = Vec::new();
    let mut volumes = Map::new();
    for spec in &args.volume {
        if spec.contains(':') {
            binds.push(json!(spec));
        } else {
            volumes.insert(spec.clone(), json!({}));
        }
    }
    let mounts = args
        .mount
        .iter()
        .map(|spec| parse_mount(spec))
        .collect::<Result<Vec<_>, _>>()?;
    let tmpfs: Map<String, Value> = args
        .tmpfs
        .iter()
        .map(|spec| match spec.split_once(':') {
            Some((path, options)) => (path.to_string(), json!(options)),
            None => (spec.clone(), json!("")),
        })
        .collect();
    let restart = match args.restart.as_deref() {
        None | Some("") | Some("no") => json!({"Name": "no", "MaximumRetryCount": 0}),
        Some(policy) => {
            let (name, count) = policy.split_once(':').unwrap_or((policy, "0"));
            let count: i64 = count.parse().map_err(|_| {
                invalid("restart", policy, "maximum retry count must be an integer")
            })?;
            json!({"Name": name, "MaximumRetryCount": count})
        }
    };
    let ulimits = parse_ulimits(&args.ulimit)?;
    let memory = match &args.memory {
        Some(text) => ram_in_bytes(text).ok_or_else(|| invalid("memory", text, "invalid size"))?,
        None => 0,
    };
    let memory_swap = match args.memory_swap.as_deref() {
        Some("-1") => -1,
        Some(text) => {
            ram_in_bytes(text).ok_or_else(|| invalid("memory-swap", text, "invalid size"))?
        }
        None => 0,
    };
    let shm_size = match &args.shm_size {
        Some(text) => {
            ram_in_bytes(text).ok_or_else(|| invalid("shm-size", text, "invalid size"))?
        }
        None => 0,
    };
    let healthcheck = if args.no_healthcheck {
        Some(json!({"Test": ["NONE"]}))
    } else if args.health_cmd.is_some()
        || args.health_interval.is_some()
        || args.health_retries.is_some()
        || args.health_timeout.is_some()
        || args.health_start_period.is_some()
        || args.health_start_interval.is_some()
    {
        let test = args
            .health_cmd
            .as_ref()
            .map(|cmd| json!(["CMD-SHELL", cmd]))
            .unwrap_or(Value::Null);
        Some(json!({
            "Test": test,
            "Interval": duration_flag("health-interval", &args.health_interval)?,
            "Timeout": duration_flag("health-timeout", &args.health_timeout)?,
            "StartPeriod": duration_flag("health-start-period", &args.health_start_period)?,
            "StartInterval": duration_flag("health-start-interval", &args.health_start_interval)?,
            "Retries": args.health_retries.unwrap_or(0),
        }))
    } else {
        None
    };
    let network = args
        .network
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let mut config = json!({
        "Hostname": args.hostname.clone().unwrap_or_default(),
        "Domainname": args.domainname.clone().unwrap_or_default(),
        "User": args.user.clone().unwrap_or_default(),
        "AttachStdin": attach_stdin,
        "AttachStdout": attach_stdout,
        "AttachStderr": attach_stderr,
        "Tty": args.tty,
        "OpenStdin": args.interactive,
        "StdinOnce": args.interactive && attach_stdin,
        "Env": env,
        "Cmd": if command.is_empty() { Value::Null } else { json!(command) },
        "Image": image,
        "Volumes": volumes,
        "WorkingDir": args.workdir.clone().unwrap_or_default(),
        "Entrypoint": match &args.entrypoint { Some(e) if e.is_empty() => json!([""]), Some(e) => json!([e]), None => Value::Null },
        "OnBuild": null,
        "Labels": labels_with_health_action(&args.label, &args.health_on_unhealthy),
    });
    let object = config
        .as_object_mut()
        .expect("invariant: json! object literal");
    if !exposed.is_empty() {
        object.insert("ExposedPorts".into(), Value::Object(exposed));
    }
    if let Some(signal) = &args.stop_signal {
        object.insert("StopSignal".into(), json!(signal));
    }
    if let Some(timeout) = args.stop_timeout {
        object.insert("StopTimeout".into(), json!(timeout));
    }
    if let Some(healthcheck) = healthcheck {
        object.insert("Healthcheck".into(), healthcheck);
    }
    let devices: Vec<Value> = args
        .device
        .iter()
        .map(|spec| {
            let parts: Vec<&str> = spec.split(':').collect();
            let host = parts[0];
            let container = parts.get(1).copied().unwrap_or(host);
            let permissions = parts.get(2).copied().unwrap_or("rwm");
            json!({"PathOnHost": host, "PathInContainer": container, "CgroupPermissions": permissions})
        })
        .collect();
    let host_config = json!({
        "Binds": if binds.is_empty() { Value::Null } else { json!(binds) },
        "ContainerIDFile": args.cidfile.clone().unwrap_or_default(),
        "LogConfig": {"Type": args.log_driver.clone().unwrap_or_default(), "Config": key_values(&args.log_opt)},
        "NetworkMode": network,
        "PortBindings": bindings,
        "RestartPolicy": restart,
        "AutoRemove": args.rm,
        "Mounts": mounts,
        "VolumesFrom": args.volumes_from,
        "CapAdd": args.cap_add,
        "CapDrop": args.cap_drop,
        "CgroupnsMode": args.cgroupns.clone().unwrap_or_default(),
        "Dns": args.dns,
        "DnsOptions": args.dns_option,
        "DnsSearch": args.dns_search,
        "ExtraHosts": args.add_host,
        "GroupAdd": args.group_add,
        "IpcMode": args.ipc.clone().unwrap_or_default(),
        "PidMode": args.pid.clone().unwrap_or_default(),
        "UTSMode": args.uts.clone().unwrap_or_default(),
        "UsernsMode": args.userns.clone().unwrap_or_default(),
        "Privileged": args.privileged,
        "PublishAllPorts": args.publish_all,
        "ReadonlyRootfs": args.read_only,
        "SecurityOpt": args.security_opt,
        "Tmpfs": if tmpfs.is_empty() { Value::Null } else { Value::Object(tmpfs) },
        "ShmSize": shm_size,
        "Runtime": args.runtime.clone().unwrap_or_default(),
        "Init": if args.init { json!(true) } else { Value::Null },
        "Sysctls": key_values(&args.sysctl),
        "CgroupParent": args.cgroup_parent.clone().unwrap_or_default(),
        "CpuShares": args.cpu_shares.unwrap_or(0),
        "Memory": memory,
        "MemorySwap": memory_swap,
        "NanoCpus": args.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
        "PidsLimit": args.pids_limit,
        "Ulimits": ulimits,
        "Devices": devices,
        "OomKillDisable": args.oom_kill_disable,
        "OomScoreAdj": args.oom_score_adj,
    });
    object.insert("HostConfig".into(), host_config);
    if !args.secret.is_empty() {
        let secrets = args
            .secret
            .iter()
            .map(|flag| {
                super::secret::parse_secret_flag(flag).map_err(|e| invalid("--secret", flag, &e))
            })
            .collect::<Result<Vec<Value>, FlagError>>()?;
        object["HostConfig"]["BerthSecrets"] = Value::Array(secrets);
    }
    object.insert(
        "NetworkingConfig".into(),
        crate::commands::network::endpoints_config(
            &network,
            &args.ip,
            &args.ip6,
            &args.network_alias,
            &args.mac_address,
        )?,
    );
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: RunArgs,
    }

    fn parse(line: &[&str]) -> RunArgs {
        Wrapper::try_parse_from(std::iter::once("run").chain(line.iter().copied()))
            .expect("parse")
            .args
    }

    #[test]
    fn flags_after_the_image_belong_to_the_command() {
        let args = parse(&["--rm", "-e", "A=1", "busybox", "sh", "-c", "echo -n hi"]);
        assert_eq!(args.command, vec!["busybox", "sh", "-c", "echo -n hi"]);
        let body = create_body(&args).expect("body");
        assert_eq!(body["Image"], "busybox");
        assert_eq!(body["Cmd"], json!(["sh", "-c", "echo -n hi"]));
        assert_eq!(body["Env"], json!(["A=1"]));
        assert_eq!(body["HostConfig"]["AutoRemove"], true);
        assert_eq!(body["AttachStdout"], true);
        assert_eq!(body["AttachStdin"], false);
    }

    #[test]
    fn resources_ports_and_policies_become_host_config() {
        let args = parse(&[
            "-d",
            "-p",
            "127.0.0.1:8080:80/udp",
            "-p",
            "9000-9001:90-91",
            "-m",
            "512m",
            "--cpus",
            "1.5",
            "--restart",
            "on-failure:3",
            "--ulimit",
            "nofile=1024:2048",
            "--tmpfs",
            "/run:size=64m",
            "--mount",
            "type=bind,source=/src,target=/dst,readonly",
            "-h",
            "box",
            "--sig-proxy=false",
            "--health-cmd",
            "true",
            "--health-interval",
            "1m30s",
            "--oom-score-adj",
            "-500",
            "busybox",
        ]);
        assert!(!args.sig_proxy);
        let body = create_body(&args).expect("body");
        let host = &body["HostConfig"];
        assert_eq!(
            host["PortBindings"]["80/udp"],
            json!([{"HostIp": "127.0.0.1", "HostPort": "8080"}])
        );
        assert_eq!(
            host["PortBindings"]["91/tcp"],
            json!([{"HostIp": "", "HostPort": "9001"}])
        );
        assert_eq!(host["Memory"], 512 * 1024 * 1024);
        assert_eq!(host["NanoCpus"], 1_500_000_000i64);
        assert_eq!(
            host["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(
            host["Ulimits"],
            json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}])
        );
        assert_eq!(host["Tmpfs"], json!({"/run": "size=64m"}));
        assert_eq!(
            host["Mounts"],
            json!([{"Type": "bind", "Source": "/src", "Target": "/dst", "ReadOnly": true}])
        );
        assert_eq!(host["OomScoreAdj"], -500);
        assert_eq!(body["Hostname"], "box");
        assert_eq!(body["AttachStdout"], false);
        assert_eq!(body["Healthcheck"]["Interval"], 90_000_000_000i64);
        assert_eq!(body["Cmd"], Value::Null);
    }

    #[test]
    fn units_parse_like_go() {
        assert_eq!(ram_in_bytes("1g"), Some(1 << 30));
        assert_eq!(ram_in_bytes("100"), Some(100));
        assert_eq!(ram_in_bytes("64MB"), Some(64 << 20));
        assert_eq!(ram_in_bytes("x"), None);
        assert_eq!(go_duration("500ms"), Some(500_000_000));
        assert_eq!(go_duration("2h"), Some(7_200_000_000_000));
        assert_eq!(go_duration("5"), None);
    }
}
