//! Differential tests: the same bundle under runc and under the runtime under test must let the
//! container observe the same namespaces, mounts, credentials, limits and filters.
//!
//! Each test also checks the observation against the config itself, so a runtime that ignored
//! a setting in the same way as the oracle would still fail.

use anyhow::{ensure, Result};
use berth_e2e::probe::{differential, Observation};
use berth_e2e::spec::{add_mount, add_namespace, base_config};
use serde_json::json;

fn check(obs: &Observation, line: &str) -> Result<()> {
    ensure!(
        obs.has(line),
        "expected {line:?} in:\n{}",
        obs.lines.join("\n")
    );
    Ok(())
}

#[test]
fn default_spec_observations_match_runc() -> Result<()> {
    let obs = differential(&base_config(&[]), &[])?;
    check(&obs, "pid self 1")?;
    for ns in ["pid", "net", "ipc", "uts", "mnt"] {
        check(&obs, &format!("ns {ns} new"))?;
    }
    for ns in ["user", "cgroup"] {
        check(&obs, &format!("ns {ns} same"))?;
    }
    check(&obs, "uts hostname berth-e2e")?;
    check(&obs, "status CapEff 0000000020000420")?;
    check(&obs, "status CapBnd 0000000020000420")?;
    check(&obs, "status NoNewPrivs 1")?;
    check(&obs, "rlimit Max open files 1024 1024 files")?;
    check(&obs, "cwd inside-root yes")?;
    check(&obs, "dev /dev/null c 1:3 666 0:0")?;
    check(&obs, "dev /dev/ptmx link pts/ptmx")?;
    ensure!(
        obs.with_prefix("fd ").len() == 3,
        "only stdio may be open: {:?}",
        obs.with_prefix("fd ")
    );
    Ok(())
}

#[test]
fn readonly_root_masked_and_readonly_paths_match_runc() -> Result<()> {
    let mut config = base_config(&[]);
    config["root"]["readonly"] = json!(true);
    config["linux"]["maskedPaths"] = json!(["/proc/timer_list", "/proc/acpi", "/sys/firmware"]);
    config["linux"]["readonlyPaths"] = json!(["/proc/sys", "/proc/sysrq-trigger"]);
    let args = [
        "--mkdir",
        "/newdir",
        "--read",
        "/proc/timer_list",
        "--write",
        "/proc/sys/kernel/hostname",
        "--mkdir",
        "/dev/shm/ok",
    ];
    let obs = differential(&config, &args)?;
    check(&obs, "mkdir /newdir err EROFS")?;
    check(&obs, "mkdir /dev/shm/ok ok")?;
    check(&obs, "read /proc/timer_list ok")?;
    check(&obs, "write /proc/sys/kernel/hostname err EROFS")?;
    let root = obs.with_prefix("mount / ");
    ensure!(
        root.len() == 1 && root[0].contains(" ro,"),
        "root must be read-only: {root:?}"
    );
    Ok(())
}

#[test]
fn user_groups_and_umask_match_runc() -> Result<()> {
    let mut config = base_config(&[]);
    config["process"]["user"] = json!({
        "uid": 1000, "gid": 1000, "additionalGids": [10, 29], "umask": 23
    });
    config["process"]["cwd"] = json!("/tmp");
    let obs = differential(&config, &["--mkdir", "/tmp/mine", "--mkdir", "/root/no"])?;
    check(&obs, "status Uid 1000 1000 1000 1000")?;
    check(&obs, "status Gid 1000 1000 1000 1000")?;
    check(&obs, "status Groups 10 29")?;
    check(&obs, "status Umask 0027")?;
    check(&obs, "cwd path /tmp")?;
    check(&obs, "mkdir /tmp/mine ok")?;
    check(&obs, "mkdir /root/no err EACCES")?;
    // A non-root user keeps no capabilities: ambient ones need the inheritable set too.
    check(&obs, "status CapEff 0000000000000000")?;
    check(&obs, "status CapPrm 0000000000000000")?;
    check(&obs, "status CapBnd 0000000020000420")?;
    Ok(())
}

#[test]
fn trimmed_capability_sets_match_runc() -> Result<()> {
    let mut config = base_config(&[]);
    config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"],
        "effective": ["CAP_KILL"],
        "permitted": ["CAP_KILL", "CAP_CHOWN"],
        "inheritable": ["CAP_CHOWN"],
        "ambient": ["CAP_CHOWN"]
    });
    let obs = differential(&config, &[])?;
    // CAP_CHOWN=0, CAP_KILL=5, CAP_SETUID=7, CAP_NET_RAW=13
    check(&obs, "status CapBnd 00000000000020a1")?;
    check(&obs, "status CapInh 0000000000000001")?;
    check(&obs, "status CapPrm 0000000000000021")?;
    check(&obs, "status CapAmb 0000000000000001")?;
    Ok(())
}

#[test]
fn rlimits_match_runc() -> Result<()> {
    let mut config = base_config(&[]);
    config["process"]["rlimits"] = json!([
        { "type": "RLIMIT_NOFILE", "soft": 256, "hard": 512 },
        { "type": "RLIMIT_NPROC", "soft": 100, "hard": 200 },
        { "type": "RLIMIT_CORE", "soft": 1024, "hard": 4096 },
        { "type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192 }
    ]);
    let obs = differential(&config, &[])?;
    check(&obs, "rlimit Max open files 256 512 files")?;
    check(&obs, "rlimit Max processes 100 200 processes")?;
    check(&obs, "rlimit Max core file size 1024 4096 bytes")?;
    check(&obs, "rlimit Max msgqueue size 4096 8192 bytes")?;
    Ok(())
}

#[test]
fn no_new_privileges_false_matches_runc() -> Result<()> {
    let mut config = base_config(&[]);
    config["process"]["noNewPrivileges"] = json!(false);
    let obs = differential(&config, &[])?;
    check(&obs, "status NoNewPrivs 0")?;
    Ok(())
}

#[test]
fn seccomp_errno_rule_matches_runc() -> Result<()> {
    let mut config = base_config(&[]);
    config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 },
            { "names": ["rmdir"], "action": "SCMP_ACT_ERRNO" }
        ]
    });
    let obs = differential(&config, &["--mkdir", "/tmp/denied"])?;
    check(&obs, "mkdir /tmp/denied err EPERM")?;
    check(&obs, "status Seccomp 2")?;
    check(&obs, "status Seccomp_filters 1")?;
    Ok(())
}

#[test]
fn hostname_and_sysctls_match_runc() -> Result<()> {
    // runc 1.1 ignores `domainname` (added in runc 1.2), so it is not compared here.
    let mut config = base_config(&[]);
    config["hostname"] = json!("probe-host");
    config["linux"]["sysctl"] = json!({
        "net.ipv4.ip_forward": "1",
        "kernel.msgmax": "4096"
    });
    let args = [
        "--read",
        "/proc/sys/net/ipv4/ip_forward",
        "--read",
        "/proc/sys/kernel/msgmax",
    ];
    let obs = differential(&config, &args)?;
    check(&obs, "uts hostname probe-host")?;
    check(&obs, "read /proc/sys/net/ipv4/ip_forward ok 1")?;
    check(&obs, "read /proc/sys/kernel/msgmax ok 4096")?;
    Ok(())
}

#[test]
fn tmpfs_and_bind_mount_options_match_runc() -> Result<()> {
    let shared = tempfile::Builder::new()
        .prefix("berth-e2e-bindsrc-")
        .tempdir()?;
    std::fs::write(shared.path().join("file"), "bound\n")?;
    let mut config = base_config(&[]);
    add_mount(
        &mut config,
        json!({ "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "noexec", "mode=700", "size=1m"] }),
    );
    add_mount(
        &mut config,
        json!({ "destination": "/data", "type": "bind", "source": shared.path(),
                "options": ["bind", "ro", "nosuid"] }),
    );
    add_mount(
        &mut config,
        json!({ "destination": "/rdata", "type": "none", "source": shared.path(),
                "options": ["rbind", "rw", "nodev"] }),
    );
    let args = [
        "--read",
        "/data/file",
        "--mkdir",
        "/data/no",
        "--mkdir",
        "/rdata/yes",
    ];
    let obs = differential(&config, &args)?;
    check(&obs, "read /data/file ok bound")?;
    check(&obs, "mkdir /data/no err EROFS")?;
    check(&obs, "mkdir /rdata/yes ok")?;
    let scratch = obs.with_prefix("mount /scratch tmpfs ");
    ensure!(
        scratch.len() == 1 && scratch[0].contains("nosuid,nodev,noexec"),
        "tmpfs options: {scratch:?}"
    );
    Ok(())
}

#[test]
fn memory_pids_and_cpu_limits_match_runc() -> Result<()> {
    let mut config = base_config(&[]);
    config["linux"]["resources"] = json!({
        "devices": [ { "allow": false, "access": "rwm" } ],
        "memory": { "limit": 67108864, "reservation": 33554432 },
        "pids": { "limit": 64 },
        "cpu": { "shares": 512, "quota": 50000, "period": 100000 }
    });
    let obs = differential(&config, &[])?;
    for line in [
        "cgroup file memory/memory.limit_in_bytes 67108864",
        "cgroup file memory/memory.soft_limit_in_bytes 33554432",
        "cgroup file pids/pids.max 64",
        "cgroup file cpu/cpu.shares 512",
        "cgroup file cpu/cpu.cfs_quota_us 50000",
    ] {
        if std::path::Path::new("/sys/fs/cgroup/memory").is_dir() {
            check(&obs, line)?;
        }
    }
    Ok(())
}

#[test]
fn user_namespace_with_maps_matches_runc() -> Result<()> {
    let mut config = base_config(&[]);
    add_namespace(&mut config, "user");
    config["linux"]["uidMappings"] = json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    config["linux"]["gidMappings"] = json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    let obs = differential(&config, &[])?;
    check(&obs, "ns user new")?;
    check(&obs, "userns uid_map 0 200000 65536")?;
    check(&obs, "userns gid_map 0 200000 65536")?;
    check(&obs, "status Uid 0 0 0 0")?;
    Ok(())
}

#[test]
fn cgroup_namespace_matches_runc() -> Result<()> {
    let mut config = base_config(&[]);
    add_namespace(&mut config, "cgroup");
    let obs = differential(&config, &[])?;
    check(&obs, "ns cgroup new")?;
    Ok(())
}

#[test]
fn seccomp_profile_without_close_range_still_starts_like_runc() -> Result<()> {
    // Profiles older than close_range(2) (runtime-tools' default, Docker's before 20.10) deny
    // it with EPERM; with noNewPrivileges false the filter is loaded before the runtime closes
    // leaked fds, so that step must not depend on close_range.
    let mut config = base_config(&[]);
    config["process"]["noNewPrivileges"] = json!(false);
    config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["close_range"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 },
            { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }
        ]
    });
    let obs = differential(&config, &["--mkdir", "/tmp/denied"])?;
    check(&obs, "mkdir /tmp/denied err EPERM")?;
    check(&obs, "status NoNewPrivs 0")?;
    check(&obs, "status Seccomp 2")?;
    ensure!(
        obs.with_prefix("fd ").len() == 3,
        "only stdio may be open: {:?}",
        obs.with_prefix("fd ")
    );
    Ok(())
}

#[test]
fn seccomp_names_unknown_to_libseccomp_are_ignored_like_runc() -> Result<()> {
    // runc (and Docker profiles that list newer syscalls) skip names libseccomp does not know.
    let mut config = base_config(&[]);
    config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["no_such_syscall_e2e", "mkdir", "mkdirat"],
              "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }
        ]
    });
    let obs = differential(&config, &["--mkdir", "/tmp/denied"])?;
    check(&obs, "mkdir /tmp/denied err EPERM")?;
    Ok(())
}

#[test]
fn oom_score_adj_env_and_cwd_match_runc() -> Result<()> {
    let mut config = base_config(&[]);
    config["process"]["oomScoreAdj"] = json!(500);
    config["process"]["cwd"] = json!("/home/e2e");
    config["process"]["env"] = json!(["PATH=/bin", "E2E_EMPTY=", "E2E=with spaces"]);
    let obs = differential(&config, &[])?;
    check(&obs, "oom_score_adj value 500")?;
    check(&obs, "cwd path /home/e2e")?;
    check(&obs, "env E2E=with spaces")?;
    check(&obs, "env E2E_EMPTY=")?;
    Ok(())
}

#[test]
fn spec_devices_and_device_cgroup_rules_match_runc() -> Result<()> {
    let mut config = base_config(&[]);
    config["linux"]["devices"] = json!([
        { "path": "/dev/e2e-zero", "type": "c", "major": 1, "minor": 5,
          "fileMode": 438, "uid": 1000, "gid": 1000 },
        { "path": "/dev/e2e-loop", "type": "b", "major": 7, "minor": 200,
          "fileMode": 438, "uid": 0, "gid": 0 }
    ]);
    config["linux"]["resources"]["devices"] = json!([
        { "allow": false, "access": "rwm" },
        { "allow": true, "type": "c", "major": 1, "minor": 5, "access": "rw" }
    ]);
    let args = ["--write", "/dev/e2e-zero", "--write", "/dev/e2e-loop"];
    let obs = differential(&config, &args)?;
    check(&obs, "dev /dev/e2e-zero c 1:5 666 1000:1000")?;
    check(&obs, "dev /dev/e2e-loop b 7:200 666 0:0")?;
    // The device cgroup allows 1:5 and denies the block device whatever its file mode.
    check(&obs, "write /dev/e2e-zero ok")?;
    check(&obs, "write /dev/e2e-loop err EPERM")?;
    Ok(())
}
