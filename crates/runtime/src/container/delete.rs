//! `delete [--force]`: kill what is left, remove the cgroup, run poststop hooks and remove
//! the state directory, also for a container whose create crashed half way.

use std::os::fd::AsFd;

use crate::cgroups::Manager;
use crate::error::RuntimeError;
use crate::state::{ContainerState, Status};
use crate::{hooks, logging, syscall};

use super::{validate_id, wait_gone, Context};

pub fn delete(ctx: &Context, id: &str, force: bool) -> Result<(), RuntimeError> {
    validate_id(id)?;
    let state = match ContainerState::load(&ctx.root, id) {
        Ok(Some(s)) => s,
        // No state.json: create died before writing it. Remove the directory; runc
        // then succeeds only with --force.
        Ok(None) => {
            let _ = std::fs::remove_dir_all(ContainerState::dir(&ctx.root, id));
            return if force {
                Ok(())
            } else {
                Err(RuntimeError::NotExist)
            };
        }
        Err(e) if force => {
            logging::warn(&format!("removing container with unreadable state: {e}"));
            let _ = std::fs::remove_dir_all(ContainerState::dir(&ctx.root, id));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    match ctx.status(&state) {
        Status::Stopped | Status::Created => {}
        status if !force => {
            return Err(RuntimeError::NotStopped {
                id: id.to_string(),
                status: status.to_string(),
            })
        }
        _ => {}
    }
    destroy(ctx, &state)
}

/// SIGKILLs the container's init and waits until it is gone. Through a pidfd opened while
/// the recorded start time still matched, the signal cannot reach a recycled pid and the
/// wait ends at the exit itself (a 10 ms sleep loop made every `delete` of a created
/// container take 10 ms more than it needs); kernels without pidfd_open use that loop.
fn kill_init(state: &ContainerState) {
    if let Ok(pidfd) = syscall::pidfd_open(state.init_pid) {
        if !state.init_alive() {
            return;
        }
        // SAFETY: plain syscall; the pidfd pins the process, so the pid is still its.
        unsafe { libc::kill(state.init_pid, libc::SIGKILL) };
        if syscall::pidfd_wait_exit(pidfd.as_fd(), 5000).is_ok() {
            return;
        }
    } else {
        // SAFETY: plain syscall on the pid we recorded (start time checked by init_alive).
        unsafe { libc::kill(state.init_pid, libc::SIGKILL) };
    }
    wait_gone(state, 500);
}

/// Kills every process of the container, removes its cgroup, runs poststop and removes
/// its state. Used by delete and by `run` after the container exits.
pub fn destroy(ctx: &Context, state: &ContainerState) -> Result<(), RuntimeError> {
    destroy_with(ctx, state, ctx.cgroup(state))
}

/// `destroy` with the container's cgroup manager already at hand (`run` keeps create's).
pub fn destroy_with(
    ctx: &Context,
    state: &ContainerState,
    manager: Result<Box<dyn Manager>, RuntimeError>,
) -> Result<(), RuntimeError> {
    if state.init_alive() {
        if let Ok(m) = &manager {
            // A frozen cgroup cannot act on SIGKILL.
            let _ = m.thaw();
        }
        kill_init(state);
    }
    if let Ok(m) = &manager {
        // Without a pid namespace the init's children survive it: kill them too.
        for _ in 0..100 {
            match m.pids() {
                Ok(pids) if !pids.is_empty() => {
                    for pid in pids {
                        // SAFETY: plain syscall.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                _ => break,
            }
        }
        if let Err(e) = m.destroy() {
            logging::warn(&format!(
                "unable to remove the cgroup of container {}: {e}",
                state.id
            ));
        }
    }
    if let Some(list) = state
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststop().as_ref())
    {
        if let Err(e) = hooks::run(list, &state.hook_state(Status::Stopped.as_str())) {
            logging::warn(&format!("error running poststop hook: {e}"));
        }
    }
    std::fs::remove_dir_all(ContainerState::dir(&ctx.root, &state.id))
        .map_err(|e| RuntimeError::io("remove container state", e))
}
