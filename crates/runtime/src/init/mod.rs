//! The container's init: runs in the child `create` clones, sets the container up in
//! runc's order, reports each step or a readable error over the sync socket, waits on the
//! exec fifo for `start` and execs the user's process.

pub mod process;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::Spec;

use crate::namespaces::{self, Plan};
use crate::sync::{Message, SyncSocket};
use crate::syscall::{self, cvt};
use crate::{console, hooks, rootfs, seccomp};

/// Everything the child needs, prepared by the parent before the clone.
pub struct InitArgs<'a> {
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub plan: &'a Plan,
    pub no_pivot: bool,
    /// Join a new session keyring with this name (runc's default, `_ses.<id>`).
    pub keyring: Option<String>,
    pub console_socket: Option<OwnedFd>,
    /// O_PATH fd of <state dir>/exec.fifo; `None` (`run`): wait for `Start` on the sync
    /// socket instead and answer there.
    pub fifo: Option<OwnedFd>,
    pub preserve_fds: i32,
    pub seccomp: Option<seccomp::Filter>,
    /// /proc/self/mountinfo as `create` read it just before the clone: a new mount
    /// namespace starts as a copy of that one, so the cgroup mount need not read it again.
    pub host_mountinfo: &'a str,
    /// Detached idmapped mount trees made by the parent, attached by rootfs::prepare.
    pub idmapped: rootfs::idmap::IdmappedTrees,
    /// Wait for the parent's `Go` before anything else (it writes our id maps or puts us
    /// in a cgroup after the clone).
    pub wait_for_go: bool,
}

/// The child's entry point: never returns. Errors go to the parent as text.
pub fn run(args: InitArgs<'_>, sync: SyncSocket) -> ! {
    let err = match setup(args, &sync) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = sync.send(&Message::Error(err));
    // SAFETY: _exit is always safe; we must not run the parent's atexit handlers.
    unsafe { libc::_exit(1) }
}

fn expect_message(sync: &SyncSocket, what: &str) -> Result<Message, String> {
    match sync.recv() {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(format!("parent went away while waiting for {what}")),
        Err(e) => Err(format!("sync socket: {e}")),
    }
}

fn setup(args: InitArgs<'_>, sync: &SyncSocket) -> Result<std::convert::Infallible, String> {
    let spec = args.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or("config.json has no process")?;
    // CVE-2019-5736: until execve, /proc/<init>/exe is the host's berth-runtime binary;
    // a non-dumpable process cannot have it opened by processes in the container.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if args.wait_for_go {
        match expect_message(sync, "the parent's go-ahead")? {
            Message::Go => {}
            other => return Err(format!("unexpected sync message {other:?}")),
        }
    }
    if args.plan.new_user {
        // Become root in the new user namespace, then create the other namespaces, then
        // take gid 0: runc's order, so the ipc namespace's mqueue is owned 0:65534 as
        // under runc.
        // SAFETY: plain syscalls; uid and gid 0 are mapped by the parent.
        unsafe {
            cvt(libc::setresuid(0, 0, 0))
                .map_err(|e| format!("setresuid(0) in user namespace: {e}"))?;
            cvt(libc::unshare(args.plan.unshare_flags as libc::c_int))
                .map_err(|e| format!("unshare namespaces: {e}"))?;
            cvt(libc::setresgid(0, 0, 0))
                .map_err(|e| format!("setresgid(0) in user namespace: {e}"))?;
        }
    }
    namespaces::join_in_child(args.plan).map_err(|e| e.to_string())?;
    if args.plan.new_cgroup {
        // SAFETY: plain syscall.
        cvt(unsafe { libc::unshare(libc::CLONE_NEWCGROUP) })
            .map_err(|e| format!("unshare cgroup namespace: {e}"))?;
    }
    if let Some(name) = &args.keyring {
        join_session_keyring(name)?;
    }
    // Setup creates files with exact modes; the process's umask is set before exec.
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(0) };
    let in_user_ns = args.plan.new_user
        || args
            .plan
            .child_joins
            .iter()
            .any(|(_, f)| *f == libc::CLONE_NEWUSER);
    let cgroup_ns = args.plan.new_cgroup
        || args
            .plan
            .child_joins
            .iter()
            .any(|(_, f)| *f == libc::CLONE_NEWCGROUP);
    if args.plan.new_mount {
        // A mount namespace joined by path is not a copy of ours: read its own mountinfo.
        let joined_mount = args
            .plan
            .child_joins
            .iter()
            .any(|(_, f)| *f == libc::CLONE_NEWNS);
        let host_mountinfo = (!joined_mount).then_some(args.host_mountinfo);
        rootfs::prepare(
            spec,
            args.rootfs,
            args.bundle,
            in_user_ns,
            cgroup_ns,
            host_mountinfo,
            args.idmapped,
        )
        .map_err(|e| e.to_string())?;
    }
    let state = if needs_hook_state(spec) {
        sync.send(&Message::Hooks)
            .map_err(|e| format!("sync socket: {e}"))?;
        match expect_message(sync, "the createRuntime hooks")? {
            Message::HooksDone(state) => state,
            other => return Err(format!("unexpected sync message {other:?}")),
        }
    } else {
        String::new()
    };
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().as_ref())
    {
        hooks::run(h, state.as_bytes())
            .map_err(|e| format!("error running createContainer hook: {e}"))?;
    }
    let outer_proc = if args.plan.new_mount {
        rootfs::switch_root(spec, args.rootfs, args.no_pivot).map_err(|e| e.to_string())?;
        None
    } else {
        // Nothing mounts /proc in the rootfs without a new mount namespace: keep the
        // current /proc to reopen the exec fifo through (closed before the exec).
        let proc = syscall::open(Path::new("/proc"), libc::O_PATH | libc::O_DIRECTORY, 0).ok();
        chroot(args.rootfs)?;
        proc
    };
    if process.terminal().unwrap_or(false) {
        setup_terminal(args.console_socket.as_ref(), process.console_size())?;
    }
    // runc's order: hostname and sysctls while /proc/sys is still writable, then the
    // read-only and masked paths.
    set_names(spec, args.plan)?;
    write_sysctls(spec)?;
    if args.plan.new_mount {
        rootfs::finish(spec).map_err(|e| e.to_string())?;
    }
    // Under a new user namespace the runtime wrote it from outside (container/create.rs).
    if let (Some(adj), false) = (process.oom_score_adj(), args.plan.new_user) {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| format!("set oom_score_adj: {e}"))?;
    }
    let (late, mut notify) =
        process::apply_identity(process, args.seccomp, !in_user_ns_denies_setgroups())?;
    process::change_dir(process)?;
    let exec = process::prepare_exec(process)?;
    process::apply_lsm(process)?;
    // Check the fifo is reachable through /proc before saying we are ready.
    if let Some(fifo) = &args.fifo {
        if reopen_fifo(outer_proc.as_ref(), fifo.as_fd(), libc::O_PATH).is_err() {
            return Err("exec fifo is not reachable: the container needs /proc mounted".into());
        }
    }
    process::set_umask(process);
    // CVE-2024-21626: nothing but stdio and the preserved fds may reach the process.
    syscall::keep_open(3, args.preserve_fds);
    syscall::cloexec_from(3 + args.preserve_fds).map_err(|e| format!("close fds: {e}"))?;
    if let Some(n) = process::finish_security(process, late)? {
        notify = Some(n);
    }
    if let Some(fd) = notify {
        send_notify_fd(spec, fd, &state)?;
    }
    sync.send(&Message::Ready)
        .map_err(|e| format!("sync socket: {e}"))?;
    // Where the answer goes: the fifo `start` opened, or (None) the sync socket.
    let start = match args.fifo {
        Some(fifo) => Some(open_for_start(outer_proc.as_ref(), fifo.as_fd())?),
        None => match expect_message(sync, "the start signal")? {
            Message::Start => None,
            other => return Err(format!("unexpected sync message {other:?}")),
        },
    };
    drop(outer_proc);
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
    {
        // runc gives startContainer hooks the state with status "created".
        let state = created_state(&state);
        if let Err(e) = hooks::run(h, &state) {
            // runtime-spec: a failing startContainer hook makes `start` fail and stops
            // the container. runc writes the fifo first and only prints the error on the
            // container's stderr (its `start` exits 0); `start` reads ours instead.
            let text = format!(
                "error running startContainer hook: {}",
                crate::error::chain(&e)
            );
            let reported = match &start {
                Some(fifo) => report_start(fifo, Err(&text)).is_ok(),
                None => sync.send(&Message::Error(text.clone())).is_ok(),
            };
            if !reported {
                eprintln!("berth-runtime init: {text}");
            }
            // SAFETY: _exit is always safe.
            unsafe { libc::_exit(1) }
        }
    }
    // Over the sync socket, success needs no message: the exec closes it (EOF).
    if let Some(fifo) = &start {
        if let Err(e) = report_start(fifo, Ok(())) {
            fail_after_start(&format!("write exec fifo: {e}"));
        }
    }
    let err = process::execve(&exec);
    fail_after_start(&format!(
        "exec {:?}: {}",
        exec.argv.first(),
        process::io_text(&err)
    ));
}

/// Whether the hooks exchange with the parent is needed: it gives the parent its turn for
/// the prestart and createRuntime hooks and gives us the state JSON, which only the
/// createContainer and startContainer hooks and a seccomp listener read. Without any of
/// them it would be a round trip between the processes (two context switches) for nothing.
fn needs_hook_state(spec: &Spec) -> bool {
    let hooks = spec.hooks().as_ref().is_some_and(|h| {
        [
            h.prestart(),
            h.create_runtime(),
            h.create_container(),
            h.start_container(),
        ]
        .iter()
        .any(|list| list.as_ref().is_some_and(|l| !l.is_empty()))
    });
    let listener = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .is_some_and(|s| s.listener_path().is_some());
    hooks || listener
}

/// The hook state the parent sent (status "creating") with status "created".
fn created_state(state: &str) -> Vec<u8> {
    match serde_json::from_str::<serde_json::Value>(state) {
        Ok(mut v) => {
            v["status"] = serde_json::Value::from("created");
            serde_json::to_vec(&v).unwrap_or_else(|_| state.as_bytes().to_vec())
        }
        Err(_) => state.as_bytes().to_vec(),
    }
}

/// A fresh session keyring so containers do not share the host's keys; kernels without
/// keyrings are fine, as in runc.
fn join_session_keyring(name: &str) -> Result<(), String> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let c = syscall::cstring(name).map_err(|e| e.to_string())?;
    // SAFETY: keyctl with a valid C string.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, c.as_ptr()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOSYS) {
            return Err(format!("unable to join session keyring: {e}"));
        }
    }
    Ok(())
}

/// After `create` returned there is nobody to report to: say it on stderr and exit.
fn fail_after_start(text: &str) -> ! {
    eprintln!("berth-runtime init: {text}");
    // SAFETY: _exit is always safe.
    unsafe { libc::_exit(127) }
}

fn in_user_ns_denies_setgroups() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

fn chroot(rootfs: &Path) -> Result<(), String> {
    let c = syscall::cstring(rootfs).map_err(|e| e.to_string())?;
    // SAFETY: valid C strings.
    unsafe {
        cvt(libc::chroot(c.as_ptr())).map_err(|e| format!("chroot: {e}"))?;
        cvt(libc::chdir(c"/".as_ptr())).map_err(|e| format!("chdir /: {e}"))?;
    }
    Ok(())
}

fn setup_terminal(
    socket: Option<&OwnedFd>,
    size: Option<oci_spec::runtime::Box>,
) -> Result<(), String> {
    let socket = socket.ok_or("process.terminal is true but no --console-socket was given")?;
    let (master, slave, name) = console::open_pty().map_err(|e| format!("open pty: {e}"))?;
    if let Some(size) = size {
        console::set_size(master.as_fd(), size.height() as u16, size.width() as u16);
    }
    // /dev/console is the container's terminal too (runc bind-mounts it).
    if let Ok(target) = rootfs::path::create_in_root(
        rootfs::open_root(Path::new("/"))
            .map_err(|e| e.to_string())?
            .as_fd(),
        Path::new("/dev/console"),
        false,
    ) {
        let _ = syscall::mount(
            Some(Path::new(&name)),
            &syscall::fd_path(target.as_fd()),
            None,
            libc::MS_BIND,
            None,
        );
    }
    console::send_fd(socket.as_fd(), master.as_fd(), &name)
        .map_err(|e| format!("send pty master to console socket: {e}"))?;
    drop(master);
    console::make_controlling(slave.as_fd())
        .map_err(|e| format!("make pty the controlling terminal: {e}"))?;
    Ok(())
}

fn set_names(spec: &Spec, plan: &Plan) -> Result<(), String> {
    for (name, value) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        let Some(value) = value.as_deref().filter(|v| !v.is_empty()) else {
            continue;
        };
        if !plan.uts_entry {
            return Err(format!(
                "unable to set {name} without a private UTS namespace"
            ));
        }
        // SAFETY: pointer and length of a valid buffer.
        let r = unsafe {
            if name == "hostname" {
                libc::sethostname(value.as_ptr().cast(), value.len())
            } else {
                libc::setdomainname(value.as_ptr().cast(), value.len())
            }
        };
        cvt(r).map_err(|e| format!("set {name}: {e}"))?;
    }
    Ok(())
}

fn write_sysctls(spec: &Spec) -> Result<(), String> {
    let Some(sysctls) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    let mut keys: Vec<_> = sysctls.iter().collect();
    keys.sort();
    for (key, value) in keys {
        let rel = key.replace('.', "/");
        if rel.contains("..") {
            return Err(format!("invalid sysctl {key:?}"));
        }
        std::fs::write(Path::new("/proc/sys").join(&rel), value)
            .map_err(|e| format!("write sysctl key {key}: {}", process::io_text(&e)))?;
    }
    Ok(())
}

fn send_notify_fd(spec: &Spec, fd: OwnedFd, state: &str) -> Result<(), String> {
    let listener = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .and_then(|s| s.listener_path().clone())
        .ok_or("seccomp notify action needs linux.seccomp.listenerPath")?;
    seccomp::send_listener_fd(&listener, fd.as_fd(), state.as_bytes()).map_err(|e| e.to_string())
}

/// Opens the exec fifo held as an O_PATH fd again with `flags`, through /proc/self/fd:
/// the rootfs's /proc, or `proc` (a /proc directory opened before the chroot) if given.
fn reopen_fifo(
    proc: Option<&OwnedFd>,
    fifo: BorrowedFd<'_>,
    flags: libc::c_int,
) -> std::io::Result<OwnedFd> {
    let Some(proc) = proc else {
        return syscall::open(&syscall::fd_path(fifo), flags, 0);
    };
    let rel = syscall::cstring(format!("self/fd/{}", fifo.as_raw_fd()))?;
    // SAFETY: a valid directory fd and C string; the returned fd is owned by us.
    let fd = cvt(unsafe { libc::openat(proc.as_raw_fd(), rel.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: openat just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Blocks until `start` opens the fifo for reading; the returned end carries our answer.
fn open_for_start(proc: Option<&OwnedFd>, fifo: BorrowedFd<'_>) -> Result<OwnedFd, String> {
    reopen_fifo(proc, fifo, libc::O_WRONLY).map_err(|e| format!("open exec fifo: {e}"))
}

/// What the init writes into the exec fifo for `start` (container::start::release reads
/// it): [`START_OK`] before the exec, or [`START_FAILED`] and the error text before exiting.
pub const START_OK: u8 = b'0';
pub const START_FAILED: u8 = b'1';
/// The error text is cut here: the fifo holds 64 KiB, and a hook's output can be longer.
const START_ERROR_MAX: usize = 16 * 1024;

fn report_start(fifo: &OwnedFd, result: Result<(), &str>) -> std::io::Result<()> {
    let mut bytes = Vec::new();
    match result {
        Ok(()) => bytes.push(START_OK),
        Err(text) => {
            bytes.push(START_FAILED);
            let mut end = text.len().min(START_ERROR_MAX);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            bytes.extend_from_slice(&text.as_bytes()[..end]);
        }
    }
    let mut written = 0;
    while written < bytes.len() {
        // SAFETY: writing from a valid buffer of the given length.
        let n = unsafe {
            libc::write(
                fifo.as_raw_fd(),
                bytes[written..].as_ptr().cast(),
                bytes.len() - written,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        written += n as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).expect("spec")
    }

    #[test]
    fn hook_state_exchange_only_when_a_hook_or_listener_needs_it() {
        let base = r#""ociVersion":"1.2.0","root":{"path":"rootfs"},"process":{"cwd":"/","args":["true"],"user":{"uid":0,"gid":0}}"#;
        assert!(!needs_hook_state(&spec(&format!("{{{base}}}"))));
        assert!(!needs_hook_state(&spec(&format!(
            r#"{{{base},"hooks":{{"poststart":[{{"path":"/bin/true"}}],"prestart":[]}}}}"#
        ))));
        for kind in [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
        ] {
            assert!(
                needs_hook_state(&spec(&format!(
                    r#"{{{base},"hooks":{{"{kind}":[{{"path":"/bin/true"}}]}}}}"#
                ))),
                "{kind}"
            );
        }
        assert!(needs_hook_state(&spec(&format!(
            r#"{{{base},"linux":{{"seccomp":{{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/l.sock"}}}}}}"#
        ))));
    }

    #[test]
    fn start_container_hooks_get_status_created() {
        let sent = r#"{"ociVersion":"1.2.0","id":"x","status":"creating","pid":7,"bundle":"/b"}"#;
        let v: serde_json::Value =
            serde_json::from_slice(&created_state(sent)).expect("valid json");
        assert_eq!(v["status"], "created");
        assert_eq!(v["pid"], 7);
        assert_eq!(v["id"], "x");
    }
}
