//! `start`: release a created container's init by opening its exec fifo, then run the
//! poststart hooks.

use std::os::fd::AsRawFd;

use crate::error::{IoContext, RuntimeError};
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

/// Opens the fifo, reads the init's byte and removes the fifo.
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
    Ok(())
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
