//! The runtime-spec features document (features.md) that `berth-runtime features` prints:
//! only what this runtime implements, probed from the kernel and libseccomp where it
//! depends on them.

use oci_spec::runtime::LinuxSeccompFilterFlag;
use serde_json::{json, Value};

use crate::rootfs::mount_attr;
use crate::{capabilities, lsm, seccomp};

/// Oldest and newest runtime-spec versions this runtime accepts.
pub const OCI_VERSION_MIN: &str = "1.0.0";
pub const OCI_VERSION_MAX: &str = "1.2.1";

/// Hook names, in the order the runtime-spec lists them.
pub const HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Mount options understood in `mounts[].options`, sorted: mount(2) flags, propagation,
/// the recursive mount_setattr(2) forms (rro, rnosuid, ...) and idmap/ridmap. Only what
/// rootfs::mounts::parse_options implements (not iversion, acl, tmpcopyup).
pub const MOUNT_OPTIONS: [&str; 59] = [
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "unbindable",
];

/// Namespace types the runtime creates or joins, sorted.
pub const NAMESPACES: [&str; 8] = [
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

/// Seccomp actions, operators and architectures accepted by [`seccomp::Filter::compile`].
pub const SECCOMP_ACTIONS: [&str; 9] = [
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];
pub const SECCOMP_OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

const SECCOMP_FLAGS: [LinuxSeccompFilterFlag; 4] = [
    LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
    LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
    LinuxSeccompFilterFlag::SeccompFilterFlagLog,
    LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
];

/// Annotation keys berth-runtime sets in its features document.
pub const ANNOTATION_VERSION: &str = "io.berth.runtime.version";
pub const ANNOTATION_LIBSECCOMP_VERSION: &str = "io.berth.libseccomp.version";

fn flag_name(f: LinuxSeccompFilterFlag) -> String {
    f.to_string()
}

/// The features document.
pub fn features() -> Value {
    let known_flags: Vec<String> = SECCOMP_FLAGS.iter().map(|f| flag_name(*f)).collect();
    let supported_flags: Vec<String> = SECCOMP_FLAGS
        .iter()
        .filter(|f| seccomp::kernel_supports_flag(**f))
        .map(|f| flag_name(*f))
        .collect();
    let mut annotations = json!({ANNOTATION_VERSION: env!("CARGO_PKG_VERSION")});
    if let Ok(v) = libseccomp::ScmpVersion::current() {
        annotations[ANNOTATION_LIBSECCOMP_VERSION] =
            json!(format!("{}.{}.{}", v.major, v.minor, v.micro));
    }
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": HOOKS,
        "mountOptions": &MOUNT_OPTIONS[..],
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": &capabilities::CAPABILITY_NAMES[..],
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false,
                "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": SECCOMP_ACTIONS,
                "operators": SECCOMP_OPERATORS,
                "archs": seccomp::supported_arch_names(),
                "knownFlags": known_flags,
                "supportedFlags": supported_flags,
            },
            "apparmor": {"enabled": lsm::apparmor_enabled()},
            "selinux": {"enabled": lsm::selinux_enabled()},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": mount_attr::kernel_has_mount_setattr()}},
        },
        "annotations": annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_document_has_the_runtime_spec_shape() {
        let f = features();
        assert_eq!(f["ociVersionMin"], json!("1.0.0"));
        assert_eq!(f["ociVersionMax"], json!(OCI_VERSION_MAX));
        assert_eq!(
            f["hooks"],
            json!([
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop"
            ])
        );
        let linux = &f["linux"];
        assert_eq!(
            linux["cgroup"],
            json!({"v1": true, "v2": true, "systemd": false, "systemdUser": false,
                "rdma": false})
        );
        assert_eq!(
            linux["mountExtensions"],
            json!({"idmap": {"enabled": mount_attr::kernel_has_mount_setattr()}})
        );
        assert_eq!(linux["intelRdt"], json!({"enabled": false}));
        assert!(linux["apparmor"]["enabled"].is_boolean());
        assert!(linux["selinux"]["enabled"].is_boolean());
        assert_eq!(
            f["annotations"][ANNOTATION_VERSION],
            json!(env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn features_lists_every_capability_and_namespace() {
        let f = features();
        let caps = f["linux"]["capabilities"].as_array().unwrap();
        assert_eq!(caps.len(), 41);
        assert_eq!(caps[0], json!("CAP_CHOWN"));
        assert!(caps.contains(&json!("CAP_CHECKPOINT_RESTORE")));
        assert_eq!(
            f["linux"]["namespaces"],
            json!(["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"])
        );
    }

    #[test]
    fn seccomp_features_match_what_the_compiler_accepts() {
        let f = features();
        let s = &f["linux"]["seccomp"];
        assert_eq!(s["enabled"], json!(true));
        // Every listed action and operator parses as a spec value.
        for a in s["actions"].as_array().unwrap() {
            serde_json::from_value::<oci_spec::runtime::LinuxSeccompAction>(a.clone()).unwrap();
        }
        for o in s["operators"].as_array().unwrap() {
            serde_json::from_value::<oci_spec::runtime::LinuxSeccompOperator>(o.clone()).unwrap();
        }
        // Every listed architecture compiles.
        for arch in s["archs"].as_array().unwrap() {
            let profile: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(
                json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch]}),
            )
            .unwrap();
            seccomp::Filter::compile(&profile).unwrap();
        }
        assert!(s["archs"]
            .as_array()
            .unwrap()
            .contains(&json!("SCMP_ARCH_X86_64")));
        assert_eq!(
            s["knownFlags"],
            json!([
                "SECCOMP_FILTER_FLAG_TSYNC",
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                "SECCOMP_FILTER_FLAG_LOG",
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
            ])
        );
        let supported = s["supportedFlags"].as_array().unwrap();
        assert!(supported
            .iter()
            .all(|f| s["knownFlags"].as_array().unwrap().contains(f)));
        assert!(supported.contains(&json!("SECCOMP_FILTER_FLAG_TSYNC")));
    }

    #[test]
    fn mount_options_are_sorted_and_unique() {
        let f = features();
        let options: Vec<&str> = f["mountOptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap())
            .collect();
        let mut sorted = options.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(options, sorted);
        for o in ["bind", "rbind", "ro", "nosuid", "rprivate", "nosymfollow"] {
            assert!(options.contains(&o), "{o}");
        }
        for o in mount_attr::RECURSIVE_OPTIONS
            .into_iter()
            .chain(["idmap", "ridmap"])
        {
            assert!(options.contains(&o), "{o}");
        }
        for o in ["iversion", "acl", "tmpcopyup"] {
            assert!(!options.contains(&o), "{o} is not implemented");
        }
    }

    #[test]
    fn every_listed_mount_option_is_understood_by_the_parser() {
        for o in MOUNT_OPTIONS {
            let parsed = crate::rootfs::mounts::parse_options(&[o.to_string()]);
            assert_eq!(
                parsed.data, "",
                "{o} would reach the kernel as filesystem data"
            );
        }
    }
}
