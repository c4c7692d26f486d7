//! The shim's event loop: one thread polling the listening socket, a signalfd for SIGCHLD,
//! client connections and the stdio of the init and exec processes.

use std::collections::HashMap;
use std::io::{ErrorKind as IoKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::event::{PollFd, PollFlags};

use crate::logfile::{JsonFileLog, LineSplitter, Rotation};
use crate::oci_runtime::{Launch, ProcessIo, RuntimeCli};
use crate::protocol::{
    decode, encode, encode_stream, ErrorKind, ExitStatus, Frame, ProcessId, ProcessState, Request,
    Response, Status, PROTOCOL_VERSION,
};
use crate::reaper::{Reaper, SystemWaiter};
use crate::signals::SignalFd;
use crate::ShimError;

/// An attach client slower than this much buffered output is disconnected (logs never wait).
const MAX_CONN_BUFFER: usize = 8 << 20;
/// How long an exited exec's output may stay open (held by a background child) before its
/// waiters are answered anyway, as containerd's shim does.
const IO_GRACE: Duration = Duration::from_secs(2);
/// How long a completed exec stays known (for late `State`/`Wait` calls) before a new exec
/// forgets it: healthchecks exec every interval for the container's whole life.
const EXEC_RETENTION: Duration = Duration::from_secs(300);

/// Everything the shim needs to supervise one container.
#[derive(Debug, Clone)]
pub struct Config {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime: RuntimeCli,
    pub socket: PathBuf,
    pub log_path: Option<PathBuf>,
    pub rotation: Rotation,
    /// Keep the init's stdin open (docker run -i).
    pub stdin: bool,
}

struct Output {
    fd: OwnedFd,
    stderr: bool,
}

struct Proc {
    pid: u32,
    status: Status,
    exit: Option<ExitStatus>,
    exited_at: Option<Instant>,
    completed: bool,
    outputs: Vec<Output>,
    stdin: Option<OwnedFd>,
    stdin_pending: Vec<u8>,
    close_stdin: bool,
    pty: Option<OwnedFd>,
    attachers: Vec<u64>,
    waiters: Vec<u64>,
    splitters: [LineSplitter; 2],
    /// Exec only: the process spec and whether to open stdin, until ExecStart.
    spec: Option<(serde_json::Value, bool)>,
}

impl Proc {
    fn new(pid: u32, io: ProcessIo) -> Proc {
        let mut outputs = Vec::new();
        if let Some(fd) = io.stdout {
            outputs.push(Output { fd, stderr: false });
        }
        if let Some(fd) = io.stderr {
            outputs.push(Output { fd, stderr: true });
        }
        Proc {
            pid,
            status: Status::Created,
            exit: None,
            exited_at: None,
            completed: false,
            outputs,
            stdin: io.stdin,
            stdin_pending: Vec::new(),
            close_stdin: false,
            pty: io.pty,
            attachers: Vec::new(),
            waiters: Vec::new(),
            splitters: [LineSplitter::default(), LineSplitter::default()],
            spec: None,
        }
    }

    fn state(&self) -> ProcessState {
        ProcessState {
            pid: self.pid,
            status: self.status,
            exit: self.exit,
        }
    }
}

enum Mode {
    Control,
    Waiting,
    Attached { key: ProcessId, stdin: bool },
}

struct Conn {
    stream: UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
    mode: Mode,
    close_after_flush: bool,
    dead: bool,
}

#[derive(Clone)]
enum Token {
    Listener,
    Signals,
    Conn(u64),
    Output(ProcessId, usize),
    Stdin(ProcessId),
}

/// The running shim.
pub struct Supervisor {
    config: Config,
    listener: UnixListener,
    signals: SignalFd,
    log: Option<JsonFileLog>,
    reaper: Reaper<ProcessId>,
    procs: HashMap<ProcessId, Proc>,
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    exiting: bool,
}

impl Supervisor {
    /// Binds the socket and runs `runtime create`. Call after becoming a subreaper.
    pub fn launch(config: Config) -> Result<Supervisor, ShimError> {
        let signals = SignalFd::child_and_termination()?;
        let log = match &config.log_path {
            Some(path) => Some(JsonFileLog::open(path, config.rotation)?),
            None => None,
        };
        let tty = bundle_terminal(&config.bundle)?;
        let _ = std::fs::remove_file(&config.socket);
        let listener = UnixListener::bind(&config.socket).map_err(|source| ShimError::Bind {
            path: config.socket.clone(),
            source,
        })?;
        listener.set_nonblocking(true).map_err(ShimError::Io)?;
        let scratch = scratch_prefix(&config.socket, "init");
        let launched = config.runtime.launch(
            &config.id,
            Launch::Create {
                bundle: &config.bundle,
            },
            tty,
            config.stdin,
            &scratch,
        );
        let (pid, io) = match launched {
            Ok(ok) => ok,
            Err(e) => {
                let _ = std::fs::remove_file(&config.socket);
                return Err(e.into());
            }
        };
        let mut supervisor = Supervisor {
            config,
            listener,
            signals,
            log,
            reaper: Reaper::default(),
            procs: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 0,
            exiting: false,
        };
        supervisor.procs.insert(None, Proc::new(pid, io));
        if let Some(status) = supervisor.reaper.register(pid, None) {
            supervisor.on_exit(None, status.code());
        }
        Ok(supervisor)
    }

    /// Serves until Delete or Shutdown.
    pub fn serve(mut self) -> Result<(), ShimError> {
        while !self.exiting {
            self.turn()?;
        }
        self.flush_all();
        let _ = std::fs::remove_file(&self.config.socket);
        Ok(())
    }

    fn turn(&mut self) -> Result<(), ShimError> {
        let mut tokens = vec![Token::Listener, Token::Signals];
        let mut fds: Vec<(BorrowedFd<'_>, PollFlags)> = vec![
            (self.listener.as_fd(), PollFlags::IN),
            (self.signals.as_fd(), PollFlags::IN),
        ];
        for (id, conn) in &self.conns {
            let mut flags = PollFlags::IN;
            if !conn.output.is_empty() {
                flags |= PollFlags::OUT;
            }
            tokens.push(Token::Conn(*id));
            fds.push((conn.stream.as_fd(), flags));
        }
        let mut grace = false;
        for (key, proc) in &self.procs {
            for (n, output) in proc.outputs.iter().enumerate() {
                tokens.push(Token::Output(key.clone(), n));
                fds.push((output.fd.as_fd(), PollFlags::IN));
            }
            if let (Some(stdin), false) = (&proc.stdin, proc.stdin_pending.is_empty()) {
                tokens.push(Token::Stdin(key.clone()));
                fds.push((stdin.as_fd(), PollFlags::OUT));
            }
            grace |= proc.exit.is_some() && !proc.completed;
        }
        let mut pollfds: Vec<PollFd<'_>> = fds
            .iter()
            .map(|(fd, flags)| PollFd::from_borrowed_fd(*fd, *flags))
            .collect();
        let timeout = grace.then_some(rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 200_000_000,
        });
        match rustix::event::poll(&mut pollfds, timeout.as_ref()) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(()),
            Err(e) => return Err(ShimError::Io(e.into())),
        }
        let ready: Vec<(Token, PollFlags)> = tokens
            .into_iter()
            .zip(pollfds.iter().map(|p| p.revents()))
            .filter(|(_, r)| !r.is_empty())
            .collect();
        drop(pollfds);
        drop(fds);
        for (token, revents) in ready {
            match token {
                Token::Listener => self.accept(),
                Token::Signals => self.on_signals(),
                Token::Conn(id) => self.on_conn(id, revents),
                Token::Output(key, n) => self.on_output(&key, n),
                Token::Stdin(key) => self.flush_stdin(&key),
            }
        }
        self.complete_overdue();
        self.conns.retain(|_, c| !c.dead);
        Ok(())
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            self.next_conn += 1;
            self.conns.insert(
                self.next_conn,
                Conn {
                    stream,
                    input: Vec::new(),
                    output: Vec::new(),
                    mode: Mode::Control,
                    close_after_flush: false,
                    dead: false,
                },
            );
        }
    }

    fn on_signals(&mut self) {
        // Termination signals are read and ignored: only Delete/Shutdown end the shim, so a
        // stray SIGTERM to the process group cannot orphan the container's stdio.
        self.signals.drain();
        for (key, status) in self.reaper.reap(&mut SystemWaiter) {
            self.on_exit(key, status.code());
        }
    }

    fn on_exit(&mut self, key: ProcessId, code: i32) {
        let now = SystemTime::now();
        let exit = ExitStatus {
            code,
            exited_at_unix_nanos: u64::try_from(
                now.duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos(),
            )
            .unwrap_or(u64::MAX),
        };
        // Take what the process wrote before it died so logs and attachers see all of it.
        let outputs = self.procs.get(&key).map(|p| p.outputs.len()).unwrap_or(0);
        for n in (0..outputs).rev() {
            self.on_output(&key, n);
        }
        let Some(proc) = self.procs.get_mut(&key) else {
            return;
        };
        proc.status = Status::Stopped;
        proc.exit = Some(exit);
        proc.exited_at = Some(Instant::now());
        if key.is_none() {
            write_exit_record(&self.config.socket, &exit);
        }
        if proc.outputs.is_empty() {
            self.complete(&key);
        }
    }

    fn complete_overdue(&mut self) {
        let overdue: Vec<ProcessId> = self
            .procs
            .iter()
            .filter(|(_, p)| !p.completed && p.exited_at.is_some_and(|t| t.elapsed() >= IO_GRACE))
            .map(|(k, _)| k.clone())
            .collect();
        for key in overdue {
            self.complete(&key);
        }
    }

    /// Forgets execs completed more than [`EXEC_RETENTION`] ago (berthd has their codes).
    fn forget_finished_execs(&mut self) {
        self.procs.retain(|key, p| {
            key.is_none()
                || !p.completed
                || p.exited_at.is_none_or(|t| t.elapsed() < EXEC_RETENTION)
        });
    }

    /// The process exited and its output is drained: answer waiters, end attach streams.
    fn complete(&mut self, key: &ProcessId) {
        let Some(proc) = self.procs.get_mut(key) else {
            return;
        };
        let Some(exit) = proc.exit else { return };
        if proc.completed {
            return;
        }
        proc.completed = true;
        let waiters = std::mem::take(&mut proc.waiters);
        let attachers = std::mem::take(&mut proc.attachers);
        for id in waiters {
            self.respond(id, &Response::Exited(exit));
        }
        for id in attachers {
            if let Some(conn) = self.conns.get_mut(&id) {
                encode(&Frame::Exit(exit), &mut conn.output);
                conn.close_after_flush = true;
                flush_conn(conn);
            }
        }
    }

    fn on_output(&mut self, key: &ProcessId, n: usize) {
        let mut buf = [0u8; 32 * 1024];
        loop {
            let Some(proc) = self.procs.get_mut(key) else {
                return;
            };
            let Some(output) = proc.outputs.get(n) else {
                return;
            };
            let stderr = output.stderr;
            let read = rustix::io::read(&output.fd, &mut buf);
            let got = match read {
                Ok(0) | Err(rustix::io::Errno::IO) => None,
                Ok(got) => Some(got),
                Err(rustix::io::Errno::AGAIN) => return,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => None,
            };
            let Some(got) = got else {
                self.on_output_closed(key, n);
                return;
            };
            let data = &buf[..got];
            if key.is_none() {
                if let Some(log) = self.log.as_mut() {
                    let stream = if stderr { "stderr" } else { "stdout" };
                    let now = SystemTime::now();
                    proc.splitters[usize::from(stderr)].push(data, &mut |m| {
                        let _ = log.write_entry(stream, m, now);
                    });
                }
            }
            let attachers = proc.attachers.clone();
            for id in attachers {
                if let Some(conn) = self.conns.get_mut(&id) {
                    encode_stream(stderr, data, &mut conn.output);
                    flush_conn(conn);
                    if conn.output.len() > MAX_CONN_BUFFER {
                        conn.dead = true;
                    }
                }
            }
        }
    }

    fn on_output_closed(&mut self, key: &ProcessId, n: usize) {
        let Some(proc) = self.procs.get_mut(key) else {
            return;
        };
        let output = proc.outputs.remove(n);
        if key.is_none() {
            if let Some(log) = self.log.as_mut() {
                let stream = if output.stderr { "stderr" } else { "stdout" };
                let now = SystemTime::now();
                proc.splitters[usize::from(output.stderr)].finish(&mut |m| {
                    let _ = log.write_entry(stream, m, now);
                });
            }
        }
        if proc.outputs.is_empty() && proc.exit.is_some() {
            self.complete(key);
        }
    }

    fn flush_stdin(&mut self, key: &ProcessId) {
        let Some(proc) = self.procs.get_mut(key) else {
            return;
        };
        while !proc.stdin_pending.is_empty() {
            let Some(fd) = &proc.stdin else {
                proc.stdin_pending.clear();
                break;
            };
            match rustix::io::write(fd, &proc.stdin_pending) {
                Ok(n) => {
                    proc.stdin_pending.drain(..n);
                }
                Err(rustix::io::Errno::AGAIN) => return,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => {
                    proc.stdin = None;
                    proc.stdin_pending.clear();
                }
            }
        }
        if proc.close_stdin && proc.pty.is_none() {
            proc.stdin = None;
        }
    }

    fn on_conn(&mut self, id: u64, revents: PollFlags) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if revents.contains(PollFlags::OUT) {
            flush_conn(conn);
        }
        let mut buf = [0u8; 16 * 1024];
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    conn.dead = true;
                    break;
                }
                Ok(_) if conn.close_after_flush && conn.output.is_empty() => {}
                Ok(n) => conn.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == IoKind::WouldBlock => break,
                Err(e) if e.kind() == IoKind::Interrupted => {}
                Err(_) => {
                    conn.dead = true;
                    break;
                }
            }
            if conn.input.len() > crate::protocol::MAX_FRAME * 2 {
                break;
            }
        }
        if conn.dead {
            self.forget_conn(id);
            return;
        }
        self.process_input(id);
    }

    fn forget_conn(&mut self, id: u64) {
        for proc in self.procs.values_mut() {
            proc.attachers.retain(|&a| a != id);
            proc.waiters.retain(|&w| w != id);
        }
    }

    fn process_input(&mut self, id: u64) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            if matches!(conn.mode, Mode::Waiting) || conn.close_after_flush {
                return;
            }
            let frame = match decode(&conn.input) {
                Ok(Some((frame, used))) => {
                    conn.input.drain(..used);
                    frame
                }
                Ok(None) => return,
                Err(e) => {
                    let response = Response::error(ErrorKind::InvalidArgument, e.to_string());
                    encode(&Frame::Response(response), &mut conn.output);
                    conn.close_after_flush = true;
                    flush_conn(conn);
                    return;
                }
            };
            let attached = match &conn.mode {
                Mode::Attached { key, stdin } => Some((key.clone(), *stdin)),
                _ => None,
            };
            match (frame, attached) {
                (Frame::Request(request), None) => self.handle(id, request),
                (Frame::Stdin(data), Some((key, true))) => self.write_stdin(&key, &data),
                (Frame::CloseStdin, Some((key, true))) => self.close_stdin(&key),
                (Frame::Stdin(_) | Frame::CloseStdin, Some(_)) => {}
                (_, _) => {
                    let response = Response::error(
                        ErrorKind::InvalidArgument,
                        "unexpected frame on this connection",
                    );
                    self.respond(id, &response);
                }
            }
        }
    }

    fn write_stdin(&mut self, key: &ProcessId, data: &[u8]) {
        if let Some(proc) = self.procs.get_mut(key) {
            if proc.stdin.is_some() && !proc.close_stdin {
                proc.stdin_pending.extend_from_slice(data);
                self.flush_stdin(key);
            }
        }
    }

    fn close_stdin(&mut self, key: &ProcessId) {
        if let Some(proc) = self.procs.get_mut(key) {
            proc.close_stdin = true;
        }
        self.flush_stdin(key);
    }

    /// Sends a response and closes the connection once it is written.
    fn respond(&mut self, id: u64, response: &Response) {
        if let Some(conn) = self.conns.get_mut(&id) {
            encode(&Frame::Response(response.clone()), &mut conn.output);
            conn.close_after_flush = true;
            conn.mode = Mode::Control;
            flush_conn(conn);
        }
    }

    fn flush_all(&mut self) {
        for conn in self.conns.values_mut() {
            let _ = conn.stream.set_nonblocking(false);
            let _ = conn.stream.write_all(&conn.output);
            conn.output.clear();
        }
    }

    fn handle(&mut self, id: u64, request: Request) {
        let response = match self.dispatch(id, request) {
            Ok(Some(response)) => response,
            Ok(None) => return,
            Err((kind, message)) => Response::error(kind, message),
        };
        if let Some(conn) = self.conns.get_mut(&id) {
            if let (Response::Ok, Mode::Attached { .. }) = (&response, &conn.mode) {
                // Attach acknowledged: the connection stays open for stream frames.
                encode(&Frame::Response(Response::Ok), &mut conn.output);
                flush_conn(conn);
                return;
            }
        }
        self.respond(id, &response);
    }

    fn proc(&self, key: &ProcessId) -> Result<&Proc, (ErrorKind, String)> {
        self.procs.get(key).ok_or_else(|| not_found(key))
    }

    fn dispatch(
        &mut self,
        id: u64,
        request: Request,
    ) -> Result<Option<Response>, (ErrorKind, String)> {
        let response = match request {
            Request::Version => Response::Version {
                protocol: PROTOCOL_VERSION,
                shim_pid: std::process::id(),
                container_id: self.config.id.clone(),
            },
            Request::State { exec } => Response::State(self.proc(&exec)?.state()),
            Request::Start => {
                if self.proc(&None)?.status != Status::Created {
                    return Err((
                        ErrorKind::Conflict,
                        "container is not in created state".into(),
                    ));
                }
                self.config
                    .runtime
                    .simple("start", &[self.config.id.as_str()])
                    .map_err(internal)?;
                if let Some(init) = self.procs.get_mut(&None) {
                    if init.exit.is_none() {
                        init.status = Status::Running;
                    }
                }
                Response::Ok
            }
            Request::Kill { exec, signal, all } => self.kill(&exec, signal, all)?,
            Request::Wait { exec } => {
                let proc = self.procs.get_mut(&exec).ok_or_else(|| not_found(&exec))?;
                match (proc.completed, proc.exit) {
                    (true, Some(exit)) => Response::Exited(exit),
                    _ => {
                        proc.waiters.push(id);
                        if let Some(conn) = self.conns.get_mut(&id) {
                            conn.mode = Mode::Waiting;
                        }
                        return Ok(None);
                    }
                }
            }
            Request::Exec {
                id: exec,
                process,
                stdin,
            } => {
                if exec.is_empty() || exec.contains('/') || exec.len() > 64 {
                    return Err((
                        ErrorKind::InvalidArgument,
                        format!("invalid exec id: {exec:?}"),
                    ));
                }
                if self.procs.contains_key(&Some(exec.clone())) {
                    return Err((ErrorKind::Conflict, format!("exec {exec} already exists")));
                }
                if self.proc(&None)?.status != Status::Running {
                    return Err((ErrorKind::Conflict, "container is not running".into()));
                }
                let mut proc = Proc::new(0, ProcessIo::default());
                proc.spec = Some((process, stdin));
                self.forget_finished_execs();
                self.procs.insert(Some(exec), proc);
                Response::Ok
            }
            Request::ExecStart { id: exec } => self.exec_start(exec)?,
            Request::Resize { exec, rows, cols } => {
                let proc = self.proc(&exec)?;
                let Some(pty) = &proc.pty else {
                    return Err((ErrorKind::InvalidArgument, "process has no terminal".into()));
                };
                let size = rustix::termios::Winsize {
                    ws_row: rows,
                    ws_col: cols,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                rustix::termios::tcsetwinsize(pty, size)
                    .map_err(|e| (ErrorKind::Internal, format!("resizing the terminal: {e}")))?;
                Response::Ok
            }
            Request::Attach { exec, stdin } => {
                let proc = self.procs.get_mut(&exec).ok_or_else(|| not_found(&exec))?;
                if let (true, Some(exit)) = (proc.completed, proc.exit) {
                    if let Some(conn) = self.conns.get_mut(&id) {
                        encode(&Frame::Response(Response::Ok), &mut conn.output);
                        encode(&Frame::Exit(exit), &mut conn.output);
                        conn.close_after_flush = true;
                        flush_conn(conn);
                    }
                    return Ok(None);
                }
                proc.attachers.push(id);
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.mode = Mode::Attached { key: exec, stdin };
                }
                Response::Ok
            }
            Request::CloseStdin { exec } => {
                self.proc(&exec)?;
                self.close_stdin(&exec);
                Response::Ok
            }
            Request::Delete { force } => {
                let init = self.proc(&None)?;
                if init.status == Status::Running && !force {
                    return Err((
                        ErrorKind::Conflict,
                        "container is running: stop it first or force".into(),
                    ));
                }
                let id = self.config.id.clone();
                let args: Vec<&str> = if force {
                    vec!["--force", &id]
                } else {
                    vec![&id]
                };
                self.config
                    .runtime
                    .simple("delete", &args)
                    .map_err(internal)?;
                self.exiting = true;
                Response::Ok
            }
            Request::Shutdown => {
                if self.proc(&None)?.status == Status::Running {
                    return Err((
                        ErrorKind::Conflict,
                        "container is running: stop it first".into(),
                    ));
                }
                self.exiting = true;
                Response::Ok
            }
        };
        Ok(Some(response))
    }

    fn kill(
        &mut self,
        exec: &ProcessId,
        signal: i32,
        all: bool,
    ) -> Result<Response, (ErrorKind, String)> {
        let proc = self.proc(exec)?;
        if proc.status != Status::Running && !(exec.is_none() && proc.status == Status::Created) {
            return Err((ErrorKind::Conflict, "process is not running".into()));
        }
        if exec.is_some() {
            // SAFETY: kill has no memory preconditions; the pid is our unreaped child.
            let rc = unsafe { libc::kill(proc.pid as i32, signal) };
            if rc != 0 {
                let e = std::io::Error::last_os_error();
                return Err((ErrorKind::Internal, format!("signalling exec: {e}")));
            }
            return Ok(Response::Ok);
        }
        let signal_text = signal.to_string();
        let mut args = Vec::new();
        if all {
            args.push("--all");
        }
        args.push(self.config.id.as_str());
        args.push(&signal_text);
        self.config
            .runtime
            .simple("kill", &args)
            .map_err(internal)?;
        Ok(Response::Ok)
    }

    fn exec_start(&mut self, exec: String) -> Result<Response, (ErrorKind, String)> {
        let key = Some(exec.clone());
        let proc = self.procs.get_mut(&key).ok_or_else(|| not_found(&key))?;
        let Some((spec, stdin)) = proc.spec.take() else {
            return Err((
                ErrorKind::Conflict,
                format!("exec {exec} was already started"),
            ));
        };
        let tty = spec
            .get("terminal")
            .and_then(|t| t.as_bool())
            .unwrap_or(false);
        let scratch = scratch_prefix(&self.config.socket, &format!("exec-{exec}"));
        let process_file = scratch.with_extension("process.json");
        let text =
            serde_json::to_vec(&spec).map_err(|e| (ErrorKind::InvalidArgument, e.to_string()))?;
        std::fs::write(&process_file, text).map_err(|e| {
            (
                ErrorKind::Internal,
                format!("writing the process spec: {e}"),
            )
        })?;
        let launched = self.config.runtime.launch(
            &self.config.id,
            Launch::Exec {
                process_file: &process_file,
            },
            tty,
            stdin,
            &scratch,
        );
        let _ = std::fs::remove_file(&process_file);
        let (pid, io) = match launched {
            Ok(ok) => ok,
            Err(e) => {
                self.procs.remove(&key);
                return Err(internal(e));
            }
        };
        let fresh = Proc::new(pid, io);
        if let Some(proc) = self.procs.get_mut(&key) {
            proc.pid = pid;
            proc.status = Status::Running;
            proc.outputs = fresh.outputs;
            proc.stdin = fresh.stdin;
            proc.pty = fresh.pty;
        }
        if let Some(status) = self.reaper.register(pid, key.clone()) {
            self.on_exit(key, status.code());
        }
        Ok(Response::Ok)
    }
}

fn flush_conn(conn: &mut Conn) {
    while !conn.output.is_empty() {
        match conn.stream.write(&conn.output) {
            Ok(0) => {
                conn.dead = true;
                return;
            }
            Ok(n) => {
                conn.output.drain(..n);
            }
            Err(e) if e.kind() == IoKind::WouldBlock => return,
            Err(e) if e.kind() == IoKind::Interrupted => {}
            Err(_) => {
                conn.dead = true;
                return;
            }
        }
    }
    if conn.close_after_flush {
        // Half-close and let the client hang up: closing with unread client bytes (a stdin
        // frame racing the exit) would reset the connection and lose the frames still queued
        // for the client.
        let _ = conn.stream.shutdown(std::net::Shutdown::Write);
    }
}

fn not_found(key: &ProcessId) -> (ErrorKind, String) {
    match key {
        Some(exec) => (ErrorKind::NotFound, format!("no such exec: {exec}")),
        None => (ErrorKind::NotFound, "no init process".into()),
    }
}

fn internal(e: impl std::fmt::Display) -> (ErrorKind, String) {
    (ErrorKind::Internal, e.to_string())
}

/// `<socket dir>/<socket stem>.<what>`: short paths for pid files and console sockets.
fn scratch_prefix(socket: &Path, what: &str) -> PathBuf {
    let mut name = socket.with_extension("").into_os_string();
    name.push(format!(".{what}"));
    PathBuf::from(name)
}

/// Path of the durable exit record of the init, beside the socket.
pub fn exit_record_path(socket: &Path) -> PathBuf {
    socket.with_extension("exit.json")
}

/// Records the init's exit atomically (temp file, rename) so it survives the shim and berthd.
/// Not fsynced: the record lives under the exec root (runtime state on /run, like the
/// runtime's own state, see ARCHITECTURE.md) and only has to outlive processes, not the host;
/// berthd makes the exit status durable in the container record (fsynced) once it reads it.
fn write_exit_record(socket: &Path, exit: &ExitStatus) {
    let path = exit_record_path(socket);
    let temp = path.with_extension("tmp");
    let Ok(text) = serde_json::to_vec(exit) else {
        return;
    };
    let written = std::fs::File::create(&temp).and_then(|mut f| f.write_all(&text));
    if written.is_ok() {
        let _ = std::fs::rename(&temp, &path);
    }
}

/// Whether the bundle's config.json asks for a terminal (`process.terminal`).
fn bundle_terminal(bundle: &Path) -> Result<bool, ShimError> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|source| ShimError::Bundle {
        path: path.clone(),
        message: source.to_string(),
    })?;
    let config: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| ShimError::Bundle {
            path: path.clone(),
            message: e.to_string(),
        })?;
    Ok(config["process"]["terminal"].as_bool().unwrap_or(false))
}
