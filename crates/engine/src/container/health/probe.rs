//! One healthcheck probe: the command runs as an exec in the container through its shim
//! (the container's user, working directory and environment, no terminal), its stdout and
//! stderr are kept up to 4096 bytes, and past its timeout it is SIGKILLed and waited for, so
//! that probes never pile up (moby's `cmdProbe.run`). Publishes `exec_create: ...`,
//! `exec_start: ...` and `exec_die` as Docker does for health probes.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_shim::client::{AttachEvent, Client};

use super::{go_duration, ProbeResult, MAX_OUTPUT_LEN};
use crate::container::{now_text, Container, ContainerRecord, Inner};
use crate::exec::process;

/// Something that checks a container once (the exec probe, or a fake in tests).
pub(crate) trait Probe: Send + Sync {
    fn run(&self) -> Pin<Box<dyn Future<Output = ProbeResult> + Send + '_>>;
}

/// The `CMD`/`CMD-SHELL` probe.
pub(super) struct ExecProbe {
    pub inner: Arc<Inner>,
    pub container: Arc<Container>,
    pub argv: Vec<String>,
    pub timeout: Duration,
}

impl Probe for ExecProbe {
    fn run(&self) -> Pin<Box<dyn Future<Output = ProbeResult> + Send + '_>> {
        Box::pin(self.run_once())
    }
}

/// Docker's `limitedBuffer`: the first 4096 bytes, `...` appended when more came.
#[derive(Debug, Default)]
pub(crate) struct LimitedOutput {
    bytes: Vec<u8>,
    truncated: bool,
}

impl LimitedOutput {
    pub(crate) fn write(&mut self, data: &[u8]) {
        let room = MAX_OUTPUT_LEN.saturating_sub(self.bytes.len());
        let keep = room.min(data.len());
        self.bytes.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }

    /// As text (invalid UTF-8 replaced, as Go's JSON encoder does).
    pub(crate) fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.truncated {
            text.push_str("...");
        }
        text
    }
}

fn lock(output: &Mutex<LimitedOutput>) -> std::sync::MutexGuard<'_, LimitedOutput> {
    match output.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl ExecProbe {
    async fn run_once(&self) -> ProbeResult {
        let start = now_text();
        let record = self.container.record();
        let exec_id = crate::container::create::random_hex(64);
        let key = exec_id[..7].to_string();
        let command_line = self.argv.join(" ");
        let mut attributes = crate::attach::container_attributes(&record);
        attributes.insert("execID".to_string(), exec_id.clone());
        let publish = |action: String, attributes: std::collections::BTreeMap<String, String>| {
            self.inner
                .events
                .publish("container", &action, &record.id, attributes)
        };
        publish(format!("exec_create: {command_line}"), attributes.clone());
        let output = Arc::new(Mutex::new(LimitedOutput::default()));
        let socket = self.inner.config.shim_socket(&record.id);
        let container_dir = self.inner.config.container_dir(&record.id);
        let launched = {
            let (argv, key, record, socket) = (
                self.argv.clone(),
                key.clone(),
                record.clone(),
                socket.clone(),
            );
            tokio::task::spawn_blocking(move || {
                launch(&socket, &container_dir, &record, argv, &key)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
        };
        let attach = match launched {
            Ok(attach) => attach,
            Err(message) => {
                return ProbeResult {
                    start,
                    end: now_text(),
                    exit_code: -1,
                    output: message,
                }
            }
        };
        publish(format!("exec_start: {command_line}"), attributes.clone());
        let mut reader = {
            let output = output.clone();
            tokio::task::spawn_blocking(move || read_until_exit(attach, &output))
        };
        let (exit_code, text) = match tokio::time::timeout(self.timeout, &mut reader).await {
            Ok(Ok(Some(code))) => (i64::from(code), lock(&output).text()),
            Ok(_) => (
                -1,
                "the health check's output ended without an exit status".into(),
            ),
            Err(_) => {
                // Past its timeout: killed, then waited for (moby cancels and waits too).
                let client_socket = socket.clone();
                let kill_key = key.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    let client = Client::connect(&client_socket)?.0;
                    client.kill(Some(kill_key), libc::SIGKILL, false)
                })
                .await;
                let _ = reader.await;
                let said = lock(&output).text();
                let limit = go_duration(self.timeout);
                let message = if said.is_empty() {
                    format!("Health check exceeded timeout ({limit})")
                } else {
                    format!("Health check exceeded timeout ({limit}): {said}")
                };
                (-1, message)
            }
        };
        let mut die = attributes;
        die.insert("exitCode".to_string(), exit_code.to_string());
        publish("exec_die".to_string(), die);
        ProbeResult {
            start,
            end: now_text(),
            exit_code,
            output: text,
        }
    }
}

/// Registers the exec with the shim, attaches to its output and starts it.
fn launch(
    socket: &std::path::Path,
    container_dir: &std::path::Path,
    record: &ContainerRecord,
    argv: Vec<String>,
    key: &str,
) -> Result<berth_shim::client::Attach, String> {
    let spec_path = container_dir.join("config.json");
    let text =
        std::fs::read(&spec_path).map_err(|e| format!("reading {}: {e}", spec_path.display()))?;
    let spec: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| format!("decoding {}: {e}", spec_path.display()))?;
    let root = spec["root"]["path"].as_str().unwrap_or("rootfs");
    let request = process::ProcessRequest {
        args: argv,
        env: process::exec_env(record, false, &[]),
        cwd: record.config.working_dir.clone(),
        tty: false,
        console_size: None,
        user: record.config.user.clone(),
        privileged: false,
        group_add: record.host_config.group_add.clone().unwrap_or_default(),
    };
    let process = process::build_process(&spec["process"], &request, &container_dir.join(root))
        .map_err(|e| e.to_string())?;
    let (client, _) = Client::connect(socket).map_err(|e| e.to_string())?;
    client
        .exec(key, process, false)
        .map_err(|e| e.to_string())?;
    let attach = client
        .attach(Some(key.to_string()), false)
        .map_err(|e| e.to_string())?;
    client
        .exec_start(key)
        .map_err(|e| format!("OCI runtime exec failed: {e}"))?;
    Ok(attach)
}

/// Collects output until the exit; `None` when the stream ended without one.
fn read_until_exit(
    mut attach: berth_shim::client::Attach,
    output: &Mutex<LimitedOutput>,
) -> Option<i32> {
    loop {
        match attach.next_event() {
            Ok(Some(AttachEvent::Stdout(data) | AttachEvent::Stderr(data))) => {
                lock(output).write(&data)
            }
            Ok(Some(AttachEvent::Exit(exit))) => return Some(exit.code),
            Ok(None) | Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_cut_at_4096_bytes_with_dots() {
        let mut output = LimitedOutput::default();
        output.write(b"hello ");
        assert_eq!(output.text(), "hello ");
        output.write(&[b'x'; 5000]);
        let text = output.text();
        assert_eq!(text.len(), MAX_OUTPUT_LEN + 3);
        assert!(text.starts_with("hello xxx") && text.ends_with("x..."));
        output.write(b"more");
        assert_eq!(output.text().len(), MAX_OUTPUT_LEN + 3);
    }

    #[test]
    fn invalid_utf8_output_is_replaced_not_refused() {
        let mut output = LimitedOutput::default();
        output.write(&[b'o', b'k', 0xff]);
        assert_eq!(output.text(), "ok\u{fffd}");
    }
}
