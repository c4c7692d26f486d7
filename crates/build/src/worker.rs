//! The `Worker` seam: what the builder needs from an engine (images, writable layers,
//! containers for RUN, commits, tags and the cache index). The engine implements it with its
//! snapshots and shims; [`crate::fake::FakeWorker`] implements it with plain directories.

use std::io::Write;
use std::path::PathBuf;

use crate::config::RunConfig;

/// Why a worker call failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("no such image: {0}")]
    ImageNotFound(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Engine(String),
}

impl WorkerError {
    pub fn io(op: impl Into<String>, source: std::io::Error) -> WorkerError {
        WorkerError::Io {
            op: op.into(),
            source,
        }
    }
}

/// An image a stage starts from; `id` is empty for `scratch`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseImage {
    pub id: String,
    /// The image's run config (`config` in the image JSON); `None` for scratch.
    pub config: Option<RunConfig>,
    pub os: String,
}

/// What a commit writes into the new image's config and history (Docker's
/// `backend.CommitConfig` of a build step).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepCommit {
    /// The parent image; empty for scratch.
    pub parent: String,
    /// The image's config after the step.
    pub config: RunConfig,
    /// The config with the step's command (history `created_by` is its Cmd joined).
    pub container_config: RunConfig,
    /// MAINTAINER.
    pub author: String,
    /// The container the step ran in, when it ran in one.
    pub container: String,
}

impl StepCommit {
    /// The history entry's `created_by`.
    pub fn created_by(&self) -> String {
        self.container_config
            .cmd
            .as_deref()
            .unwrap_or_default()
            .join(" ")
    }
}

/// What a RUN mount shows at its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMountSource {
    /// A host path bound at the target (a file or a directory).
    Bind(PathBuf),
    /// A fresh tmpfs; `size` in bytes, 0 for the default.
    Tmpfs { size: i64 },
}

/// A mount of one RUN step (`RUN --mount`, a heredoc script under /dev/pipes): never part
/// of the step's layer. The worker removes the empty mount points it had to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    /// Absolute path inside the container.
    pub target: String,
    pub source: RunMountSource,
    pub read_only: bool,
}

/// A file ADD downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// Where the body was written (inside the directory the builder handed over).
    pub path: PathBuf,
    /// The `Last-Modified` header as seconds since the epoch, when the server sent one.
    pub last_modified: Option<i64>,
}

/// The engine side of a build. Layer keys name a writable layer (a snapshot, or a RUN
/// container's rootfs); every key handed out is released exactly once by the builder.
pub trait Worker: Send + Sync {
    /// The image `FROM name` refers to (pulled first when `pull`).
    fn resolve_image(&self, name: &str, pull: bool) -> Result<BaseImage, WorkerError>;

    /// [`Worker::resolve_image`] telling `say` how a pull goes (lines of text).
    fn resolve_image_logged(
        &self,
        name: &str,
        pull: bool,
        say: &dyn Fn(&str),
    ) -> Result<BaseImage, WorkerError> {
        let _ = say;
        self.resolve_image(name, pull)
    }

    /// A writable layer on `parent` (empty: scratch), mounted; returns its key.
    fn prepare(&self, parent: &str) -> Result<String, WorkerError>;

    /// The host path where the layer `key` is mounted (only for keys from `prepare` or
    /// `mount_image`).
    fn layer_root(&self, key: &str) -> Result<PathBuf, WorkerError>;

    /// A read-only view of an image's file tree (COPY --from); release it after use.
    fn mount_image(&self, image: &str) -> Result<String, WorkerError>;

    /// Creates a container on `parent` running `config` (Cmd, Env, User, WorkingDir) with
    /// no network and `mounts`; returns its id, which is also its layer key.
    fn create(
        &self,
        parent: &str,
        config: &RunConfig,
        mounts: &[RunMount],
    ) -> Result<String, WorkerError>;

    /// Starts the container, copies its output to `out` and returns its exit code.
    fn start(&self, container: &str, out: &mut dyn Write) -> Result<i64, WorkerError>;

    /// Commits `layer` (or no layer) as a new image with `commit`'s config and history;
    /// returns the image id (`sha256:...`). An empty diff adds no layer (`empty_layer`).
    fn commit(&self, layer: Option<&str>, commit: &StepCommit) -> Result<String, WorkerError>;

    /// `--squash`: a new image with `image`'s config whose layers are `parent`'s (empty:
    /// none) plus one layer holding every change `image` makes on top of `parent`; history
    /// entries after `parent`'s are marked `empty_layer` and one entry for the merge is
    /// added (moby's `ImageService.SquashImage`). Returns the new image id.
    fn squash(&self, image: &str, parent: &str) -> Result<String, WorkerError>;

    /// Drops a layer or container (unmounting it); errors are not interesting here.
    fn release(&self, key: &str);

    /// Tags `image` as `reference`.
    fn tag(&self, image: &str, reference: &str) -> Result<(), WorkerError>;

    /// The image cached under `key`, if it still exists.
    fn cache_get(&self, key: &str) -> Option<String>;

    /// Remembers `image` as the result of `key`.
    fn cache_put(&self, key: &str, image: &str);

    /// The image one of the `--cache-from` `sources` offers for a step on `parent` whose
    /// history entry reads `created_by` and whose config is `config` (moby's
    /// `image/cache.ImageCache.GetCache`: a source whose history and layers begin with the
    /// parent's and continue with this step). The source itself when the step is its last,
    /// else an image restored from its layer and history entry. None when nothing matches
    /// (and by default: a worker without images to offer).
    fn cache_from(
        &self,
        sources: &[String],
        parent: &str,
        created_by: &str,
        config: &RunConfig,
    ) -> Option<String> {
        let _ = (sources, parent, created_by, config);
        None
    }

    /// The source hashes an earlier `COPY --from=<image id>` of the same sources computed
    /// (`key`: the image id and the source patterns), so a cached step need not mount the
    /// image to hash its files again. Only for ids that always name the same files (an
    /// engine image id is the digest of a config naming its layers' DiffIDs). None by
    /// default: a worker that keeps no memo.
    fn copy_from_hashes(&self, key: &str) -> Option<Vec<String>> {
        let _ = key;
        None
    }

    /// Remembers what [`Worker::copy_from_hashes`] answers for `key`.
    fn remember_copy_from_hashes(&self, key: &str, hashes: &[String]) {
        let _ = (key, hashes);
    }

    /// The persistent directory of `RUN --mount=type=cache,id=<id>` (created empty on first
    /// use; kept across builds until the build cache is pruned).
    fn cache_mount_dir(&self, id: &str) -> Result<PathBuf, WorkerError>;

    /// A directory for the build's temporary files (heredoc scripts, secrets, copies of
    /// read-write bind sources); removed by the builder.
    fn scratch_dir(&self) -> Result<tempfile::TempDir, WorkerError>;

    /// Downloads `url` (ADD) into the file `dest`, following redirects, with a timeout.
    fn download(&self, url: &str, dest: &std::path::Path) -> Result<Download, WorkerError>;
}

/// Releases a layer key on drop.
pub struct LayerGuard<'a> {
    pub worker: &'a dyn Worker,
    pub key: String,
}

impl Drop for LayerGuard<'_> {
    fn drop(&mut self) {
        self.worker.release(&self.key);
    }
}
