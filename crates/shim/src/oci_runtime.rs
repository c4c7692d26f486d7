//! Running an OCI runtime through runc's command line (`create`, `start`, `exec --detach`,
//! `kill`, `delete`) and setting up the stdio of the process it starts: pipes, or a pty master
//! received over `--console-socket`.
//!
//! The shim is single-threaded, so waiting for one runtime command by pid (`Child::wait`) can
//! never race the reaper: the reaper only runs from the event loop, never concurrently.

use std::fs::File;
use std::io::{IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

/// A failed runtime command or stdio setup.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("running {runtime} {command}")]
    Spawn {
        runtime: PathBuf,
        command: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("OCI runtime {command} failed: {message}")]
    Failed {
        runtime: PathBuf,
        command: &'static str,
        message: String,
    },
    #[error("setting up stdio: {0}")]
    Stdio(#[source] std::io::Error),
    #[error("the runtime sent no pty master over the console socket")]
    NoConsole,
    #[error("reading pid file {path}")]
    PidFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The process's end of stdio, kept by the shim.
#[derive(Debug, Default)]
pub struct ProcessIo {
    /// Write end of the stdin pipe, or a dup of the pty master.
    pub stdin: Option<OwnedFd>,
    /// Read end of stdout, or the pty master.
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// The pty master when the process has a terminal (for resize).
    pub pty: Option<OwnedFd>,
}

/// A runtime binary and its `--root`.
#[derive(Debug, Clone)]
pub struct RuntimeCli {
    pub binary: PathBuf,
    pub root: PathBuf,
}

/// What to start: `create` of the container or `exec` of a process spec file.
pub enum Launch<'a> {
    Create { bundle: &'a Path },
    Exec { process_file: &'a Path },
}

impl RuntimeCli {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root);
        cmd
    }

    /// Runs a short command (`start`, `kill`, `delete`) and fails with its stderr.
    pub fn simple(&self, command: &'static str, args: &[&str]) -> Result<(), RuntimeError> {
        let output = self
            .command()
            .arg(command)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| self.spawn_error(command, source))?;
        if output.status.success() {
            return Ok(());
        }
        Err(self.failed(command, &output.stderr))
    }

    fn spawn_error(&self, command: &'static str, source: std::io::Error) -> RuntimeError {
        RuntimeError::Spawn {
            runtime: self.binary.clone(),
            command,
            source,
        }
    }

    fn failed(&self, command: &'static str, stderr: &[u8]) -> RuntimeError {
        let text = String::from_utf8_lossy(stderr);
        RuntimeError::Failed {
            runtime: self.binary.clone(),
            command,
            message: runtime_message(&text),
        }
    }

    /// `create` or `exec --detach` with fresh stdio; returns the process pid and the shim's
    /// ends of its stdio. `scratch` is a short path prefix for the console socket and pid file.
    pub fn launch(
        &self,
        id: &str,
        launch: Launch<'_>,
        tty: bool,
        stdin: bool,
        scratch: &Path,
    ) -> Result<(u32, ProcessIo), RuntimeError> {
        let command = match launch {
            Launch::Create { .. } => "create",
            Launch::Exec { .. } => "exec",
        };
        let pid_file = path_with(scratch, ".pid");
        let _ = std::fs::remove_file(&pid_file);
        let mut cmd = self.command();
        cmd.arg(command);
        match launch {
            Launch::Create { bundle } => cmd.arg("--bundle").arg(bundle),
            Launch::Exec { process_file } => cmd.arg("--detach").arg("--process").arg(process_file),
        };
        cmd.arg("--pid-file").arg(&pid_file);
        let mut io = ProcessIo::default();
        // With a terminal the runtime's own stderr is a private pipe for its error text; without
        // one, the runtime's stdio becomes the process's stdio and errors land on its stderr.
        let (error_read, console) = if tty {
            let socket = path_with(scratch, ".console");
            let _ = std::fs::remove_file(&socket);
            let listener = UnixListener::bind(&socket).map_err(RuntimeError::Stdio)?;
            cmd.arg("--console-socket").arg(&socket);
            let (read, write) = pipe()?;
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(write));
            (read, Some((listener, socket)))
        } else {
            if stdin {
                let (read, write) = pipe()?;
                cmd.stdin(Stdio::from(read));
                io.stdin = Some(write);
            } else {
                cmd.stdin(Stdio::null());
            }
            let (out_read, out_write) = pipe()?;
            let (err_read, err_write) = pipe()?;
            cmd.stdout(Stdio::from(out_write))
                .stderr(Stdio::from(err_write));
            io.stdout = Some(out_read);
            let keep = err_read.try_clone().map_err(RuntimeError::Stdio)?;
            io.stderr = Some(keep);
            (err_read, None)
        };
        cmd.arg(id);
        let mut child = cmd
            .spawn()
            .map_err(|source| self.spawn_error(command, source))?;
        // Drop our copies of the child's ends so EOF arrives when the process exits.
        drop(cmd);
        let status = child
            .wait()
            .map_err(|source| self.spawn_error(command, source))?;
        if !status.success() {
            set_nonblocking(&error_read)?;
            let mut text = Vec::new();
            let _ = File::from(error_read).read_to_end(&mut text);
            if let Some((_, socket)) = &console {
                let _ = std::fs::remove_file(socket);
            }
            return Err(self.failed(command, &text));
        }
        if let Some((listener, socket)) = console {
            let master = receive_console(&listener);
            let _ = std::fs::remove_file(&socket);
            let master = master?;
            io.stdin = Some(master.try_clone().map_err(RuntimeError::Stdio)?);
            io.pty = Some(master.try_clone().map_err(RuntimeError::Stdio)?);
            io.stdout = Some(master);
        }
        for fd in [&io.stdin, &io.stdout, &io.stderr].into_iter().flatten() {
            set_nonblocking(fd)?;
        }
        let pid = read_pid(&pid_file)?;
        let _ = std::fs::remove_file(&pid_file);
        Ok((pid, io))
    }
}

fn path_with(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn read_pid(path: &Path) -> Result<u32, RuntimeError> {
    let text = std::fs::read_to_string(path).map_err(|source| RuntimeError::PidFile {
        path: path.to_path_buf(),
        source,
    })?;
    text.trim().parse().map_err(|_| RuntimeError::PidFile {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not a pid"),
    })
}

fn pipe() -> Result<(OwnedFd, OwnedFd), RuntimeError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| RuntimeError::Stdio(e.into()))
}

/// Puts `fd` in non-blocking mode (the event loop never blocks on a process's stdio).
pub fn set_nonblocking(fd: &OwnedFd) -> Result<(), RuntimeError> {
    let flags = rustix::fs::fcntl_getfl(fd).map_err(|e| RuntimeError::Stdio(e.into()))?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)
        .map_err(|e| RuntimeError::Stdio(e.into()))
}

/// Accepts the runtime's connection (already queued: the runtime has exited) and receives the
/// pty master it sent with SCM_RIGHTS.
fn receive_console(listener: &UnixListener) -> Result<OwnedFd, RuntimeError> {
    listener
        .set_nonblocking(true)
        .map_err(RuntimeError::Stdio)?;
    let (stream, _) = listener.accept().map_err(|_| RuntimeError::NoConsole)?;
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut data = [0u8; 1024];
    rustix::net::recvmsg(
        stream.as_fd(),
        &mut [IoSliceMut::new(&mut data)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| RuntimeError::Stdio(e.into()))?;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(RuntimeError::NoConsole)
}

/// The error a runtime printed, verbatim: the `msg` of its last logrus line
/// (`time=... level=error msg="..."`, as runc and berth-runtime write to stderr), or the
/// whole trimmed text when it has none. Case and `$PATH` are kept as the runtime wrote them.
pub fn runtime_message(stderr: &str) -> String {
    let from_logrus = stderr.lines().rev().find_map(|line| {
        let start = line.find("msg=\"")? + 5;
        let mut message = String::new();
        let mut chars = line[start..].chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(message),
                '\\' => message.push(chars.next()?),
                other => message.push(other),
            }
        }
        None
    });
    from_logrus.unwrap_or_else(|| stderr.trim().to_string())
}

#[cfg(test)]
mod runtime_message_tests {
    use super::runtime_message;

    #[test]
    fn runtime_message_is_the_logrus_msg_verbatim() {
        let stderr = "time=\"2026-11-30T09:27:15Z\" level=error msg=\"unable to start container \
                      process: exec: \\\"nosuchcmd\\\": executable file not found in $PATH\"\n";
        assert_eq!(
            runtime_message(stderr),
            "unable to start container process: exec: \"nosuchcmd\": executable file not found in $PATH"
        );
        assert_eq!(runtime_message("  plain failure\n"), "plain failure");
    }
}
