//! `start`: release a created container's init by opening its exec fifo, take its answer
//! (its startContainer hooks ran, or failed), then run the poststart hooks.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use crate::error::{IoContext, RuntimeError};
use crate::init::START_FAILED;
use crate::state::{ContainerState, Status, EXEC_FIFO};
use crate::{hooks, logging, syscall};

use super::Context;

/// Starts the container `id`.
pub fn start(ctx: &Context, id: &str) -> Result<(), RuntimeError> {
    let state = ctx.load(id)?;
    match ctx.status(&state) {
        Status::Created => {}
        Status::Stopped => return Err(RuntimeError::StartStopped),
        Status::Running => return Err(RuntimeError::AlreadyRunning),
        Status::Paused => return Err(RuntimeError::Paused),
    }
    release(ctx, &state)?;
    run_poststart(ctx, &state);
    Ok(())
}

/// Opens the fifo, reads the init's answer and removes the fifo. The init answers once
/// its startContainer hooks ran: "0" before it execs, or "1" and the hook's error before it
/// exits; then the container is stopped and `start` fails with that error (runtime-spec).
pub fn release(ctx: &Context, state: &ContainerState) -> Result<(), RuntimeError> {
    let path = ContainerState::dir(&ctx.root, &state.id).join(EXEC_FIFO);
    let fd =
        syscall::open(&path, libc::O_RDONLY | libc::O_NONBLOCK, 0).context("open exec fifo")?;
    let mut buf = [0u8; 1];
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 100) };
        if n > 0 {
            // SAFETY: reading into a valid one-byte buffer.
            let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), 1) };
            if r == 1 {
                break;
            }
            if r == 0 && pfd.revents & libc::POLLHUP != 0 {
                let _ = std::fs::remove_file(&path);
                return Err(RuntimeError::Init(
                    "container init exited before start".into(),
                ));
            }
        }
        if !state.init_alive() {
            let _ = std::fs::remove_file(&path);
            return Err(RuntimeError::Init(
                "container init exited before start".into(),
            ));
        }
    }
    std::fs::remove_file(&path).context("remove exec fifo")?;
    if buf[0] == START_FAILED {
        let text = read_to_eof(fd.as_fd());
        wait_stopped(state);
        return Err(RuntimeError::Hook(text));
    }
    Ok(())
}

/// The rest of the init's answer: it writes the whole text, then exits (EOF).
fn read_to_eof(fd: BorrowedFd<'_>) -> String {
    let mut text = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 1000) };
        if n == 0 {
            break;
        }
        // SAFETY: reading into a valid buffer of the given length.
        let r = unsafe { libc::read(fd.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
        match r {
            r if r > 0 => text.extend_from_slice(&chunk[..r as usize]),
            r if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
            _ => break,
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Waits for the init that reported a failed start to exit (it does right after its
/// answer), killing it if it lingers, so the container is "stopped" when `start` returns.
pub(super) fn wait_stopped(state: &ContainerState) {
    let Ok(pidfd) = syscall::pidfd_open(state.init_pid) else {
        return;
    };
    if !state.init_alive() {
        return;
    }
    if !matches!(syscall::pidfd_wait_exit(pidfd.as_fd(), 10_000), Ok(true)) {
        // SAFETY: pidfd_send_signal on a pidfd we hold: it cannot reach a recycled pid.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        let _ = syscall::pidfd_wait_exit(pidfd.as_fd(), 10_000);
    }
}

/// poststart hooks: a failure is logged and does not stop the container (runtime-spec).
/// The state is the live one, as runc reports it: "running", or "stopped" without a pid
/// when the process has already exited.
pub fn run_poststart(ctx: &Context, state: &ContainerState) {
    if let Some(list) = state
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststart().as_ref())
    {
        let status = ctx.status(state);
        if let Err(e) = hooks::run(list, &state.hook_state(status.as_str())) {
            logging::warn(&format!("error running poststart hook: {e}"));
        }
    }
}
