//! The signalfd the event loop reads SIGCHLD (and ignored termination signals) from.
//!
//! The signals are blocked for the whole process, so they are only ever consumed here; std's
//! `Command` resets the mask in the children it spawns (runtime commands, the container).

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

/// A non-blocking signalfd for SIGCHLD, SIGTERM, SIGINT and SIGHUP.
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    /// Blocks the signals and opens the signalfd.
    pub fn child_and_termination() -> std::io::Result<SignalFd> {
        // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it before use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t; the signal numbers are valid.
        unsafe {
            libc::sigemptyset(&mut set);
            for signal in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                libc::sigaddset(&mut set, signal);
            }
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        // SAFETY: `set` is initialised; -1 asks for a new fd.
        let raw = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(SignalFd { fd })
    }

    /// Reads every pending signal record (the reaper then collects all exited children,
    /// since several SIGCHLDs coalesce into one record).
    pub fn drain(&self) {
        let mut buf = [0u8; 128 * 8];
        while let Ok(n) = rustix::io::read(&self.fd, &mut buf) {
            if n == 0 {
                break;
            }
        }
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
