//! The runtime-spec seccomp listenerPath protocol: one connection to the agent's unix
//! socket, the container process state JSON as payload and the notify fd via SCM_RIGHTS.

use std::io::{IoSlice, Write};
use std::mem::MaybeUninit;
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

use super::SeccompError;

/// The name runtime-spec gives the notify fd in the `fds` array.
pub const SECCOMP_FD_NAME: &str = "seccompFd";

/// Builds the runtime-spec "container process state": `state` is the container's state
/// JSON (its ociVersion is reused), `pid` the container process as the runtime sees it.
pub fn container_process_state(
    pid: i32,
    metadata: Option<&str>,
    state: &serde_json::Value,
) -> serde_json::Value {
    let mut out = serde_json::json!({
        "ociVersion": state.get("ociVersion").cloned().unwrap_or(serde_json::Value::Null),
        "fds": [SECCOMP_FD_NAME],
        "pid": pid,
        "state": state,
    });
    if let (Some(m), Some(obj)) = (metadata, out.as_object_mut()) {
        obj.insert("metadata".into(), m.into());
    }
    out
}

/// The payload for the agent: `json` as is when it already is a container process state
/// (it has `fds`), otherwise `json` is taken as the container state and wrapped, with its
/// `pid` and no metadata.
fn payload(json: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(json) {
        Ok(v) if v.get("fds").is_none() && v.get("id").is_some() => {
            let pid = v
                .get("pid")
                .and_then(|p| p.as_i64())
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or(0);
            serde_json::to_vec(&container_process_state(pid, None, &v))
                .unwrap_or_else(|_| json.to_vec())
        }
        _ => json.to_vec(),
    }
}

/// Connects to `listener_path`, sends the container process state with `notify_fd`
/// attached, then closes the connection. `state_json` is either the full container process
/// state (see [`container_process_state`], needed to pass listenerMetadata) or the plain
/// container state, which is wrapped. The fd travels with the first bytes only.
pub fn send_listener_fd(
    listener_path: &Path,
    notify_fd: BorrowedFd<'_>,
    state_json: &[u8],
) -> Result<(), SeccompError> {
    let process_state_json = &payload(state_json)[..];
    let path = listener_path.display().to_string();
    let send_error = |source| SeccompError::ListenerSend {
        path: path.clone(),
        source,
    };
    let mut stream =
        UnixStream::connect(listener_path).map_err(|source| SeccompError::ListenerConnect {
            path: path.clone(),
            source,
        })?;
    let fds = [notify_fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(send_error(std::io::Error::other(
            "control buffer too small for one fd",
        )));
    }
    let sent = sendmsg(
        &stream,
        &[IoSlice::new(process_state_json)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map_err(|e| send_error(e.into()))?;
    stream
        .write_all(&process_state_json[sent..])
        .map_err(send_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::io::{IoSliceMut, Read};
    use std::os::fd::{AsFd, AsRawFd, OwnedFd};
    use std::os::unix::net::UnixListener;

    #[test]
    fn container_process_state_has_the_runtime_spec_shape() {
        let state = serde_json::json!({"ociVersion": "1.2.0", "id": "c1", "status": "creating",
            "pid": 42, "bundle": "/b"});
        let with = container_process_state(42, Some("MKNOD=/dev/null"), &state);
        assert_eq!(
            with,
            serde_json::json!({"ociVersion": "1.2.0", "fds": ["seccompFd"], "pid": 42,
                "metadata": "MKNOD=/dev/null", "state": state})
        );
        let without = container_process_state(42, None, &state);
        assert!(without.get("metadata").is_none());
    }

    #[test]
    fn send_listener_fd_passes_the_state_and_a_working_fd() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let agent = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 4096];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let got = recvmsg(
                &conn,
                &mut [IoSliceMut::new(&mut buf)],
                &mut control,
                RecvFlags::empty(),
            )
            .unwrap();
            let mut fds: Vec<OwnedFd> = Vec::new();
            for msg in control.drain() {
                if let RecvAncillaryMessage::ScmRights(rights) = msg {
                    fds.extend(rights);
                }
            }
            let mut payload = buf[..got.bytes].to_vec();
            conn.read_to_end(&mut payload).unwrap();
            (payload, fds)
        });

        let (reader, writer) = rustix::pipe::pipe().unwrap();
        let state = container_process_state(7, None, &serde_json::json!({"ociVersion": "1.2.0"}));
        let json = serde_json::to_vec(&state).unwrap();
        send_listener_fd(&socket, writer.as_fd(), &json).unwrap();
        drop(writer);

        let (payload, fds) = agent.join().unwrap();
        assert_eq!(payload, json);
        assert_eq!(fds.len(), 1);
        // The received fd is the pipe's write end: writing through it reaches our reader.
        let mut received = std::fs::File::from(fds.into_iter().next().unwrap());
        received.write_all(b"ping").unwrap();
        drop(received);
        let mut text = String::new();
        let mut reader = std::fs::File::from(reader);
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "ping");
    }

    #[test]
    fn a_plain_container_state_is_wrapped_into_a_process_state() {
        let state = serde_json::json!({"ociVersion": "1.2.0", "id": "c1", "status": "created",
            "pid": 99, "bundle": "/b"});
        let sent: serde_json::Value =
            serde_json::from_slice(&payload(&serde_json::to_vec(&state).unwrap())).unwrap();
        assert_eq!(sent, container_process_state(99, None, &state));
        let full = serde_json::to_vec(&container_process_state(99, Some("m"), &state)).unwrap();
        assert_eq!(payload(&full), full);
    }

    #[test]
    fn send_listener_fd_to_a_missing_socket_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("nobody.sock");
        let (_reader, writer) = rustix::pipe::pipe().unwrap();
        let err = send_listener_fd(&socket, writer.as_fd(), b"{}").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("connect to the seccomp agent at "));
        assert!(err.to_string().ends_with("nobody.sock"));
        assert!(writer.as_raw_fd() >= 0);
    }
}
