//! `create`: validate the bundle, make the state dir and exec fifo, clone the init into
//! its namespaces, join it to its cgroup, drive its setup over the sync socket, run the
//! prestart/createRuntime hooks, and record state. Any failure leaves nothing behind.

use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::cgroups::Manager;
use crate::error::{IoContext, RuntimeError};
use crate::init::{self, InitArgs};
use crate::namespaces::{self, Plan};
use crate::state::{proc_stat, rfc3339_nano, ContainerState, EXEC_FIFO};
use crate::sync::{Message, SyncSocket};
use crate::syscall::{self, cvt, Forked};
use crate::{console, hooks, logging, seccomp, spec};

use super::{validate_id, Context};

/// `create` flags.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    /// --no-new-keyring: keep the caller's session keyring.
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// Extra environment for the process (LISTEN_FDS/LISTEN_PID for socket activation).
    pub extra_env: Vec<String>,
}

/// Undoes a half-made container unless disarmed: kills the init, removes the cgroup and
/// the state directory.
struct Cleanup<'a> {
    dir: PathBuf,
    pid: Option<i32>,
    cgroup: Option<&'a dyn Manager>,
    armed: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            // SAFETY: signalling and reaping our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = syscall::waitpid(pid, 0);
        }
        if let Some(cg) = self.cgroup {
            if let Err(e) = cg.destroy() {
                logging::warn(&format!("remove cgroup of failed container: {e}"));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How the ready init is told to exec the container's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartVia {
    /// `create`: the init blocks on the exec fifo until `start` opens it (runc's model).
    ExecFifo,
    /// `run`: no fifo; `create_from` sends `Start` over the sync socket as soon as the init
    /// is ready, and the caller reads the answer there (EOF once the init exec'd, or its
    /// error). This spares the fifo's two wake-ups (init released, answer read) and lets
    /// the init's exec overlap with the state write.
    SyncSocket,
}

/// A created container whose init is a child of this process.
pub struct Created {
    pub state: ContainerState,
    pub pid: i32,
    /// Its cgroup, kept for `run` to remove without detecting the layout again.
    pub cgroup: Box<dyn Manager>,
    /// With [`StartVia::SyncSocket`]: the socket the started init answers on.
    pub sync: Option<SyncSocket>,
}

/// Creates the container `id`. The init is left blocked on the exec fifo.
pub fn create(ctx: &Context, id: &str, opts: &CreateOptions) -> Result<Created, RuntimeError> {
    validate_id(id)?;
    create_from(ctx, id, opts, spec::load(&opts.bundle)?, StartVia::ExecFifo)
}

/// `create` with the bundle already loaded from `opts.bundle` (`run` reads it first).
/// With [`StartVia::SyncSocket`] the container is also started: its init is released as
/// soon as it is ready.
pub fn create_from(
    ctx: &Context,
    id: &str,
    opts: &CreateOptions,
    mut bundle: spec::Bundle,
    start: StartVia,
) -> Result<Created, RuntimeError> {
    validate_id(id)?;
    if !opts.extra_env.is_empty() {
        if let Some(p) = bundle.spec.process_mut() {
            let mut env = p.env().clone().unwrap_or_default();
            env.extend(opts.extra_env.iter().cloned());
            p.set_env(Some(env));
        }
    }
    let spec = &bundle.spec;
    let plan = Plan::from_spec(spec).map_err(|e| RuntimeError::Init(e.to_string()))?;
    if !plan.new_mount
        && !plan
            .child_joins
            .iter()
            .any(|(_, f)| *f == libc::CLONE_NEWNS)
    {
        logging::debug("no mount namespace: the rootfs is entered with chroot only");
    }
    // Compile seccomp in the parent, before any fork, so errors are readable.
    let filter = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(|s| seccomp::Filter::compile_cached(s, &ctx.root))
        .transpose()
        .map_err(|e| RuntimeError::Init(crate::error::chain(&e)))?;
    if let Some(names) = filter.as_ref().map(|f| f.ignored_syscalls()) {
        if !names.is_empty() {
            // runc ignores syscall names libseccomp does not know, with a warning.
            logging::warn(&format!(
                "ignoring unknown syscalls in seccomp profile: {names:?}"
            ));
        }
    }
    if let Some(p) = spec.process() {
        crate::init::process::check_lsm(p).map_err(RuntimeError::Init)?;
    }
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && opts.console_socket.is_none() {
        return Err(RuntimeError::Init(
            "cannot allocate tty if runc will detach without setting console socket".into(),
        ));
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(RuntimeError::Init(
            "cannot use console socket if runc will not detach or allocate tty".into(),
        ));
    }

    // Idmapped trees are cloned here, in our mount and user namespaces (runc 1.2 makes
    // them in its parent process too): the init may be in a user namespace that does not
    // own the source filesystems.
    let mut idmapped = Some(
        crate::rootfs::idmap::prepare_trees(spec, &bundle.path)
            .map_err(|e| RuntimeError::Init(crate::error::chain(&e)))?,
    );

    let cgroups_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.display().to_string());
    // Read once: the cgroup layout comes from it, and the init reuses it for the
    // container's cgroup mount (its new mount namespace starts as a copy of ours).
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    let manager = ctx.cgroup_for(cgroups_path.as_deref(), id, &mountinfo)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&ctx.root)
        .context(format!("create state root {}", ctx.root.display()))?;
    let dir = ContainerState::dir(&ctx.root, id);
    match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(RuntimeError::Exists)
        }
        Err(e) => return Err(RuntimeError::io(format!("create {}", dir.display()), e)),
    }
    let mut cleanup = Cleanup {
        dir: dir.clone(),
        pid: None,
        cgroup: None,
        armed: true,
    };

    let fifo = match start {
        StartVia::ExecFifo => Some(make_fifo(&dir.join(EXEC_FIFO))?),
        StartVia::SyncSocket => None,
    };
    let console_socket = opts
        .console_socket
        .as_deref()
        .map(|p| console::connect(p).context(format!("connect to console socket {}", p.display())))
        .transpose()?;
    cleanup.cgroup = Some(manager.as_ref());

    let created = rfc3339_nano(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    let annotations = spec
        .annotations()
        .as_ref()
        .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let mut state = ContainerState {
        id: id.to_string(),
        init_pid: 0,
        init_start_time: 0,
        bundle: bundle.path.clone(),
        rootfs: bundle.rootfs.clone(),
        created,
        annotations,
        cgroups_path,
        systemd_cgroup: ctx.systemd_cgroup,
        config: spec.clone(),
    };

    // Saved before anything else exists so that `delete` can clean up (cgroup included)
    // after a crash of this process half way through create.
    state.save(&ctx.root)?;
    let (parent_sock, child_sock) = SyncSocket::pair().context("create sync socket")?;
    // The init is born in its cgroup where the manager can (v1: we move ourselves in and
    // back out, far cheaper than moving the child); otherwise it joins after the clone.
    let mut entered = manager
        .enter()
        .map_err(|e| RuntimeError::Cgroup(e.to_string()))?;
    let joined = match namespaces::enter_for_clone(&plan, spec) {
        Ok(j) => j,
        Err(e) => {
            if let Some(entered) = entered {
                let _ = entered.finish(None);
            }
            return Err(RuntimeError::Init(e.to_string()));
        }
    };
    let into = entered.as_ref().and_then(|e| e.clone_into());
    let mut forked = syscall::fork_into_cgroup(plan.clone_flags, into);
    if into.is_some() && forked.is_err() {
        if let Some(e) = entered.as_mut() {
            e.without_clone_into();
        }
        forked = syscall::fork_with_flags(plan.clone_flags);
    }
    // The init waits for our go-ahead only when it needs something from us first: its
    // uid/gid maps, or a cgroup it could not be born in. Otherwise it sets up its mounts
    // while we leave its cgroups, one wake-up fewer on the way to `Ready`.
    let wait_for_go = plan.new_user
        || entered
            .as_ref()
            .is_none_or(crate::cgroups::Entered::joins_after_clone);
    let pid = match forked {
        Ok(Forked::Child) => {
            drop(parent_sock);
            // The CLONE_INTO_CGROUP fd is a host directory: closed before anything else
            // (CVE-2024-21626, a cwd through a leaked fd).
            drop(entered);
            init::run(
                InitArgs {
                    spec,
                    bundle: &bundle.path,
                    rootfs: &bundle.rootfs,
                    plan: &plan,
                    no_pivot: opts.no_pivot,
                    keyring: (!opts.no_new_keyring).then(|| format!("_ses.{id}")),
                    console_socket,
                    fifo,
                    preserve_fds: opts.preserve_fds,
                    seccomp: filter,
                    host_mountinfo: &mountinfo,
                    idmapped: idmapped.take().unwrap_or_default(),
                    wait_for_go,
                },
                child_sock,
            )
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => {
            joined.restore();
            if let Some(entered) = entered {
                let _ = entered.finish(None);
            }
            return Err(RuntimeError::io("clone the container init", e));
        }
    };
    joined.restore();
    // The init has its own copies of the idmapped trees.
    drop(idmapped.take());
    let left = entered.map(|e| e.finish(Some(pid)));
    cleanup.pid = Some(pid);
    drop(child_sock);
    drop(console_socket);
    drop(fifo);
    state.init_pid = pid;

    if plan.new_user {
        namespaces::write_id_maps(pid, spec).map_err(|e| RuntimeError::Init(e.to_string()))?;
        // The init cannot write its own oom_score_adj from inside the new user namespace
        // (its /proc files belong to unmapped host root); runc writes it before unsharing
        // the user namespace, we write it from outside before the init goes on.
        if let Some(adj) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
            std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
                .map_err(|e| RuntimeError::io("set oom_score_adj", e))?;
        }
    }
    left.unwrap_or_else(|| manager.apply(pid))
        .map_err(|e| RuntimeError::Cgroup(e.to_string()))?;
    if wait_for_go {
        parent_sock
            .send(&Message::Go)
            .context("sync with container init")?;
    }
    let mut resources = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    if resources.devices().is_none() {
        // `None` would leave the inherited device rules alone (right for `update`); a new
        // container always gets deny-all plus runc's default allowed devices.
        resources.set_devices(Some(Vec::new()));
    }
    let resources = Resources {
        manager: manager.as_ref(),
        resources: &resources,
        set: false,
    };
    if let Err(e) = drive_setup(&parent_sock, &state, resources) {
        if matches!(e, RuntimeError::Hook(_)) {
            // runtime-spec: a failing prestart/createRuntime/createContainer hook stops
            // the container and continues with delete, which runs poststop.
            run_poststop(&state);
        }
        return Err(e);
    }

    let stat = proc_stat(pid)
        .ok_or_else(|| RuntimeError::Init("container init exited during setup".into()))?;
    state.init_start_time = stat.start_time;
    if start == StartVia::SyncSocket {
        // Released before the bookkeeping below: the init's startContainer hooks and exec
        // run while we write the state (a `state` meanwhile reads the first save, without
        // a pid, as during any create).
        parent_sock
            .send(&Message::Start)
            .context("start container init")?;
    }
    state.save(&ctx.root)?;
    if let Some(path) = &opts.pid_file {
        write_pid_file(path, pid)?;
    }
    cleanup.armed = false;
    drop(cleanup);
    Ok(Created {
        state,
        pid,
        cgroup: manager,
        sync: (start == StartVia::SyncSocket).then_some(parent_sock),
    })
}

fn run_poststop(state: &ContainerState) {
    if let Some(list) = state
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststop().as_ref())
    {
        if let Err(e) = hooks::run(list, &state.hook_state("stopped")) {
            logging::warn(&format!("error running poststop hook: {e}"));
        }
    }
}

/// linux.resources, applied once the init has made its device nodes: at its hooks
/// request or, without hooks, at `Ready` (runc's procHooks / procReady). Earlier, a
/// device rule written while the init runs mknod could refuse it.
struct Resources<'a> {
    manager: &'a dyn Manager,
    resources: &'a oci_spec::runtime::LinuxResources,
    set: bool,
}

impl Resources<'_> {
    fn apply(&mut self) -> Result<(), RuntimeError> {
        if !self.set {
            self.set = true;
            self.manager
                .set(self.resources)
                .map_err(|e| RuntimeError::Cgroup(e.to_string()))?;
        }
        Ok(())
    }
}

/// Answers the init's requests until it is ready or fails.
fn drive_setup(
    sock: &SyncSocket,
    state: &ContainerState,
    mut resources: Resources<'_>,
) -> Result<(), RuntimeError> {
    loop {
        match sock.recv().context("sync with container init")? {
            Some(Message::Hooks) => {
                // runc sets the cgroup before the prestart hooks, so they see its limits.
                resources.apply()?;
                let json = state.hook_state("creating");
                if let Some(h) = state.config.hooks().as_ref() {
                    // prestart is deprecated but still run first, in the runtime namespace.
                    for (name, list) in [
                        ("prestart", h.prestart()),
                        ("createRuntime", h.create_runtime()),
                    ] {
                        if let Some(list) = list {
                            hooks::run(list, &json).map_err(|e| {
                                RuntimeError::Hook(format!("error running {name} hook: {e}"))
                            })?;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&json).into_owned();
                sock.send(&Message::HooksDone(text))
                    .context("sync with container init")?;
            }
            Some(Message::Ready) => return resources.apply(),
            Some(Message::Error(text))
                if text.starts_with("error running createContainer hook") =>
            {
                return Err(RuntimeError::Hook(text))
            }
            Some(Message::Error(text)) => return Err(RuntimeError::Init(text)),
            Some(other) => {
                return Err(RuntimeError::Init(format!(
                    "unexpected message from init: {other:?}"
                )))
            }
            None => {
                return Err(RuntimeError::Init(
                    "container init exited during setup".into(),
                ))
            }
        }
    }
}

/// mkfifo with runc's mode, opened O_PATH for the child to reopen after pivot_root.
fn make_fifo(path: &Path) -> Result<OwnedFd, RuntimeError> {
    let c = syscall::cstring(path).context("fifo path")?;
    // SAFETY: valid C string.
    cvt(unsafe { libc::mkfifo(c.as_ptr(), 0o622) })
        .context(format!("create exec fifo {}", path.display()))?;
    // mkfifo honours the umask; set the exact mode.
    // SAFETY: valid C string.
    cvt(unsafe { libc::chmod(c.as_ptr(), 0o622) }).context("chmod exec fifo")?;
    syscall::open(path, libc::O_PATH, 0).context("open exec fifo")
}

/// Writes the pid file atomically, without a newline (runc's format).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), RuntimeError> {
    let path = std::path::absolute(path).context("pid file path")?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string()).context(format!("write pid file {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).context(format!("write pid file {}", path.display()))
}

impl Context {
    pub(crate) fn cgroup_for(
        &self,
        path: Option<&str>,
        id: &str,
        mountinfo: &str,
    ) -> Result<Box<dyn Manager>, RuntimeError> {
        crate::cgroups::new_manager_with(mountinfo, path, id, self.systemd_cgroup)
            .map_err(|e| RuntimeError::Cgroup(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_file_is_written_without_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("pid");
        write_pid_file(&p, 4242).expect("write");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "4242");
    }

    #[test]
    fn create_refuses_an_invalid_id_before_touching_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = Context {
            root: dir.path().join("root"),
            systemd_cgroup: false,
        };
        let err = create(&ctx, "a/b", &CreateOptions::default())
            .err()
            .expect("refused");
        assert!(matches!(err, RuntimeError::InvalidId(_)));
        assert!(!ctx.root.exists());
    }

    #[test]
    fn create_with_missing_bundle_leaves_no_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = Context {
            root: dir.path().join("root"),
            systemd_cgroup: false,
        };
        let opts = CreateOptions {
            bundle: dir.path().join("nope"),
            ..Default::default()
        };
        assert!(create(&ctx, "x", &opts).is_err());
        assert!(!ctx.root.join("x").exists());
    }
}
