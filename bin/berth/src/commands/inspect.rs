//! `inspect`, `container inspect` and `image inspect`: the daemon's JSON re-indented as
//! docker prints it, or a Go template per object.

use clap::Args;

use crate::app::{App, StatusError};
use crate::format::value::indent;
use crate::format::{Template, Value};

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    pub size: bool,
    /// Only inspect objects of the given type
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `container inspect` / `image inspect`: the same flags without `--type`.
#[derive(Args, Debug)]
pub struct TypedInspectArgs {
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

impl TypedInspectArgs {
    pub fn with_type(self, kind: &str) -> InspectArgs {
        InspectArgs {
            format: self.format,
            size: self.size,
            kind: Some(kind.to_string()),
            names: self.names,
        }
    }
}

const KINDS: [&str; 7] = [
    "container",
    "image",
    "network",
    "volume",
    "node",
    "service",
    "task",
];

async fn fetch(
    app: &App,
    kind: &str,
    name: &str,
    size: bool,
) -> Result<Vec<u8>, berth_client::ClientError> {
    let name = super::segment(name);
    let path = match kind {
        "container" if size => format!("/containers/{name}/json?size=1"),
        "container" => format!("/containers/{name}/json"),
        "image" => format!("/images/{name}/json"),
        "network" => format!("/networks/{name}"),
        "volume" => format!("/volumes/{name}"),
        "node" => format!("/nodes/{name}"),
        "service" => format!("/services/{name}"),
        _ => format!("/tasks/{name}"),
    };
    app.client.get_raw(&path).await
}

pub async fn inspect(app: &App, args: InspectArgs) -> anyhow::Result<()> {
    if let Some(kind) = &args.kind {
        if !KINDS.contains(&kind.as_str()) {
            return Err(
                StatusError::new(1, format!("\"{kind}\" is not a valid value for --type")).into(),
            );
        }
    }
    let template = match &args.format {
        Some(format) if !format.is_empty() && format != "json" => Some(
            Template::parse(format)
                .map_err(|err| StatusError::new(1, format!("template parsing error: {err}")))?,
        ),
        _ => None,
    };
    let mut raws: Vec<Vec<u8>> = Vec::new();
    let mut failures = Vec::new();
    let mut printed = String::new();
    for name in &args.names {
        let found = match &args.kind {
            Some(kind) => fetch(app, kind, name, args.size)
                .await
                .map_err(|err| err.to_string()),
            None => find_any(app, name, args.size).await,
        };
        match found {
            Ok(raw) => match &template {
                Some(template) => {
                    let value = Value::parse(&raw)?;
                    match template.execute(&value) {
                        Ok(text) => {
                            printed.push_str(&text);
                            printed.push('\n');
                        }
                        Err(err) => failures.push(err.to_string()),
                    }
                }
                None => raws.push(raw),
            },
            Err(message) => failures.push(message),
        }
    }
    if template.is_none() {
        printed = render_raw(&raws);
    }
    app.print(&printed)?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(StatusError::new(1, failures.join("\n")).into())
    }
}

/// docker's `IndentedInspector`: the raw answers in one JSON array, indented by four.
pub fn render_raw(raws: &[Vec<u8>]) -> String {
    let mut joined = b"[".to_vec();
    for (i, raw) in raws.iter().enumerate() {
        if i > 0 {
            joined.push(b',');
        }
        joined.extend_from_slice(raw);
    }
    joined.push(b']');
    let mut printed = String::from_utf8_lossy(&indent(&joined, "    ")).into_owned();
    printed.push('\n');
    printed
}

/// Tries every kind in docker's order; a miss everywhere is "No such object".
async fn find_any(app: &App, name: &str, size: bool) -> Result<Vec<u8>, String> {
    for kind in ["container", "image", "network", "volume"] {
        match fetch(app, kind, name, size).await {
            Ok(raw) => return Ok(raw),
            Err(err) if err.is_not_found() || err.status() == Some(400) => continue,
            Err(err) => return Err(err.to_string()),
        }
    }
    Err(format!("Error: No such object: {name}"))
}
