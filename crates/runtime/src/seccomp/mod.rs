//! Seccomp filters from `linux.seccomp`: compiled to classic BPF with libseccomp in the
//! parent (where errors are readable), loaded with seccomp(2) in the container init.
//!
//! The filter is exported as BPF bytes at compile time, so the forked child needs no
//! libseccomp state: it only makes one seccomp(2) call. Semantics follow runc
//! (libcontainer/seccomp): SCMP_ACT_KILL is KILL_THREAD, ERRNO and TRACE default to EPERM,
//! rules equal to the default action are skipped, syscall names unknown to libseccomp are
//! ignored (kept in [`Filter::ignored_syscalls`] for a warning), conditions on different
//! arguments are ANDed in one rule while several conditions on the same argument become
//! separate rules, without explicit flags SECCOMP_FILTER_FLAG_SPEC_ALLOW is set when the
//! kernel supports it, and restrictive filters get runc's -ENOSYS stub (see `enosys`).

mod cache;
mod enosys;
mod listener;

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{FromRawFd, OwnedFd};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

pub use listener::{container_process_state, send_listener_fd};

/// Linux system calls take at most six arguments.
const SYSCALL_MAX_ARGS: usize = 6;

/// runc enables libseccomp's binary-tree optimisation above this many rules.
const OPTIMIZE_ABOVE_RULES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("SCMP_ACT_NOTIFY cannot be the seccomp default action")]
    NotifyDefault,
    #[error("SCMP_ACT_NOTIFY cannot be used for the write syscall (the runtime needs write to hand over the notify fd)")]
    NotifyWrite,
    #[error("seccomp uses SCMP_ACT_NOTIFY but listenerPath is not set (name the seccomp agent's socket)")]
    NotifyWithoutListener,
    #[error("seccomp listenerMetadata is set without listenerPath")]
    MetadataWithoutListener,
    #[error(
        "errnoRet {errno} is given with {action} (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one)"
    )]
    ErrnoRetNotAllowed { action: String, errno: u32 },
    #[error("errnoRet {errno} with {action} is out of range (0 to 65535)")]
    ErrnoRetRange { action: String, errno: u32 },
    #[error("seccomp syscall rule #{rule} has no names (runtime-spec: at least one)")]
    NoNames { rule: usize },
    #[error("seccomp syscall rule #{rule} has an empty syscall name")]
    EmptyName { rule: usize },
    #[error("seccomp rule for {syscall}: argument index {index} is out of range (0 to 5)")]
    ArgIndex { syscall: String, index: usize },
    #[error("seccomp architecture {arch} is not supported by this libseccomp")]
    Arch {
        arch: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("seccomp flag {flag} is not supported by this kernel")]
    FlagUnsupported { flag: String },
    #[error("create the seccomp filter")]
    Create {
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("add the seccomp rule for syscall {syscall}")]
    Rule {
        syscall: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("export the seccomp filter as BPF")]
    Export {
        #[source]
        source: std::io::Error,
    },
    #[error("export the seccomp filter as BPF")]
    ExportLibseccomp {
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("load the seccomp filter (the process needs no_new_privs or CAP_SYS_ADMIN)")]
    LoadPermission {
        #[source]
        source: std::io::Error,
    },
    #[error("load the seccomp filter")]
    Load {
        #[source]
        source: std::io::Error,
    },
    #[error("connect to the seccomp agent at {path}")]
    ListenerConnect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("send the seccomp notify fd to {path}")]
    ListenerSend {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A compiled seccomp filter: classic BPF plus the seccomp(2) flags to load it with.
#[derive(Debug, Clone)]
pub struct Filter {
    program: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
    notify: bool,
    ignored_syscalls: Vec<String>,
}

impl Filter {
    /// Validates `s` and compiles it. Every error a bad profile can cause happens here.
    pub fn compile(s: &LinuxSeccomp) -> Result<Filter, SeccompError> {
        let compiled = build(s)?;
        let mut program = enosys::stub(s);
        program.extend(export_bpf(&compiled.context)?);
        Ok(Filter {
            program,
            flags: compiled.flags,
            notify: compiled.notify,
            ignored_syscalls: compiled.ignored_syscalls,
        })
    }

    /// Installs the filter in the calling thread with one seccomp(2) call. Returns the
    /// notify fd when a rule uses SCMP_ACT_NOTIFY.
    pub fn load(self) -> Result<Option<OwnedFd>, SeccompError> {
        let prog = libc::sock_fprog {
            len: self.program.len() as libc::c_ushort,
            filter: self.program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: prog points at self.program, alive for the call; the kernel copies it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc < 0 {
            let source = std::io::Error::last_os_error();
            return Err(if source.raw_os_error() == Some(libc::EACCES) {
                SeccompError::LoadPermission { source }
            } else {
                SeccompError::Load { source }
            });
        }
        if self.notify {
            // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER seccomp(2) returns a new fd
            // that nothing else owns.
            Ok(Some(unsafe { OwnedFd::from_raw_fd(rc as libc::c_int) }))
        } else {
            Ok(None)
        }
    }

    /// Syscall names the profile lists that libseccomp does not know for this architecture;
    /// runc ignores them (a profile may name syscalls newer than the kernel or library).
    pub fn ignored_syscalls(&self) -> &[String] {
        &self.ignored_syscalls
    }

    /// Whether a rule uses SCMP_ACT_NOTIFY, so [`Filter::load`] returns a notify fd that
    /// must go to the seccomp agent at listenerPath.
    pub fn uses_notify(&self) -> bool {
        self.notify
    }

    /// The seccomp(2) filter flags the filter is loaded with.
    pub fn flags(&self) -> libc::c_ulong {
        self.flags
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    /// Whether the program is empty (never true for a compiled filter).
    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }
}

struct Compiled {
    context: ScmpFilterContext,
    flags: libc::c_ulong,
    notify: bool,
    ignored_syscalls: Vec<String>,
}

fn action_name(a: LinuxSeccompAction) -> String {
    a.to_string()
}

/// Maps a spec action (and its errnoRet) to libseccomp's, as runc's getAction does, but
/// refusing an errnoRet on actions that take none, as runtime-spec requires.
fn action(a: LinuxSeccompAction, errno_ret: Option<u32>) -> Result<ScmpAction, SeccompError> {
    use LinuxSeccompAction::*;
    let code = |errno: u32| -> Result<u16, SeccompError> {
        u16::try_from(errno).map_err(|_| SeccompError::ErrnoRetRange {
            action: action_name(a),
            errno,
        })
    };
    match (a, errno_ret) {
        (ScmpActErrno, e) => Ok(ScmpAction::Errno(i32::from(code(
            e.unwrap_or(libc::EPERM as u32),
        )?))),
        (ScmpActTrace, e) => Ok(ScmpAction::Trace(code(e.unwrap_or(libc::EPERM as u32))?)),
        (_, Some(errno)) => Err(SeccompError::ErrnoRetNotAllowed {
            action: action_name(a),
            errno,
        }),
        (ScmpActKill | ScmpActKillThread, None) => Ok(ScmpAction::KillThread),
        (ScmpActKillProcess, None) => Ok(ScmpAction::KillProcess),
        (ScmpActTrap, None) => Ok(ScmpAction::Trap),
        (ScmpActNotify, None) => Ok(ScmpAction::Notify),
        (ScmpActLog, None) => Ok(ScmpAction::Log),
        (ScmpActAllow, None) => Ok(ScmpAction::Allow),
    }
}

/// Every architecture name of the runtime-spec.
pub const ARCHES: [Arch; 24] = {
    use Arch::*;
    [
        ScmpArchNative,
        ScmpArchX86,
        ScmpArchX86_64,
        ScmpArchX32,
        ScmpArchArm,
        ScmpArchAarch64,
        ScmpArchMips,
        ScmpArchMips64,
        ScmpArchMips64n32,
        ScmpArchMipsel,
        ScmpArchMipsel64,
        ScmpArchMipsel64n32,
        ScmpArchPpc,
        ScmpArchPpc64,
        ScmpArchPpc64le,
        ScmpArchS390,
        ScmpArchS390x,
        ScmpArchParisc,
        ScmpArchParisc64,
        ScmpArchRiscv64,
        ScmpArchLoongarch64,
        ScmpArchM68k,
        ScmpArchSh,
        ScmpArchSheb,
    ]
};

/// The spec name of an architecture (`SCMP_ARCH_X86_64`).
pub fn arch_name(a: Arch) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{a:?}"))
}

/// The spec architectures the linked libseccomp can add to a filter (for `features`),
/// without SCMP_ARCH_NATIVE, which names no architecture of its own.
pub fn supported_arch_names() -> Vec<String> {
    ARCHES
        .iter()
        .filter(|a| **a != Arch::ScmpArchNative)
        .filter(|a| {
            ScmpFilterContext::new(ScmpAction::Allow)
                .and_then(|mut c| c.add_arch(arch(**a)).map(|_| ()))
                .is_ok()
        })
        .map(|a| arch_name(*a))
        .collect()
}

fn arch(a: Arch) -> ScmpArch {
    use Arch::*;
    match a {
        ScmpArchNative => ScmpArch::Native,
        ScmpArchX86 => ScmpArch::X86,
        ScmpArchX86_64 => ScmpArch::X8664,
        ScmpArchX32 => ScmpArch::X32,
        ScmpArchArm => ScmpArch::Arm,
        ScmpArchAarch64 => ScmpArch::Aarch64,
        ScmpArchMips => ScmpArch::Mips,
        ScmpArchMips64 => ScmpArch::Mips64,
        ScmpArchMips64n32 => ScmpArch::Mips64N32,
        ScmpArchMipsel => ScmpArch::Mipsel,
        ScmpArchMipsel64 => ScmpArch::Mipsel64,
        ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        ScmpArchPpc => ScmpArch::Ppc,
        ScmpArchPpc64 => ScmpArch::Ppc64,
        ScmpArchPpc64le => ScmpArch::Ppc64Le,
        ScmpArchS390 => ScmpArch::S390,
        ScmpArchS390x => ScmpArch::S390X,
        ScmpArchParisc => ScmpArch::Parisc,
        ScmpArchParisc64 => ScmpArch::Parisc64,
        ScmpArchRiscv64 => ScmpArch::Riscv64,
        ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        ScmpArchM68k => ScmpArch::M68k,
        ScmpArchSh => ScmpArch::Sh,
        ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// The seccomp(2) flag bit of a spec flag; TSYNC maps to nothing (runc ignores it: the
/// container init is single-threaded).
pub fn flag_bit(f: LinuxSeccompFilterFlag) -> libc::c_ulong {
    use LinuxSeccompFilterFlag::*;
    match f {
        SeccompFilterFlagTsync => 0,
        SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
        SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        SeccompFilterFlagWaitKillableRecv => libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
    }
}

/// Whether the running kernel accepts a seccomp(2) filter flag. Probes the way libseccomp
/// does: with a NULL program the kernel answers EFAULT for known flags, EINVAL otherwise.
pub fn kernel_supports_flag(f: LinuxSeccompFilterFlag) -> bool {
    let mut bit = flag_bit(f);
    if bit == 0 {
        return true;
    }
    if bit == libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
        // Only valid together with NEW_LISTENER.
        bit |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    }
    // SAFETY: a NULL program makes the kernel fail before installing anything.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            bit,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

fn flags(s: &LinuxSeccomp, notify: bool) -> Result<libc::c_ulong, SeccompError> {
    let mut bits = 0;
    match s.flags() {
        None => {
            let spec_allow = LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow;
            if kernel_supports_flag(spec_allow) {
                bits |= flag_bit(spec_allow);
            }
        }
        Some(list) => {
            for f in list {
                if !kernel_supports_flag(*f) {
                    return Err(SeccompError::FlagUnsupported {
                        flag: f.to_string(),
                    });
                }
                bits |= flag_bit(*f);
            }
        }
    }
    if notify {
        bits |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    } else {
        // The kernel refuses WAIT_KILLABLE_RECV without a listener; libseccomp drops it too.
        bits &= !libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    }
    Ok(bits)
}

fn condition(syscall: &str, a: &LinuxSeccompArg) -> Result<ScmpArgCompare, SeccompError> {
    use LinuxSeccompOperator::*;
    if a.index() >= SYSCALL_MAX_ARGS {
        return Err(SeccompError::ArgIndex {
            syscall: syscall.to_string(),
            index: a.index(),
        });
    }
    let index = a.index() as u32;
    let (op, datum) = match a.op() {
        ScmpCmpNe => (ScmpCompareOp::NotEqual, a.value()),
        ScmpCmpLt => (ScmpCompareOp::Less, a.value()),
        ScmpCmpLe => (ScmpCompareOp::LessOrEqual, a.value()),
        ScmpCmpEq => (ScmpCompareOp::Equal, a.value()),
        ScmpCmpGe => (ScmpCompareOp::GreaterEqual, a.value()),
        ScmpCmpGt => (ScmpCompareOp::Greater, a.value()),
        // As libseccomp-golang's MakeCondition: value is the mask, valueTwo the datum.
        ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(a.value()),
            a.value_two().unwrap_or(0),
        ),
    };
    Ok(ScmpArgCompare::new(index, op, datum))
}

/// Adds the rules of one syscall name, splitting conditions like runc's matchCall.
fn add_rules(
    context: &mut ScmpFilterContext,
    name: &str,
    number: ScmpSyscall,
    act: ScmpAction,
    args: &[LinuxSeccompArg],
) -> Result<(), SeccompError> {
    let rule_error = |source| SeccompError::Rule {
        syscall: name.to_string(),
        source,
    };
    if args.is_empty() {
        context.add_rule(act, number).map_err(rule_error)?;
        return Ok(());
    }
    let conditions = args
        .iter()
        .map(|a| condition(name, a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut per_index = [0usize; SYSCALL_MAX_ARGS];
    for a in args {
        per_index[a.index()] += 1;
    }
    if per_index.iter().any(|&n| n > 1) {
        // Several conditions on one argument cannot be ANDed by libseccomp: each becomes
        // its own rule (so they are ORed), as in runc.
        for c in conditions {
            context
                .add_rule_conditional(act, number, &[c])
                .map_err(rule_error)?;
        }
    } else {
        context
            .add_rule_conditional(act, number, &conditions)
            .map_err(rule_error)?;
    }
    Ok(())
}

fn uses_notify(s: &LinuxSeccomp) -> bool {
    s.syscalls()
        .iter()
        .flatten()
        .any(|c| c.action() == LinuxSeccompAction::ScmpActNotify)
}

fn check_rule(rule: usize, call: &LinuxSyscall) -> Result<(), SeccompError> {
    if call.names().is_empty() {
        return Err(SeccompError::NoNames { rule });
    }
    for name in call.names() {
        if name.is_empty() {
            return Err(SeccompError::EmptyName { rule });
        }
        if call.action() == LinuxSeccompAction::ScmpActNotify && name == "write" {
            return Err(SeccompError::NotifyWrite);
        }
    }
    Ok(())
}

fn build(s: &LinuxSeccomp) -> Result<Compiled, SeccompError> {
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::NotifyDefault);
    }
    let default = action(s.default_action(), s.default_errno_ret())?;
    let notify = uses_notify(s);
    if notify && s.listener_path().is_none() {
        return Err(SeccompError::NotifyWithoutListener);
    }
    if s.listener_metadata().is_some() && s.listener_path().is_none() {
        return Err(SeccompError::MetadataWithoutListener);
    }
    let calls = s.syscalls().as_deref().unwrap_or_default();
    for (rule, call) in calls.iter().enumerate() {
        check_rule(rule, call)?;
    }
    let flags = flags(s, notify)?;

    let mut context =
        ScmpFilterContext::new(default).map_err(|source| SeccompError::Create { source })?;
    for a in s.architectures().iter().flatten() {
        context
            .add_arch(arch(*a))
            .map_err(|source| SeccompError::Arch {
                arch: arch_name(*a),
                source,
            })?;
    }
    let rule_count: usize = calls.iter().map(|c| c.names().len()).sum();
    if rule_count > OPTIMIZE_ABOVE_RULES {
        // Not fatal: an older libseccomp without the binary tree still works.
        let _ = context.set_ctl_optimize(2);
    }

    let mut ignored_syscalls = Vec::new();
    for call in calls {
        let act = action(call.action(), call.errno_ret())?;
        if act == default {
            // Redundant with the default action; libseccomp would refuse it.
            continue;
        }
        let args = call.args().as_deref().unwrap_or_default();
        for name in call.names() {
            let Ok(number) = ScmpSyscall::from_name(name) else {
                ignored_syscalls.push(name.clone());
                continue;
            };
            add_rules(&mut context, name, number, act, args)?;
        }
    }
    Ok(Compiled {
        context,
        flags,
        notify,
        ignored_syscalls,
    })
}

/// libseccomp 2.5 exports BPF only to a file descriptor: go through a memfd.
fn export_bpf(context: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let export = |source| SeccompError::Export { source };
    let fd = rustix::fs::memfd_create("berth-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| export(e.into()))?;
    context
        .export_bpf(&fd)
        .map_err(|source| SeccompError::ExportLibseccomp { source })?;
    let mut file = std::fs::File::from(fd);
    file.seek(SeekFrom::Start(0)).map_err(export)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(export)?;
    Ok(program_from_bytes(&bytes))
}

/// BPF instructions from their 8-byte native encoding (libseccomp's export, the cache).
fn program_from_bytes(bytes: &[u8]) -> Vec<libc::sock_filter> {
    bytes
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

#[cfg(test)]
mod tests;
