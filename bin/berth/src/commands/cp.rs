//! `cp`: files between a container and the host through the archive endpoints (GET and
//! PUT `/containers/{id}/archive`, HEAD for the destination's stat), tar on the wire.
//!
//! Extraction on the host treats the container's tar as untrusted: absolute paths and
//! `..` components are refused, and symlinks and hard links are created only after every
//! file is written, so no entry is ever written through a link from the same archive.

use std::io::{IsTerminal, Read, Write};
use std::path::{Component, Path, PathBuf};

use berth_client::{Method, RequestBody};
use bytes::Bytes;
use clap::Args;

use super::segment;
use crate::app::{App, StatusError};

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short, long)]
    pub quiet: bool,
    pub source: String,
    pub destination: String,
}

/// `container:path` or a local path (absolute or relative paths with a `/` before any
/// colon stay local, as docker's `splitCpArg` decides).
fn split_target(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') || arg.starts_with('.') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((container, path)) if !container.contains('/') => (Some(container), path),
        _ => (None, arg),
    }
}

pub async fn cp(app: &App, args: CpArgs) -> anyhow::Result<()> {
    match (split_target(&args.source), split_target(&args.destination)) {
        ((Some(_), _), (Some(_), _)) => {
            Err(StatusError::new(1, "copying between containers is not supported").into())
        }
        ((None, _), (None, _)) => {
            Err(StatusError::new(1, "must specify at least one container source").into())
        }
        ((Some(container), path), (None, destination)) => {
            from_container(app, container, path, destination).await
        }
        ((None, source), (Some(container), path)) => {
            to_container(app, source, container, path, args.archive).await
        }
    }
}

fn last_component(path: &str) -> String {
    Path::new(path.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".to_string())
}

async fn from_container(
    app: &App,
    container: &str,
    path: &str,
    destination: &str,
) -> anyhow::Result<()> {
    let query = berth_client::query(&[("path", path.to_string())]);
    let mut response = app
        .client
        .request(
            Method::GET,
            &format!("/containers/{}/archive{query}", segment(container)),
            RequestBody::Empty,
            &[],
        )
        .await?;
    if destination == "-" {
        if std::io::stdout().is_terminal() {
            return Err(StatusError::new(
                1,
                "cowardly refusing to write a tar archive to a terminal",
            )
            .into());
        }
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = response.chunk().await? {
            out.write_all(&chunk)?;
        }
        return Ok(out.flush()?);
    }
    let archive = response.bytes().await?;
    let destination = PathBuf::from(destination);
    let source_name = last_component(path);
    // Into an existing directory the entries keep their name; otherwise the top entry is
    // renamed to the destination's last component inside its parent.
    let (root, rename) = if destination.is_dir() {
        (destination.clone(), None)
    } else {
        let parent = destination
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(StatusError::new(1, "no such directory").into());
        }
        let name = destination
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (parent.to_path_buf(), Some(name))
    };
    extract(&archive, &root, &source_name, rename.as_deref())
}

/// Validated relative path of an entry, with its first component renamed when asked.
fn entry_path(raw: &Path, source_name: &str, rename: Option<&str>) -> anyhow::Result<PathBuf> {
    let mut out = PathBuf::new();
    for (i, component) in raw.components().enumerate() {
        match component {
            Component::Normal(part) => {
                if i == 0 {
                    match rename {
                        Some(name) if part.to_string_lossy() == source_name => out.push(name),
                        _ => out.push(part),
                    }
                } else {
                    out.push(part);
                }
            }
            Component::CurDir => {}
            _ => anyhow::bail!(
                "refusing archive entry {}: it leaves the destination",
                raw.display()
            ),
        }
    }
    Ok(out)
}

fn extract(
    archive: &[u8],
    root: &Path,
    source_name: &str,
    rename: Option<&str>,
) -> anyhow::Result<()> {
    let mut links: Vec<(PathBuf, PathBuf, bool)> = Vec::new();
    let mut reader = tar::Archive::new(archive);
    for entry in reader.entries()? {
        let mut entry = entry?;
        let relative = entry_path(&entry.path()?, source_name, rename)?;
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = root.join(&relative);
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644);
        if kind.is_dir() {
            std::fs::create_dir_all(&target)?;
            set_mode(&target, mode)?;
        } else if kind.is_symlink() || kind.is_hard_link() {
            let link = entry
                .link_name()?
                .map(|l| l.into_owned())
                .unwrap_or_default();
            links.push((target, link, kind.is_hard_link()));
        } else if kind.is_file() {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            if target.is_symlink() {
                std::fs::remove_file(&target)?;
            }
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            std::fs::write(&target, bytes)?;
            set_mode(&target, mode)?;
        }
    }
    for (target, link, hard) in links {
        if target.symlink_metadata().is_ok() {
            std::fs::remove_file(&target)?;
        }
        if hard {
            let source = root.join(entry_path(&link, source_name, rename)?);
            std::fs::hard_link(source, &target)?;
        } else {
            std::os::unix::fs::symlink(link, &target)?;
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
}

/// The destination's stat from the `X-Docker-Container-Path-Stat` header, if it exists.
async fn stat(app: &App, container: &str, path: &str) -> anyhow::Result<Option<serde_json::Value>> {
    let query = berth_client::query(&[("path", path.to_string())]);
    let response = app
        .client
        .request(
            Method::HEAD,
            &format!("/containers/{}/archive{query}", segment(container)),
            RequestBody::Empty,
            &[],
        )
        .await;
    match response {
        Ok(response) => {
            let header = response
                .header("x-docker-container-path-stat")
                .unwrap_or_default()
                .to_string();
            let decoded = super::registry::decode_base64_bytes(&header).unwrap_or_default();
            Ok(serde_json::from_slice(&decoded).ok())
        }
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Go's `os.ModeDir` bit in the stat's mode.
const GO_MODE_DIR: u64 = 1 << 31;

async fn to_container(
    app: &App,
    source: &str,
    container: &str,
    path: &str,
    archive_mode: bool,
) -> anyhow::Result<()> {
    let (directory, body) = if source == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().lock().read_to_end(&mut bytes)?;
        (path.to_string(), bytes)
    } else {
        let local = Path::new(source);
        if local.symlink_metadata().is_err() {
            return Err(StatusError::new(
                1,
                format!(
                    "lstat {}: no such file or directory",
                    absolute(local).display()
                ),
            )
            .into());
        }
        let destination = stat(app, container, path).await?;
        let is_dir = destination
            .as_ref()
            .and_then(|s| s["mode"].as_u64())
            .is_some_and(|mode| mode & GO_MODE_DIR != 0);
        let (directory, name) = if is_dir {
            (path.to_string(), last_component(source))
        } else {
            let trimmed = path.trim_end_matches('/');
            let parent = Path::new(trimmed)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".to_string());
            (parent, last_component(trimmed))
        };
        (directory, build_tar(local, &name)?)
    };
    let mut pairs = vec![
        ("path", directory),
        ("noOverwriteDirNonDir", "true".to_string()),
    ];
    if archive_mode {
        pairs.push(("copyUIDGID", "true".to_string()));
    }
    let target = format!(
        "/containers/{}/archive{}",
        segment(container),
        berth_client::query(&pairs)
    );
    let headers = [("content-type", "application/x-tar".to_string())];
    app.client
        .request(
            Method::PUT,
            &target,
            RequestBody::Full(Bytes::from(body)),
            &headers,
        )
        .await?
        .bytes()
        .await?;
    Ok(())
}

fn absolute(path: &Path) -> PathBuf {
    std::env::current_dir()
        .map(|dir| dir.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

fn build_tar(source: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    if source.is_dir() {
        builder.append_dir_all(name, source)?;
    } else {
        builder.append_path_with_name(source, name)?;
    }
    Ok(builder.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_like_docker() {
        assert_eq!(split_target("web:/etc/hosts"), (Some("web"), "/etc/hosts"));
        assert_eq!(split_target("/tmp/a:b"), (None, "/tmp/a:b"));
        assert_eq!(split_target("./x:y"), (None, "./x:y"));
        assert_eq!(split_target("file.txt"), (None, "file.txt"));
    }

    #[test]
    fn extraction_refuses_escapes_and_renames_the_top_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, "etc/hosts", &b"hi"[..])
            .expect("append");
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        builder
            .append_link(&mut link, "etc/out", "/")
            .expect("link");
        let archive = builder.into_inner().expect("tar");
        extract(&archive, dir.path(), "etc", Some("copy")).expect("extract");
        assert_eq!(
            std::fs::read(dir.path().join("copy/hosts")).expect("file"),
            b"hi"
        );
        assert!(dir.path().join("copy/out").is_symlink());

        let mut evil = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_entry_type(tar::EntryType::Regular);
        // tar::Builder refuses "..", so write the name into the header directly.
        header.as_gnu_mut().expect("gnu").name[..9].copy_from_slice(b"../escape");
        header.set_cksum();
        evil.append(&header, &b"x"[..]).expect("append");
        let archive = evil.into_inner().expect("tar");
        assert!(extract(&archive, dir.path(), "x", None).is_err());
        assert!(!dir.path().parent().expect("parent").join("escape").exists());
    }
}
