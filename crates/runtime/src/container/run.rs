//! `run`: create + start, then (unless --detach) stay the container's parent: forward
//! signals to it, reap it, delete it and exit with its status (128+signal when killed).

use crate::error::RuntimeError;
use crate::signal;
use crate::syscall;

use super::create::{create, CreateOptions};
use super::delete::destroy;
use super::start::{release, run_poststart};
use super::Context;

/// Runs the container; returns the exit code berth-runtime should exit with.
pub fn run(
    ctx: &Context,
    id: &str,
    opts: &CreateOptions,
    detach: bool,
) -> Result<i32, RuntimeError> {
    if !detach {
        // Processes the init leaves behind (no pid namespace) must be reaped by us.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    let created = create(ctx, id, opts)?;
    let mask = if detach { None } else { Some(block_signals()) };
    if let Err(e) = release(ctx, &created.state) {
        let _ = destroy(ctx, &created.state);
        return Err(e);
    }
    run_poststart(&created.state);
    if detach {
        return Ok(0);
    }
    let code = wait_forwarding(created.pid, mask.as_ref());
    destroy(ctx, &created.state)?;
    Ok(code)
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
pub fn wait_forwarding(pid: i32, set: Option<&libc::sigset_t>) -> i32 {
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
        if sig > 0 && sig != libc::SIGCHLD {
            // SAFETY: plain syscall.
            unsafe { libc::kill(pid, sig) };
        }
    }
}
