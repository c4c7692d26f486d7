//! `POST /exec/{id}/start`: the exec's process is registered with the shim, attached to (when
//! the client is), started, and waited for in the background so that inspect shows its exit
//! code whether or not anyone is attached (moby's `ContainerExecStart`).

use std::sync::Arc;

use berth_api::stream::StdStream;
use berth_shim::client::Client;
use tokio::io::AsyncWriteExt;

use super::relay::{encode_output, relay, RelayConfig, RelayEnd, SessionClient, ShimAttach};
use super::{active_container, process, Exec, ExecError};
use crate::attach::container_attributes;
use crate::container::{ContainerError, ContainerRecord};
use crate::Engine;

/// What a start request turned into.
pub enum StartOutcome {
    /// `Detach: true`: the process runs, nobody is attached.
    Detached,
    /// The client's hijacked connection is needed to run the session.
    Attached(Box<ExecSession>),
}

/// A checked exec start waiting for the client's connection.
pub struct ExecSession {
    engine: Arc<Engine>,
    exec: Arc<Exec>,
    record: ContainerRecord,
    console_size: Option<[u32; 2]>,
}

/// Checks and starts (detached) or prepares (attached) exec `id`.
pub async fn start(
    engine: &Arc<Engine>,
    id: &str,
    detach: bool,
    console_size: Option<[u32; 2]>,
) -> Result<StartOutcome, ExecError> {
    let exec = engine.execs.get(id)?;
    // A container removed since the exec was created: Docker answers 404 for the container.
    let container = engine
        .containers
        .get(&exec.container_id)
        .map_err(|_| ContainerError::NotFound(id.to_string()))?;
    let record = container.record();
    active_container(&record, &exec.container_id)?;
    {
        let mut state = exec.state();
        if state.exit_code.is_some() {
            return Err(ExecError::AlreadyRan(exec.id.clone()));
        }
        if state.running {
            return Err(ExecError::AlreadyRunning(exec.id.clone()));
        }
        state.running = true;
        state.started = true;
    }
    let mut attributes = container_attributes(&record);
    attributes.insert("execID".to_string(), exec.id.clone());
    engine.events.publish(
        "container",
        &format!("exec_start: {}", exec.command_line()),
        &record.id,
        attributes,
    );
    let session = ExecSession {
        engine: engine.clone(),
        exec,
        record,
        console_size,
    };
    if !detach {
        return Ok(StartOutcome::Attached(Box::new(session)));
    }
    session.launch(false).await?;
    Ok(StartOutcome::Detached)
}

/// Docker's `setExitCodeFromError`: 126 when the command cannot be invoked, 127 when it does
/// not exist, 128 otherwise; the text gains Docker's hints.
pub fn start_failure(message: &str) -> (i64, String) {
    let lower = message.to_lowercase();
    if lower.contains("permission denied") {
        return (126, message.to_string());
    }
    if lower.contains("is a directory") {
        return (126, format!("{message}: permission denied"));
    }
    if lower.contains("not a directory") {
        return (
            127,
            format!(
                "{message}: Are you trying to mount a directory onto a file (or vice-versa)? \
                 Check if the specified host path exists and is the expected type"
            ),
        );
    }
    let invalid = [
        "executable file not found",
        "no such file or directory",
        "system cannot find the file specified",
        "failed to run runc create/exec call",
    ];
    if invalid.iter().any(|text| lower.contains(text)) {
        return (127, message.to_string());
    }
    (128, message.to_string())
}

impl ExecSession {
    /// Whether the exec has a terminal (raw stream rather than stdcopy frames).
    pub fn tty(&self) -> bool {
        self.exec.config.tty
    }

    /// Registers the process with the shim, attaches when asked, starts it, and leaves a
    /// waiter behind. Failures record Docker's exit code (126 by default).
    async fn launch(&self, attach: bool) -> Result<Option<ShimAttach>, ExecError> {
        let result = self.try_launch(attach).await;
        if let Err(e) = &result {
            let code = match e {
                ExecError::Start(message) => start_failure(message).0,
                _ => 126,
            };
            self.exec.finish(code);
        }
        result
    }

    async fn try_launch(&self, attach: bool) -> Result<Option<ShimAttach>, ExecError> {
        let engine = &self.engine;
        let exec = self.exec.clone();
        let container_dir = engine.config.container_dir(&self.record.id);
        let socket = engine.config.shim_socket(&self.record.id);
        let request = process::ProcessRequest {
            args: std::iter::once(exec.config.entrypoint.clone())
                .chain(exec.config.args.iter().cloned())
                .collect(),
            env: exec.config.env.clone(),
            cwd: exec.config.working_dir.clone(),
            tty: exec.config.tty,
            console_size: self.console_size.or(exec.config.console_size),
            user: exec.config.user.clone(),
            privileged: exec.config.privileged,
            group_add: self
                .record
                .host_config
                .group_add
                .clone()
                .unwrap_or_default(),
        };
        let client = {
            let exec = exec.clone();
            let socket = socket.clone();
            blocking(move || -> Result<Client, ExecError> {
                let spec_path = container_dir.join("config.json");
                let text = std::fs::read(&spec_path).map_err(|source| ExecError::Spec {
                    path: spec_path.clone(),
                    source,
                })?;
                let spec: serde_json::Value =
                    serde_json::from_slice(&text).map_err(|e| ExecError::Spec {
                        path: spec_path.clone(),
                        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                    })?;
                let root = spec["root"]["path"].as_str().unwrap_or("rootfs");
                let rootfs = container_dir.join(root);
                let process = process::build_process(&spec["process"], &request, &rootfs)?;
                let (client, _) = Client::connect(&socket)?;
                client.exec(exec.shim_key(), process, exec.config.open_stdin)?;
                Ok(client)
            })
            .await??
        };
        let shim = if attach {
            Some(
                ShimAttach::connect(
                    &socket,
                    Some(exec.shim_key().to_string()),
                    exec.config.open_stdin,
                )
                .await?,
            )
        } else {
            None
        };
        let started = {
            let exec = exec.clone();
            let client = client.clone();
            blocking(move || {
                client.exec_start(exec.shim_key())?;
                client.state(Some(exec.shim_key().to_string()))
            })
            .await?
        };
        let state = match started {
            Ok(state) => state,
            Err(berth_shim::client::ClientError::Shim { message, .. }) => {
                return Err(ExecError::Start(format!(
                    "OCI runtime exec failed: {message}"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        exec.state().pid = state.pid;
        self.spawn_waiter(client);
        Ok(shim)
    }

    /// Records the exit code when the process ends, even if nobody is attached.
    fn spawn_waiter(&self, client: Client) {
        let engine = self.engine.clone();
        let exec = self.exec.clone();
        let record = self.record.clone();
        tokio::spawn(async move {
            let id = exec.shim_key().to_string();
            let waited = tokio::task::spawn_blocking(move || client.wait(Some(id))).await;
            match waited {
                Ok(Ok(exit)) => {
                    if exec.finish(i64::from(exit.code)) {
                        publish_die(&engine, &exec, &record, exit.code);
                    }
                }
                // The shim went away (container deleted): the exec is over, its code unknown.
                _ => exec.state().running = false,
            }
        });
    }

    /// Runs the attached session on the client's hijacked connection.
    pub async fn run<C>(self, mut client: C)
    where
        C: SessionClient,
    {
        let config = RelayConfig {
            tty: self.exec.config.tty,
            multiplexed: !self.exec.config.tty,
            stdout: self.exec.config.open_stdout,
            stderr: self.exec.config.open_stderr,
            stdin: self.exec.config.open_stdin,
            close_stdin: true,
            detach_keys: self.exec.config.detach_keys.clone(),
        };
        let outcome = match self.launch(true).await {
            Ok(Some(shim)) => relay(shim, &mut client, &config)
                .await
                .map_err(ExecError::from),
            Ok(None) => Ok(RelayEnd::ShimClosed),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(RelayEnd::Exited(exit)) => {
                // Recorded before the stream closes: the CLI inspects the exec right after.
                if self.exec.finish(i64::from(exit.code)) {
                    publish_die(&self.engine, &self.exec, &self.record, exit.code);
                }
            }
            Ok(RelayEnd::Detached) => {
                let mut attributes = container_attributes(&self.record);
                attributes.insert("execID".to_string(), self.exec.id.clone());
                self.engine
                    .events
                    .publish("container", "exec_detach", &self.record.id, attributes);
            }
            Ok(RelayEnd::ClientClosed | RelayEnd::ShimClosed) => {}
            Err(e) => {
                let text = match &e {
                    ExecError::Start(message) => start_failure(message).1,
                    other => other.to_string(),
                };
                let mut out = Vec::new();
                encode_output(
                    config.multiplexed,
                    StdStream::Stdout,
                    format!("{text}\r\n").as_bytes(),
                    &mut out,
                );
                let _ = client.write_all(&out).await;
            }
        }
        let _ = client.shutdown().await;
    }
}

fn publish_die(engine: &Engine, exec: &Exec, record: &ContainerRecord, code: i32) {
    let mut attributes = container_attributes(record);
    attributes.insert("execID".to_string(), exec.id.clone());
    attributes.insert("exitCode".to_string(), code.to_string());
    engine
        .events
        .publish("container", "exec_die", &record.id, attributes);
}

/// Runs blocking shim and file work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ExecError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ExecError::Cancelled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_map_to_dockers_exit_codes() {
        let cases = [
            ("exec: \"nosuch\": executable file not found in $path", 127),
            (
                "exec: \"/nosuch\": stat /nosuch: no such file or directory",
                127,
            ),
            ("exec /etc/passwd: permission denied", 126),
            ("exec /etc: is a directory", 126),
            ("something else broke", 128),
        ];
        for (message, code) in cases {
            assert_eq!(start_failure(message).0, code, "{message}");
        }
        assert!(start_failure("exec /etc: is a directory")
            .1
            .ends_with(": permission denied"));
    }
}
