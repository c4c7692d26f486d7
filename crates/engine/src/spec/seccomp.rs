//! berth's default seccomp profile: the same effect as Docker's default (an allowlist whose
//! default answer is EPERM, syscalls unlocked by the capabilities that make them safe,
//! argument filters on clone, personality and socket), written as berth's own table and
//! generated straight into the OCI `linux.seccomp` section for one capability set.
//!
//! It follows current Docker (moby 25+) rather than Debian's dockerd 20.10, which differs in
//! a few places listed in [`DOCKER_20_10_DELTAS`]; the golden test compares both against a
//! capture of what 20.10 handed runc on this host (`test_data/seccomp/`).

use std::collections::BTreeSet;

use serde_json::{json, Value};

/// errno for syscalls outside the allowlist (Docker's `defaultErrnoRet`).
const EPERM: u32 = 1;
/// errno of clone3 without CAP_SYS_ADMIN: its flags live in memory seccomp cannot read, so
/// it is refused in a way that makes glibc fall back to clone, which is filtered.
const ENOSYS: u32 = 38;

/// `socket(AF_VSOCK, ...)` is refused: vsock reaches the hypervisor host, outside any
/// network namespace.
const AF_VSOCK: u64 = 40;

/// Namespace-creating clone flags (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
/// NEWNET): without CAP_SYS_ADMIN a clone must set none of them.
const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// personality(2) values a container may set: Linux, UNAME26, ADDR_NO_RANDOMIZE, both, and
/// 0xffffffff (query the current persona).
const PERSONAS: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// Files, directories, descriptors and their metadata.
const FILES: &[&str] = &[
    "open",
    "openat",
    "openat2",
    "creat",
    "close",
    "close_range",
    "read",
    "readv",
    "pread64",
    "preadv",
    "preadv2",
    "write",
    "writev",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "lseek",
    "_llseek",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "fcntl64",
    "ioctl",
    "flock",
    "pipe",
    "pipe2",
    "splice",
    "tee",
    "vmsplice",
    "sendfile",
    "sendfile64",
    "copy_file_range",
    "readahead",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "truncate",
    "truncate64",
    "ftruncate",
    "ftruncate64",
    "fsync",
    "fdatasync",
    "sync",
    "syncfs",
    "sync_file_range",
    "stat",
    "stat64",
    "lstat",
    "lstat64",
    "fstat",
    "fstat64",
    "fstatat64",
    "newfstatat",
    "statx",
    "statfs",
    "statfs64",
    "fstatfs",
    "fstatfs64",
    "access",
    "faccessat",
    "faccessat2",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "chown32",
    "fchown",
    "fchown32",
    "lchown",
    "lchown32",
    "fchownat",
    "utime",
    "utimes",
    "utimensat",
    "utimensat_time64",
    "futimesat",
    "getcwd",
    "chdir",
    "fchdir",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "unlink",
    "unlinkat",
    "readlink",
    "readlinkat",
    "getdents",
    "getdents64",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "name_to_handle_at",
    "umask",
];

/// Waiting for events: polling, epoll, inotify, eventfd, futexes, Linux AIO.
const EVENTS: &[&str] = &[
    "select",
    "_newselect",
    "pselect6",
    "pselect6_time64",
    "poll",
    "ppoll",
    "ppoll_time64",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_wait",
    "epoll_wait_old",
    "epoll_pwait",
    "epoll_pwait2",
    "eventfd",
    "eventfd2",
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    "inotify_rm_watch",
    "fanotify_mark",
    "futex",
    "futex_time64",
    "futex_waitv",
    "io_setup",
    "io_destroy",
    "io_submit",
    "io_cancel",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
];

/// Processes and threads: lifecycle, identity, limits, scheduling, self-confinement.
const PROCESSES: &[&str] = &[
    "fork",
    "vfork",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "waitpid",
    "getpid",
    "getppid",
    "gettid",
    "getpgid",
    "setpgid",
    "getpgrp",
    "getsid",
    "setsid",
    "set_tid_address",
    "get_robust_list",
    "set_robust_list",
    "rseq",
    "get_thread_area",
    "set_thread_area",
    "prctl",
    "seccomp",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    "pidfd_open",
    "process_mrelease",
    "getrlimit",
    "ugetrlimit",
    "setrlimit",
    "prlimit64",
    "getrusage",
    "getpriority",
    "setpriority",
    "ioprio_get",
    "ioprio_set",
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getattr",
    "sched_setattr",
    "sched_getparam",
    "sched_setparam",
    "sched_getscheduler",
    "sched_setscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "getcpu",
    "uname",
    "sysinfo",
    "getrandom",
    // Since Linux 4.8 seccomp runs after ptrace, so a tracer cannot skip the filter.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
];

/// User and group ids, supplementary groups, capabilities of the process itself.
const CREDENTIALS: &[&str] = &[
    "getuid",
    "getuid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getegid",
    "getegid32",
    "getresuid",
    "getresuid32",
    "getresgid",
    "getresgid32",
    "getgroups",
    "getgroups32",
    "setuid",
    "setuid32",
    "setgid",
    "setgid32",
    "setreuid",
    "setreuid32",
    "setregid",
    "setregid32",
    "setresuid",
    "setresuid32",
    "setresgid",
    "setresgid32",
    "setfsuid",
    "setfsuid32",
    "setfsgid",
    "setfsgid32",
    "setgroups",
    "setgroups32",
    "capget",
    "capset",
];

/// Memory mappings, locking, protection keys, anonymous files.
const MEMORY: &[&str] = &[
    "brk",
    "mmap",
    "mmap2",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "mincore",
    "msync",
    "mlock",
    "mlock2",
    "mlockall",
    "munlock",
    "munlockall",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "remap_file_pages",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
];

/// Signals.
const SIGNALS: &[&str] = &[
    "kill",
    "tkill",
    "tgkill",
    "pidfd_send_signal",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigpending",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "sigprocmask",
    "sigreturn",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "pause",
    "alarm",
    "restart_syscall",
];

/// Clocks, sleeps and timers (reading clocks; setting them needs CAP_SYS_TIME).
const TIME: &[&str] = &[
    "time",
    "times",
    "gettimeofday",
    "clock_gettime",
    "clock_gettime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "nanosleep",
    "adjtimex",
    "clock_adjtime",
    "clock_adjtime64",
    "getitimer",
    "setitimer",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
];

/// Sockets once created (`socket` itself is filtered by family, see [`AF_VSOCK`]).
const SOCKETS: &[&str] = &[
    "socketpair",
    "socketcall",
    "bind",
    "listen",
    "accept",
    "accept4",
    "connect",
    "shutdown",
    "getsockname",
    "getpeername",
    "getsockopt",
    "setsockopt",
    "send",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "recv",
    "recvfrom",
    "recvmsg",
    "recvmmsg",
    "recvmmsg_time64",
];

/// System V and POSIX IPC (private to the container's IPC namespace).
const IPC: &[&str] = &[
    "ipc",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "semctl",
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_notify",
    "mq_getsetattr",
];

/// Syscalls a capability unlocks: the kernel checks the capability too, the filter keeps
/// the attack surface closed for everyone else.
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "mount",
            "umount",
            "umount2",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "sethostname",
            "setdomainname",
            "quotactl",
            "quotactl_fd",
            "fanotify_init",
            "lookup_dcookie",
            "bpf",
            "perf_event_open",
            "syslog",
        ],
    ),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_BOOT", &["reboot"]),
    (
        "CAP_SYS_MODULE",
        &["init_module", "finit_module", "delete_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "mbind",
            "get_mempolicy",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// Architecture-specific syscalls, by Go architecture name (as Docker's profiles spell it).
const BY_ARCHITECTURE: &[(&[&str], &[&str])] = &[
    (&["amd64", "x32"], &["arch_prctl"]),
    (&["amd64", "x32", "386"], &["modify_ldt"]),
    (
        &["arm", "arm64"],
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    ),
    (&["ppc64le"], &["sync_file_range2", "swapcontext"]),
    (
        &["s390", "s390x"],
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
    ),
    (&["riscv64"], &["riscv_flush_icache"]),
];

/// Where berth's profile knowingly differs from the one Debian's dockerd 20.10 generates
/// (each a later Docker change), as (syscall, what berth does instead).
/// Read by the golden test, which applies exactly these changes to dockerd's capture.
#[cfg_attr(not(test), allow(dead_code))]
pub const DOCKER_20_10_DELTAS: &[(&str, &str)] = &[
    (
        "io_uring_setup",
        "refused (moby 25 removed io_uring: it bypasses seccomp)",
    ),
    (
        "io_uring_enter",
        "refused (moby 25 removed io_uring: it bypasses seccomp)",
    ),
    (
        "io_uring_register",
        "refused (moby 25 removed io_uring: it bypasses seccomp)",
    ),
    ("socket", "allowed unless the family is AF_VSOCK (moby 23)"),
    (
        "name_to_handle_at",
        "allowed without CAP_SYS_ADMIN (moby 24)",
    ),
    (
        "process_vm_readv",
        "allowed without CAP_SYS_PTRACE, as ptrace is (moby 24)",
    ),
    (
        "process_vm_writev",
        "allowed without CAP_SYS_PTRACE, as ptrace is (moby 24)",
    ),
    ("pkey_alloc", "allowed (moby 24)"),
    ("pkey_free", "allowed (moby 24)"),
    ("pkey_mprotect", "allowed (moby 24)"),
    ("clock_settime64", "allowed with CAP_SYS_TIME (moby 24)"),
    (
        "set_mempolicy_home_node",
        "allowed with CAP_SYS_NICE (moby 24)",
    ),
];

/// The Go architecture name of this build, as Docker's profiles spell it.
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The libseccomp architectures a filter covers on this build: the native one and those
/// whose binaries it can also run (Docker's `archMap`).
pub fn architectures() -> &'static [&'static str] {
    match std::env::consts::ARCH {
        "x86_64" => &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "x86" => &["SCMP_ARCH_X86"],
        "aarch64" => &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "arm" => &["SCMP_ARCH_ARM"],
        "s390x" => &["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
        "powerpc64" => &["SCMP_ARCH_PPC64LE"],
        "riscv64" => &["SCMP_ARCH_RISCV64"],
        "loongarch64" => &["SCMP_ARCH_LOONGARCH64"],
        _ => &[],
    }
}

/// The default profile for a process with `capabilities`, on this build's architecture.
pub fn default_profile(capabilities: &[String]) -> Value {
    profile_for(capabilities, native_arch(), architectures())
}

/// [`default_profile`] for a given Go architecture and its libseccomp architectures.
pub fn profile_for(capabilities: &[String], arch: &str, architectures: &[&str]) -> Value {
    let has = |cap: &str| capabilities.iter().any(|c| c == cap);
    let mut allowed: BTreeSet<&str> = [
        FILES,
        EVENTS,
        PROCESSES,
        CREDENTIALS,
        MEMORY,
        SIGNALS,
        TIME,
        SOCKETS,
        IPC,
    ]
    .into_iter()
    .flatten()
    .copied()
    .collect();
    for (cap, names) in BY_CAPABILITY {
        if has(cap) {
            allowed.extend(names.iter().copied());
        }
    }
    for (arches, names) in BY_ARCHITECTURE {
        if arches.contains(&arch) {
            allowed.extend(names.iter().copied());
        }
    }
    let mut syscalls = vec![json!({"names": allowed, "action": "SCMP_ACT_ALLOW"})];
    let arg_rule = |name: &str, index: u32, value: u64, op: &str| {
        json!({"names": [name], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": index, "value": value, "op": op}]})
    };
    for persona in PERSONAS {
        // One rule per value: conditions on the same argument are ORed only across rules.
        syscalls.push(arg_rule("personality", 0, persona, "SCMP_CMP_EQ"));
    }
    syscalls.push(arg_rule("socket", 0, AF_VSOCK, "SCMP_CMP_NE"));
    if !allowed.contains("clone") {
        // s390 passes the flags second (its clone takes the stack first).
        let index = if matches!(arch, "s390" | "s390x") {
            1
        } else {
            0
        };
        syscalls.push(arg_rule(
            "clone",
            index,
            CLONE_NAMESPACE_FLAGS,
            "SCMP_CMP_MASKED_EQ",
        ));
    }
    if !allowed.contains("clone3") {
        syscalls.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
    }
    let mut profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "syscalls": syscalls,
    });
    if !architectures.is_empty() {
        profile["architectures"] = json!(architectures);
    }
    profile
}

#[cfg(test)]
#[path = "seccomp_tests.rs"]
mod tests;
