//! `version`, `info`, `system df` and the prune commands.

use std::io::{BufRead, Write};

use clap::Args;

use crate::app::{App, StatusError};
use crate::format::tabwriter::align;
use crate::format::units::{human_size, human_size_precision};
use crate::format::{ListFormat, Template, Value};

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
}

pub use super::info::{info, InfoArgs};

pub async fn version(app: &App, args: VersionArgs) -> anyhow::Result<()> {
    let api = app.client.api_version().await.map(str::to_string);
    let server: Option<Value> = match app.client.get_raw("/version").await {
        Ok(raw) => Some(Value::parse(&raw)?),
        Err(err) => {
            if args.format.is_none() {
                let client =
                    client_section(api.as_deref().unwrap_or(berth_client::CLIENT_API_VERSION));
                app.print(&align(&client, 20, 1))?;
            }
            return Err(err.into());
        }
    };
    let api = api?;
    if let Some(format) = &args.format {
        let client = crate::format::object([
            ("Version", Value::str(env!("CARGO_PKG_VERSION"))),
            ("APIVersion", Value::str(api.clone())),
            (
                "DefaultAPIVersion",
                Value::str(berth_client::CLIENT_API_VERSION),
            ),
            ("Os", Value::str("linux")),
            ("Arch", Value::str(std::env::consts::ARCH)),
        ]);
        let data = crate::format::object([
            ("Client", client),
            ("Server", server.unwrap_or(Value::Null)),
        ]);
        let text = Template::parse(format)?.execute(&data)?;
        return app.print(&format!("{text}\n"));
    }
    let mut text = client_section(&api);
    if let Some(server) = server {
        text.push_str(&server_section(&server));
    }
    app.print(&align(&text, 20, 1))
}

fn client_section(api: &str) -> String {
    let downgraded = if api != berth_client::CLIENT_API_VERSION {
        format!(" (downgraded from {})", berth_client::CLIENT_API_VERSION)
    } else {
        String::new()
    };
    format!(
        "Client:\n Version:\t{}\n API version:\t{api}{downgraded}\n OS/Arch:\tlinux/{}\n Context:\tdefault\n",
        env!("CARGO_PKG_VERSION"),
        go_arch()
    )
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn server_section(server: &Value) -> String {
    let platform = server
        .field("Platform")
        .map(|p| p.text("Name"))
        .unwrap_or("");
    let mut text = String::from("\nServer:");
    if !platform.is_empty() {
        text.push_str(&format!(" {platform}"));
    }
    text.push('\n');
    let Some(Value::Array(components)) = server.field("Components") else {
        return text;
    };
    for component in components {
        let name = component.text("Name");
        let details = component.field("Details").cloned().unwrap_or(Value::Null);
        let detail = |key: &str| {
            details
                .field(key)
                .map(|v| v.to_string())
                .unwrap_or_default()
        };
        text.push_str(&format!(" {name}:\n"));
        if name == "Engine" {
            text.push_str(&format!("  Version:\t{}\n", component.text("Version")));
            text.push_str(&format!(
                "  API version:\t{} (minimum version {})\n",
                detail("ApiVersion"),
                detail("MinAPIVersion")
            ));
            text.push_str(&format!("  Go version:\t{}\n", detail("GoVersion")));
            text.push_str(&format!("  Git commit:\t{}\n", detail("GitCommit")));
            text.push_str(&format!(
                "  Built:\t{}\n",
                crate::format::time::ansic(&detail("BuildTime"))
            ));
            text.push_str(&format!(
                "  OS/Arch:\t{}/{}\n",
                detail("Os"),
                detail("Arch")
            ));
            text.push_str(&format!("  Experimental:\t{}\n", detail("Experimental")));
        } else {
            text.push_str(&format!("  Version:\t{}\n", component.text("Version")));
            if let Value::Object(fields) = &details {
                let mut keys: Vec<&String> = fields.iter().map(|(k, _)| k).collect();
                keys.sort();
                for key in keys {
                    text.push_str(&format!("  {key}:\t{}\n", detail(key)));
                }
            }
        }
    }
    text
}

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

/// `SIZE (P%)`, or just the size when the total is zero, as docker prints RECLAIMABLE.
fn reclaimable(part: i64, total: i64) -> String {
    if total <= 0 {
        return human_size(part as f64);
    }
    format!("{} ({}%)", human_size(part as f64), part * 100 / total)
}

pub async fn df(app: &App, args: DfArgs) -> anyhow::Result<()> {
    let raw = app.client.get_raw("/system/df").await?;
    let usage = Value::parse(&raw)?;
    let list = |key: &str| match usage.field(key) {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    let images = list("Images");
    let containers = list("Containers");
    let volumes = list("Volumes");
    let cache = list("BuildCache");
    // docker's diskUsageImagesContext: the total is LayersSize; images in use count
    // their unshared size as used.
    let image_size = usage.int("LayersSize");
    let images_active = images.iter().filter(|i| i.int("Containers") > 0).count();
    let used: i64 = images
        .iter()
        .filter(|i| i.int("Containers") != 0)
        .map(|i| {
            let virtual_size = i
                .field("VirtualSize")
                .map(|_| i.int("VirtualSize"))
                .unwrap_or(i.int("Size"));
            virtual_size - i.int("SharedSize")
        })
        .sum();
    let image_reclaim = image_size - used;
    let container_size: i64 = containers.iter().map(|c| c.int("SizeRw")).sum();
    let containers_active = containers
        .iter()
        .filter(|c| c.text("State") == "running")
        .count();
    let container_reclaim: i64 = containers
        .iter()
        .filter(|c| c.text("State") != "running")
        .map(|c| c.int("SizeRw"))
        .sum();
    let volume_size: i64 = volumes
        .iter()
        .map(|v| {
            v.field("UsageData")
                .map(|u| u.int("Size"))
                .unwrap_or(0)
                .max(0)
        })
        .sum();
    let volumes_active = volumes
        .iter()
        .filter(|v| v.field("UsageData").map(|u| u.int("RefCount")).unwrap_or(0) > 0)
        .count();
    let volume_reclaim: i64 = volumes
        .iter()
        .filter(|v| v.field("UsageData").map(|u| u.int("RefCount")).unwrap_or(0) == 0)
        .map(|v| {
            v.field("UsageData")
                .map(|u| u.int("Size"))
                .unwrap_or(0)
                .max(0)
        })
        .sum();
    // docker's BuilderSize: the records not shared with images; in-use ones are not
    // reclaimable.
    let shared = |c: &Value| c.field("Shared").is_some_and(Value::truthy);
    let cache_size: i64 = cache
        .iter()
        .filter(|c| !shared(c))
        .map(|c| c.int("Size"))
        .sum();
    let cache_active = cache
        .iter()
        .filter(|c| c.field("InUse").is_some_and(Value::truthy))
        .count();
    let cache_in_use: i64 = cache
        .iter()
        .filter(|c| !shared(c) && c.field("InUse").is_some_and(Value::truthy))
        .map(|c| c.int("Size"))
        .sum();
    let cache_reclaim = cache_size - cache_in_use;
    let size = |n: i64| human_size(n as f64);
    let row = |kind: &str, total: usize, active: usize, size_text: String, reclaim: String| {
        crate::format::object([
            ("Type", Value::str(kind)),
            ("TotalCount", Value::Str(total.to_string())),
            ("Active", Value::Str(active.to_string())),
            ("Size", Value::Str(size_text)),
            ("Reclaimable", Value::Str(reclaim)),
        ])
    };
    let rows = vec![
        row(
            "Images",
            images.len(),
            images_active,
            size(image_size),
            reclaimable(image_reclaim, image_size),
        ),
        row(
            "Containers",
            containers.len(),
            containers_active,
            size(container_size),
            reclaimable(container_reclaim, container_size),
        ),
        row(
            "Local Volumes",
            volumes.len(),
            volumes_active,
            size(volume_size),
            reclaimable(volume_reclaim, volume_size),
        ),
        row(
            "Build Cache",
            cache.len(),
            cache_active,
            size(cache_size),
            size(cache_reclaim),
        ),
    ];
    let header = crate::format::object(
        [
            ("Type", "TYPE"),
            ("TotalCount", "TOTAL"),
            ("Active", "ACTIVE"),
            ("Size", "SIZE"),
            ("Reclaimable", "RECLAIMABLE"),
        ]
        .map(|(k, v)| (k, Value::str(v))),
    );
    if args.verbose && args.format.is_none() {
        return app.print(&verbose_df(&raw, &usage)?);
    }
    let format = ListFormat::new(
        args.format.as_deref(),
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
    );
    app.print(&format.render(&header, &rows)?)
}

/// `system df -v`: docker's four tables (the first tag of each image, containers without
/// their virtual size, volumes with their links, the build cache after its unshared total).
fn verbose_df(raw: &[u8], usage: &Value) -> anyhow::Result<String> {
    let json: serde_json::Value = serde_json::from_slice(raw)?;
    let list = |key: &str| json[key].as_array().cloned().unwrap_or_default();
    let images: Vec<serde_json::Value> = list("Images")
        .into_iter()
        .map(|mut image| {
            let first = image["RepoTags"]
                .as_array()
                .and_then(|tags| tags.first().cloned())
                .filter(|tag| tag.as_str() != Some("<none>:<none>"));
            image["RepoTags"] = serde_json::json!(first.into_iter().collect::<Vec<_>>());
            image["RepoDigests"] = serde_json::json!([]);
            image
        })
        .collect();
    let containers: Vec<serde_json::Value> = list("Containers")
        .into_iter()
        .map(|mut container| {
            container["SizeRootFs"] = serde_json::json!(0);
            container
        })
        .collect();
    let mut text = String::from("Images space usage:\n\n");
    text.push_str(&super::images::render_images(
        &serde_json::to_vec(&images)?,
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        false,
        true,
    )?);
    text.push_str("\nContainers space usage:\n\n");
    text.push_str(&super::containers::render_ps(
        &serde_json::to_vec(&containers)?,
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
        true,
    )?);
    text.push_str("\nLocal Volumes space usage:\n\n");
    let volume_rows: Vec<Value> = match usage.field("Volumes") {
        Some(Value::Array(volumes)) => volumes.iter().map(volume_usage_row).collect(),
        _ => Vec::new(),
    };
    let volume_header = crate::format::object(
        [
            ("Name", "VOLUME NAME"),
            ("Links", "LINKS"),
            ("Size", "SIZE"),
        ]
        .map(|(k, v)| (k, Value::str(v))),
    );
    let volume_table = "table {{.Name}}\t{{.Links}}\t{{.Size}}";
    text.push_str(
        &ListFormat::new(Some(volume_table), volume_table).render(&volume_header, &volume_rows)?,
    );
    let cache = match usage.field("BuildCache") {
        Some(Value::Array(cache)) => cache.clone(),
        _ => Vec::new(),
    };
    let unshared: i64 = cache
        .iter()
        .filter(|c| !c.field("Shared").is_some_and(Value::truthy))
        .map(|c| c.int("Size"))
        .sum();
    text.push_str(&format!(
        "\nBuild cache usage: {}\n\n",
        human_size(unshared as f64)
    ));
    let cache_header = crate::format::object(
        [
            ("ID", "CACHE ID"),
            ("CacheType", "CACHE TYPE"),
            ("Size", "SIZE"),
            ("CreatedSince", "CREATED"),
            ("LastUsedSince", "LAST USED"),
            ("UsageCount", "USAGE"),
            ("Shared", "SHARED"),
        ]
        .map(|(k, v)| (k, Value::str(v))),
    );
    let cache_rows: Vec<Value> = cache.iter().map(cache_usage_row).collect();
    let cache_table = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}";
    text.push_str(
        &ListFormat::new(Some(cache_table), cache_table).render(&cache_header, &cache_rows)?,
    );
    Ok(text)
}

/// docker's volume row of `df -v`: `N/A` where the daemon could not measure.
fn volume_usage_row(volume: &Value) -> Value {
    let (links, size) = match volume.field("UsageData") {
        Some(data) => (data.int("RefCount"), data.int("Size")),
        None => (-1, -1),
    };
    let or_na = |n: i64, text: String| if n < 0 { "N/A".to_string() } else { text };
    crate::format::object([
        ("Name", Value::str(volume.text("Name"))),
        ("Links", Value::Str(or_na(links, links.to_string()))),
        ("Size", Value::Str(or_na(size, human_size(size as f64)))),
    ])
}

/// docker's build cache row of `df -v` (`*` marks a record in use).
fn cache_usage_row(record: &Value) -> Value {
    let mut id = crate::format::truncate_id(record.text("ID"));
    if record.field("InUse").is_some_and(Value::truthy) {
        id.push('*');
    }
    let since = |key: &str| {
        crate::format::time::parse_rfc3339(record.text(key))
            .map(crate::format::units::ago)
            .unwrap_or_default()
    };
    crate::format::object([
        ("ID", Value::Str(id)),
        ("CacheType", Value::str(record.text("Type"))),
        (
            "Size",
            Value::Str(human_size_precision(record.int("Size") as f64, 3)),
        ),
        ("CreatedSince", Value::Str(since("CreatedAt"))),
        ("LastUsedSince", Value::Str(since("LastUsedAt"))),
        (
            "UsageCount",
            Value::Str(record.int("UsageCount").to_string()),
        ),
        (
            "Shared",
            Value::str(if record.field("Shared").is_some_and(Value::truthy) {
                "true"
            } else {
                "false"
            }),
        ),
    ])
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    pub filter: Vec<String>,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
}

fn confirm(warning: &str) -> anyhow::Result<bool> {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Prunes one kind (`containers`, `images`, `volumes`, `networks`, `build`) and returns (printed text, reclaimed bytes).
async fn prune_kind(
    app: &App,
    kind: &str,
    all: bool,
    filter: &[String],
) -> anyhow::Result<(String, i64)> {
    let mut filters = super::filters(filter)?;
    if kind == "images" && all {
        filters.add("dangling", "false");
    }
    let mut pairs = Vec::new();
    super::push_filters(&mut pairs, &filters)?;
    let report: serde_json::Value = app
        .client
        .request(
            berth_client::Method::POST,
            &format!("/{kind}/prune{}", berth_client::query(&pairs)),
            berth_client::RequestBody::Empty,
            &[],
        )
        .await?
        .json()
        .await?;
    let reclaimed = report["SpaceReclaimed"].as_i64().unwrap_or(0);
    let mut text = String::new();
    match kind {
        "containers" => list_deleted(
            &report,
            "ContainersDeleted",
            "Deleted Containers:",
            &mut text,
        ),
        "images" => {
            let deleted: Vec<&serde_json::Value> = report["ImagesDeleted"]
                .as_array()
                .into_iter()
                .flatten()
                .collect();
            if !deleted.is_empty() {
                text.push_str("Deleted Images:\n");
                for item in deleted {
                    if let Some(untagged) = item["Untagged"].as_str() {
                        text.push_str(&format!("untagged: {untagged}\n"));
                    }
                    if let Some(id) = item["Deleted"].as_str() {
                        text.push_str(&format!("deleted: {id}\n"));
                    }
                }
                text.push('\n');
            }
        }
        "volumes" => list_deleted(&report, "VolumesDeleted", "Deleted Volumes:", &mut text),
        "build" => list_deleted(
            &report,
            "CachesDeleted",
            "Deleted build cache objects:",
            &mut text,
        ),
        _ => list_deleted(&report, "NetworksDeleted", "Deleted Networks:", &mut text),
    }
    Ok((text, reclaimed))
}

/// `title` (`Deleted Volumes:`) and one line per name of the prune report's `key` list,
/// then a blank line, as the docker CLI prints them; nothing when the list is empty.
pub(crate) fn list_deleted(report: &serde_json::Value, key: &str, title: &str, text: &mut String) {
    let deleted: Vec<&str> = report[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    if !deleted.is_empty() {
        text.push_str(&format!("{title}\n"));
        for name in deleted {
            text.push_str(&format!("{name}\n"));
        }
        text.push('\n');
    }
}

/// `container prune` / `image prune` / `builder prune`.
pub async fn prune_objects(app: &App, args: PruneArgs, kind: &str) -> anyhow::Result<()> {
    let warning = match (kind, args.all) {
        ("containers", _) => "WARNING! This will remove all stopped containers.",
        ("build", true) => "WARNING! This will remove all build cache.",
        ("build", false) => "WARNING! This will remove all dangling build cache.",
        (_, true) => "WARNING! This will remove all images without at least one container associated to them.",
        _ => "WARNING! This will remove all dangling images.",
    };
    if !args.force && !confirm(warning)? {
        return Ok(());
    }
    let (text, reclaimed) = prune_kind(app, kind, args.all, &args.filter).await?;
    app.print(&format!(
        "{text}Total reclaimed space: {}\n",
        human_size(reclaimed as f64)
    ))
}

/// `system prune`: stopped containers, unused networks, dangling (or all unused) images,
/// then the build cache.
pub async fn system_prune(app: &App, args: PruneArgs) -> anyhow::Result<()> {
    let images_line = if args.all {
        "  - all images without at least one container associated to them"
    } else {
        "  - all dangling images"
    };
    let volumes_line = if args.volumes {
        "  - all anonymous volumes not used by at least one container\n"
    } else {
        ""
    };
    let warning = format!(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n{volumes_line}{images_line}\n  - unused build cache\n"
    );
    if !args.force && !confirm(&warning)? {
        return Ok(());
    }
    let mut text = String::new();
    let mut total = 0;
    // As the docker CLI: one prune per kind, volumes (anonymous only) after containers.
    let kinds: &[&str] = if args.volumes {
        &["containers", "networks", "volumes", "images", "build"]
    } else {
        &["containers", "networks", "images", "build"]
    };
    for kind in kinds.iter().copied() {
        let (part, reclaimed) = prune_kind(app, kind, args.all && kind != "volumes", &args.filter)
            .await
            .map_err(|err| StatusError::new(1, format!("{err:#}")))?;
        text.push_str(&part);
        total += reclaimed;
    }
    app.print(&format!(
        "{text}Total reclaimed space: {}\n",
        human_size(total as f64)
    ))
}
