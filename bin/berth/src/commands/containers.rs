//! `ps`, `top` and `port` (`stats` lives in its own module): reading containers and printing them
//! with docker's columns.

use clap::Args;

use crate::app::App;
use crate::format::units::{ago, human_size_precision};
use crate::format::{
    ellipsis, go_quote, object, time::go_time_string, truncate_id, ListFormat, Value,
};

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Filter output based on conditions provided
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
}

const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

fn ps_header() -> Value {
    object(
        [
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("CreatedAt", "CREATED AT"),
            ("RunningFor", "CREATED"),
            ("Ports", "PORTS"),
            ("State", "STATE"),
            ("Status", "STATUS"),
            ("Size", "SIZE"),
            ("Names", "NAMES"),
            ("Labels", "LABELS"),
            ("Mounts", "MOUNTS"),
            ("LocalVolumes", "LOCAL VOLUMES"),
            ("Networks", "NETWORKS"),
            ("Platform", "PLATFORM"),
        ]
        .map(|(k, v)| (k, Value::str(v))),
    )
}

pub async fn ps(app: &App, args: PsArgs) -> anyhow::Result<()> {
    let format = match (&args.format, args.quiet) {
        (_, true) => "{{.ID}}".to_string(),
        (Some(format), false) => format.clone(),
        (None, false) if args.size => format!("{PS_TABLE}\t{{{{.Size}}}}"),
        (None, false) => PS_TABLE.to_string(),
    };
    let json_all = format == "json" || format.contains("{{json .}}");
    let size = args.size || format.contains(".Size") || json_all;
    let mut pairs: Vec<(&'static str, String)> = Vec::new();
    if args.all || args.latest || args.last > 0 {
        pairs.push(("all", "1".into()));
    }
    if args.latest {
        pairs.push(("limit", "1".into()));
    } else if args.last > 0 {
        pairs.push(("limit", args.last.to_string()));
    }
    if size {
        pairs.push(("size", "1".into()));
    }
    super::push_filters(&mut pairs, &super::filters(&args.filter)?)?;
    let path = format!("/containers/json{}", berth_client::query(&pairs));
    let raw = app.client.get_raw(&path).await?;
    let output = render_ps(&raw, &format, !args.no_trunc)?;
    app.print(&output)
}

/// Renders a `/containers/json` answer with a `ps` format.
pub fn render_ps(raw: &[u8], format: &str, trunc: bool) -> anyhow::Result<String> {
    let rows: Vec<Value> = match Value::parse(raw)? {
        Value::Array(items) => items.iter().map(|c| ps_row(c, trunc)).collect(),
        _ => Vec::new(),
    };
    Ok(ListFormat::new(Some(format), PS_TABLE).render(&ps_header(), &rows)?)
}

/// docker's `ContainerContext` fields of one container summary.
fn ps_row(container: &Value, trunc: bool) -> Value {
    let id = container.text("Id");
    let command = container.text("Command");
    let command = if trunc {
        ellipsis(command, 20)
    } else {
        command.to_string()
    };
    let created = container.int("Created");
    let names: Vec<String> = container
        .strings("Names")
        .into_iter()
        .map(|name| name.strip_prefix('/').unwrap_or(&name).to_string())
        .collect();
    let names = if trunc {
        names
            .iter()
            .find(|name| !name.contains('/'))
            .map(|name| vec![name.clone()])
            .unwrap_or(names)
    } else {
        names
    };
    let mut labels: Vec<String> = match container.field("Labels") {
        Some(Value::Object(fields)) => fields.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        _ => Vec::new(),
    };
    labels.sort();
    let (mounts, local_volumes) = mount_names(container, trunc);
    let mut networks: Vec<String> = match container
        .field("NetworkSettings")
        .and_then(|n| n.field("Networks"))
    {
        Some(Value::Object(fields)) => fields.iter().map(|(k, _)| k.clone()).collect(),
        _ => Vec::new(),
    };
    networks.sort();
    let size_rw = container.int("SizeRw");
    let size_root = container.int("SizeRootFs");
    let mut size = human_size_precision(size_rw as f64, 3);
    if size_root > 0 {
        size = format!(
            "{size} (virtual {})",
            human_size_precision(size_root as f64, 3)
        );
    }
    object([
        ("Command", Value::Str(go_quote(&command))),
        ("CreatedAt", Value::Str(go_time_string(created))),
        (
            "ID",
            Value::Str(if trunc {
                truncate_id(id)
            } else {
                id.to_string()
            }),
        ),
        ("Image", Value::Str(image_column(container, trunc))),
        ("Labels", Value::Str(labels.join(","))),
        ("LocalVolumes", Value::Str(local_volumes.to_string())),
        ("Mounts", Value::Str(mounts.join(","))),
        ("Names", Value::Str(names.join(","))),
        ("Networks", Value::Str(networks.join(","))),
        (
            "Platform",
            container
                .field("ImageManifestDescriptor")
                .and_then(|d| d.field("platform"))
                .cloned()
                .unwrap_or(Value::Null),
        ),
        (
            "Ports",
            Value::Str(displayable_ports(container.field("Ports"))),
        ),
        ("RunningFor", Value::Str(ago(created as f64))),
        ("Size", Value::Str(size)),
        ("State", Value::str(container.text("State"))),
        ("Status", Value::str(container.text("Status"))),
    ])
}

fn mount_names(container: &Value, trunc: bool) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut local = 0;
    if let Some(Value::Array(mounts)) = container.field("Mounts") {
        for mount in mounts {
            if mount.text("Driver") == "local" {
                local += 1;
            }
            let name = if mount.text("Name").is_empty() {
                mount.text("Source")
            } else {
                mount.text("Name")
            };
            names.push(if trunc {
                ellipsis(name, 15)
            } else {
                name.to_string()
            });
        }
    }
    (names, local)
}

/// docker's `Image()` column: a short ID when the image was given by ID, the familiar
/// name (digest dropped) otherwise.
fn image_column(container: &Value, trunc: bool) -> String {
    let image = container.text("Image");
    if image.is_empty() {
        return "<no image>".to_string();
    }
    if !trunc {
        return image.to_string();
    }
    let image_id = container.text("ImageID");
    if truncate_id(image_id) == truncate_id(image) {
        return truncate_id(image);
    }
    let name = image.split_once('@').map(|(name, _)| name).unwrap_or(image);
    familiar(name)
}

/// A reference without docker.io's implicit parts.
pub fn familiar(name: &str) -> String {
    let name = name.strip_prefix("docker.io/").unwrap_or(name);
    name.strip_prefix("library/").unwrap_or(name).to_string()
}

/// docker's `DisplayablePorts`: `0.0.0.0:8080->80/tcp, 443/tcp`, consecutive ranges merged.
pub fn displayable_ports(ports: Option<&Value>) -> String {
    let Some(Value::Array(ports)) = ports else {
        return String::new();
    };
    let mut entries: Vec<(String, i64, i64, String)> = ports
        .iter()
        .map(|p| {
            (
                p.text("IP").to_string(),
                p.int("PublicPort"),
                p.int("PrivatePort"),
                p.text("Type").to_string(),
            )
        })
        .collect();
    entries.sort_by_key(|a| (a.3.clone(), a.2, a.0.clone()));
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        let (ip, public, private, kind) = entries[i].clone();
        let mut j = i;
        while j + 1 < entries.len() {
            let next = &entries[j + 1];
            let step = (j + 1 - i) as i64;
            if next.0 == ip
                && next.3 == kind
                && next.2 == private + step
                && (public == 0 || next.1 == public + step)
                && (public != 0 || next.1 == 0)
            {
                j += 1;
            } else {
                break;
            }
        }
        let last_private = entries[j].2;
        let last_public = entries[j].1;
        let private_text = if j > i {
            format!("{private}-{last_private}")
        } else {
            private.to_string()
        };
        if public != 0 {
            let public_text = if j > i {
                format!("{public}-{last_public}")
            } else {
                public.to_string()
            };
            let host = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip
            };
            out.push(format!("{host}:{public_text}->{private_text}/{kind}"));
        } else {
            out.push(format!("{private_text}/{kind}"));
        }
        i = j + 1;
    }
    out.join(", ")
}

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
    /// ps options
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub async fn top(app: &App, args: TopArgs) -> anyhow::Result<()> {
    let mut pairs = Vec::new();
    if !args.ps_args.is_empty() {
        pairs.push(("ps_args", args.ps_args.join(" ")));
    }
    let path = format!(
        "/containers/{}/top{}",
        super::segment(&args.container),
        berth_client::query(&pairs)
    );
    let top: serde_json::Value = app.client.get_json(&path).await?;
    let mut text = String::new();
    let titles: Vec<String> = top["Titles"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t.as_str().unwrap_or("").to_string())
        .collect();
    text.push_str(&titles.join("\t"));
    text.push('\n');
    for process in top["Processes"].as_array().into_iter().flatten() {
        let cells: Vec<&str> = process
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c.as_str().unwrap_or(""))
            .collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    app.print(&crate::format::tabwriter::align(&text, 20, 1))
}

pub use super::stats::{stats, StatsArgs};

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

pub async fn port(app: &App, args: PortArgs) -> anyhow::Result<()> {
    let path = format!("/containers/{}/json", super::segment(&args.container));
    let inspect: serde_json::Value = app.client.get_json(&path).await?;
    let ports = inspect
        .pointer("/NetworkSettings/Ports")
        .and_then(|p| p.as_object())
        .cloned()
        .unwrap_or_default();
    let mut keys: Vec<&String> = ports.keys().collect();
    keys.sort();
    let mut out = String::new();
    if let Some(wanted) = &args.port {
        let wanted = if wanted.contains('/') {
            wanted.clone()
        } else {
            format!("{wanted}/tcp")
        };
        let bindings = ports
            .get(&wanted)
            .and_then(|b| b.as_array())
            .filter(|b| !b.is_empty());
        let Some(bindings) = bindings else {
            anyhow::bail!(
                "Error: No public port '{}' published for {}",
                args.port.as_deref().unwrap_or_default(),
                args.container
            );
        };
        for binding in bindings {
            out.push_str(&format!(
                "{}:{}\n",
                binding["HostIp"].as_str().unwrap_or(""),
                binding["HostPort"].as_str().unwrap_or("")
            ));
        }
        return app.print(&out);
    }
    for key in keys {
        for binding in ports[key].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "{key} -> {}:{}\n",
                binding["HostIp"].as_str().unwrap_or(""),
                binding["HostPort"].as_str().unwrap_or("")
            ));
        }
    }
    app.print(&out)
}
