//! Smaller object commands: `volume` and `network` (ls, create, rm, inspect, prune),
//! `history`, `diff`, `export` and `commit`.

use std::io::{IsTerminal, Write};

use berth_client::{Method, RequestBody};
use clap::{Args, Subcommand};

use super::{for_each, segment};
use crate::app::{App, StatusError};
use crate::format::units::{ago, human_size_precision};
use crate::format::{ellipsis, object, truncate_id, ListFormat, Value};

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// List volumes
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Create a volume
    Create(VolumeCreateArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RemoveArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectNamesArgs),
    /// Remove unused local volumes
    Prune(ObjectPruneArgs),
}

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// List networks
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Create a network
    Create(NetworkCreateArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RemoveArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectNamesArgs),
    /// Remove all unused networks
    Prune(ObjectPruneArgs),
    /// Connect a container to a network
    Connect(super::network::ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(super::network::DisconnectArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(short, long)]
    pub filter: Vec<String>,
    #[arg(long)]
    pub format: Option<String>,
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Args, Debug)]
pub struct VolumeCreateArgs {
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    #[arg(long)]
    pub label: Vec<String>,
    #[arg(short, long)]
    pub opt: Vec<String>,
    #[arg(long = "name")]
    pub name_flag: Option<String>,
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct NetworkCreateArgs {
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    #[arg(long)]
    pub label: Vec<String>,
    #[arg(short, long)]
    pub opt: Vec<String>,
    #[arg(long)]
    pub internal: bool,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    pub subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long)]
    pub ip_range: Vec<String>,
    /// Enable or disable IPv6 networking
    #[arg(long)]
    pub ipv6: bool,
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InspectNamesArgs {
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ObjectPruneArgs {
    #[arg(short, long)]
    pub force: bool,
    #[arg(short, long)]
    pub all: bool,
    #[arg(long)]
    pub filter: Vec<String>,
}

fn key_values(entries: &[String]) -> serde_json::Map<String, serde_json::Value> {
    entries
        .iter()
        .map(|entry| {
            let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
            (k.to_string(), serde_json::Value::from(v))
        })
        .collect()
}

fn header(pairs: &[(&str, &str)]) -> Value {
    object(pairs.iter().map(|(k, v)| (*k, Value::str(*v))))
}

pub async fn volume(app: &App, command: VolumeCommand) -> anyhow::Result<()> {
    match command {
        VolumeCommand::Ls(args) => {
            let listed = super::get_filtered(app, "/volumes", &args.filter).await?;
            let mut volumes = match listed.field("Volumes") {
                Some(Value::Array(items)) => items.clone(),
                _ => Vec::new(),
            };
            volumes.sort_by(|a, b| a.text("Name").cmp(b.text("Name")));
            let rows: Vec<Value> = volumes
                .iter()
                .map(|v| {
                    object([
                        ("Driver", Value::str(v.text("Driver"))),
                        ("Name", Value::str(v.text("Name"))),
                        ("Scope", Value::str(v.text("Scope"))),
                        ("Mountpoint", Value::str(v.text("Mountpoint"))),
                        ("Labels", Value::str(labels_text(v.field("Labels")))),
                    ])
                })
                .collect();
            let format = if args.quiet {
                Some("{{.Name}}")
            } else {
                args.format.as_deref()
            };
            let head = header(&[
                ("Driver", "DRIVER"),
                ("Name", "VOLUME NAME"),
                ("Scope", "SCOPE"),
                ("Mountpoint", "MOUNTPOINT"),
                ("Labels", "LABELS"),
            ]);
            app.print(
                &ListFormat::new(format, "table {{.Driver}}\t{{.Name}}").render(&head, &rows)?,
            )
        }
        VolumeCommand::Create(args) => {
            let name = args.name.or(args.name_flag).unwrap_or_default();
            let body = serde_json::json!({
                "Name": name,
                "Driver": args.driver,
                "DriverOpts": key_values(&args.opt),
                "Labels": key_values(&args.label),
            });
            let created: serde_json::Value = app
                .client
                .post_json("/volumes/create", &body)
                .await?
                .json()
                .await?;
            app.print(&format!(
                "{}\n",
                created["Name"].as_str().unwrap_or_default()
            ))
        }
        VolumeCommand::Rm(args) => {
            let client = app.client.clone();
            let force = if args.force { "?force=1" } else { "" };
            for_each(&args.names, |name| {
                let client = client.clone();
                let path = format!("/volumes/{}{force}", segment(&name));
                async move {
                    client.delete(&path).await?;
                    Ok(Some(name))
                }
            })
            .await
        }
        VolumeCommand::Inspect(args) => inspect_paths(app, args, "/volumes/").await,
        VolumeCommand::Prune(args) => {
            let mut filters = super::filters(&args.filter)?;
            if args.all {
                filters.add("all", "true");
            }
            prune(app, "volumes", args.force, "WARNING! This will remove anonymous local volumes not used by at least one container.", &filters, "VolumesDeleted", "Deleted Volumes:").await
        }
    }
}

fn labels_text(labels: Option<&Value>) -> String {
    let mut pairs: Vec<String> = match labels {
        Some(Value::Object(fields)) => fields.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        _ => Vec::new(),
    };
    pairs.sort();
    pairs.join(",")
}

async fn prune(
    app: &App,
    kind: &str,
    force: bool,
    warning: &str,
    filters: &berth_api::Filters,
    deleted_key: &str,
    title: &str,
) -> anyhow::Result<()> {
    if !force {
        print!("{warning}\nAre you sure you want to continue? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Ok(());
        }
    }
    let mut pairs = Vec::new();
    super::push_filters(&mut pairs, filters)?;
    let report: serde_json::Value = app
        .client
        .request(
            Method::POST,
            &format!("/{kind}/prune{}", berth_client::query(&pairs)),
            RequestBody::Empty,
            &[],
        )
        .await?
        .json()
        .await?;
    let mut text = String::new();
    super::system::list_deleted(&report, deleted_key, title, &mut text);
    if kind == "volumes" {
        let reclaimed = report["SpaceReclaimed"].as_i64().unwrap_or(0);
        text.push_str(&format!(
            "Total reclaimed space: {}\n",
            crate::format::units::human_size(reclaimed as f64)
        ));
    }
    app.print(&text)
}

async fn inspect_paths(app: &App, args: InspectNamesArgs, prefix: &str) -> anyhow::Result<()> {
    let mut raws = Vec::new();
    let mut printed = String::new();
    let mut failures = Vec::new();
    let template = args
        .format
        .as_deref()
        .filter(|f| !f.is_empty() && *f != "json")
        .map(crate::format::Template::parse)
        .transpose()?;
    for name in &args.names {
        match app
            .client
            .get_raw(&format!("{prefix}{}", segment(name)))
            .await
        {
            Ok(raw) => match &template {
                Some(template) => {
                    printed.push_str(&template.execute(&Value::parse(&raw)?)?);
                    printed.push('\n');
                }
                None => raws.push(raw),
            },
            Err(err) => failures.push(err.to_string()),
        }
    }
    if template.is_none() {
        printed = super::inspect::render_raw(&raws);
    }
    app.print(&printed)?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(StatusError::new(1, failures.join("\n")).into())
    }
}

pub async fn network(app: &App, command: NetworkCommand) -> anyhow::Result<()> {
    match command {
        NetworkCommand::Ls(args) => {
            let mut networks = match super::get_filtered(app, "/networks", &args.filter).await? {
                Value::Array(items) => items,
                _ => Vec::new(),
            };
            networks.sort_by(|a, b| a.text("Name").cmp(b.text("Name")));
            let rows: Vec<Value> = networks
                .iter()
                .map(|n| {
                    let id = n.text("Id");
                    object([
                        (
                            "ID",
                            Value::Str(if args.no_trunc {
                                id.to_string()
                            } else {
                                truncate_id(id)
                            }),
                        ),
                        ("Name", Value::str(n.text("Name"))),
                        ("Driver", Value::str(n.text("Driver"))),
                        ("Scope", Value::str(n.text("Scope"))),
                        (
                            "IPv6",
                            n.field("EnableIPv6").cloned().unwrap_or(Value::Bool(false)),
                        ),
                        (
                            "Internal",
                            n.field("Internal").cloned().unwrap_or(Value::Bool(false)),
                        ),
                        ("Labels", Value::str(labels_text(n.field("Labels")))),
                        ("CreatedAt", Value::str(n.text("Created"))),
                    ])
                })
                .collect();
            let format = if args.quiet {
                Some("{{.ID}}")
            } else {
                args.format.as_deref()
            };
            let head = header(&[
                ("ID", "NETWORK ID"),
                ("Name", "NAME"),
                ("Driver", "DRIVER"),
                ("Scope", "SCOPE"),
                ("IPv6", "IPV6"),
                ("Internal", "INTERNAL"),
                ("Labels", "LABELS"),
                ("CreatedAt", "CREATED"),
            ]);
            app.print(
                &ListFormat::new(format, "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}")
                    .render(&head, &rows)?,
            )
        }
        NetworkCommand::Create(args) => {
            let body = serde_json::json!({
                "Name": args.name,
                "Driver": args.driver,
                "Options": key_values(&args.opt),
                "Labels": key_values(&args.label),
                "Internal": args.internal,
                "Attachable": args.attachable,
                "EnableIPv6": args.ipv6,
                "IPAM": {"Driver": "default", "Config": ipam_config(&args)},
                "CheckDuplicate": true,
            });
            let created: serde_json::Value = app
                .client
                .post_json("/networks/create", &body)
                .await?
                .json()
                .await?;
            app.print(&format!("{}\n", created["Id"].as_str().unwrap_or_default()))
        }
        NetworkCommand::Rm(args) => {
            let client = app.client.clone();
            let removed = for_each(&args.names, |name| {
                let client = client.clone();
                let path = format!("/networks/{}", segment(&name));
                async move {
                    client.delete(&path).await?;
                    Ok(Some(name))
                }
            })
            .await;
            // docker's network rm ends its failure report with the exit status line.
            removed.map_err(|err| match err.downcast::<StatusError>() {
                Ok(status) => {
                    StatusError::new(1, format!("{}\nexit status 1", status.message)).into()
                }
                Err(other) => other,
            })
        }
        NetworkCommand::Inspect(args) => inspect_paths(app, args, "/networks/").await,
        NetworkCommand::Connect(args) => super::network::connect(app, args).await,
        NetworkCommand::Disconnect(args) => super::network::disconnect(app, args).await,
        NetworkCommand::Prune(args) => {
            let filters = super::filters(&args.filter)?;
            prune(
                app,
                "networks",
                args.force,
                "WARNING! This will remove all custom networks not used by at least one container.",
                &filters,
                "NetworksDeleted",
                "Deleted Networks:",
            )
            .await
        }
    }
}

/// `--subnet`, `--gateway` and `--ip-range`, paired in order as docker pairs them with
/// their subnet.
fn ipam_config(args: &NetworkCreateArgs) -> Vec<serde_json::Value> {
    args.subnet
        .iter()
        .enumerate()
        .map(|(i, subnet)| {
            serde_json::json!({
                "Subnet": subnet,
                "Gateway": args.gateway.get(i).cloned().unwrap_or_default(),
                "IPRange": args.ip_range.get(i).cloned().unwrap_or_default(),
            })
        })
        .collect()
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    #[arg(long)]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub human: bool,
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(short, long)]
    pub quiet: bool,
    pub image: String,
}

pub async fn history(app: &App, args: HistoryArgs) -> anyhow::Result<()> {
    let raw = app
        .client
        .get_raw(&format!("/images/{}/history", segment(&args.image)))
        .await?;
    let items = match Value::parse(&raw)? {
        Value::Array(items) => items,
        _ => Vec::new(),
    };
    let trunc = !args.no_trunc;
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let id = item.text("Id");
            let id = if trunc && id != "<missing>" {
                truncate_id(id)
            } else {
                id.to_string()
            };
            let created_by = item.text("CreatedBy").replace('\t', " ");
            let created = item.int("Created");
            object([
                ("ID", Value::Str(id)),
                (
                    "CreatedSince",
                    Value::Str(if args.human {
                        ago(created as f64)
                    } else {
                        crate::format::time::rfc3339_nano(created, 0)
                    }),
                ),
                (
                    "CreatedAt",
                    Value::Str(crate::format::time::rfc3339_nano(created, 0)),
                ),
                (
                    "CreatedBy",
                    Value::Str(if trunc {
                        ellipsis(&created_by, 45)
                    } else {
                        created_by
                    }),
                ),
                (
                    "Size",
                    Value::Str(if args.human {
                        human_size_precision(item.int("Size") as f64, 3)
                    } else {
                        item.int("Size").to_string()
                    }),
                ),
                ("Comment", Value::str(item.text("Comment"))),
            ])
        })
        .collect();
    let format = if args.quiet {
        Some("{{.ID}}")
    } else {
        args.format.as_deref()
    };
    let head = header(&[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ]);
    app.print(
        &ListFormat::new(
            format,
            "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
        )
        .render(&head, &rows)?,
    )
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub container: String,
}

pub async fn diff(app: &App, args: DiffArgs) -> anyhow::Result<()> {
    let changes: serde_json::Value = app
        .client
        .get_json(&format!("/containers/{}/changes", segment(&args.container)))
        .await?;
    let mut text = String::new();
    for change in changes.as_array().into_iter().flatten() {
        let kind = match change["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        text.push_str(&format!(
            "{kind} {}\n",
            change["Path"].as_str().unwrap_or_default()
        ));
    }
    app.print(&text)
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<String>,
    pub container: String,
}

pub async fn export(app: &App, args: ExportArgs) -> anyhow::Result<()> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(StatusError::new(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        )
        .into());
    }
    let mut response = app
        .client
        .request(
            Method::GET,
            &format!("/containers/{}/export", segment(&args.container)),
            RequestBody::Empty,
            &[],
        )
        .await?;
    let mut sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::fs::File::create(path)?),
        None => Box::new(std::io::stdout().lock()),
    };
    while let Some(chunk) = response.chunk().await? {
        sink.write_all(&chunk)?;
    }
    sink.flush()?;
    Ok(())
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    #[arg(short, long)]
    pub author: Option<String>,
    #[arg(short, long)]
    pub change: Vec<String>,
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub pause: bool,
    pub container: String,
    pub reference: Option<String>,
}

pub async fn commit(app: &App, args: CommitArgs) -> anyhow::Result<()> {
    let mut pairs = vec![("container", args.container.clone())];
    if let Some(reference) = &args.reference {
        let (repo, tag) = super::images::repo_and_tag(reference);
        pairs.push(("repo", repo));
        pairs.push(("tag", tag));
    }
    if let Some(message) = &args.message {
        pairs.push(("comment", message.clone()));
    }
    if let Some(author) = &args.author {
        pairs.push(("author", author.clone()));
    }
    pairs.push(("pause", if args.pause { "1" } else { "0" }.to_string()));
    for change in &args.change {
        pairs.push(("changes", change.clone()));
    }
    let created: serde_json::Value = app
        .client
        .post_json(
            &format!("/commit{}", berth_client::query(&pairs)),
            &serde_json::json!({}),
        )
        .await?
        .json()
        .await?;
    app.print(&format!("{}\n", created["Id"].as_str().unwrap_or_default()))
}
