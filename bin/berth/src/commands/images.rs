//! `images` (`image ls`), `tag` and `rmi`.

use clap::Args;

use super::containers::familiar;
use crate::app::App;
use crate::format::units::{ago, human_size, human_size_precision};
use crate::format::{object, time::go_time_string, truncate_id, ListFormat, Value};

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

const IMAGES_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const IMAGES_DIGEST_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

fn images_header() -> Value {
    object(
        [
            ("Containers", "CONTAINERS"),
            ("CreatedAt", "CREATED AT"),
            ("CreatedSince", "CREATED"),
            ("Digest", "DIGEST"),
            ("ID", "IMAGE ID"),
            ("Repository", "REPOSITORY"),
            ("SharedSize", "SHARED SIZE"),
            ("Size", "SIZE"),
            ("Tag", "TAG"),
            ("UniqueSize", "UNIQUE SIZE"),
            ("VirtualSize", "VIRTUAL SIZE"),
        ]
        .map(|(k, v)| (k, Value::str(v))),
    )
}

pub async fn images(app: &App, args: ImagesArgs) -> anyhow::Result<()> {
    let default = if args.digests {
        IMAGES_DIGEST_TABLE
    } else {
        IMAGES_TABLE
    };
    let format = if args.quiet {
        "{{.ID}}".to_string()
    } else {
        args.format.clone().unwrap_or_else(|| default.to_string())
    };
    let mut filters = super::filters(&args.filter)?;
    if let Some(reference) = &args.reference {
        filters.add("reference", reference);
    }
    let mut pairs: Vec<(&'static str, String)> = Vec::new();
    if args.all {
        pairs.push(("all", "1".into()));
    }
    super::push_filters(&mut pairs, &filters)?;
    let raw = app
        .client
        .get_raw(&format!("/images/json{}", berth_client::query(&pairs)))
        .await?;
    let output = render_images(&raw, &format, args.digests, !args.no_trunc)?;
    app.print(&output)
}

/// Renders an `/images/json` answer with an `images` format.
pub fn render_images(
    raw: &[u8],
    format: &str,
    digests: bool,
    trunc: bool,
) -> anyhow::Result<String> {
    let default = if digests {
        IMAGES_DIGEST_TABLE
    } else {
        IMAGES_TABLE
    };
    let show_digest = digests || format.contains("{{.Digest}}");
    let mut rows = Vec::new();
    if let Value::Array(images) = Value::parse(raw)? {
        for image in &images {
            for (repository, tag, digest) in image_rows(image, show_digest) {
                rows.push(image_row(image, &repository, &tag, &digest, trunc));
            }
        }
    }
    Ok(ListFormat::new(Some(format), default).render(&images_header(), &rows)?)
}

/// docker's expansion of one image into `(repository, tag, digest)` rows: a row per tag
/// (and per digest when digests are shown), digest-only references, or `<none>`.
fn image_rows(image: &Value, show_digest: bool) -> Vec<(String, String, String)> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for reference in image.strings("RepoTags") {
        if let Some((repo, tag)) = split_tag(&reference) {
            tags.push((familiar(&repo), tag));
        }
    }
    let mut digests: Vec<(String, String)> = Vec::new();
    for reference in image.strings("RepoDigests") {
        if let Some((repo, digest)) = reference.split_once('@') {
            digests.push((familiar(repo), digest.to_string()));
        }
    }
    tags.sort();
    let mut rows = Vec::new();
    if tags.is_empty() && digests.is_empty() {
        rows.push((
            "<none>".to_string(),
            "<none>".to_string(),
            "<none>".to_string(),
        ));
        return rows;
    }
    for (repo, tag) in &tags {
        let repo_digests: Vec<&String> = digests
            .iter()
            .filter(|(r, _)| r == repo)
            .map(|(_, d)| d)
            .collect();
        if !show_digest || repo_digests.is_empty() {
            rows.push((repo.clone(), tag.clone(), "<none>".to_string()));
            continue;
        }
        for digest in repo_digests {
            rows.push((repo.clone(), tag.clone(), digest.clone()));
        }
    }
    let mut seen_repos: Vec<String> = Vec::new();
    for (repo, digest) in &digests {
        if tags.iter().any(|(r, _)| r == repo) {
            continue;
        }
        if show_digest {
            rows.push((repo.clone(), "<none>".to_string(), digest.clone()));
        } else if !seen_repos.contains(repo) {
            seen_repos.push(repo.clone());
            rows.push((repo.clone(), "<none>".to_string(), "<none>".to_string()));
        }
    }
    rows
}

/// Splits `name:tag` at the tag colon (not a registry port's colon).
pub fn split_tag(reference: &str) -> Option<(String, String)> {
    let slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    let colon = reference[slash..].rfind(':')? + slash;
    Some((
        reference[..colon].to_string(),
        reference[colon + 1..].to_string(),
    ))
}

fn image_row(image: &Value, repository: &str, tag: &str, digest: &str, trunc: bool) -> Value {
    let id = image.text("Id");
    let created = image.int("Created");
    let size = image.int("Size");
    let shared = image.int("SharedSize");
    let count = |name: &str, value: i64| {
        if value < 0 {
            "N/A".to_string()
        } else {
            let _ = name;
            value.to_string()
        }
    };
    object([
        (
            "Containers",
            Value::Str(count("Containers", image.int("Containers"))),
        ),
        ("CreatedAt", Value::Str(go_time_string(created))),
        (
            "CreatedSince",
            Value::Str(if created == 0 {
                "N/A".to_string()
            } else {
                ago(created as f64)
            }),
        ),
        ("Digest", Value::str(digest)),
        (
            "ID",
            Value::Str(if trunc {
                truncate_id(id)
            } else {
                id.to_string()
            }),
        ),
        ("Repository", Value::str(repository)),
        // docker's imageContext: shared and unique sizes in units.HumanSize (4 digits).
        (
            "SharedSize",
            Value::Str(if shared < 0 {
                "N/A".into()
            } else {
                human_size(shared as f64)
            }),
        ),
        ("Size", Value::Str(human_size_precision(size as f64, 3))),
        ("Tag", Value::str(tag)),
        (
            "UniqueSize",
            Value::Str(if shared < 0 {
                "N/A".into()
            } else {
                human_size((size - shared) as f64)
            }),
        ),
        (
            "VirtualSize",
            Value::Str(human_size_precision(size as f64, 3)),
        ),
    ])
}

#[derive(Args, Debug)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

/// Splits a reference into the `repo` and `tag` query values (`latest` by default).
pub fn repo_and_tag(reference: &str) -> (String, String) {
    if let Some((name, _digest)) = reference.split_once('@') {
        return (name.to_string(), String::new());
    }
    match split_tag(reference) {
        Some((repo, tag)) => (repo, tag),
        None => (reference.to_string(), "latest".to_string()),
    }
}

pub async fn tag(app: &App, args: TagArgs) -> anyhow::Result<()> {
    let (repo, tag) = repo_and_tag(&args.target);
    let path = format!(
        "/images/{}/tag{}",
        super::segment(&args.source),
        berth_client::query(&[("repo", repo), ("tag", tag)])
    );
    app.client.post(&path).await?;
    Ok(())
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub async fn rmi(app: &App, args: RmiArgs) -> anyhow::Result<()> {
    let mut pairs = Vec::new();
    if args.force {
        pairs.push(("force", "1".to_string()));
    }
    if args.no_prune {
        pairs.push(("noprune", "1".to_string()));
    }
    let query = berth_client::query(&pairs);
    let mut failures = Vec::new();
    for image in &args.images {
        match app
            .client
            .delete(&format!("/images/{}{query}", super::segment(image)))
            .await
        {
            Ok(body) => {
                let items: serde_json::Value = serde_json::from_slice(&body)?;
                let mut text = String::new();
                for item in items.as_array().into_iter().flatten() {
                    if let Some(untagged) = item["Untagged"].as_str() {
                        text.push_str(&format!("Untagged: {untagged}\n"));
                    } else if let Some(deleted) = item["Deleted"].as_str() {
                        text.push_str(&format!("Deleted: {deleted}\n"));
                    }
                }
                app.print(&text)?;
            }
            Err(err) => failures.push(err.to_string()),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(crate::app::StatusError::new(1, failures.join("\n")).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_expand_into_rows_like_docker() {
        let image = Value::parse(
            br#"{"RepoTags":["mine/bb:v1","busybox:latest","localhost:5000/x:1"],
                "RepoDigests":["busybox@sha256:aa","other@sha256:bb"]}"#,
        )
        .expect("json");
        let plain: Vec<(String, String, String)> = image_rows(&image, false);
        let names: Vec<String> = plain.iter().map(|(r, t, _)| format!("{r}:{t}")).collect();
        assert_eq!(
            names,
            vec![
                "busybox:latest",
                "localhost:5000/x:1",
                "mine/bb:v1",
                "other:<none>"
            ]
        );
        let digests = image_rows(&image, true);
        assert_eq!(
            digests[0],
            ("busybox".into(), "latest".into(), "sha256:aa".into())
        );
        assert_eq!(
            digests[3],
            ("other".into(), "<none>".into(), "sha256:bb".into())
        );
        let none = Value::parse(br#"{"RepoTags":[],"RepoDigests":null}"#).expect("json");
        assert_eq!(
            image_rows(&none, false),
            vec![("<none>".into(), "<none>".into(), "<none>".into())]
        );
    }

    #[test]
    fn references_split_into_repo_and_tag() {
        assert_eq!(repo_and_tag("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(repo_and_tag("mine/bb:v1"), ("mine/bb".into(), "v1".into()));
        assert_eq!(
            repo_and_tag("localhost:5000/x"),
            ("localhost:5000/x".into(), "latest".into())
        );
        assert_eq!(repo_and_tag("x@sha256:ab"), ("x".into(), String::new()));
    }
}
