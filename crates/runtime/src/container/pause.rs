//! `pause` and `resume`: freeze and thaw the container's cgroup.

use crate::error::RuntimeError;
use crate::state::Status;

use super::Context;

pub fn pause(ctx: &Context, id: &str) -> Result<(), RuntimeError> {
    let state = ctx.load(id)?;
    match ctx.status(&state) {
        Status::Running | Status::Created => {}
        // runc: pausing a paused container is "container not running".
        Status::Paused | Status::Stopped => return Err(RuntimeError::NotRunning),
    }
    ctx.cgroup(&state)?
        .freeze()
        .map_err(|e| RuntimeError::Cgroup(e.to_string()))
}

pub fn resume(ctx: &Context, id: &str) -> Result<(), RuntimeError> {
    let state = ctx.load(id)?;
    if ctx.status(&state) != Status::Paused {
        return Err(RuntimeError::NotPaused);
    }
    ctx.cgroup(&state)?
        .thaw()
        .map_err(|e| RuntimeError::Cgroup(e.to_string()))
}
