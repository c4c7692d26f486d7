//! `run`: create + start, then (unless --detach) stay the container's parent: forward
//! signals to it, reap it, delete it and exit with its status (128+signal when killed).

use crate::error::RuntimeError;
use crate::state::ContainerState;
use crate::sync::{Message, SyncSocket};
use crate::{signal, syscall};

use super::create::{create_from, CreateOptions, StartVia};
use super::delete::destroy_with;
use super::start::{run_poststart, wait_stopped};
use super::Context;

/// `run` flags beyond create's.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunFlags {
    /// --detach: return once the container is started.
    pub detach: bool,
    /// --keep: leave the stopped container for `delete` instead of removing it.
    pub keep: bool,
    /// --no-subreaper: do not become the subreaper of the container's orphans.
    pub no_subreaper: bool,
}

/// Runs the container; returns the exit code berth-runtime should exit with.
pub fn run(
    ctx: &Context,
    id: &str,
    opts: &CreateOptions,
    flags: RunFlags,
) -> Result<i32, RuntimeError> {
    let detach = flags.detach;
    if !detach && !flags.no_subreaper {
        // Processes the init leaves behind (no pid namespace) must be reaped by us.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    super::validate_id(id)?;
    let bundle = crate::spec::load(&opts.bundle)?;
    // runc: a foreground container with a terminal gets its pty proxied by runc itself.
    let terminal = !detach
        && opts.console_socket.is_none()
        && bundle
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
    let listener = terminal
        .then(|| super::tty::ConsoleListener::new(&ctx.root, id))
        .transpose()
        .map_err(|e| RuntimeError::io("create console socket", e))?;
    let mut opts = opts.clone();
    if let Some(l) = &listener {
        opts.console_socket = Some(l.path.clone());
    }
    // Blocked before the container exists (runc installs its signal handler first): a
    // signal that arrives while it is being made is forwarded to it once it runs, instead
    // of killing us half way. The init restores an empty mask before its exec.
    let mask = if detach { None } else { Some(block_signals()) };
    let mut created = create_from(ctx, id, &opts, bundle, StartVia::SyncSocket)?;
    let sync = created.sync.take();
    let master = match listener.as_ref().map(|l| l.receive_master()).transpose() {
        Ok(m) => m,
        Err(e) => {
            let _ = destroy_with(ctx, &created.state, Ok(created.cgroup));
            return Err(RuntimeError::io("receive the container's pty", e));
        }
    };
    drop(listener);
    // The init's answer to `Start` (EOF once it exec'd, or why it failed) costs a wake-up
    // to wait for. It is awaited only when something must follow a successful start:
    // returning (--detach) or the poststart hooks (runtime-spec: after the process
    // started). Otherwise it is read once the container exited.
    let awaited = detach || has_poststart(&created.state);
    if awaited {
        if let Err(e) = start_answer(sync.as_ref(), true) {
            wait_stopped(&created.state);
            let _ = destroy_with(ctx, &created.state, Ok(created.cgroup));
            return Err(e);
        }
    }
    run_poststart(ctx, &created.state);
    if detach {
        return Ok(0);
    }
    let resize = master.as_ref().and_then(|m| m.try_clone().ok());
    let proxy = master
        .map(super::tty::start_proxy)
        .transpose()
        .map_err(|e| RuntimeError::io("proxy the container's terminal", e))?;
    let code = wait_forwarding(created.pid, mask.as_ref(), resize.as_ref());
    if let Some(p) = proxy {
        p.finish();
    }
    if !awaited {
        if let Err(e) = start_answer(sync.as_ref(), false) {
            let _ = destroy_with(ctx, &created.state, Ok(created.cgroup));
            return Err(e);
        }
    }
    if flags.keep {
        // runc --keep: the stopped container stays until `delete` (which also runs
        // poststop and removes its cgroup).
        return Ok(code);
    }
    destroy_with(ctx, &created.state, Ok(created.cgroup))?;
    Ok(code)
}

fn has_poststart(state: &ContainerState) -> bool {
    state
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststart().as_ref())
        .is_some_and(|l| !l.is_empty())
}

/// The started init's answer on the sync socket: EOF means it exec'd the process; an
/// `Error` is why it did not (a startContainer hook failed: runtime-spec, the start fails).
/// `wait`: block until it answers; otherwise read only what it already sent (the init
/// has exited, so a missing answer means it exec'd).
fn start_answer(sync: Option<&SyncSocket>, wait: bool) -> Result<(), RuntimeError> {
    let Some(sync) = sync else {
        return Ok(());
    };
    let answer = if wait { sync.recv() } else { sync.try_recv() };
    match answer {
        Ok(None) => Ok(()),
        Err(e) if !wait && e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
        Ok(Some(Message::Error(text))) if text.starts_with("error running startContainer") => {
            Err(RuntimeError::Hook(text))
        }
        Ok(Some(Message::Error(text))) => Err(RuntimeError::Init(text)),
        Ok(Some(other)) => Err(RuntimeError::Init(format!(
            "unexpected message from init: {other:?}"
        ))),
        Err(e) => Err(RuntimeError::io(
            "read the container init's start answer",
            e,
        )),
    }
}

/// Blocks every forwarded signal and SIGCHLD so they are taken with sigwaitinfo.
pub fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local, zero-initialised set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signal::forwarded() {
            libc::sigaddset(&mut set, s);
        }
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Forwards signals to `pid` until it exits; reaps every child meanwhile. Returns the
/// shell-style exit code of `pid`.
pub fn wait_forwarding(
    pid: i32,
    set: Option<&libc::sigset_t>,
    pty: Option<&std::os::fd::OwnedFd>,
) -> i32 {
    loop {
        loop {
            match syscall::waitpid(-1, libc::WNOHANG) {
                Ok((0, _)) | Err(_) => break,
                Ok((p, status)) if p == pid => return syscall::exit_code(status),
                Ok(_) => {}
            }
        }
        let Some(set) = set else {
            // Not forwarding: a plain blocking wait.
            return match syscall::waitpid(pid, 0) {
                Ok((_, status)) => syscall::exit_code(status),
                Err(_) => 1,
            };
        };
        // SAFETY: set is a valid sigset; info may be NULL.
        let sig = unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) };
        if sig == libc::SIGWINCH {
            if let Some(m) = pty {
                // Resizing the pty signals its foreground process group itself.
                super::tty::copy_window_size(std::os::fd::AsFd::as_fd(m));
                continue;
            }
        }
        if sig > 0 && sig != libc::SIGCHLD {
            // SAFETY: plain syscall.
            unsafe { libc::kill(pid, sig) };
        }
    }
}
