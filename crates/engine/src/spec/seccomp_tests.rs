//! Golden tests of the default seccomp profile against what Debian's dockerd 20.10 handed
//! runc on this host for the same capability sets (`test_data/seccomp/dockerd-20.10.json`,
//! one entry per `docker create --cap-add X` / `--cap-drop ALL` case; see its README).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::*;

/// One syscall's rules: (action, errno, args) triples, with an unconditional allow
/// absorbing every conditional one (they add nothing to it).
type Effect = BTreeMap<String, BTreeSet<(String, Option<u64>, String)>>;

const ALLOW: &str = "SCMP_ACT_ALLOW";

fn unconditional_allow() -> (String, Option<u64>, String) {
    (ALLOW.to_string(), None, "null".to_string())
}

fn effect(seccomp: &Value) -> Effect {
    let mut map = Effect::new();
    for rule in seccomp["syscalls"].as_array().expect("syscalls") {
        let key = (
            rule["action"].as_str().expect("action").to_string(),
            rule["errnoRet"].as_u64(),
            rule.get("args").cloned().unwrap_or(Value::Null).to_string(),
        );
        for name in rule["names"].as_array().expect("names") {
            let name = name.as_str().expect("name").to_string();
            map.entry(name).or_default().insert(key.clone());
        }
    }
    for rules in map.values_mut() {
        if rules.contains(&unconditional_allow()) {
            *rules = BTreeSet::from([unconditional_allow()]);
        }
    }
    map
}

fn captures() -> BTreeMap<String, Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/spec/test_data/seccomp/dockerd-20.10.json");
    let text = std::fs::read_to_string(path).expect("capture file");
    serde_json::from_str(&text).expect("capture parses")
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect()
}

/// Docker 20.10's effect moved forward by [`DOCKER_20_10_DELTAS`]; returns the names changed.
fn apply_deltas(docker: &mut Effect, capabilities: &[String]) -> BTreeSet<String> {
    let mut touched = BTreeSet::new();
    let mut set = |name: &str, rules: Option<BTreeSet<(String, Option<u64>, String)>>| {
        touched.insert(name.to_string());
        match rules {
            Some(rules) => docker.insert(name.to_string(), rules),
            None => docker.remove(name),
        };
    };
    for name in ["io_uring_setup", "io_uring_enter", "io_uring_register"] {
        set(name, None);
    }
    let vsock = json!([{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]).to_string();
    set(
        "socket",
        Some(BTreeSet::from([(ALLOW.to_string(), None, vsock)])),
    );
    for name in [
        "name_to_handle_at",
        "process_vm_readv",
        "process_vm_writev",
        "pkey_alloc",
        "pkey_free",
        "pkey_mprotect",
    ] {
        set(name, Some(BTreeSet::from([unconditional_allow()])));
    }
    let has = |cap: &str| capabilities.iter().any(|c| c == cap);
    for (cap, name) in [
        ("CAP_SYS_TIME", "clock_settime64"),
        ("CAP_SYS_NICE", "set_mempolicy_home_node"),
    ] {
        set(
            name,
            has(cap).then(|| BTreeSet::from([unconditional_allow()])),
        );
    }
    touched
}

#[test]
fn default_profile_allows_what_dockerd_allows_for_each_capability_set() {
    let captures = captures();
    assert!(captures.len() >= 13, "{}", captures.len());
    for (case, capture) in &captures {
        let capabilities = strings(&capture["capabilities"]);
        let docker_seccomp = &capture["seccomp"];
        let ours = profile_for(
            &capabilities,
            "amd64",
            &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        );
        let mut docker = effect(docker_seccomp);
        let touched = apply_deltas(&mut docker, &capabilities);
        let documented: BTreeSet<String> = DOCKER_20_10_DELTAS
            .iter()
            .map(|(name, _)| name.to_string())
            .collect();
        assert_eq!(touched, documented, "the deltas list is the deltas applied");
        let ours_effect = effect(&ours);
        for (name, rules) in &docker {
            assert_eq!(ours_effect.get(name), Some(rules), "{case}: {name}");
        }
        for name in ours_effect.keys() {
            assert!(docker.contains_key(name), "{case}: {name} is extra");
        }
        assert_eq!(
            ours["architectures"], docker_seccomp["architectures"],
            "{case}"
        );
        // Docker 20.10 leaves errnoRet out, which means EPERM: the same answer.
        assert_eq!(ours["defaultAction"], docker_seccomp["defaultAction"]);
        assert_eq!(ours["defaultErrnoRet"], libc::EPERM);
        assert!(docker_seccomp.get("defaultErrnoRet").is_none());
    }
}

#[test]
fn clone_is_filtered_by_namespace_flags_and_clone3_is_enosys_without_sys_admin() {
    let profile = profile_for(&[], "amd64", &[]);
    let rules = effect(&profile);
    let clone = rules["clone"].iter().next().expect("clone rule");
    assert_eq!(
        clone.2,
        json!([{"index": 0, "value": 0x7E02_0000u64, "op": "SCMP_CMP_MASKED_EQ"}]).to_string()
    );
    assert_eq!(
        rules["clone3"],
        BTreeSet::from([("SCMP_ACT_ERRNO".to_string(), Some(38), "null".to_string())])
    );
    let admin = effect(&profile_for(&["CAP_SYS_ADMIN".to_string()], "amd64", &[]));
    assert_eq!(admin["clone"], BTreeSet::from([unconditional_allow()]));
    assert_eq!(admin["clone3"], BTreeSet::from([unconditional_allow()]));
    assert!(admin.contains_key("mount") && admin.contains_key("unshare"));
    assert!(!rules.contains_key("mount") && !rules.contains_key("unshare"));
}

#[test]
fn s390_filters_the_second_clone_argument() {
    let rules = effect(&profile_for(&[], "s390x", &["SCMP_ARCH_S390X"]));
    assert!(rules["clone"]
        .iter()
        .all(|(_, _, args)| args.contains("\"index\":1")));
    assert!(rules.contains_key("s390_runtime_instr"));
    assert!(!rules.contains_key("arch_prctl"));
}

#[test]
fn bpf_and_perf_event_open_follow_their_own_capabilities() {
    let none = effect(&profile_for(&[], "amd64", &[]));
    assert!(!none.contains_key("bpf") && !none.contains_key("perf_event_open"));
    let caps = ["CAP_BPF".to_string(), "CAP_PERFMON".to_string()];
    let both = effect(&profile_for(&caps, "amd64", &[]));
    assert!(both.contains_key("bpf") && both.contains_key("perf_event_open"));
}

#[test]
fn escape_syscalls_stay_refused_by_default() {
    let rules = effect(&default_profile(
        &crate::spec::caps::DEFAULT.map(String::from),
    ));
    for name in [
        "mount",
        "unshare",
        "setns",
        "reboot",
        "init_module",
        "finit_module",
        "keyctl",
        "add_key",
        "bpf",
        "perf_event_open",
        "open_by_handle_at",
        "io_uring_setup",
        "kexec_load",
        "userfaultfd",
    ] {
        assert!(!rules.contains_key(name), "{name} must not be allowed");
    }
    assert!(
        rules.contains_key("chroot"),
        "CAP_SYS_CHROOT is a default cap"
    );
}
