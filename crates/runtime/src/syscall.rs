//! Checked wrappers around the raw libc calls the runtime makes (mount, pivot_root,
//! clone3, setns): each turns -1 into an `io::Error` carrying errno.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Turns a libc `-1` return into the current errno.
pub fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A C string for a path or name; a nul byte inside is an invalid-input error.
pub fn cstring(s: impl AsRef<OsStr>) -> io::Result<CString> {
    CString::new(s.as_ref().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "string contains a nul byte"))
}

/// mount(2); `None` arguments are passed as NULL.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = source.map(cstring).transpose()?;
    let target = cstring(target)?;
    let fstype = fstype.map(cstring).transpose()?;
    let data = data.filter(|d| !d.is_empty()).map(cstring).transpose()?;
    // SAFETY: every pointer is either NULL or a valid nul-terminated string that outlives the call.
    cvt(unsafe {
        libc::mount(
            source.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            target.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.as_ref()
                .map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    })
    .map(drop)
}

/// The `/proc/self/fd/N` path that names an open fd, used as a mount target so the
/// kernel acts on the exact inode we resolved (no path re-walk, no symlink race).
pub fn fd_path(fd: BorrowedFd<'_>) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// open(2) with O_CLOEXEC.
pub fn open(path: &Path, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    let c = cstring(path)?;
    // SAFETY: `c` is a valid C string; the returned fd is owned by us.
    let fd = cvt(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) })?;
    // SAFETY: `fd` was just returned by open and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// setns(2) into the namespace `fd` refers to.
pub fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall on a valid fd.
    cvt(unsafe { libc::setns(fd.as_raw_fd(), nstype) }).map(drop)
}

/// The clone3 argument block (linux/sched.h, CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// What `fork_with_flags` returned in the calling process.
pub enum Forked {
    Parent(libc::pid_t),
    Child,
}

/// clone3 without CLONE_VM: fork semantics (the child continues here with a copy of the
/// address space) plus namespace flags. Only sound in a single-threaded process, which
/// berth-runtime is (no threads are ever started before this).
pub fn fork_with_flags(flags: u64) -> io::Result<Forked> {
    fork_into_cgroup(flags, None)
}

/// `fork_with_flags`, with the child born in the cgroup2 directory `cgroup` when given
/// (CLONE_INTO_CGROUP, Linux 5.7): no migration of the child afterwards.
pub fn fork_into_cgroup(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> io::Result<Forked> {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: args is a valid clone_args of the size we pass; without CLONE_VM the child
    // gets its own copy of memory, exactly like fork(2).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as libc::pid_t)),
    }
}

/// Sets FD_CLOEXEC on every fd from `first` up, so execve closes what the container must
/// not inherit (CVE-2024-21626: leaked host directory fds).
pub fn cloexec_from(first: RawFd) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes fd flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    // close_range missing or blocked by the container's seccomp profile: walk the fds
    // (runc does the same).
    let dir = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir,
        // No /proc (a chroot without a new mount namespace): every possible fd number.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes into a valid rlimit.
            cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
            let end = RawFd::try_from(lim.rlim_cur).unwrap_or(RawFd::MAX);
            for fd in first..end {
                // SAFETY: fcntl on an fd number; closed numbers fail harmlessly.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let fds: Vec<RawFd> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .filter(|fd| *fd >= first)
        .collect();
    for fd in fds {
        // SAFETY: fcntl on an fd number; a stale one (the read_dir fd) fails harmlessly.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Clears FD_CLOEXEC on fds `first..first+count` (the --preserve-fds range), so they
/// reach the container even if the caller marked them close-on-exec.
pub fn keep_open(first: RawFd, count: i32) {
    for fd in first..first + count {
        // SAFETY: fcntl on an fd number; a closed one fails harmlessly.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
}

/// waitpid(2) that retries on EINTR; returns the raw status.
pub fn waitpid(pid: libc::pid_t, options: libc::c_int) -> io::Result<(libc::pid_t, libc::c_int)> {
    loop {
        let mut status = 0;
        // SAFETY: status points at a valid int.
        let ret = unsafe { libc::waitpid(pid, &mut status, options) };
        if ret == -1 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err);
        }
        return Ok((ret, status));
    }
}

/// pidfd_open(2): a handle bound to the process `pid` is now, which a recycled pid cannot
/// take over (Linux 5.3+).
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Waits up to `timeout_ms` for the process behind `pidfd` to exit (it need not be our
/// child: the pidfd becomes readable once it is a zombie). `Ok(false)` on timeout.
pub fn pidfd_wait_exit(pidfd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    loop {
        let mut pfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err);
        }
        return Ok(n > 0);
    }
}

/// The shell-style exit code for a wait status: the exit code, or 128+signal.
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_is_128_plus_signal_when_killed() {
        // A wait status for "killed by signal 9" is the signal number in the low bits.
        assert_eq!(exit_code(9), 137);
        // "exited with 3" is 3 << 8.
        assert_eq!(exit_code(3 << 8), 3);
    }

    #[test]
    fn cstring_refuses_interior_nul() {
        assert!(cstring("a\0b").is_err());
        assert_eq!(
            cstring("/x").map(|c| c.into_bytes()).ok(),
            Some(b"/x".to_vec())
        );
    }
}
