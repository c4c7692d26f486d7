//! `--security-opt`: no-new-privileges, seccomp (berth's default profile, a Docker-format
//! profile converted to the OCI form, or `unconfined`), apparmor, label and systempaths.

use berth_api::container::HostConfig;
use serde::Deserialize;
use serde_json::{json, Value};

use super::SpecError;

/// What the OCI `linux.seccomp` section may name (runtime-spec config-linux.md, as runc and
/// berth-runtime accept them): a profile naming anything else is refused at create.
const ACTIONS: [&str; 9] = [
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];
const OPERATORS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];
const ARCHITECTURES: [&str; 23] = [
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

/// What create checks so that no container is left created that can never start (Docker
/// finds these only at start and leaves the container behind): the security options (a
/// malformed seccomp profile, an LSM the host lacks) and the sysctls.
pub(crate) fn validate_at_create(host: &HostConfig) -> Result<(), SpecError> {
    parse(host.security_opt.as_deref().unwrap_or_default(), &[])?;
    super::resources::sysctls(host, host.network_mode == "host", host.ipc_mode == "host")?;
    Ok(())
}

/// Refuses actions, architectures and argument operators the runtime would refuse at start.
fn check_profile(profile: &Profile) -> Result<(), SpecError> {
    let bad = |what: &str, value: &str| {
        Err(SpecError::InvalidArgument(format!(
            "decoding seccomp profile failed: unknown {what} {value:?}"
        )))
    };
    let actions =
        std::iter::once(&profile.default_action).chain(profile.syscalls.iter().map(|r| &r.action));
    for action in actions {
        if !ACTIONS.contains(&action.as_str()) {
            return bad("action", action);
        }
    }
    let arches = profile.architectures.iter().chain(
        profile
            .arch_map
            .iter()
            .flat_map(|m| std::iter::once(&m.architecture).chain(&m.sub_architectures)),
    );
    for arch in arches {
        if !ARCHITECTURES.contains(&arch.as_str()) {
            return bad("architecture", arch);
        }
    }
    for arg in profile.syscalls.iter().flat_map(|r| &r.args) {
        let op = arg["op"].as_str().unwrap_or_default();
        if !OPERATORS.contains(&op) {
            return bad("argument operator", op);
        }
        if !arg["index"].is_u64() {
            return bad("argument index", &arg["index"].to_string());
        }
    }
    Ok(())
}

/// What the security options ask for.
#[derive(Debug, Default, PartialEq)]
pub struct SecurityOptions {
    pub no_new_privileges: bool,
    /// The OCI `linux.seccomp` section: the default profile, the one given, or none for
    /// `seccomp=unconfined`.
    pub seccomp: Option<Value>,
    /// `systempaths=unconfined`: no masked or read-only paths.
    pub unconfined_paths: bool,
    /// `apparmor=PROFILE` on a host with AppArmor: `process.apparmorProfile`.
    pub apparmor_profile: Option<String>,
}

/// The Linux security modules of the host (detected like runc does).
#[derive(Debug, Clone, Copy, Default)]
pub struct LsmSupport {
    pub apparmor: bool,
    pub selinux: bool,
}

impl LsmSupport {
    pub fn detect() -> LsmSupport {
        let apparmor = std::path::Path::new("/sys/kernel/security/apparmor").exists()
            && std::fs::read("/sys/module/apparmor/parameters/enabled")
                .is_ok_and(|b| b.first() == Some(&b'Y'));
        // The field's type differs between architectures, hence the cast.
        #[allow(clippy::unnecessary_cast)]
        let selinux =
            rustix::fs::statfs("/sys/fs/selinux").is_ok_and(|s| s.f_type as u64 == SELINUX_MAGIC);
        LsmSupport { apparmor, selinux }
    }
}

/// `SELINUX_MAGIC` from linux/magic.h.
const SELINUX_MAGIC: u64 = 0xf97c_ff8c;

/// Parses `HostConfig.SecurityOpt` (the CLI sends a seccomp profile's JSON content, not
/// its path) against the capabilities the process will have, on this host.
pub fn parse(options: &[String], capabilities: &[String]) -> Result<SecurityOptions, SpecError> {
    parse_with(options, capabilities, LsmSupport::detect())
}

/// [`parse`] with the host's security modules given.
pub fn parse_with(
    options: &[String],
    capabilities: &[String],
    lsm: LsmSupport,
) -> Result<SecurityOptions, SpecError> {
    let mut parsed = SecurityOptions::default();
    let mut seccomp = Some(super::seccomp::default_profile(capabilities));
    for option in options {
        // `key=value`, or Docker's legacy `key:value`.
        let (key, value) = match option.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => match option.split_once(':') {
                Some((key, value)) => (key, Some(value)),
                None => (option.as_str(), None),
            },
        };
        match (key, value) {
            ("no-new-privileges", None) => parsed.no_new_privileges = true,
            ("no-new-privileges", Some(v)) => {
                parsed.no_new_privileges = v.parse::<bool>().map_err(|_| {
                    SpecError::InvalidArgument(format!("invalid --security-opt 2: {option:?}"))
                })?
            }
            ("seccomp", Some("unconfined")) => seccomp = None,
            ("seccomp", Some(profile)) => seccomp = Some(convert_profile(profile, capabilities)?),
            ("label", Some("disable" | "nested")) => {}
            ("apparmor", Some("unconfined")) => {
                // On an AppArmor host the spec says so (moby), elsewhere there is nothing to lift.
                if lsm.apparmor {
                    parsed.apparmor_profile = Some("unconfined".to_string());
                }
            }
            // Docker ignores both silently on a host without the module; berth refuses, so
            // that nobody believes a container confined that is not (issue 8).
            ("apparmor", Some(profile)) if lsm.apparmor => {
                parsed.apparmor_profile = Some(profile.to_string())
            }
            ("apparmor", Some(profile)) => {
                return Err(SpecError::InvalidArgument(format!(
                    "apparmor profile {profile:?} cannot be applied: AppArmor is not enabled on this host (use --security-opt apparmor=unconfined or leave the option out)"
                )))
            }
            ("label", Some(label)) if lsm.selinux => {
                return Err(SpecError::NotImplemented(format!(
                    "--security-opt label={label}: SELinux labels are not implemented in berth yet (use label=disable)"
                )))
            }
            ("label", Some(label)) => {
                return Err(SpecError::InvalidArgument(format!(
                    "--security-opt label={label} cannot be applied: SELinux is not enabled on this host (use label=disable or leave the option out)"
                )))
            }
            ("systempaths", Some("unconfined")) => parsed.unconfined_paths = true,
            _ => {
                return Err(SpecError::InvalidArgument(format!(
                    "invalid --security-opt 2: {option:?}"
                )))
            }
        }
    }
    parsed.seccomp = seccomp;
    Ok(parsed)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    syscalls: Vec<Syscall>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default)]
    name: String,
    #[serde(default)]
    names: Vec<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<Value>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize, Default)]
struct Filter {
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    caps: Vec<String>,
}

/// The libseccomp name of this build's architecture.
fn native_scmp_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "x86" => "SCMP_ARCH_X86",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "s390x" => "SCMP_ARCH_S390X",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => "",
    }
}

/// Docker's profile format → OCI seccomp (moby's `setupSeccomp`): the native architecture
/// and its sub-architectures, and only the rules whose includes/excludes match this
/// architecture and the process's capabilities.
fn convert_profile(text: &str, capabilities: &[String]) -> Result<Value, SpecError> {
    let profile: Profile = serde_json::from_str(text)
        .map_err(|e| SpecError::InvalidArgument(format!("decoding seccomp profile failed: {e}")))?;
    check_profile(&profile)?;
    let arch = super::seccomp::native_arch();
    let mut architectures = profile.architectures.clone();
    if architectures.is_empty() {
        for entry in &profile.arch_map {
            if entry.architecture == native_scmp_arch() {
                architectures.push(entry.architecture.clone());
                architectures.extend(entry.sub_architectures.iter().cloned());
            }
        }
    }
    let mut syscalls = Vec::new();
    for rule in profile.syscalls {
        let included = (rule.includes.arches.is_empty()
            || rule.includes.arches.iter().any(|a| a == arch))
            && rule.includes.caps.iter().all(|c| capabilities.contains(c));
        let excluded = rule.excludes.arches.iter().any(|a| a == arch)
            || rule.excludes.caps.iter().any(|c| capabilities.contains(c));
        if !included || excluded {
            continue;
        }
        let mut names = rule.names;
        if !rule.name.is_empty() {
            names.push(rule.name);
        }
        let mut entry = json!({"names": names, "action": rule.action});
        if let Some(errno) = rule.errno_ret {
            entry["errnoRet"] = errno.into();
        }
        if !rule.args.is_empty() {
            entry["args"] = rule.args.into();
        }
        syscalls.push(entry);
    }
    let mut seccomp = json!({"defaultAction": profile.default_action});
    if let Some(errno) = profile.default_errno_ret {
        seccomp["defaultErrnoRet"] = errno.into();
    }
    if !architectures.is_empty() {
        seccomp["architectures"] = architectures.into();
    }
    if !profile.flags.is_empty() {
        seccomp["flags"] = profile.flags.into();
    }
    if !syscalls.is_empty() {
        seccomp["syscalls"] = syscalls.into();
    }
    Ok(seccomp)
}

#[cfg(test)]
mod tests {
    use super::super::seccomp::native_arch;
    use super::*;

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_new_privileges_in_every_spelling() {
        for option in [
            "no-new-privileges",
            "no-new-privileges=true",
            "no-new-privileges:true",
        ] {
            assert!(
                parse(&opts(&[option]), &[])
                    .expect(option)
                    .no_new_privileges
            );
        }
        assert!(
            !parse(&opts(&["no-new-privileges=false"]), &[])
                .expect("false")
                .no_new_privileges
        );
    }

    #[test]
    fn no_options_mean_the_default_profile_and_unconfined_means_none() {
        let default = parse(&[], &[]).expect("none").seccomp.expect("default");
        assert_eq!(default["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(
            default,
            super::super::seccomp::default_profile(&[]),
            "the profile follows the capabilities given"
        );
        assert_eq!(
            parse(&opts(&["seccomp=unconfined"]), &[])
                .expect("unconfined")
                .seccomp,
            None
        );
    }

    #[test]
    fn docker_profiles_convert_to_oci_for_this_arch_and_caps() {
        let profile = format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
                "archMap":[{{"architecture":"{}","subArchitectures":["SCMP_ARCH_X86"]}},
                           {{"architecture":"SCMP_ARCH_MIPS","subArchitectures":[]}}],
                "syscalls":[
                  {{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}},
                  {{"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{{"caps":["CAP_SYS_PTRACE"]}}}},
                  {{"names":["personality"],"action":"SCMP_ACT_ALLOW","excludes":{{"arches":["{}"]}}}},
                  {{"names":["mount"],"action":"SCMP_ACT_ERRNO","errnoRet":38,
                    "args":[{{"index":0,"value":1,"op":"SCMP_CMP_EQ"}}]}}]}}"#,
            native_scmp_arch(),
            native_arch()
        );
        let option = format!("seccomp={profile}");
        let caps = opts(&["CAP_CHOWN"]);
        let seccomp = parse(&[option], &caps)
            .expect("profile")
            .seccomp
            .expect("seccomp");
        assert_eq!(seccomp["defaultErrnoRet"], 1);
        assert_eq!(
            seccomp["architectures"],
            json!([native_scmp_arch(), "SCMP_ARCH_X86"])
        );
        let names: Vec<_> = seccomp["syscalls"]
            .as_array()
            .expect("syscalls")
            .iter()
            .map(|s| s["names"][0].clone())
            .collect();
        assert_eq!(names, vec![json!("read"), json!("mount")]);
        assert_eq!(seccomp["syscalls"][1]["errnoRet"], 38);
        assert_eq!(seccomp["syscalls"][1]["args"][0]["op"], "SCMP_CMP_EQ");
    }

    #[test]
    fn bad_options_and_profiles_are_refused() {
        let err = parse(&opts(&["bogus"]), &[]).expect_err("bogus");
        assert_eq!(err.to_string(), "invalid --security-opt 2: \"bogus\"");
        let err = parse(&opts(&["seccomp={not json"]), &[]).expect_err("json");
        assert!(
            err.to_string()
                .starts_with("decoding seccomp profile failed"),
            "{err}"
        );
        let none = LsmSupport::default();
        let err = parse_with(&opts(&["apparmor=docker-default"]), &[], none).expect_err("aa");
        assert!(err.to_string().contains("AppArmor is not enabled"), "{err}");
        let err = parse_with(&opts(&["label=type:spc_t"]), &[], none).expect_err("label");
        assert!(err.to_string().contains("SELinux is not enabled"), "{err}");
        for ok in ["apparmor=unconfined", "label=disable", "label:disable"] {
            assert!(parse_with(&opts(&[ok]), &[], none).is_ok(), "{ok}");
        }
        let apparmor = LsmSupport {
            apparmor: true,
            selinux: false,
        };
        let parsed = parse_with(&opts(&["apparmor=unconfined"]), &[], apparmor).expect("aa");
        assert_eq!(parsed.apparmor_profile.as_deref(), Some("unconfined"));
        let parsed = parse_with(&opts(&["apparmor=unconfined"]), &[], none).expect("aa");
        assert_eq!(parsed.apparmor_profile, None);
        let parsed = parse_with(&opts(&["apparmor=my-profile"]), &[], apparmor).expect("aa");
        assert_eq!(parsed.apparmor_profile.as_deref(), Some("my-profile"));
        assert!(
            parse(&opts(&["systempaths=unconfined"]), &[])
                .expect("paths")
                .unconfined_paths
        );
    }

    #[test]
    fn profiles_naming_what_the_runtime_refuses_are_refused_before_create() {
        let cases = [
            (
                r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#,
                "unknown action \"SCMP_ACT_BOGUS\"",
            ),
            (r#"{"syscalls":[]}"#, "missing field `defaultAction`"),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"ALLOW"}]}"#,
                "unknown action \"ALLOW\"",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_Z80"]}"#,
                "unknown architecture \"SCMP_ARCH_Z80\"",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_ALMOST"}]}]}"#,
                "unknown argument operator \"SCMP_CMP_ALMOST\"",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":-1,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#,
                "unknown argument index \"-1\"",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":"read"}"#,
                "invalid type",
            ),
        ];
        for (profile, want) in cases {
            let err = parse(&opts(&[&format!("seccomp={profile}")]), &[]).expect_err(profile);
            let text = err.to_string();
            assert!(
                text.starts_with("decoding seccomp profile failed") && text.contains(want),
                "{profile}: {text}"
            );
        }
        let good = r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#;
        assert!(parse(&opts(&[&format!("seccomp={good}")]), &[]).is_ok());
    }

    #[test]
    fn create_refuses_bad_sysctls_and_security_options() {
        let host = |json: &str| -> HostConfig { serde_json::from_str(json).expect("host config") };
        let err = validate_at_create(&host(
            r#"{"NetworkMode":"host","Sysctls":{"net.ipv4.ip_forward":"1"}}"#,
        ))
        .expect_err("host net sysctl");
        assert!(
            err.to_string()
                .contains("not allowed in host network namespace"),
            "{err}"
        );
        let err = validate_at_create(&host(r#"{"Sysctls":{"kernel.panic":"1"}}"#))
            .expect_err("host-wide sysctl");
        assert!(
            err.to_string()
                .contains("is not in a separate kernel namespace"),
            "{err}"
        );
        let err =
            validate_at_create(&host(r#"{"SecurityOpt":["seccomp={}"]}"#)).expect_err("profile");
        assert!(
            err.to_string()
                .starts_with("decoding seccomp profile failed"),
            "{err}"
        );
        assert!(validate_at_create(&host(r#"{"Sysctls":{"net.ipv4.ip_forward":"1"}}"#)).is_ok());
    }
}
