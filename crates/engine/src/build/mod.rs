//! Image builds (`POST /build`): the context tar is kept in memory as an indexed tar (or,
//! when big or unusual, extracted under `<data-root>/build`), the Dockerfile read from it, and berth-build runs the steps through [`EngineWorker`]
//! (real snapshots, real containers without network). The cache index lives beside it.

mod cache;
mod cache_from;
mod commit;
mod context_stream;
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

use berth_build::context_tar::{ContextHeaders, ContextTar, EntryKind};

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
    /// What every RUN container is created with (`networkmode`, `extrahosts`, `shmsize`,
    /// `ulimits`, `securityopt`, cgroup parent and resource limits), as moby's classic
    /// builder's `hostConfigFromOptions`.
    pub host_config: berth_api::container::HostConfig,
    /// `X-Registry-Config`: base64 JSON of registry -> AuthConfig, for pulling FROM images.
    pub registry_config: String,
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

/// Contexts up to this size (uncompressed) stay in memory as an indexed tar; bigger ones
/// are extracted to disk while they arrive.
const CONTEXT_IN_MEMORY: u64 = 64 << 20;

/// Reads the (optionally gzip-compressed) context tar into a fresh directory: kept as an
/// indexed tar when it is small and plain (the directory stays empty until a step copies
/// from it), else extracted there.
fn receive_context(
    body: Box<dyn Read + Send>,
    dir: &Path,
) -> Result<(tempfile::TempDir, Received), BuildFailure> {
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| BuildFailure::Io { op, path, source }
    };
    std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let context = tempfile::Builder::new()
        .prefix("context-")
        .tempdir_in(dir)
        .map_err(io("creating", dir))?;
    let reading = |e| BuildFailure::Context(format!("reading the build context: {e}"));
    let invalid = |e| BuildFailure::Context(format!("the build context is not a valid tar: {e}"));
    let mut body = std::io::BufReader::new(body);
    let head = std::io::BufRead::fill_buf(&mut body).map_err(reading)?;
    let decompressed: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(body))
    } else {
        Box::new(body)
    };
    let mut reader = context_stream::BlockPadded::new(decompressed);
    let length = reader.length();
    let mut data = Vec::new();
    (&mut reader)
        .take(CONTEXT_IN_MEMORY + 1)
        .read_to_end(&mut data)
        .map_err(reading)?;
    let whole = |tar: ContextTar| {
        if tar.data_end() as u64 > length.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(invalid(context_stream::cut_short("the last file")));
        }
        Ok(Received::Tar(Arc::new(tar)))
    };
    if data.len() as u64 <= CONTEXT_IN_MEMORY {
        match ContextTar::new(data).map_err(invalid)? {
            Ok(tar) => return Ok((context, whole(tar)?)),
            Err(back) => data = back,
        }
    } else {
        // Too big for memory: spooled to an unlinked file and mapped, still indexed, so its
        // files are never written out one by one (20000 small files cost far more to
        // create, read back and delete than one sequential write).
        let spool_io = |source| BuildFailure::Io {
            op: "spooling the build context in",
            path: dir.to_path_buf(),
            source,
        };
        let mut spool = tempfile::tempfile_in(dir).map_err(spool_io)?;
        std::io::Write::write_all(&mut spool, &data).map_err(spool_io)?;
        drop(data);
        std::io::copy(&mut reader, &mut spool).map_err(reading)?;
        if let Some(tar) = ContextTar::map(&spool).map_err(invalid)? {
            return Ok((context, whole(tar)?));
        }
        std::io::Seek::rewind(&mut spool).map_err(spool_io)?;
        let mut archive = tar::Archive::new(std::io::BufReader::new(spool));
        archive.set_preserve_permissions(true);
        archive.set_overwrite(true);
        let headers =
            context_stream::unpack(&mut archive, context.path(), &length).map_err(invalid)?;
        return Ok((context, Received::Extracted(Arc::new(headers))));
    }
    let mut archive = tar::Archive::new(std::io::Cursor::new(data).chain(reader));
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    let headers = context_stream::unpack(&mut archive, context.path(), &length).map_err(invalid)?;
    // Read the body to its end (tar padding after the end marker): an answer sent while the
    // client still writes would reach it as a broken pipe instead of the build's error.
    let mut rest = archive.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(reading)?;
    Ok((context, Received::Extracted(Arc::new(headers))))
}

/// The context as `receive_context` kept it.
enum Received {
    /// Indexed in memory.
    Tar(Arc<ContextTar>),
    /// Extracted to disk, with the uploaded headers.
    Extracted(Arc<ContextHeaders>),
}

/// The Dockerfile's text, from the tar index or the extracted context.
fn read_dockerfile(context: &Path, tar: Option<&ContextTar>, clean: &str) -> Option<String> {
    match tar {
        Some(tar) => {
            let entry = tar.lstat(&tar.resolve(&format!("{clean}/.")))?;
            let text = std::str::from_utf8(tar.content(entry)).ok()?;
            (entry.kind == EntryKind::File).then(|| text.to_string())
        }
        None => {
            let path = berth_build::copy::resolve_in_root(context, clean);
            std::fs::read_to_string(&path).ok()
        }
    }
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
        let (context, received) = receive_context(context, &dir)?;
        let (context_tar, context_headers) = match received {
            Received::Tar(tar) => (Some(tar), None),
            Received::Extracted(headers) => (None, Some(headers)),
        };
        let name = if request.dockerfile.is_empty() {
            "Dockerfile".to_string()
        } else {
            request.dockerfile.clone()
        };
        let clean = berth_build::context::clean(&name);
        let dockerfile = read_dockerfile(context.path(), context_tar.as_deref(), &clean)
            .ok_or_else(|| BuildFailure::NoDockerfile(name.clone()))?;
        let options = berth_build::BuildOptions {
            dockerfile,
            dockerfile_name: clean,
            context: context.path().to_path_buf(),
            context_tar,
            context_headers,
            tags: request.tags,
            build_args: request.build_args,
            labels: request.labels,
            target: request.target,
            no_cache: request.no_cache,
            pull: request.pull,
            platform: request.platform.clone(),
            // The classic POST /build has no BuildKit session, so no build secrets:
            // `RUN --mount=type=secret` gets none (an error when `required`).
            secrets: Default::default(),
            cache_from: request.cache_from,
            squash: request.squash,
        };
        let worker = EngineWorker::new(
            engine.clone(),
            handle,
            dir,
            request.host_config,
            worker::Pulls {
                registry_config: request.registry_config,
                platform: request.platform.clone(),
            },
        );
        let result = berth_build::build(&worker, &options, &*out);
        worker.release_all();
        let flushed = worker.flush();
        let result = result?;
        flushed.map_err(|e| BuildFailure::Build(e.into()))?;
        Ok(result)
    })
    .await
    .map_err(|e| BuildFailure::Join(e.to_string()))?
}

/// `POST /build/prune`: forgets the build cache and deletes the step images only it kept.
pub async fn prune(engine: &Engine) -> CachePruneReport {
    usage::prune(engine).await
}
