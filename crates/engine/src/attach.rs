//! `docker attach` on the engine side: checks a container can be attached, connects to its
//! shim's attach stream at once (so an attach made before start misses no output), optionally
//! replays the log, then relays until the container exits or the client detaches (moby's
//! `daemon.ContainerAttach`). The HTTP hijack lives in berth-server.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use berth_shim::protocol::{ErrorKind as ShimErrorKind, FrameError};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::container::{ContainerError, ContainerRecord, Status};
use crate::error::ErrorKind;
use crate::exec::keys::parse_detach_keys;
use crate::exec::relay::{encode_output, relay, RelayConfig, RelayEnd, SessionClient, ShimAttach};
use crate::Engine;

/// Failures of attach (and the stream plumbing exec shares with it).
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// Docker's text for a bad `detachKeys` parameter.
    #[error("Invalid detach keys ({0}) provided")]
    DetachKeys(String),
    #[error("container {0} is paused, unpause the container before attach")]
    Paused(String),
    #[error("container {0} is restarting, wait until the container is running")]
    Restarting(String),
    #[error("connecting to the shim at {path}")]
    ShimConnect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to the shim")]
    Shim(#[source] std::io::Error),
    #[error("{message}")]
    ShimRefused {
        kind: ShimErrorKind,
        message: String,
    },
    #[error("bad frame from the shim")]
    Frame(#[from] FrameError),
    #[error("unexpected message from the shim: {0}")]
    ShimProtocol(String),
    /// Docker's `ErrReadLogsNotSupported` (log driver `none` and the like).
    #[error("configured logging driver does not support reading")]
    LogsNotSupported,
    #[error(transparent)]
    Log(#[from] crate::logs::LogError),
}

impl AttachError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            AttachError::Container(e) => e.kind(),
            AttachError::DetachKeys(_) => ErrorKind::InvalidArgument,
            AttachError::Paused(_) | AttachError::Restarting(_) => ErrorKind::Conflict,
            AttachError::ShimConnect { .. } => ErrorKind::Unavailable,
            AttachError::ShimRefused { kind, .. } => shim_kind(*kind),
            AttachError::Shim(_) | AttachError::Frame(_) | AttachError::ShimProtocol(_) => {
                ErrorKind::Internal
            }
            AttachError::LogsNotSupported => ErrorKind::NotImplemented,
            AttachError::Log(e) => e.kind(),
        }
    }
}

/// Maps a shim error kind to the engine's.
pub fn shim_kind(kind: ShimErrorKind) -> ErrorKind {
    match kind {
        ShimErrorKind::NotFound => ErrorKind::NotFound,
        ShimErrorKind::Conflict => ErrorKind::Conflict,
        ShimErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
        ShimErrorKind::Unavailable => ErrorKind::Unavailable,
        ShimErrorKind::Internal => ErrorKind::Internal,
    }
}

/// The query of `POST /containers/{id}/attach`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachOptions {
    pub stream: bool,
    pub logs: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// `detachKeys`; empty means the default.
    pub detach_keys: String,
}

/// Where the session's output will come from.
enum ShimSource {
    /// `stream=0`: logs only.
    Nothing,
    /// The running container's shim.
    Connected(ShimAttach),
    /// The shim of the container's next start: connect when the ticket comes, then drop it
    /// so that the process starts.
    NextRun(
        tokio::sync::oneshot::Receiver<crate::container::PrestartTicket>,
        PathBuf,
    ),
}

/// A checked attach, connected to the shim, waiting for the client's connection.
pub struct AttachSession {
    engine: Arc<Engine>,
    record: ContainerRecord,
    source: ShimSource,
    config: RelayConfig,
    logs: bool,
}

/// Docker's event attributes of a container: its labels, `image` and `name`.
pub fn container_attributes(record: &ContainerRecord) -> BTreeMap<String, String> {
    let mut attributes = record.config.labels.clone().unwrap_or_default();
    attributes.insert("image".to_string(), record.config.image.clone());
    attributes.insert(
        "name".to_string(),
        record.name.trim_start_matches('/').to_string(),
    );
    attributes
}

/// Checks and prepares an attach: bad detach keys are refused before the container is looked
/// up (as Docker does), a paused or restarting container is a conflict.
pub async fn attach(
    engine: &Arc<Engine>,
    name: &str,
    options: AttachOptions,
) -> Result<AttachSession, AttachError> {
    let keys = if options.detach_keys.is_empty() {
        Vec::new()
    } else {
        parse_detach_keys(&options.detach_keys)
            .map_err(|_| AttachError::DetachKeys(options.detach_keys.clone()))?
    };
    let container = engine.containers.get(name)?;
    let record = container.record();
    match record.state.status {
        Status::Paused => return Err(AttachError::Paused(name.to_string())),
        Status::Restarting => return Err(AttachError::Restarting(name.to_string())),
        _ => {}
    }
    let tty = record.config.tty;
    let stdin = options.stdin && record.config.open_stdin;
    let source = if !options.stream {
        ShimSource::Nothing
    } else {
        // Registered before the current shim is tried, so a start in between is not missed.
        let next_run = container.attach_next_run();
        let socket = engine.config.shim_socket(&record.id);
        if matches!(record.state.status, Status::Running | Status::Paused) {
            match ShimAttach::connect(&socket, None, stdin).await {
                Ok(shim) => ShimSource::Connected(shim),
                // It stopped meanwhile: stream its next run, as Docker's attach does.
                Err(AttachError::ShimConnect { .. }) => ShimSource::NextRun(next_run, socket),
                Err(e) => return Err(e),
            }
        } else {
            // Created or exited: `docker run` and `docker start -a` attach first, then start.
            ShimSource::NextRun(next_run, socket)
        }
    };
    Ok(AttachSession {
        engine: engine.clone(),
        config: RelayConfig {
            tty,
            multiplexed: !tty,
            stdout: options.stdout,
            stderr: options.stderr,
            stdin,
            close_stdin: record.config.stdin_once,
            detach_keys: keys,
        },
        record,
        source,
        logs: options.logs,
    })
}

impl AttachSession {
    /// Whether the container has a terminal (raw stream rather than stdcopy frames).
    pub fn tty(&self) -> bool {
        self.config.tty
    }

    /// Runs the session on the client's hijacked connection, then closes its write side.
    pub async fn run<C>(self, mut client: C)
    where
        C: SessionClient,
    {
        let attributes = container_attributes(&self.record);
        if self.logs {
            self.replay_logs(&mut client).await;
        }
        self.engine
            .events
            .publish("container", "attach", &self.record.id, attributes.clone());
        let shim = match self.source {
            ShimSource::Nothing => None,
            ShimSource::Connected(shim) => Some(Ok(shim)),
            ShimSource::NextRun(next_run, socket) => match next_run.await {
                Ok(ticket) => {
                    let shim = ShimAttach::connect(&socket, None, self.config.stdin).await;
                    drop(ticket);
                    Some(shim)
                }
                // Removed before it ran again.
                Err(_) => None,
            },
        };
        if let Some(shim) = shim {
            match relay_connected(shim, &mut client, &self.config).await {
                Ok(RelayEnd::Detached) => {
                    self.engine
                        .events
                        .publish("container", "detach", &self.record.id, attributes);
                }
                Ok(_) => {}
                Err(e) => {
                    let mut text = Vec::new();
                    let message = format!("Error attaching: {e}\n");
                    encode_output(
                        self.config.multiplexed,
                        berth_api::stream::StdStream::Stdout,
                        message.as_bytes(),
                        &mut text,
                    );
                    let _ = client.write_all(&text).await;
                }
            }
        }
        let _ = client.shutdown().await;
    }

    /// `logs=1`: the whole log, before live output (Docker's attach replays it first).
    async fn replay_logs<C>(&self, client: &mut C)
    where
        C: AsyncWrite + Unpin,
    {
        let Some(path) = self.record.log_path.clone() else {
            let message = format!("Error attaching: {}\n", AttachError::LogsNotSupported);
            let mut out = Vec::new();
            encode_output(
                self.config.multiplexed,
                berth_api::stream::StdStream::Stdout,
                message.as_bytes(),
                &mut out,
            );
            let _ = client.write_all(&out).await;
            return;
        };
        let mut entries = crate::logs::read(
            path,
            crate::logs::LogOptions {
                stdout: self.config.stdout,
                stderr: self.config.stderr,
                ..crate::logs::LogOptions::default()
            },
        );
        let options = crate::logs::EncodeOptions {
            tty: self.config.tty,
            ..crate::logs::EncodeOptions::default()
        };
        while let Some(Ok(entry)) = entries.next().await {
            if client
                .write_all(&crate::logs::encode(&entry, &options))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// `GET /containers/{id}/logs`: the container's log as a stream (following ends once the
/// container is not running and everything it wrote was read), and whether it has a TTY.
pub fn container_logs(
    engine: &Engine,
    name: &str,
    options: crate::logs::LogOptions,
) -> Result<(crate::logs::LogStream, bool), AttachError> {
    let container = engine.containers.get(name)?;
    let record = container.record();
    let path = record
        .log_path
        .clone()
        .ok_or(AttachError::LogsNotSupported)?;
    let mut lifecycle = container.lifecycle();
    let stopped = async move {
        loop {
            if !lifecycle.borrow_and_update().running {
                return;
            }
            if lifecycle.changed().await.is_err() {
                return;
            }
        }
    };
    Ok((
        crate::logs::read_until(path, options, stopped),
        record.config.tty,
    ))
}

async fn relay_connected<C>(
    shim: Result<ShimAttach, AttachError>,
    client: &mut C,
    config: &RelayConfig,
) -> Result<RelayEnd, AttachError>
where
    C: SessionClient,
{
    relay(shim?, client, config).await
}
