//! `berth secret` (create, ls, inspect, rm) as `docker secret`, against berthd's `/secrets`
//! (served without swarm), and `run --secret` parsing into `HostConfig.BerthSecrets`.

use std::io::Read;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use clap::{Args, Subcommand};

use super::{for_each, segment};
use crate::app::{App, StatusError};
use crate::format::units::ago;
use crate::format::{object, ListFormat, Value};

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Create a secret from a file or STDIN as content
    Create(CreateArgs),
    /// List secrets
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Display detailed information on one or more secrets
    Inspect(InspectArgs),
    /// Remove one or more secrets
    #[command(alias = "remove")]
    Rm(RemoveArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Secret labels
    #[arg(short, long)]
    pub label: Vec<String>,
    /// Secret driver (berth has none; refused by the daemon)
    #[arg(short, long)]
    pub driver: Option<String>,
    /// Template driver (berth has none; refused by the daemon)
    #[arg(long)]
    pub template_driver: Option<String>,
    pub name: String,
    /// A file, or - for standard input
    pub file: String,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(short, long)]
    pub filter: Vec<String>,
    #[arg(long)]
    pub format: Option<String>,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(short, long)]
    pub format: Option<String>,
    /// Print the information in a human friendly format
    #[arg(long)]
    pub pretty: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

pub async fn secret(app: &App, command: SecretCommand) -> anyhow::Result<()> {
    match command {
        SecretCommand::Create(args) => create(app, args).await,
        SecretCommand::Ls(args) => list(app, args).await,
        SecretCommand::Inspect(args) => inspect(app, args).await,
        SecretCommand::Rm(args) => {
            let client = app.client.clone();
            for_each(&args.names, |name| {
                let client = client.clone();
                async move {
                    client
                        .delete(&format!("/secrets/{}", segment(&name)))
                        .await?;
                    Ok(Some(name))
                }
            })
            .await
        }
    }
}

async fn create(app: &App, args: CreateArgs) -> anyhow::Result<()> {
    let mut data = Vec::new();
    if args.file == "-" {
        std::io::stdin().read_to_end(&mut data)?;
    } else {
        data = std::fs::read(&args.file)
            .map_err(|e| anyhow::anyhow!("error reading content from {:?}: {e}", args.file))?;
    }
    let labels: serde_json::Map<String, serde_json::Value> = args
        .label
        .iter()
        .map(|entry| {
            let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
            (k.to_string(), serde_json::Value::from(v))
        })
        .collect();
    let driver = |name: Option<String>| name.map(|n| serde_json::json!({"Name": n}));
    let body = serde_json::json!({
        "Name": args.name,
        "Labels": labels,
        "Data": BASE64.encode(&data),
        "Driver": driver(args.driver),
        "Templating": driver(args.template_driver),
    });
    let created: serde_json::Value = app
        .client
        .post_json("/secrets/create", &body)
        .await?
        .json()
        .await?;
    app.print(&format!("{}\n", created["ID"].as_str().unwrap_or_default()))
}

fn since(text: &str) -> String {
    berth_api::time::parse_rfc3339(text)
        .map(|(seconds, _)| ago(seconds as f64))
        .unwrap_or_default()
}

async fn list(app: &App, args: ListArgs) -> anyhow::Result<()> {
    let mut secrets = match super::get_filtered(app, "/secrets", &args.filter).await? {
        Value::Array(items) => items,
        _ => Vec::new(),
    };
    let name_of = |v: &Value| {
        v.field("Spec")
            .map(|s| s.text("Name").to_string())
            .unwrap_or_default()
    };
    secrets.sort_by_key(|v| name_of(v));
    let rows: Vec<Value> = secrets
        .iter()
        .map(|v| {
            let driver = v
                .field("Spec")
                .and_then(|s| s.field("Driver"))
                .map(|d| d.text("Name").to_string())
                .unwrap_or_default();
            object([
                ("ID", Value::str(v.text("ID"))),
                ("Name", Value::str(name_of(v))),
                ("Driver", Value::str(driver)),
                ("CreatedAt", Value::str(since(v.text("CreatedAt")))),
                ("UpdatedAt", Value::str(since(v.text("UpdatedAt")))),
            ])
        })
        .collect();
    let format = if args.quiet {
        Some("{{.ID}}")
    } else {
        args.format.as_deref()
    };
    let head = object(
        [
            ("ID", "ID"),
            ("Name", "NAME"),
            ("Driver", "DRIVER"),
            ("CreatedAt", "CREATED"),
            ("UpdatedAt", "UPDATED"),
        ]
        .map(|(k, v)| (k, Value::str(v))),
    );
    let default = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.CreatedAt}}\t{{.UpdatedAt}}";
    app.print(&ListFormat::new(format, default).render(&head, &rows)?)
}

async fn inspect(app: &App, args: InspectArgs) -> anyhow::Result<()> {
    let template = args
        .format
        .as_deref()
        .filter(|f| !f.is_empty() && *f != "json")
        .map(crate::format::Template::parse)
        .transpose()?;
    let (mut raws, mut printed, mut failures) = (Vec::new(), String::new(), Vec::new());
    for name in &args.names {
        match app
            .client
            .get_raw(&format!("/secrets/{}", segment(name)))
            .await
        {
            Ok(raw) if args.pretty => printed.push_str(&pretty(&Value::parse(&raw)?)),
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
    if template.is_none() && !args.pretty {
        printed = super::inspect::render_raw(&raws);
    }
    app.print(&printed)?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(StatusError::new(1, failures.join("\n")).into())
    }
}

/// docker's `secret inspect --pretty` layout.
fn pretty(secret: &Value) -> String {
    let spec = secret.field("Spec");
    let mut out = format!(
        "ID:              {}\nName:              {}\n",
        secret.text("ID"),
        spec.map(|s| s.text("Name")).unwrap_or_default()
    );
    if let Some(Value::Object(labels)) = spec.and_then(|s| s.field("Labels")) {
        if !labels.is_empty() {
            out.push_str("Labels:\n");
            for (key, value) in labels {
                out.push_str(&format!(" - {key}={value}\n"));
            }
        }
    }
    out.push_str(&format!(
        "Driver:            \nCreated at:        {}\nUpdated at:        {}\n",
        secret.text("CreatedAt"),
        secret.text("UpdatedAt")
    ));
    out
}

/// `--secret name[,target=,uid=,gid=,mode=]` (docker's `source=`/`src=` too), as one entry of
/// `HostConfig.BerthSecrets`. Mode is octal, as docker's flag takes it.
pub fn parse_secret_flag(flag: &str) -> Result<serde_json::Value, String> {
    let mut name = String::new();
    let (mut target, mut uid, mut gid, mut mode) = (String::new(), String::new(), String::new(), 0);
    for (index, field) in flag.split(',').enumerate() {
        match field.split_once('=') {
            None if index == 0 => name = field.to_string(),
            None => return Err(format!("invalid field '{field}' must be a key=value pair")),
            Some((key, value)) => match key.to_ascii_lowercase().as_str() {
                "source" | "src" => name = value.to_string(),
                "target" => target = value.to_string(),
                "uid" => uid = value.to_string(),
                "gid" => gid = value.to_string(),
                "mode" => {
                    mode = u32::from_str_radix(value, 8)
                        .map_err(|_| format!("invalid mode specified: {value}"))?
                }
                _ => return Err(format!("invalid field in secret request: {key}")),
            },
        }
    }
    if name.is_empty() {
        return Err("source is required".to_string());
    }
    Ok(serde_json::json!({
        "SecretName": name,
        "File": {"Name": target, "UID": uid, "GID": gid, "Mode": mode},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_flag_takes_a_bare_name_and_options() {
        let value = parse_secret_flag("db,target=pw,uid=1000,gid=10,mode=0400").expect("parse");
        assert_eq!(value["SecretName"], "db");
        assert_eq!(value["File"]["Name"], "pw");
        assert_eq!(value["File"]["UID"], "1000");
        assert_eq!(value["File"]["Mode"], 0o400);
        let docker_style = parse_secret_flag("source=db,target=/run/secrets/x").expect("parse");
        assert_eq!(docker_style["SecretName"], "db");
    }

    #[test]
    fn secret_flag_rejects_bad_fields() {
        assert!(parse_secret_flag("db,mode=9").is_err());
        assert!(parse_secret_flag("db,colour=red").is_err());
        assert!(parse_secret_flag("target=x").is_err());
        assert!(parse_secret_flag("db,oops").is_err());
    }
}
