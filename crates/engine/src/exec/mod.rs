//! `docker exec`: exec instances in memory (Docker forgets them at restart), created against
//! a running container, started through the container's shim (`Exec`, attach, `ExecStart`),
//! attached or detached, inspected with their exit code (moby's `daemon/exec.go`).
//!
//! - [`keys`]: detach keys; [`relay`]: the byte pump shared with `attach`;
//!   [`process`]: the exec's OCI Process.

pub mod keys;
pub mod process;
pub mod relay;
mod start;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_api::container::ops::{ExecCreateRequest, ExecInspect, ExecProcessConfig};

use crate::attach::{container_attributes, AttachError};
use crate::container::{ContainerError, ContainerRecord, Status};
use crate::error::ErrorKind;
use crate::Engine;

pub use start::{start, ExecSession, StartOutcome};

/// Failures of exec operations, with Docker's texts.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("No exec command specified")]
    NoCommand,
    #[error("No such exec instance: {0}")]
    NotFound(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("Container {0} is paused, unpause the container before exec")]
    Paused(String),
    #[error("Container {0} is restarting, wait until the container is running")]
    Restarting(String),
    /// Docker answers this one with a 500 (a plain error in `ContainerExecCreate`).
    #[error("Invalid escape keys ({0}) provided")]
    DetachKeys(String),
    #[error(transparent)]
    User(#[from] process::UserError),
    #[error("exec command {0} has already run")]
    AlreadyRan(String),
    #[error("exec command {0} is already running")]
    AlreadyRunning(String),
    #[error("reading the container's spec {path}")]
    Spec {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The runtime could not start the process (exit code 126, 127 or 128 is recorded).
    #[error("{0}")]
    Start(String),
    #[error(transparent)]
    Shim(#[from] berth_shim::client::ClientError),
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error("invalid resize {what} {value:?}")]
    Resize { what: &'static str, value: String },
    #[error("the shim call was cancelled")]
    Cancelled,
}

impl ExecError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ExecError::Container(e) => e.kind(),
            ExecError::NoCommand | ExecError::User(_) | ExecError::Resize { .. } => {
                ErrorKind::InvalidArgument
            }
            ExecError::Start(_) => ErrorKind::InvalidArgument,
            ExecError::NotFound(_) => ErrorKind::NotFound,
            ExecError::NotRunning(_)
            | ExecError::Paused(_)
            | ExecError::Restarting(_)
            | ExecError::AlreadyRan(_)
            | ExecError::AlreadyRunning(_) => ErrorKind::Conflict,
            ExecError::DetachKeys(_) | ExecError::Spec { .. } | ExecError::Cancelled => {
                ErrorKind::Internal
            }
            ExecError::Shim(e) => crate::attach::shim_kind(e.kind()),
            ExecError::Attach(e) => e.kind(),
        }
    }
}

/// Length of [`Exec::shim_key`].
const SHIM_KEY_LEN: usize = 7;

/// What an exec was created with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecConfig {
    pub entrypoint: String,
    pub args: Vec<String>,
    pub tty: bool,
    pub user: String,
    pub privileged: bool,
    pub working_dir: String,
    /// The final environment (daemon, container and exec env merged).
    pub env: Vec<String>,
    pub open_stdin: bool,
    pub open_stdout: bool,
    pub open_stderr: bool,
    pub detach_keys: Vec<u8>,
    /// `[height, width]`.
    pub console_size: Option<[u32; 2]>,
}

#[derive(Debug, Default)]
struct ExecState {
    running: bool,
    exit_code: Option<i64>,
    pid: u32,
    /// Started once (an exec runs at most once).
    started: bool,
}

/// One exec instance.
#[derive(Debug)]
pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    state: Mutex<ExecState>,
}

impl Exec {
    fn state(&self) -> std::sync::MutexGuard<'_, ExecState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Records the exit once; returns whether this call recorded it.
    fn finish(&self, code: i64) -> bool {
        let mut state = self.state();
        state.running = false;
        if state.exit_code.is_some() {
            return false;
        }
        state.exit_code = Some(code);
        true
    }

    /// The name the shim knows this exec by: a prefix of the id, because the shim derives
    /// the exec's console socket path from it (`<socket stem>.exec-<key>.console`) and a full
    /// 64-digit id overflows a unix socket path (108 bytes). Unique enough within one
    /// container; the shim refuses a duplicate rather than mixing two execs up.
    pub fn shim_key(&self) -> &str {
        self.id.get(..SHIM_KEY_LEN).unwrap_or(&self.id)
    }

    /// The description for events: `sh -c ...`.
    fn command_line(&self) -> String {
        let mut text = self.config.entrypoint.clone();
        for arg in &self.config.args {
            text.push(' ');
            text.push_str(arg);
        }
        text
    }

    /// `GET /exec/{id}/json`.
    pub fn inspect(&self) -> ExecInspect {
        let state = self.state();
        ExecInspect {
            id: self.id.clone(),
            running: state.running,
            exit_code: state.exit_code,
            process_config: ExecProcessConfig {
                tty: self.config.tty,
                entrypoint: self.config.entrypoint.clone(),
                arguments: Some(self.config.args.clone()),
                privileged: Some(self.config.privileged),
                user: self.config.user.clone(),
            },
            open_stdin: self.config.open_stdin,
            open_stderr: self.config.open_stderr,
            open_stdout: self.config.open_stdout,
            can_remove: false,
            container_id: self.container_id.clone(),
            detach_keys: base64(&self.config.detach_keys),
            pid: i64::from(state.pid),
        }
    }
}

/// Go's `[]byte` in JSON: standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The exec instances of one engine, by id.
#[derive(Debug, Default)]
pub struct Execs {
    map: Mutex<HashMap<String, Arc<Exec>>>,
}

impl Execs {
    pub fn new() -> Execs {
        Execs::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Exec>>> {
        match self.map.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// An exec by its full id.
    pub fn get(&self, id: &str) -> Result<Arc<Exec>, ExecError> {
        self.map()
            .get(id)
            .cloned()
            .ok_or_else(|| ExecError::NotFound(id.to_string()))
    }

    fn insert(&self, exec: Arc<Exec>) {
        self.map().insert(exec.id.clone(), exec);
    }

    /// Forgets finished execs whose container no longer runs (Docker's exec GC keeps them
    /// only while the container lives).
    fn prune(&self, still_running: impl Fn(&str) -> bool) {
        self.map().retain(|_, exec| {
            let finished = !exec.state().running;
            !finished || still_running(&exec.container_id)
        });
    }
}

/// Checks the container can take an exec, as Docker's `getActiveContainer`.
fn active_container(record: &ContainerRecord, name: &str) -> Result<(), ExecError> {
    match record.state.status {
        Status::Running => Ok(()),
        Status::Paused => Err(ExecError::Paused(name.to_string())),
        Status::Restarting => Err(ExecError::Restarting(record.id.clone())),
        _ => Err(ExecError::NotRunning(record.id.clone())),
    }
}

/// A new 64-hex-digit id.
fn new_id() -> String {
    let mut bytes = [0u8; 32];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if filled.is_err() {
        // No urandom (odd sandboxes): time and a counter are unique enough for an in-memory id.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[..16].copy_from_slice(&nanos.to_le_bytes());
        bytes[16..24].copy_from_slice(&count.to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST /containers/{name}/exec`.
pub fn create(
    engine: &Engine,
    name: &str,
    request: &ExecCreateRequest,
) -> Result<String, ExecError> {
    let cmd = request.cmd.clone().unwrap_or_default();
    let Some((entrypoint, args)) = cmd.split_first() else {
        return Err(ExecError::NoCommand);
    };
    let container = engine.containers.get(name)?;
    let record = container.record();
    active_container(&record, name)?;
    let user = if request.user.is_empty() {
        record.config.user.clone()
    } else {
        // Look the user up now for an early error, as Docker does.
        let rootfs = engine.config.container_dir(&record.id).join("rootfs");
        process::resolve_user(&rootfs, &request.user, &[])?;
        request.user.clone()
    };
    let detach_keys = if request.detach_keys.is_empty() {
        Vec::new()
    } else {
        keys::parse_detach_keys(&request.detach_keys)
            .map_err(|_| ExecError::DetachKeys(request.detach_keys.clone()))?
    };
    let working_dir = if request.working_dir.is_empty() {
        record.config.working_dir.clone()
    } else {
        request.working_dir.clone()
    };
    let exec = Arc::new(Exec {
        id: new_id(),
        container_id: record.id.clone(),
        config: ExecConfig {
            entrypoint: entrypoint.clone(),
            args: args.to_vec(),
            tty: request.tty,
            user,
            privileged: request.privileged,
            working_dir,
            env: process::exec_env(&record, request.tty, request.env.as_deref().unwrap_or(&[])),
            open_stdin: request.attach_stdin,
            open_stdout: request.attach_stdout,
            open_stderr: request.attach_stderr,
            detach_keys,
            console_size: request.console_size,
        },
        state: Mutex::new(ExecState::default()),
    });
    engine.execs.prune(|id| {
        engine
            .containers
            .get(id)
            .is_ok_and(|c| c.record().state.status == Status::Running)
    });
    engine.execs.insert(exec.clone());
    let mut attributes = container_attributes(&record);
    attributes.insert("execID".to_string(), exec.id.clone());
    engine.events.publish(
        "container",
        &format!("exec_create: {}", exec.command_line()),
        &record.id,
        attributes,
    );
    Ok(exec.id.clone())
}

/// `GET /exec/{id}/json`.
pub fn inspect(engine: &Engine, id: &str) -> Result<ExecInspect, ExecError> {
    Ok(engine.execs.get(id)?.inspect())
}

/// `POST /exec/{id}/resize`: a resize of a process without a terminal is a no-op, as in
/// containerd.
pub async fn resize(engine: &Engine, id: &str, height: u32, width: u32) -> Result<(), ExecError> {
    let exec = engine.execs.get(id)?;
    let container = engine.containers.get(&exec.container_id)?;
    active_container(&container.record(), &exec.container_id)?;
    resize_process(
        engine,
        &exec.container_id,
        Some(exec.shim_key().to_string()),
        height,
        width,
    )
    .await
}

/// `POST /containers/{id}/resize`.
pub async fn resize_container(
    engine: &Engine,
    name: &str,
    height: u32,
    width: u32,
) -> Result<(), ExecError> {
    let container = engine.containers.get(name)?;
    let record = container.record();
    if record.state.status != Status::Running && record.state.status != Status::Paused {
        return Err(ExecError::NotRunning(record.id));
    }
    resize_process(engine, &record.id, None, height, width).await
}

async fn resize_process(
    engine: &Engine,
    container_id: &str,
    process: Option<String>,
    height: u32,
    width: u32,
) -> Result<(), ExecError> {
    let socket = engine.config.shim_socket(container_id);
    let rows = u16::try_from(height).unwrap_or(u16::MAX);
    let cols = u16::try_from(width).unwrap_or(u16::MAX);
    let result = tokio::task::spawn_blocking(move || {
        let (client, _) = berth_shim::client::Client::connect(&socket)?;
        client.resize(process, rows, cols)
    })
    .await
    .map_err(|_| ExecError::Cancelled)?;
    match result {
        Ok(()) => Ok(()),
        Err(berth_shim::client::ClientError::Shim {
            kind: berth_shim::protocol::ErrorKind::InvalidArgument,
            ..
        }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_show_as_go_bytes_in_inspect() {
        assert_eq!(base64(&[]), "");
        assert_eq!(base64(&[16, 17]), "EBE=");
        assert_eq!(base64(&[1]), "AQ==");
        assert_eq!(base64(b"abc"), "YWJj");
    }

    #[test]
    fn exit_is_recorded_once_and_inspect_shows_it() {
        let exec = Exec {
            id: "e".into(),
            container_id: "c".into(),
            config: ExecConfig {
                entrypoint: "sh".into(),
                args: vec!["-c".into(), "exit 3".into()],
                ..ExecConfig::default()
            },
            state: Mutex::new(ExecState {
                running: true,
                ..ExecState::default()
            }),
        };
        assert_eq!(exec.inspect().exit_code, None);
        assert!(exec.inspect().running);
        assert!(exec.finish(3));
        assert!(!exec.finish(0));
        let inspect = exec.inspect();
        assert_eq!(inspect.exit_code, Some(3));
        assert!(!inspect.running);
        assert_eq!(exec.command_line(), "sh -c exit 3");
    }

    #[test]
    fn new_ids_are_64_hex_digits_and_differ() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn prune_keeps_running_execs_and_those_of_live_containers() {
        let execs = Execs::new();
        for (id, container, running) in [
            ("a", "live", false),
            ("b", "dead", false),
            ("c", "dead", true),
        ] {
            execs.insert(Arc::new(Exec {
                id: id.into(),
                container_id: container.into(),
                config: ExecConfig::default(),
                state: Mutex::new(ExecState {
                    running,
                    ..ExecState::default()
                }),
            }));
        }
        execs.prune(|c| c == "live");
        assert!(execs.get("a").is_ok());
        assert!(matches!(execs.get("b"), Err(ExecError::NotFound(_))));
        assert!(execs.get("c").is_ok());
    }
}
