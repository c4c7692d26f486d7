//! `RuntimeError`: every way a berth-runtime command can fail, with runc's wording
//! where runc has one (callers and tests match on these texts).

use std::io;
use std::path::PathBuf;

use crate::spec::SpecError;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container does not exist")]
    NotExist,
    #[error("container with given ID already exists")]
    Exists,
    #[error("invalid container ID format: {0}")]
    InvalidId(String),
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped { id: String, status: String },
    #[error("container not running")]
    NotRunning,
    #[error("container not paused")]
    NotPaused,
    #[error("cannot start a container that has stopped")]
    StartStopped,
    #[error("cannot start an already running container")]
    AlreadyRunning,
    #[error("container is paused")]
    Paused,
    #[error("unknown signal {0:?}")]
    UnknownSignal(String),
    #[error("unable to start container process: {0}")]
    Init(String),
    #[error("{0}")]
    Spec(#[from] SpecError),
    #[error("{0}")]
    State(#[from] StateError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} is not supported by berth-runtime yet")]
    Unsupported { what: String },
    #[error("bad value for {flag}: {value:?}")]
    InvalidArgument { flag: String, value: String },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Hook(String),
    #[error("{0}")]
    Cgroup(String),
}

impl RuntimeError {
    /// An I/O error with a short description of what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        RuntimeError::Io {
            context: context.into(),
            source,
        }
    }
}

/// An error and every `source()` below it, runc-style (`outer: cause: root cause`). A cause
/// whose text the message already holds is skipped: several variants embed their source.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let part = cause.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = cause.source();
    }
    text
}

/// Attaches "what we were doing" to io errors: `fs::read(p).context("read x")?`.
pub trait IoContext<T> {
    fn context(self, what: impl Into<String>) -> Result<T, RuntimeError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, what: impl Into<String>) -> Result<T, RuntimeError> {
        self.map_err(|e| RuntimeError::io(what, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("apply capabilities")]
    struct Outer(#[source] io::Error);

    #[test]
    fn chain_prints_every_cause_once() {
        let e = Outer(io::Error::from_raw_os_error(libc::EPERM));
        assert!(chain(&e).starts_with("apply capabilities: Operation not permitted"));
        let e = RuntimeError::io("read x", io::Error::from_raw_os_error(libc::ENOENT));
        let text = chain(&e);
        assert_eq!(text.matches("No such file").count(), 1, "{text}");
        let spec = RuntimeError::Spec(SpecError::MissingField("root"));
        assert_eq!(chain(&spec), "config.json has no root");
    }
}
