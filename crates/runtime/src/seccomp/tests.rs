//! Tests of seccomp compilation (hermetic) and loading (in forked children, which set
//! no_new_privs first so no privilege is needed).

use super::*;
use std::os::fd::AsRawFd;

fn profile(json: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(json).unwrap()
}

fn compile_error(json: serde_json::Value) -> String {
    Filter::compile(&profile(json)).unwrap_err().to_string()
}

fn pfc(json: serde_json::Value) -> String {
    let compiled = build(&profile(json)).unwrap();
    let fd = rustix::fs::memfd_create("pfc", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    compiled.context.export_pfc(&fd).unwrap();
    let mut file = std::fs::File::from(fd);
    file.seek(SeekFrom::Start(0)).unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    text
}

/// Runs `child` in a forked process after PR_SET_NO_NEW_PRIVS; returns its exit code.
fn in_child(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only calls prctl/seccomp and plain syscalls, then _exits; glibc's
    // fork keeps malloc usable in the child.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
        let code = if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            100
        } else {
            child()
        };
        // SAFETY: leaving the forked child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for the child forked above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    libc::WEXITSTATUS(status)
}

/// getpriority(which, who) through syscall(2): its result, or -errno.
fn getpriority(which: u64, who: u64) -> i64 {
    // SAFETY: getpriority takes two integers.
    let rc = unsafe { libc::syscall(libc::SYS_getpriority, which, who) };
    if rc < 0 {
        -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        rc
    }
}

#[test]
fn notify_as_default_action_is_refused() {
    let err = compile_error(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
    assert_eq!(err, "SCMP_ACT_NOTIFY cannot be the seccomp default action");
}

#[test]
fn notify_on_write_is_refused_like_runc() {
    let err = compile_error(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(err.starts_with("SCMP_ACT_NOTIFY cannot be used for the write syscall"));
}

#[test]
fn notify_without_listener_path_is_refused() {
    let err = compile_error(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mknod"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(err.contains("listenerPath is not set"), "{err}");
}

#[test]
fn listener_metadata_without_listener_path_is_refused() {
    let err = compile_error(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "listenerMetadata": "x"}));
    assert_eq!(err, "seccomp listenerMetadata is set without listenerPath");
}

#[test]
fn errno_ret_on_an_action_without_errno_is_refused_as_the_spec_requires() {
    let err = compile_error(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "defaultErrnoRet": 5}));
    assert_eq!(
        err,
        "errnoRet 5 is given with SCMP_ACT_ALLOW (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one)"
    );
    let err = compile_error(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}));
    assert!(
        err.starts_with("errnoRet 1 is given with SCMP_ACT_KILL"),
        "{err}"
    );
}

#[test]
fn errno_ret_above_16_bits_is_refused() {
    let err = compile_error(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 70000}));
    assert_eq!(
        err,
        "errnoRet 70000 with SCMP_ACT_ERRNO is out of range (0 to 65535)"
    );
}

#[test]
fn rule_without_names_or_with_an_empty_name_is_refused() {
    let err = compile_error(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}));
    assert_eq!(
        err,
        "seccomp syscall rule #0 has no names (runtime-spec: at least one)"
    );
    let err = compile_error(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_LOG"},
                     {"names": [""], "action": "SCMP_ACT_ERRNO"}]}));
    assert_eq!(err, "seccomp syscall rule #1 has an empty syscall name");
}

#[test]
fn argument_index_above_five_is_refused() {
    let err = compile_error(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
    assert_eq!(
        err,
        "seccomp rule for getpriority: argument index 6 is out of range (0 to 5)"
    );
}

#[test]
fn unknown_action_arch_flag_and_operator_names_are_refused_when_parsing() {
    let bad = [
        serde_json::json!({"defaultAction": "SCMP_ACT_BOGUS"}),
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}),
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]}),
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
            "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}),
    ];
    for (json, word) in bad.into_iter().zip([
        "SCMP_ACT_BOGUS",
        "SCMP_ARCH_Z80",
        "SECCOMP_FILTER_FLAG_NOPE",
        "SCMP_CMP_ABOUT",
    ]) {
        let err = serde_json::from_value::<LinuxSeccomp>(json).unwrap_err();
        assert!(err.to_string().contains(word), "{err}");
    }
}

#[test]
fn syscalls_unknown_to_libseccomp_are_ignored_and_reported() {
    let filter = Filter::compile(&profile(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid", "no_such_syscall_x"], "action": "SCMP_ACT_ERRNO"}]}),
    ))
    .unwrap();
    assert_eq!(filter.ignored_syscalls(), ["no_such_syscall_x"]);
    assert!(!filter.is_empty());
}

#[test]
fn every_spec_architecture_is_accepted_or_refused_with_its_name() {
    for name in [
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_AARCH64",
    ] {
        let filter = Filter::compile(&profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": [name], "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}),
        ));
        assert!(filter.is_ok(), "{name}: {:?}", filter.err());
    }
    let arch_names = serde_json::to_value(ARCHES).unwrap();
    for name in arch_names.as_array().unwrap() {
        let result = Filter::compile(&profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": [name]}),
        ));
        if let Err(e) = result {
            assert_eq!(
                e.to_string(),
                format!(
                    "seccomp architecture {} is not supported by this libseccomp",
                    name.as_str().unwrap()
                )
            );
        }
    }
}

#[test]
fn without_flags_spec_allow_is_set_when_the_kernel_has_it_like_runc() {
    let spec_allow = LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow;
    let filter = Filter::compile(&profile(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"}),
    ))
    .unwrap();
    let expected = if kernel_supports_flag(spec_allow) {
        libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
    } else {
        0
    };
    assert_eq!(filter.flags(), expected);
    // An explicit empty list means no flags at all.
    let filter = Filter::compile(&profile(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": []}),
    ))
    .unwrap();
    assert_eq!(filter.flags(), 0);
}

#[test]
fn explicit_flags_map_to_seccomp_bits_and_tsync_is_ignored() {
    let filter = Filter::compile(&profile(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC",
                  "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}),
    ));
    if kernel_supports_flag(LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv) {
        // WAIT_KILLABLE_RECV is dropped without a notify rule (the kernel refuses it alone).
        assert_eq!(filter.unwrap().flags(), libc::SECCOMP_FILTER_FLAG_LOG);
    } else {
        assert!(filter
            .unwrap_err()
            .to_string()
            .contains("not supported by this kernel"));
    }
}

#[test]
fn notify_rule_adds_the_new_listener_flag() {
    let filter = Filter::compile(&profile(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": [], "listenerPath": "/run/agent.sock",
        "syscalls": [{"names": ["mknod"], "action": "SCMP_ACT_NOTIFY"}]}),
    ))
    .unwrap();
    assert!(filter.uses_notify());
    assert_eq!(filter.flags(), libc::SECCOMP_FILTER_FLAG_NEW_LISTENER);
}

#[test]
fn conditions_on_different_arguments_form_one_anded_rule() {
    let text = pfc(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42,
            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                     {"index": 1, "value": 7, "op": "SCMP_CMP_EQ"}]}]}));
    let rule = text
        .split("# filter for syscall \"getpriority\"")
        .nth(1)
        .unwrap();
    // One nested rule: a0 then a1, one action.
    assert_eq!(rule.matches("action ERRNO(42)").count(), 1, "{text}");
    let a0 = rule.find("$a0").unwrap();
    let a1 = rule.find("$a1").unwrap();
    assert!(a0 < a1, "{text}");
}

#[test]
fn several_conditions_on_one_argument_become_separate_rules() {
    let text = pfc(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42,
            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                     {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}]}));
    let rule = text
        .split("# filter for syscall \"getpriority\"")
        .nth(1)
        .unwrap();
    assert_eq!(rule.matches("action ERRNO(42)").count(), 2, "{text}");
    assert!(!rule.contains("$a1"), "{text}");
}

#[test]
fn errno_rule_returns_its_errno_ret_in_a_forked_child() {
    let filter = Filter::compile(&profile(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42},
                     {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO"}]}),
    ))
    .unwrap();
    let code = in_child(move || {
        if filter.load().is_err() {
            return 1;
        }
        // SAFETY: getppid/getpgid take integers only.
        let ppid = unsafe { libc::syscall(libc::SYS_getppid) };
        let ppid_errno = std::io::Error::last_os_error().raw_os_error();
        // SAFETY: as above.
        let pgid = unsafe { libc::syscall(libc::SYS_getpgid, 0) };
        let pgid_errno = std::io::Error::last_os_error().raw_os_error();
        match (ppid, ppid_errno, pgid, pgid_errno) {
            (-1, Some(42), -1, Some(libc::EPERM)) => 0,
            _ => 2,
        }
    });
    assert_eq!(code, 0);
}

#[test]
fn argument_rules_match_as_runc_builds_them_in_a_forked_child() {
    let filter = Filter::compile(&profile(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            // Same argument twice: ORed (separate rules).
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11,
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
            // Different arguments: ANDed; MASKED_EQ with value as mask, valueTwo as datum.
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 12,
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 255, "valueTwo": 77, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]}),
    ))
    .unwrap();
    let code = in_child(move || {
        if filter.load().is_err() {
            return 1;
        }
        let results = [
            getpriority(1, 0),     // PRIO_PGRP: first rule
            getpriority(2, 0),     // PRIO_USER: first rule
            getpriority(0, 0x14d), // PRIO_PROCESS, who & 255 == 77: second rule
            getpriority(0, 0),     // PRIO_PROCESS, who 0: allowed
        ];
        match results {
            [-11, -11, -12, ok] if ok >= 0 => 0,
            _ => 2,
        }
    });
    assert_eq!(code, 0);
}

#[test]
fn comparison_operators_match_in_a_forked_child() {
    // getpriority(which=0, who) fails with errno = 20 + operator number when `who`
    // matches; each rule tests a different operator against 100.
    let ops = [("SCMP_CMP_GT", 21, 150, 100), ("SCMP_CMP_LT", 22, 50, 100)];
    for (op, errno, hit, miss) in ops {
        let filter = Filter::compile(&profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno,
                "args": [{"index": 1, "value": 100, "op": op}]}]}),
        ))
        .unwrap();
        let code = in_child(move || {
            if filter.load().is_err() {
                return 1;
            }
            // ESRCH for a missing process is fine: it means the filter let the call through.
            let passed = getpriority(0, miss);
            match (getpriority(0, hit), passed) {
                (h, p) if h == -i64::from(errno) && p != -i64::from(errno) => 0,
                _ => 2,
            }
        });
        assert_eq!(code, 0, "{op}");
    }
}

#[test]
fn notify_filter_load_returns_the_listener_fd() {
    let filter = Filter::compile(&profile(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "syscalls": [{"names": ["mknodat"], "action": "SCMP_ACT_NOTIFY"}]}),
    ))
    .unwrap();
    let code = in_child(move || match filter.load() {
        Ok(Some(fd)) if fd.as_raw_fd() > 2 => 0,
        Ok(_) => 2,
        Err(_) => 1,
    });
    assert_eq!(code, 0);
}

/// A restrictive profile: default EPERM, only what the forked child needs allowed.
fn restrictive(extra: serde_json::Value) -> serde_json::Value {
    let mut p = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["exit", "exit_group", "getppid"], "action": "SCMP_ACT_ALLOW"}]});
    if let (Some(o), Some(e)) = (p.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    p
}

/// Raw syscall `nr` without arguments: its result or -errno.
fn raw_syscall(nr: libc::c_long) -> i64 {
    // SAFETY: the syscalls used here take no pointer arguments.
    let rc = unsafe { libc::syscall(nr, 0, 0, 0) };
    if rc < 0 {
        -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        rc
    }
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys_like_runc() {
    let filter = Filter::compile(&profile(restrictive(serde_json::json!({})))).unwrap();
    let code = in_child(move || {
        if filter.load().is_err() {
            return 1;
        }
        let allowed = raw_syscall(libc::SYS_getppid);
        // getpid is below exit_group (the profile's last syscall): the default, EPERM.
        let older = raw_syscall(libc::SYS_getpid);
        // close_range is above it: ENOSYS, so a libc would fall back.
        let newer = raw_syscall(libc::SYS_close_range);
        match (allowed, older, newer) {
            (a, o, n) if a > 0 && o == -i64::from(libc::EPERM) && n == -i64::from(libc::ENOSYS) => {
                0
            }
            _ => 2,
        }
    });
    assert_eq!(code, 0);
}

#[test]
fn enosys_stub_is_left_out_for_permissive_defaults_and_enosys_defaults() {
    let plain = |json| build(&profile(json)).map(|c| export_bpf(&c.context).unwrap().len());
    for json in [
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}),
        serde_json::json!({"defaultAction": "SCMP_ACT_LOG",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}),
        restrictive(serde_json::json!({"defaultErrnoRet": 38})),
    ] {
        let filter = Filter::compile(&profile(json.clone())).unwrap();
        assert_eq!(filter.len(), plain(json).unwrap());
    }
    let json = restrictive(serde_json::json!({}));
    let filter = Filter::compile(&profile(json.clone())).unwrap();
    assert!(filter.len() > plain(json).unwrap());
}

#[test]
fn enosys_stub_handles_x32_and_other_architectures() {
    let json = restrictive(serde_json::json!({"architectures":
        ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]}));
    let filter = Filter::compile(&profile(json)).unwrap();
    // Still loads and behaves in a native child.
    let code = in_child(move || {
        if filter.load().is_err() {
            return 1;
        }
        match raw_syscall(libc::SYS_close_range) {
            n if n == -i64::from(libc::ENOSYS) => 0,
            _ => 2,
        }
    });
    assert_eq!(code, 0);
}

/// Like `in_child`, but returns the raw wait status (the child may die of a signal).
fn child_status(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: as in `in_child`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // No core file when the filter kills us with SIGSYS.
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit reads one struct; prctl takes integer arguments only.
        let code = if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) } != 0
            || unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0
        {
            100
        } else {
            child()
        };
        // SAFETY: leaving the forked child.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for the child forked above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    status
}

#[test]
fn kill_trap_and_log_actions_behave_as_the_kernel_defines_them() {
    for (action, signal) in [
        ("SCMP_ACT_KILL", Some(libc::SIGSYS)),
        ("SCMP_ACT_KILL_THREAD", Some(libc::SIGSYS)),
        ("SCMP_ACT_KILL_PROCESS", Some(libc::SIGSYS)),
        ("SCMP_ACT_TRAP", Some(libc::SIGSYS)),
        ("SCMP_ACT_LOG", None),
    ] {
        let filter = Filter::compile(&profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": action}]}),
        ))
        .unwrap();
        let status = child_status(move || {
            if filter.load().is_err() {
                return 1;
            }
            if raw_syscall(libc::SYS_getppid) > 0 {
                0
            } else {
                2
            }
        });
        match signal {
            Some(sig) => {
                assert!(libc::WIFSIGNALED(status), "{action}: {status:#x}");
                assert_eq!(libc::WTERMSIG(status), sig, "{action}");
            }
            None => {
                assert!(libc::WIFEXITED(status), "{action}: {status:#x}");
                assert_eq!(libc::WEXITSTATUS(status), 0, "{action}");
            }
        }
    }
}

#[test]
fn trace_without_a_tracer_fails_the_syscall_with_enosys() {
    let filter = Filter::compile(&profile(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_TRACE"}]}),
    ))
    .unwrap();
    let code = in_child(move || {
        if filter.load().is_err() {
            return 1;
        }
        // seccomp(2): with no tracer attached, SECCOMP_RET_TRACE returns ENOSYS.
        match raw_syscall(libc::SYS_getppid) {
            n if n == -i64::from(libc::ENOSYS) => 0,
            _ => 2,
        }
    });
    assert_eq!(code, 0);
}

#[test]
fn notify_round_trip_through_the_listener_socket() {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::mem::MaybeUninit;
    use std::os::fd::{AsFd, OwnedFd};

    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    // The agent: take the fd, answer the first notification with EBADFD.
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 4096];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = recvmsg(
            &conn,
            &mut [std::io::IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::empty(),
        )
        .unwrap();
        let state: serde_json::Value = serde_json::from_slice(&buf[..got.bytes]).unwrap();
        let fd: OwnedFd = control
            .drain()
            .find_map(|m| match m {
                RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
                _ => None,
            })
            .unwrap();
        let req = libseccomp::ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
        libseccomp::ScmpNotifResp::new_error(
            req.id,
            -libc::EBADFD,
            libseccomp::ScmpNotifRespFlags::empty(),
        )
        .respond(fd.as_raw_fd())
        .unwrap();
        state
    });
    let filter = Filter::compile(&profile(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": socket,
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}),
    ))
    .unwrap();
    let state = br#"{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":1,"bundle":"/b"}"#;
    let path = socket.clone();
    let code = in_child(move || {
        let Ok(Some(fd)) = filter.load() else {
            return 1;
        };
        if send_listener_fd(&path, fd.as_fd(), state).is_err() {
            return 2;
        }
        drop(fd);
        match raw_syscall(libc::SYS_getppid) {
            n if n == -i64::from(libc::EBADFD) => 0,
            _ => 3,
        }
    });
    assert_eq!(code, 0);
    let sent = agent.join().unwrap();
    assert_eq!(sent["fds"], serde_json::json!(["seccompFd"]));
    assert_eq!(sent["state"]["id"], serde_json::json!("c1"));
}
