//! Golden tests: the spec berth builds for a container equals the config.json dockerd 20.10
//! gave runc for the same `docker create` flags (test_data/<case>/docker.json, captured as
//! test_data/README.md says), minus what berth leaves out on purpose (spec/mod.rs).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::{build_with, HostInfo, SpecInput};
use crate::container::ContainerRecord;

#[derive(Deserialize)]
struct Input {
    id: String,
    config: berth_api::container::Config,
    host_config: berth_api::container::HostConfig,
    path: String,
    args: Vec<String>,
}

fn test_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/spec/test_data")
}

/// Builds berth's spec for `case` and returns (berth's, docker's), normalised alike.
fn specs(case: &str) -> (Value, Value) {
    let dir = test_data().join(case);
    let volume = tempfile::tempdir().expect("volume dir");
    let volume_dir = volume.path().to_string_lossy().into_owned();
    let input = std::fs::read_to_string(dir.join("input.json"))
        .expect("input.json")
        .replace("VOLUME_DIR", &volume_dir);
    let input: Input = serde_json::from_str(&input).expect("input");
    let record = ContainerRecord {
        id: input.id.clone(),
        config: input.config,
        host_config: input.host_config,
        path: input.path,
        args: input.args,
        ..ContainerRecord::default()
    };
    let rootfs = test_data().join("rootfs");
    let spec_input = SpecInput {
        id: &record.id,
        record: &record,
        rootfs: &rootfs,
        container_dir: Path::new("CONTAINER_DIR"),
        cgroup_parent: "berth-pure-golden",
        network_namespace: None,
    };
    // Docker 20.10 on this host: cgroup v1, capabilities up to CAP_AUDIT_READ (37).
    let host = HostInfo {
        cgroup_v2: false,
        last_cap: 37,
        cap_bounding: u64::MAX,
        hostname: "vm".into(),
        init_path: None,
    };
    let spec = build_with(&spec_input, &host).expect("spec builds");
    let mut ours = serde_json::to_value(spec).expect("encode");
    ours["root"]["path"] = "ROOTFS".into();
    if let Some(linux) = ours["linux"].as_object_mut() {
        linux.remove("devices");
        // The default seccomp profile is compared per capability set in seccomp_tests.rs.
        linux.remove("seccomp");
    }
    let docker = std::fs::read_to_string(dir.join("docker.json"))
        .expect("docker.json")
        .replace("VOLUME_DIR", &volume_dir);
    let mut docker: Value = serde_json::from_str(&docker).expect("docker.json parses");
    unordered(&mut ours);
    unordered(&mut docker);
    (ours, docker)
}

/// Sorts what has no meaningful order: capability sets (oci-spec keeps them in hash sets)
/// and `--group-add` gids (runc collects them in a Go map, so Docker's order is random).
fn unordered(spec: &mut Value) {
    let sort = |list: &mut Value| {
        if let Some(items) = list.as_array_mut() {
            items.sort_by_key(|item| item.to_string());
        }
    };
    if let Some(capabilities) = spec["process"]["capabilities"].as_object_mut() {
        capabilities.values_mut().for_each(sort);
    }
    if let Some(gids) = spec["process"]["user"]["additionalGids"].as_array_mut() {
        if gids.len() > 1 {
            gids[1..].sort_by_key(|gid| gid.as_u64());
        }
    }
}

fn assert_same(case: &str) {
    let (ours, docker) = specs(case);
    assert_eq!(
        ours,
        docker,
        "{case}: berth's spec differs from dockerd's\nberth:  {}\ndocker: {}",
        serde_json::to_string(&ours).unwrap_or_default(),
        serde_json::to_string(&docker).unwrap_or_default()
    );
}

#[test]
fn default_container_matches_dockerd() {
    assert_same("default");
}

#[test]
fn tty_env_workdir_named_user_hostname_and_domainname_match_dockerd() {
    assert_same("tty_env_user");
}

#[test]
fn resource_limits_ulimits_oom_score_and_shm_size_match_dockerd() {
    assert_same("resources");
}

#[test]
fn caps_no_new_privileges_read_only_sysctl_tmpfs_and_binds_match_dockerd() {
    assert_same("security");
}

#[test]
fn privileged_host_network_matches_dockerd() {
    assert_same("privileged_host");
}

#[test]
fn numeric_user_group_and_group_add_match_dockerd() {
    assert_same("uidgid");
}

#[test]
fn drop_all_add_one_mount_api_bind_and_entrypoint_match_dockerd() {
    assert_same("capdrop_all");
}

#[test]
fn ipc_none_pid_host_hostname_and_env_removal_match_dockerd() {
    assert_same("ipc_none_pid_host");
}
