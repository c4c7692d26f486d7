//! `info`: the daemon's `/info` printed in the layout of docker's `prettyPrintInfo`
//! (client section, then the server section with its nested lists), or a template.

use clap::Args;

use crate::app::App;
use crate::format::units::bytes_size;
use crate::format::{Template, Value};

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
}

pub async fn info(app: &App, args: InfoArgs) -> anyhow::Result<()> {
    let raw = app.client.get_raw("/info").await?;
    let info = Value::parse(&raw)?;
    if let Some(format) = &args.format {
        let format = if format == "json" {
            "{{json .}}"
        } else {
            format
        };
        let text = Template::parse(format)?.execute(&info)?;
        return app.print(&format!("{text}\n"));
    }
    let mut out = format!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n\nServer:\n",
        env!("CARGO_PKG_VERSION")
    );
    out.push_str(&server_info(&info));
    app.print(&out)?;
    if let Some(Value::Array(warnings)) = info.field("Warnings") {
        for warning in warnings {
            eprintln!("{warning}");
        }
    }
    Ok(())
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().map(|v| v.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// docker's `prettyPrintServerInfo`, for the fields a non-swarm daemon reports.
pub fn server_info(info: &Value) -> String {
    let text = |key: &str| info.field(key).map(|v| v.to_string()).unwrap_or_default();
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(" Containers: {}", text("Containers")));
    line(format!("  Running: {}", text("ContainersRunning")));
    line(format!("  Paused: {}", text("ContainersPaused")));
    line(format!("  Stopped: {}", text("ContainersStopped")));
    line(format!(" Images: {}", text("Images")));
    line(format!(" Server Version: {}", text("ServerVersion")));
    line(format!(" Storage Driver: {}", text("Driver")));
    if let Some(Value::Array(pairs)) = info.field("DriverStatus") {
        for pair in pairs {
            if let Value::Array(kv) = pair {
                if let [key, value] = kv.as_slice() {
                    line(format!("  {key}: {value}"));
                }
            }
        }
    }
    line(format!(" Logging Driver: {}", text("LoggingDriver")));
    line(format!(" Cgroup Driver: {}", text("CgroupDriver")));
    if !text("CgroupVersion").is_empty() {
        line(format!(" Cgroup Version: {}", text("CgroupVersion")));
    }
    line(" Plugins:".to_string());
    let plugins = info.field("Plugins");
    for (label, key) in [
        ("Volume", "Volume"),
        ("Network", "Network"),
        ("Authorization", "Authorization"),
        ("Log", "Log"),
    ] {
        let names = strings(plugins.and_then(|p| p.field(key)));
        if !names.is_empty() || label != "Authorization" {
            line(format!("  {label}: {}", names.join(" ")));
        }
    }
    let swarm = info
        .field("Swarm")
        .map(|s| s.text("LocalNodeState").to_string())
        .unwrap_or_default();
    line(format!(" Swarm: {swarm}"));
    if let Some(Value::Object(runtimes)) = info.field("Runtimes") {
        let mut names: Vec<&str> = runtimes.iter().map(|(k, _)| k.as_str()).collect();
        names.sort();
        line(format!(" Runtimes: {}", names.join(" ")));
        line(format!(" Default Runtime: {}", text("DefaultRuntime")));
    }
    line(format!(" Init Binary: {}", text("InitBinary")));
    for (label, key) in [
        ("containerd", "ContainerdCommit"),
        ("runc", "RuncCommit"),
        ("init", "InitCommit"),
    ] {
        let id = info
            .field(key)
            .map(|c| c.text("ID").to_string())
            .unwrap_or_default();
        line(format!(" {label} version: {id}"));
    }
    let security = strings(info.field("SecurityOptions"));
    if !security.is_empty() {
        line(" Security Options:".to_string());
        for option in security {
            for field in option.split(',') {
                let (key, value) = field.split_once('=').unwrap_or(("name", field));
                if key == "name" {
                    line(format!("  {value}"));
                } else {
                    let mut title = key.to_string();
                    if let Some(first) = title.get_mut(0..1) {
                        first.make_ascii_uppercase();
                    }
                    line(format!("   {title}: {value}"));
                }
            }
        }
    }
    for (label, key) in [
        ("Kernel Version", "KernelVersion"),
        ("Operating System", "OperatingSystem"),
        ("OSType", "OSType"),
        ("Architecture", "Architecture"),
        ("CPUs", "NCPU"),
    ] {
        line(format!(" {label}: {}", text(key)));
    }
    line(format!(
        " Total Memory: {}",
        bytes_size(info.int("MemTotal") as f64)
    ));
    for (label, key) in [
        ("Name", "Name"),
        ("ID", "ID"),
        ("Docker Root Dir", "DockerRootDir"),
        ("Debug Mode", "Debug"),
    ] {
        line(format!(" {label}: {}", text(key)));
    }
    for (label, key) in [
        ("HTTP Proxy", "HttpProxy"),
        ("HTTPS Proxy", "HttpsProxy"),
        ("No Proxy", "NoProxy"),
    ] {
        if !text(key).is_empty() {
            line(format!(" {label}: {}", text(key)));
        }
    }
    let labels = strings(info.field("Labels"));
    if !labels.is_empty() {
        line(" Labels:".to_string());
        for label in labels {
            line(format!("  {label}"));
        }
    }
    line(format!(" Experimental: {}", text("ExperimentalBuild")));
    let registry = info.field("RegistryConfig");
    let mut insecure = Vec::new();
    if let Some(Value::Object(indexes)) = registry.and_then(|r| r.field("IndexConfigs")) {
        for (_, index) in indexes {
            if !index.field("Secure").is_some_and(Value::truthy)
                && index.text("Name") != "docker.io"
            {
                insecure.push(index.text("Name").to_string());
            }
        }
    }
    if let Some(Value::Array(cidrs)) = registry.and_then(|r| r.field("InsecureRegistryCIDRs")) {
        for cidr in cidrs {
            // A CIDR string ("127.0.0.0/8"), or Go's net.IPNet object on older daemons.
            match cidr {
                Value::Str(text) => insecure.push(text.clone()),
                other => {
                    let ones: u32 = super::registry::decode_base64_bytes(other.text("Mask"))
                        .unwrap_or_default()
                        .iter()
                        .map(|b| b.count_ones())
                        .sum();
                    insecure.push(format!("{}/{ones}", other.text("IP")));
                }
            }
        }
    }
    if !insecure.is_empty() {
        line(" Insecure Registries:".to_string());
        for name in insecure {
            line(format!("  {name}"));
        }
    }
    let mirrors = strings(registry.and_then(|r| r.field("Mirrors")));
    if !mirrors.is_empty() {
        line(" Registry Mirrors:".to_string());
        for mirror in mirrors {
            line(format!("  {mirror}"));
        }
    }
    line(format!(
        " Live Restore Enabled: {}",
        text("LiveRestoreEnabled")
    ));
    out.push('\n');
    out
}
