//! `exec`: run another process in a running container: join the init's namespaces
//! (/proc/<pid>/ns/*) and cgroup, apply the process's user, capabilities, rlimits and the
//! container's seccomp, and exec; wait for it unless detached.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespaceType, Process};

use crate::error::{IoContext, RuntimeError};
use crate::init::process as proc_setup;
use crate::namespaces::flag_and_name;
use crate::state::{ContainerState, Status};
use crate::sync::{Message, SyncSocket};
use crate::syscall::{self, Forked};
use crate::{console, seccomp};

use super::create::write_pid_file;
use super::run::{block_signals, wait_forwarding};
use super::Context;

/// `exec` flags beyond the process itself.
#[derive(Debug, Default)]
pub struct ExecOptions {
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: i32,
}

/// A namespace file and its CLONE_NEW* flag.
type NsPath = (PathBuf, libc::c_int);

/// The namespaces of the container's init to join, in order: (path, flag).
/// pid and time are entered by the parent (they apply to its children); the rest by the
/// child, user first and mount last.
fn namespace_paths(state: &ContainerState) -> (Vec<NsPath>, Vec<NsPath>) {
    let types: Vec<LinuxNamespaceType> = state
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|ns| ns.iter().map(|n| n.typ()).collect())
        .unwrap_or_default();
    let path = |t| {
        let (flag, name) = flag_and_name(t);
        (
            PathBuf::from(format!("/proc/{}/ns/{name}", state.init_pid)),
            flag,
        )
    };
    let mut parent = Vec::new();
    let mut child = Vec::new();
    for t in [LinuxNamespaceType::Pid, LinuxNamespaceType::Time] {
        if types.contains(&t) {
            parent.push(path(t));
        }
    }
    for t in [
        LinuxNamespaceType::User,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Mount,
    ] {
        if types.contains(&t) {
            child.push(path(t));
        }
    }
    (parent, child)
}

fn open_all(paths: &[(PathBuf, libc::c_int)]) -> Result<Vec<(OwnedFd, libc::c_int)>, RuntimeError> {
    paths
        .iter()
        .map(|(p, f)| {
            std::fs::File::open(p)
                .map(|file| (OwnedFd::from(file), *f))
                .context(format!("open namespace {}", p.display()))
        })
        .collect()
}

/// `NS_GET_USERNS` of linux/nsfs.h: an fd for the user namespace owning a namespace.
const NS_GET_USERNS: libc::c_ulong = 0xb701;

/// The inode of the user namespace that owns namespace `fd` (None where nsfs cannot say).
fn owner_inode(fd: &OwnedFd) -> Option<u64> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: NS_GET_USERNS takes no argument and returns a new fd or -1.
    let owner = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_USERNS) };
    if owner < 0 {
        return None;
    }
    // SAFETY: `owner` is a new descriptor that nothing else owns.
    let owner = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(owner) });
    owner
        .metadata()
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
}

/// Orders the child's namespaces for setns: a namespace that the container's user
/// namespace does not own (berthd's pinned network namespace, created by host root) is
/// joined before the user namespace, while the process still has host capabilities; the
/// user namespace comes next and the namespaces it owns after it, mount last.
fn join_order(fds: Vec<(OwnedFd, libc::c_int)>) -> Vec<(OwnedFd, libc::c_int)> {
    let user = fds
        .iter()
        .find(|(_, flag)| *flag == libc::CLONE_NEWUSER)
        .and_then(|(fd, _)| fd_inode(fd));
    let Some(user) = user else { return fds };
    let owners: Vec<Option<u64>> = fds.iter().map(|(fd, _)| owner_inode(fd)).collect();
    order_by_owner(fds, &owners, user)
}

fn fd_inode(fd: &OwnedFd) -> Option<u64> {
    let file = std::fs::File::from(fd.try_clone().ok()?);
    file.metadata()
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
}

/// `items` (user namespace included) with those whose owner is not `user` moved to the
/// front, keeping the order within each group. An unknown owner counts as owned.
fn order_by_owner<T>(
    items: Vec<(T, libc::c_int)>,
    owners: &[Option<u64>],
    user: u64,
) -> Vec<(T, libc::c_int)> {
    let (foreign, own): (Vec<_>, Vec<_>) =
        items
            .into_iter()
            .zip(owners)
            .partition(|((_, flag), owner)| {
                *flag != libc::CLONE_NEWUSER && owner.is_some_and(|o| o != user)
            });
    foreign
        .into_iter()
        .chain(own)
        .map(|(item, _)| item)
        .collect()
}

/// Runs `process` in container `id`; returns the exit code to exit with (0 when detached).
pub fn exec(
    ctx: &Context,
    id: &str,
    process: &Process,
    opts: &ExecOptions,
) -> Result<i32, RuntimeError> {
    let state = ctx.load(id)?;
    match ctx.status(&state) {
        Status::Running | Status::Created => {}
        Status::Stopped => {
            return Err(RuntimeError::Init(
                "cannot exec in a stopped container".into(),
            ))
        }
        Status::Paused => {
            return Err(RuntimeError::Init(
                "cannot exec in a paused container".into(),
            ))
        }
    }
    proc_setup::check_lsm(process).map_err(RuntimeError::Init)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && opts.detach {
        return Err(RuntimeError::Init(
            "cannot allocate tty if runc will detach without setting console socket".into(),
        ));
    }
    // Foreground with a terminal and no console socket: we proxy the pty ourselves.
    let listener = (terminal && opts.console_socket.is_none())
        .then(|| super::tty::ConsoleListener::new(&ctx.root, id))
        .transpose()
        .map_err(|e| RuntimeError::io("create console socket", e))?;
    let socket_path = listener
        .as_ref()
        .map(|l| l.path.clone())
        .or(opts.console_socket.clone());
    let filter = state
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(|s| seccomp::Filter::compile_cached(s, &ctx.root))
        .transpose()
        .map_err(|e| RuntimeError::Init(crate::error::chain(&e)))?;
    let console_socket = socket_path
        .as_deref()
        .map(|p| console::connect(p).context(format!("connect to console socket {}", p.display())))
        .transpose()?;
    let (parent_paths, child_paths) = namespace_paths(&state);
    let parent_fds = open_all(&parent_paths)?;
    let child_fds = join_order(open_all(&child_paths)?);
    let manager = ctx.cgroup(&state)?;
    let (parent_sock, child_sock) = SyncSocket::pair().context("create sync socket")?;
    // pid and time namespaces apply to our children only; we go back to our own right
    // after the fork (threads cannot be created across pid namespaces).
    let own: Vec<(OwnedFd, libc::c_int)> = parent_paths
        .iter()
        .map(|(_, flag)| {
            let name = if *flag == libc::CLONE_NEWPID {
                "pid"
            } else {
                "time"
            };
            std::fs::File::open(format!("/proc/self/ns/{name}_for_children"))
                .or_else(|_| std::fs::File::open(format!("/proc/self/ns/{name}")))
                .map(|f| (OwnedFd::from(f), *flag))
                .context("open own namespace")
        })
        .collect::<Result<_, _>>()?;
    for (fd, flag) in &parent_fds {
        syscall::setns(fd.as_fd(), *flag).context("join the container's pid namespace")?;
    }
    if !opts.detach {
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    let pid = match syscall::fork_with_flags(0).context("fork exec process")? {
        Forked::Child => {
            drop(parent_sock);
            let err = match exec_child(
                process,
                &child_fds,
                console_socket.as_ref(),
                filter,
                opts.preserve_fds,
                &child_sock,
            ) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            let _ = child_sock.send(&Message::Error(err));
            // SAFETY: _exit is always safe.
            unsafe { libc::_exit(1) }
        }
        Forked::Parent(pid) => pid,
    };
    for (fd, flag) in &own {
        let _ = syscall::setns(fd.as_fd(), *flag);
    }
    drop(child_sock);
    drop(console_socket);
    let fail = |e: RuntimeError| {
        // SAFETY: killing and reaping our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = syscall::waitpid(pid, 0);
        e
    };
    manager
        .apply(pid)
        .map_err(|e| fail(RuntimeError::Cgroup(e.to_string())))?;
    parent_sock
        .send(&Message::Go)
        .map_err(|e| fail(RuntimeError::io("sync with exec process", e)))?;
    let mask = (!opts.detach).then(block_signals);
    match parent_sock.recv() {
        Ok(None) => {}
        Ok(Some(Message::Error(text))) => {
            let _ = syscall::waitpid(pid, 0);
            return Err(RuntimeError::Init(text));
        }
        Ok(Some(other)) => {
            return Err(fail(RuntimeError::Init(format!(
                "unexpected message {other:?}"
            ))))
        }
        Err(e) => return Err(fail(RuntimeError::io("sync with exec process", e))),
    }
    if let Some(path) = &opts.pid_file {
        write_pid_file(path, pid)?;
    }
    if opts.detach {
        return Ok(0);
    }
    let master = match listener.as_ref().map(|l| l.receive_master()).transpose() {
        Ok(m) => m,
        Err(e) => return Err(fail(RuntimeError::io("receive the exec pty", e))),
    };
    drop(listener);
    let resize = master.as_ref().and_then(|m| m.try_clone().ok());
    let proxy = master
        .map(super::tty::start_proxy)
        .transpose()
        .map_err(|e| RuntimeError::io("proxy the exec terminal", e))?;
    let code = wait_forwarding(pid, mask.as_ref(), resize.as_ref());
    if let Some(p) = proxy {
        p.finish();
    }
    Ok(code)
}

fn exec_child(
    process: &Process,
    namespaces: &[(OwnedFd, libc::c_int)],
    console_socket: Option<&OwnedFd>,
    filter: Option<seccomp::Filter>,
    preserve_fds: i32,
    sync: &SyncSocket,
) -> Result<std::convert::Infallible, String> {
    // SAFETY: prctl with integer arguments (CVE-2019-5736, as in the init).
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    match sync.recv() {
        Ok(Some(Message::Go)) => {}
        other => return Err(format!("no go-ahead from the parent: {other:?}")),
    }
    for (fd, flag) in namespaces {
        syscall::setns(fd.as_fd(), *flag).map_err(|e| format!("join namespace: {e}"))?;
    }
    if process.terminal().unwrap_or(false) {
        let socket = console_socket.ok_or("terminal requested without a console socket")?;
        let (master, slave, name) = console::open_pty().map_err(|e| format!("open pty: {e}"))?;
        console::send_fd(socket.as_fd(), master.as_fd(), &name)
            .map_err(|e| format!("send pty master: {e}"))?;
        drop(master);
        console::make_controlling(slave.as_fd())
            .map_err(|e| format!("set controlling terminal: {e}"))?;
    }
    // setgroups is refused only where the user namespace says "deny".
    let setgroups_denied =
        std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    let (late, _notify) = proc_setup::apply_identity(process, filter, !setgroups_denied)?;
    proc_setup::change_dir(process)?;
    let exec = proc_setup::prepare_exec(process)?;
    proc_setup::apply_lsm(process)?;
    proc_setup::set_umask(process);
    syscall::keep_open(3, preserve_fds);
    syscall::cloexec_from(3 + preserve_fds).map_err(|e| format!("close fds: {e}"))?;
    proc_setup::finish_security(process, late)?;
    let err = proc_setup::execve(&exec);
    Err(format!(
        "exec {:?}: {}",
        process.args().as_ref().and_then(|a| a.first()),
        proc_setup::io_text(&err)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_the_user_namespace_does_not_own_are_joined_before_it() {
        let items = vec![
            ("user", libc::CLONE_NEWUSER),
            ("ipc", libc::CLONE_NEWIPC),
            ("net", libc::CLONE_NEWNET),
            ("mnt", libc::CLONE_NEWNS),
        ];
        // The user namespace (inode 7) owns ipc and mnt; the host's (1) owns it and net.
        let owners = [Some(1), Some(7), Some(1), Some(7)];
        let order: Vec<&str> = order_by_owner(items, &owners, 7)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(order, ["net", "user", "ipc", "mnt"]);
    }

    #[test]
    fn without_foreign_or_unknown_owners_the_order_is_kept() {
        let items = vec![
            ("user", libc::CLONE_NEWUSER),
            ("net", libc::CLONE_NEWNET),
            ("mnt", libc::CLONE_NEWNS),
        ];
        let order: Vec<&str> = order_by_owner(items, &[Some(1), None, Some(7)], 7)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(order, ["user", "net", "mnt"]);
    }
}
