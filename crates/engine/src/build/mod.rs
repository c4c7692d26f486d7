//! Image builds (`POST /build`): the context tar is extracted under `<data-root>/build`,
//! the Dockerfile read from it, and berth-build runs the steps through [`EngineWorker`]
//! (real snapshots, real containers without network). The cache index lives beside it.

mod cache;
mod cache_from;
mod commit;
mod download;
mod mount_stubs;
mod squash;
mod usage;
mod worker;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use berth_build::output::Output;
pub use berth_build::{BuildError, BuildResult};
pub use usage::{records as cache_records, CachePruneReport};
pub use worker::EngineWorker;

use crate::error::ErrorKind;
use crate::Engine;

/// The label that marks a build's RUN container (its layer is diffed and thrown away, so
/// the container start path mounts it overlayfs `volatile`). It stays on the container,
/// never reaches the image (a step's commit takes the builder's config).
pub const BUILD_STEP_LABEL: &str = "berth.build.step";

/// What `POST /build` asks for (query parameters already parsed).
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// `dockerfile`: path inside the context (`Dockerfile` when empty).
    pub dockerfile: String,
    pub tags: Vec<String>,
    pub build_args: std::collections::BTreeMap<String, String>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub target: String,
    pub no_cache: bool,
    pub pull: bool,
    pub platform: String,
    /// `cachefrom`: images whose history offers cached steps.
    pub cache_from: Vec<String>,
    /// `squash`: merge the build's layers into one (always allowed: dockerd only in
    /// experimental mode).
    pub squash: bool,
}

/// Why a build failed, with its kind.
#[derive(Debug, thiserror::Error)]
pub enum BuildFailure {
    #[error("{0}")]
    Context(String),
    #[error("Cannot locate specified Dockerfile: {0}")]
    NoDockerfile(String),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("build task failed: {0}")]
    Join(String),
}

impl BuildFailure {
    pub fn kind(&self) -> ErrorKind {
        match self {
            BuildFailure::Context(_) | BuildFailure::NoDockerfile(_) => ErrorKind::InvalidArgument,
            BuildFailure::Build(BuildError::Parse { .. })
            | BuildFailure::Build(BuildError::Dockerfile(_))
            | BuildFailure::Build(BuildError::Target(_))
            | BuildFailure::Build(BuildError::Expand(_))
            | BuildFailure::Build(BuildError::Secret(_)) => ErrorKind::InvalidArgument,
            BuildFailure::Build(BuildError::Worker(berth_build::WorkerError::ImageNotFound(_))) => {
                ErrorKind::NotFound
            }
            BuildFailure::Build(BuildError::NotImplemented(_)) => ErrorKind::NotImplemented,
            _ => ErrorKind::Internal,
        }
    }

    /// `errorDetail.code` (a failing RUN's exit code).
    pub fn code(&self) -> i64 {
        match self {
            BuildFailure::Build(e) => e.code(),
            _ => 0,
        }
    }
}

/// `<data-root>/build`.
pub fn build_dir(engine: &Engine) -> PathBuf {
    engine.config.data_root.join("build")
}

/// Extracts the (optionally gzip-compressed) context tar into a fresh directory.
fn extract_context(
    body: Box<dyn Read + Send>,
    dir: &Path,
) -> Result<tempfile::TempDir, BuildFailure> {
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| BuildFailure::Io { op, path, source }
    };
    std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let context = tempfile::Builder::new()
        .prefix("context-")
        .tempdir_in(dir)
        .map_err(io("creating", dir))?;
    let mut body = std::io::BufReader::new(body);
    let head = std::io::BufRead::fill_buf(&mut body)
        .map_err(|e| BuildFailure::Context(format!("reading the build context: {e}")))?;
    let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(body))
    } else {
        Box::new(body)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    archive
        .unpack(context.path())
        .map_err(|e| BuildFailure::Context(format!("the build context is not a valid tar: {e}")))?;
    // Read the body to its end (tar padding after the end marker): an answer sent while the
    // client still writes would reach it as a broken pipe instead of the build's error.
    let mut rest = archive.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink())
        .map_err(|e| BuildFailure::Context(format!("reading the build context: {e}")))?;
    Ok(context)
}

/// Runs a build: extracts `context`, reads the Dockerfile, streams the classic builder's
/// text to `out`, returns the image.
pub async fn build(
    engine: Arc<Engine>,
    request: BuildRequest,
    context: Box<dyn Read + Send>,
    out: Arc<dyn Output>,
) -> Result<BuildResult, BuildFailure> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let dir = build_dir(&engine);
        let context = extract_context(context, &dir)?;
        let name = if request.dockerfile.is_empty() {
            "Dockerfile".to_string()
        } else {
            request.dockerfile.clone()
        };
        let clean = berth_build::context::clean(&name);
        let path = berth_build::copy::resolve_in_root(context.path(), &clean);
        let dockerfile =
            std::fs::read_to_string(&path).map_err(|_| BuildFailure::NoDockerfile(name.clone()))?;
        let options = berth_build::BuildOptions {
            dockerfile,
            dockerfile_name: clean,
            context: context.path().to_path_buf(),
            tags: request.tags,
            build_args: request.build_args,
            labels: request.labels,
            target: request.target,
            no_cache: request.no_cache,
            pull: request.pull,
            platform: request.platform,
            // The classic POST /build has no BuildKit session, so no build secrets:
            // `RUN --mount=type=secret` gets none (an error when `required`).
            secrets: Default::default(),
            cache_from: request.cache_from,
            squash: request.squash,
        };
        let worker = EngineWorker::new(engine.clone(), handle, dir);
        let result = berth_build::build(&worker, &options, &*out);
        worker.release_all();
        Ok(result?)
    })
    .await
    .map_err(|e| BuildFailure::Join(e.to_string()))?
}

/// `POST /build/prune`: forgets the build cache and deletes the step images only it kept.
pub async fn prune(engine: &Engine) -> CachePruneReport {
    usage::prune(engine).await
}
