//! berth's image builder: runs a parsed Dockerfile (`berth-dockerfile`) as Docker's classic
//! builder does — the same instruction semantics, image configs, history entries and
//! output stream — while building only the stages the target needs, independent stages
//! at the same time, with a layer cache keyed by parent, instruction, used build args and
//! the content of copied files.
//!
//! It does no container or image work itself: every step goes through the [`Worker`]
//! trait, which berth-engine implements with real snapshots and containers and
//! [`fake::FakeWorker`] with plain directories for hermetic tests. It does not speak HTTP
//! or JSON streams (berth-server renders its output).

mod builder;
pub mod config;
pub mod context;
pub mod context_tar;
pub mod copy;
mod copy_tar;
mod dispatch;
mod dispatch_copy;
pub mod fake;
pub mod git;
pub mod graph;
pub mod output;
mod run_heredoc;
mod run_mounts;
pub mod tarsum;
pub mod worker;

pub use builder::{build, BuildOptions, BuildResult};
pub use config::{HealthConfig, RunConfig};
pub use output::Output;
pub use worker::{BaseImage, Download, RunMount, RunMountSource, StepCommit, Worker, WorkerError};

/// Why a build failed; texts are the classic builder's where users see them.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("dockerfile parse error on line {line}: {message}")]
    Parse { line: usize, message: String },
    #[error(transparent)]
    Dockerfile(#[from] berth_dockerfile::instructions::DockerfileError),
    #[error("{0}")]
    Expand(String),
    #[error("failed to reach build target {0} in Dockerfile")]
    Target(String),
    #[error("The command '{command}' returned a non-zero code: {code}")]
    Run { command: String, code: i64 },
    #[error("{0}")]
    Copy(String),
    #[error("{0} is not implemented in berth's builder")]
    NotImplemented(String),
    #[error("{0}")]
    Context(String),
    #[error("secret {0}: not found (the classic POST /build has no BuildKit session to pass build secrets; drop `required` to build without it)")]
    Secret(String),
    #[error("error squashing image: {0}")]
    Squash(String),
    #[error("No image was generated. Is your Dockerfile empty?")]
    NoImage,
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

impl BuildError {
    /// The exit code the docker CLI takes from the error (`errorDetail.code`).
    pub fn code(&self) -> i64 {
        match self {
            BuildError::Run { code, .. } => *code,
            _ => 0,
        }
    }

    /// COPY/ADD errors read `COPY failed: ...` as in Docker.
    fn copy_failed(name: &str, self_: BuildError) -> BuildError {
        match self_ {
            BuildError::Copy(m) => BuildError::Copy(format!("{name} failed: {m}")),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_heredoc;
#[cfg(test)]
mod tests_mounts;
