//! Moving images: `pull`, `push`, `load`, `save` and `import`.

use std::io::{IsTerminal, Read, Write};

use berth_client::{Method, RequestBody};
use bytes::Bytes;
use clap::Args;

use super::images::repo_and_tag;
use super::registry::auth_header;
use crate::app::{App, StatusError};
use crate::progress;

/// docker's `ParseNormalizedNamed(...).String()`: the full name with `docker.io` and
/// `library/` made explicit, the tag or digest kept.
pub fn normalize(reference: &str) -> String {
    let (name, suffix) = match reference.find('@') {
        Some(at) => (&reference[..at], &reference[at..]),
        None => match super::images::split_tag(reference) {
            Some((name, tag)) => (
                &reference[..name.len()],
                &reference[name.len()..][..tag.len() + 1],
            ),
            None => (reference, ""),
        },
    };
    let first = name.split('/').next().unwrap_or("");
    let has_domain =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_domain {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    format!("{full}{suffix}")
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Skip image verification
    #[arg(long, default_value_t = true)]
    pub disable_content_trust: bool,
    pub image: String,
}

/// Where a pull's progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullOutput {
    /// `docker pull`: progress, the default-tag note and the final reference on stdout.
    Pull,
    /// `docker pull -q`: only the final reference.
    Quiet,
    /// `docker run`'s implicit pull: progress only, on stderr.
    Run,
    /// `docker run -q`: nothing.
    Silent,
}

/// Pulls `image`, printing docker's non-terminal progress as `output` says.
pub async fn pull_image(
    app: &App,
    image: &str,
    platform: Option<&str>,
    output: PullOutput,
    all_tags: bool,
) -> anyhow::Result<()> {
    let quiet = output != PullOutput::Pull;
    let mut reference = image.to_string();
    let name_only = !image.contains('@') && super::images::split_tag(image).is_none();
    if name_only && !all_tags {
        reference = format!("{image}:latest");
        if !quiet {
            app.print("Using default tag: latest\n")?;
        }
    }
    let full = normalize(&reference);
    let (repo, tag) = if all_tags {
        (normalize(image), String::new())
    } else {
        repo_and_tag(&full)
    };
    let (repo, tag) = match full.split_once('@') {
        Some((name, digest)) if !all_tags => (name.to_string(), digest.to_string()),
        _ => (repo, tag),
    };
    let mut pairs = vec![("fromImage", repo)];
    if !tag.is_empty() {
        pairs.push(("tag", tag));
    }
    if let Some(platform) = platform {
        pairs.push(("platform", platform.to_string()));
    }
    let path = format!("/images/create{}", berth_client::query(&pairs));
    let headers = [("x-registry-auth", auth_header(app, &full))];
    let mut response = app
        .client
        .request(Method::POST, &path, RequestBody::Empty, &headers)
        .await?;
    let show_progress = matches!(output, PullOutput::Pull | PullOutput::Run);
    progress::display_to(&mut response, !show_progress, output == PullOutput::Run).await?;
    if !all_tags && matches!(output, PullOutput::Pull | PullOutput::Quiet) {
        app.print(&format!("{full}\n"))?;
    }
    Ok(())
}

pub async fn pull(app: &App, args: PullArgs) -> anyhow::Result<()> {
    let output = if args.quiet {
        PullOutput::Quiet
    } else {
        PullOutput::Pull
    };
    pull_image(
        app,
        &args.image,
        args.platform.as_deref(),
        output,
        args.all_tags,
    )
    .await
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long)]
    pub platform: Option<String>,
    #[arg(long, default_value_t = true)]
    pub disable_content_trust: bool,
    pub image: String,
}

pub async fn push(app: &App, args: PushArgs) -> anyhow::Result<()> {
    let full = normalize(&args.image);
    let (repo, tag) = repo_and_tag(&args.image);
    let mut pairs = Vec::new();
    if !args.all_tags && super::images::split_tag(&args.image).is_some() {
        pairs.push(("tag", tag));
    }
    if let Some(platform) = &args.platform {
        pairs.push(("platform", platform.clone()));
    }
    if !args.all_tags && super::images::split_tag(&args.image).is_none() && !args.quiet {
        app.print("Using default tag: latest\n")?;
        pairs.push(("tag", "latest".to_string()));
    }
    let path = format!(
        "/images/{}/push{}",
        super::segment(&repo),
        berth_client::query(&pairs)
    );
    let headers = [("x-registry-auth", auth_header(app, &full))];
    let mut response = app
        .client
        .request(Method::POST, &path, RequestBody::Empty, &headers)
        .await?;
    progress::display(&mut response, args.quiet).await?;
    if args.quiet {
        app.print(&format!("{}\n", normalize(&args.image)))?;
    }
    Ok(())
}

/// Reads a whole file, or stdin for `-`.
fn read_input(path: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match path {
        None | Some("-") => {
            std::io::stdin().lock().read_to_end(&mut bytes)?;
        }
        Some(path) => {
            bytes = std::fs::read(path)
                .map_err(|err| anyhow::anyhow!("open {path}: {}", io_text(&err)))?;
        }
    }
    Ok(bytes)
}

/// Go's text for common I/O errors.
fn io_text(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => err.to_string(),
    }
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long)]
    pub platform: Vec<String>,
}

pub async fn load(app: &App, args: LoadArgs) -> anyhow::Result<()> {
    if args.input.is_none() && std::io::stdin().is_terminal() {
        return Err(StatusError::new(1, "requested load from stdin, but stdin is empty").into());
    }
    let bytes = read_input(args.input.as_deref())?;
    let mut pairs = vec![("quiet", if args.quiet { "1" } else { "0" }.to_string())];
    for platform in &args.platform {
        pairs.push(("platform", platform.clone()));
    }
    let path = format!("/images/load{}", berth_client::query(&pairs));
    let headers = [("content-type", "application/x-tar".to_string())];
    let mut response = app
        .client
        .request(
            Method::POST,
            &path,
            RequestBody::Full(Bytes::from(bytes)),
            &headers,
        )
        .await?;
    if response.header("content-type") == Some("application/json") {
        progress::display(&mut response, false).await?;
    } else {
        let body = response.bytes().await?;
        std::io::stdout().write_all(&body)?;
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<String>,
    #[arg(long)]
    pub platform: Vec<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub async fn save(app: &App, args: SaveArgs) -> anyhow::Result<()> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(StatusError::new(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        )
        .into());
    }
    let mut pairs: Vec<(&str, String)> = args
        .images
        .iter()
        .map(|image| ("names", image.clone()))
        .collect();
    for platform in &args.platform {
        pairs.push(("platform", platform.clone()));
    }
    let path = format!("/images/get{}", berth_client::query(&pairs));
    let mut response = app
        .client
        .request(Method::GET, &path, RequestBody::Empty, &[])
        .await?;
    let mut sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::fs::File::create(path).map_err(|err| {
            anyhow::anyhow!(
                "failed to save image: invalid output path: open {path}: {}",
                io_text(&err)
            )
        })?),
        None => Box::new(std::io::stdout().lock()),
    };
    while let Some(chunk) = response.chunk().await? {
        sink.write_all(&chunk)?;
    }
    sink.flush()?;
    Ok(())
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// file|URL|- to import
    pub source: String,
    pub reference: Option<String>,
}

pub async fn import(app: &App, args: ImportArgs) -> anyhow::Result<()> {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    let remote = args.source.starts_with("http://") || args.source.starts_with("https://");
    pairs.push((
        "fromSrc",
        if remote {
            args.source.clone()
        } else {
            "-".to_string()
        },
    ));
    if let Some(reference) = &args.reference {
        let (repo, tag) = repo_and_tag(reference);
        pairs.push(("repo", repo));
        if super::images::split_tag(reference).is_some() {
            pairs.push(("tag", tag));
        }
    }
    if let Some(message) = &args.message {
        pairs.push(("message", message.clone()));
    }
    for change in &args.change {
        pairs.push(("changes", change.clone()));
    }
    if let Some(platform) = &args.platform {
        pairs.push(("platform", platform.clone()));
    }
    let body = if remote {
        RequestBody::Empty
    } else {
        RequestBody::Full(Bytes::from(read_input(Some(&args.source))?))
    };
    let path = format!("/images/create{}", berth_client::query(&pairs));
    let mut response = app.client.request(Method::POST, &path, body, &[]).await?;
    progress::display(&mut response, false).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalise_like_docker() {
        assert_eq!(
            normalize("busybox:latest"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(normalize("mine/bb:v1"), "docker.io/mine/bb:v1");
        assert_eq!(normalize("localhost:5000/x:1"), "localhost:5000/x:1");
        assert_eq!(normalize("quay.io/a/b@sha256:ab"), "quay.io/a/b@sha256:ab");
        assert_eq!(normalize("busybox"), "docker.io/library/busybox");
    }
}
