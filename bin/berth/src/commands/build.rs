//! `berth build`: the context directory (or a tar, or a lone Dockerfile, on stdin with `-`)
//! sent to `POST /build` as docker's classic build does, the stream printed as docker
//! prints it, a failing RUN's exit code as the command's status, `--iidfile` and `-q`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use berth_api::progress::JsonMessage;
use berth_client::{Method, RequestBody};
use bytes::Bytes;
use clap::Args;

use super::build_context::ContextWriter;
use crate::app::{App, StatusError};
use crate::progress;

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile"); "-" reads it from stdin
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Set metadata for an image
    #[arg(long)]
    pub label: Vec<String>,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<String>,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long)]
    pub network: Option<String>,
    /// Squash newly built layers into a single new layer
    #[arg(long)]
    pub squash: bool,
    /// Add a custom host-to-IP mapping ("host:ip")
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Size of "/dev/shm"
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Ulimit options
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Build context: a directory, or "-" for a tar or Dockerfile on stdin
    pub context: String,
}

/// The context tar of `dir` (see `build_context.rs`), with `extra` (a Dockerfile from
/// stdin or outside the context) added under its generated name.
fn tar_directory(
    dir: &Path,
    dockerfile: Option<&str>,
    extra: Option<(&str, &[u8])>,
) -> anyhow::Result<Vec<u8>> {
    let mut writer = ContextWriter::new(dir, dockerfile)?;
    writer.add_tree(dir)?;
    if let Some((name, data)) = extra {
        writer.add_file(name, data)?;
    }
    writer.finish()
}

fn is_tar(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b]) || (bytes.len() > 262 && &bytes[257..262] == b"ustar")
}

/// The context tar and the `dockerfile` parameter (a Dockerfile outside the context is
/// added to it under a generated name, as docker does).
fn context(args: &BuildArgs) -> anyhow::Result<(Vec<u8>, String)> {
    let stdin = |what: &str| -> anyhow::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| anyhow::anyhow!("reading {what} from stdin: {e}"))?;
        Ok(bytes)
    };
    let generated = format!(".dockerfile.{:x}", std::process::id());
    if args.context == "-" {
        if args.file.as_deref() == Some("-") {
            return Err(StatusError::new(
                1,
                "invalid argument: can't use stdin for both build context and dockerfile",
            )
            .into());
        }
        let bytes = stdin("the build context")?;
        if is_tar(&bytes) {
            return Ok((bytes, args.file.clone().unwrap_or_default()));
        }
        let mut writer = ContextWriter::empty();
        writer.add_file("Dockerfile", &bytes)?;
        return Ok((writer.finish()?, "Dockerfile".into()));
    }
    let dir = Path::new(&args.context);
    if !dir.is_dir() {
        return Err(StatusError::new(
            1,
            format!(
                "unable to prepare context: path {:?} not found",
                args.context
            ),
        )
        .into());
    }
    match args.file.as_deref() {
        Some("-") => {
            let data = stdin("the Dockerfile")?;
            Ok((
                tar_directory(dir, None, Some((&generated, &data)))?,
                generated,
            ))
        }
        Some(file) => {
            let path = Path::new(file);
            let absolute_dir = dir.canonicalize()?;
            let absolute = path.canonicalize().map_err(|e| {
                StatusError::new(1, format!("unable to prepare context: {file}: {e}"))
            })?;
            match absolute.strip_prefix(&absolute_dir) {
                Ok(rel) => {
                    let rel = rel.display().to_string();
                    Ok((tar_directory(dir, Some(&rel), None)?, rel))
                }
                Err(_) => {
                    let data = std::fs::read(&absolute)?;
                    Ok((
                        tar_directory(dir, None, Some((&generated, &data)))?,
                        generated,
                    ))
                }
            }
        }
        None => Ok((tar_directory(dir, Some("Dockerfile"), None)?, String::new())),
    }
}

fn key_values(items: &[String], from_env: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None if from_env => {
                if let Ok(v) = std::env::var(item) {
                    out.insert(item.clone(), v);
                }
            }
            None => {
                out.insert(item.clone(), String::new());
            }
        }
    }
    out
}

pub async fn build(app: &App, args: BuildArgs) -> anyhow::Result<()> {
    let (body, dockerfile) = context(&args)?;
    let mut pairs: Vec<(&str, String)> = args.tags.iter().map(|t| ("t", t.clone())).collect();
    pairs.push(("dockerfile", dockerfile));
    pairs.push((
        "buildargs",
        serde_json::to_string(&key_values(&args.build_args, true))?,
    ));
    pairs.push((
        "labels",
        serde_json::to_string(&key_values(&args.label, false))?,
    ));
    pairs.push(("target", args.target.clone().unwrap_or_default()));
    pairs.push(("q", if args.quiet { "1" } else { "0" }.into()));
    pairs.push(("nocache", if args.no_cache { "1" } else { "0" }.into()));
    pairs.push(("pull", if args.pull { "1" } else { "0" }.into()));
    pairs.push(("rm", "1".into()));
    if args.squash {
        pairs.push(("squash", "1".into()));
    }
    pairs.push(("networkmode", args.network.clone().unwrap_or_default()));
    for host in &args.add_host {
        pairs.push(("extrahosts", host.clone()));
    }
    if let Some(size) = &args.shm_size {
        pairs.push((
            "shmsize",
            super::create::parse_size("shm-size", size)?.to_string(),
        ));
    }
    if !args.ulimit.is_empty() {
        let ulimits = super::create::parse_ulimits(&args.ulimit)?;
        pairs.push(("ulimits", serde_json::to_string(&ulimits)?));
    }
    pairs.push(("platform", args.platform.clone().unwrap_or_default()));
    let path = format!("/build{}", berth_client::query(&pairs));
    let headers = [("content-type", "application/x-tar".to_string())];
    let mut response = app
        .client
        .request(
            Method::POST,
            &path,
            RequestBody::Full(Bytes::from(body)),
            &headers,
        )
        .await?;
    let mut image = String::new();
    let mut quiet_output = String::new();
    while let Some(message) = response.json_line::<JsonMessage>().await? {
        if let Some(detail) = &message.error_detail {
            let text = if detail.message.is_empty() {
                message.error.clone()
            } else {
                detail.message.clone()
            };
            let code = u8::try_from(detail.code)
                .ok()
                .filter(|c| *c != 0)
                .unwrap_or(1);
            return Err(StatusError::new(code, text).into());
        }
        if !message.error.is_empty() {
            return Err(StatusError::new(1, message.error.clone()).into());
        }
        if let Some(id) = message
            .aux
            .as_ref()
            .and_then(|a| a.get("ID"))
            .and_then(|v| v.as_str())
        {
            image = id.to_string();
            continue;
        }
        if args.quiet {
            quiet_output.push_str(&message.stream);
            continue;
        }
        if let Some(line) = progress::render(&message) {
            let mut out = std::io::stdout().lock();
            out.write_all(line.as_bytes())?;
            out.flush()?;
        }
    }
    if args.quiet {
        print!("{quiet_output}");
    }
    if let Some(file) = &args.iidfile {
        std::fs::write(file, &image)
            .map_err(|e| anyhow::anyhow!("failed to write image ID to file: {e}"))?;
    }
    Ok(())
}
