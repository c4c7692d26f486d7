//! `kill [--all] ID [SIGNAL]`: signal the init, or every process in the container's cgroup.

use crate::error::RuntimeError;
use crate::signal;
use crate::state::Status;

use super::Context;

/// Parses a kill signal argument, runc's `unknown signal "X"` otherwise.
pub fn parse_signal(s: &str) -> Result<libc::c_int, RuntimeError> {
    signal::parse(s).ok_or_else(|| RuntimeError::UnknownSignal(s.to_string()))
}

pub fn kill(ctx: &Context, id: &str, sig: libc::c_int, all: bool) -> Result<(), RuntimeError> {
    let state = ctx.load(id)?;
    if ctx.status(&state) == Status::Stopped {
        return Err(RuntimeError::NotRunning);
    }
    if all {
        let manager = ctx.cgroup(&state)?;
        let pids = manager
            .pids()
            .map_err(|e| RuntimeError::Cgroup(e.to_string()))?;
        for pid in pids {
            // SAFETY: plain syscall; a process that already exited is fine.
            unsafe { libc::kill(pid, sig) };
        }
        return Ok(());
    }
    // SAFETY: plain syscall.
    if unsafe { libc::kill(state.init_pid, sig) } == -1 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ESRCH) {
            return Err(RuntimeError::NotRunning);
        }
        return Err(RuntimeError::io("kill container init", err));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_signal_text_matches_runc() {
        let err = parse_signal("BOGUS").expect_err("unknown");
        assert_eq!(err.to_string(), "unknown signal \"BOGUS\"");
        assert_eq!(parse_signal("KILL").expect("known"), libc::SIGKILL);
    }
}
