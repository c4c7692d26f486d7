//! berth-shim's library: the shim protocol, its blocking client, and the supervisor that
//! keeps one container's stdio, logs and exit status. It does not choose ids, paths or
//! log options (berthd does) and never links an OCI runtime: it runs one through runc's
//! command line.
//!
//! # Design
//!
//! - One shim per container, started by berthd as `berth-shim --id ID --bundle DIR --runtime
//!   PATH --runtime-root DIR --socket PATH [--log-path FILE --log-max-size N --log-max-file N]
//!   [--stdin]`. The first process forks, the child calls `setsid`, becomes a child subreaper
//!   (`PR_SET_CHILD_SUBREAPER`), binds its socket and runs `runtime create`; the parent exits
//!   0 once that worked (or 1 with the error), so the shim is re-parented to init and berthd
//!   learns of failures synchronously. stdio goes to /dev/null.
//! - The container is created at launch; `Start` runs `runtime start`. Attach before Start
//!   therefore misses no output.
//! - Exactly one reaper: SIGCHLD is blocked and read from a signalfd in the single-threaded
//!   event loop, which reaps with `waitpid(-1, WNOHANG)` and dispatches each status to the
//!   init or the exec it belongs to ([`reaper`]); a status that arrives before its pid is
//!   known is kept until registered. Runtime commands are waited for by pid while the loop is
//!   not running, which cannot race it. No tokio, no threads.
//! - stdio: pipes the shim creates (stdin only when asked), or the pty master the runtime
//!   sends over `--console-socket` when `process.terminal` is true. The init's output goes to
//!   a json-file log ([`logfile`]) and to attached clients; exec output to attached clients.
//! - The init's exit (code, time) is kept in memory and written atomically beside the socket
//!   (`<socket stem>.exit.json`), served by State/Wait until Delete; the socket path is derived
//!   from the container id under the exec root ([`socket_path`]) so a restarted berthd finds
//!   it again.
//! - Protocol ([`protocol`]): u32-length-prefixed frames, JSON control messages, raw stream
//!   bytes; one request per connection, except Attach which turns the connection into a
//!   stream (stdout/stderr/exit frames out, stdin/close-stdin frames in).
//! - Waiters are answered once the process exited and its output reached EOF (so logs are
//!   complete), or 2 s after the exit if a background child keeps the output open.

pub mod client;
pub mod logfile;
pub mod oci_runtime;
pub mod protocol;
pub mod reaper;
pub mod signals;
pub mod supervisor;

use std::path::{Path, PathBuf};

/// Failures starting or running the shim.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("binding the shim socket {path}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the bundle config {path}: {message}")]
    Bundle { path: PathBuf, message: String },
    #[error(transparent)]
    Runtime(#[from] oci_runtime::RuntimeError),
    #[error(transparent)]
    Log(#[from] logfile::LogError),
    #[error("shim event loop")]
    Io(#[source] std::io::Error),
}

impl From<std::io::Error> for ShimError {
    fn from(e: std::io::Error) -> ShimError {
        ShimError::Io(e)
    }
}

/// Where the shim of container `id` listens: `<exec_root>/shim/<id>.sock`.
pub fn socket_path(exec_root: &Path, id: &str) -> PathBuf {
    exec_root.join("shim").join(format!("{id}.sock"))
}
