//! AppArmor for containers, as Docker does on AppArmor hosts: the process profile a
//! container gets (`berth-default` unless `--privileged` or `apparmor=<name>`), berth's own
//! default profile text (the confinement of Docker's `docker-default`: no mounts, no writes
//! to /proc's kernel knobs or /sys outside cgroupfs, no raw kernel memory, signals and
//! ptrace only among berth-default processes), and loading it with apparmor_parser when the
//! kernel does not have it yet. Hosts without AppArmor get no profile at all; asking for one
//! there is refused in `security.rs`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The profile every non-privileged container runs under on an AppArmor host.
pub const DEFAULT_PROFILE: &str = "berth-default";
/// The pseudo-profile that means "no confinement".
pub const UNCONFINED: &str = "unconfined";

/// Why a container's AppArmor profile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AppArmorError {
    /// `apparmor=<name>` names a profile the kernel does not have.
    #[error("unable to apply apparmor profile: apparmor profile {0:?} is not loaded (load it with apparmor_parser first, or use --security-opt apparmor=unconfined)")]
    NotLoaded(String),
    /// Loading berth-default failed (Docker's wording).
    #[error(
        "AppArmor enabled on system but the {DEFAULT_PROFILE} profile could not be loaded: {0}"
    )]
    Load(String),
}

/// The host's AppArmor, seen through a sysfs root (`/sys`, or a fake tree in tests).
#[derive(Debug, Clone)]
pub struct AppArmorHost {
    sys: PathBuf,
    /// Where the `tunables/global` and `abstractions/base` includes would be.
    apparmor_d: PathBuf,
}

impl AppArmorHost {
    /// The real host.
    pub fn detect() -> AppArmorHost {
        AppArmorHost::at(Path::new("/sys"), Path::new("/etc/apparmor.d"))
    }

    /// A host whose sysfs is at `sys` and whose profile includes are under `apparmor_d`.
    pub fn at(sys: &Path, apparmor_d: &Path) -> AppArmorHost {
        AppArmorHost {
            sys: sys.to_path_buf(),
            apparmor_d: apparmor_d.to_path_buf(),
        }
    }

    fn securityfs(&self) -> PathBuf {
        self.sys.join("kernel/security/apparmor")
    }

    /// runc's test: the module parameter says `Y` and securityfs shows the apparmor dir.
    pub fn enabled(&self) -> bool {
        self.securityfs().is_dir()
            && std::fs::read(self.sys.join("module/apparmor/parameters/enabled"))
                .is_ok_and(|b| b.first() == Some(&b'Y'))
    }

    /// Whether the kernel has profile `name` (`<name> (<mode>)` lines of `profiles`).
    pub fn is_loaded(&self, name: &str) -> bool {
        std::fs::read_to_string(self.securityfs().join("profiles")).is_ok_and(|text| {
            text.lines()
                .any(|line| line.rsplit_once(" (").map(|(n, _)| n) == Some(name))
        })
    }

    /// The text of berth-default for this host (includes only where the host has them).
    pub fn default_profile(&self) -> String {
        let has = |include: &str| self.apparmor_d.join(include).is_file();
        profile_text(
            DEFAULT_PROFILE,
            has("tunables/global"),
            has("abstractions/base"),
        )
    }

    /// Makes sure `profile` can be applied: `unconfined` always can, berth-default is
    /// loaded with apparmor_parser when missing, any other name must be loaded already.
    pub fn ensure(&self, profile: &str) -> Result<(), AppArmorError> {
        if profile == UNCONFINED || self.is_loaded(profile) {
            return Ok(());
        }
        if profile != DEFAULT_PROFILE {
            return Err(AppArmorError::NotLoaded(profile.to_string()));
        }
        load(&self.default_profile()).map_err(AppArmorError::Load)
    }
}

/// The `process.apparmorProfile` of a container (moby's WithApparmor): none without
/// AppArmor; the requested one (`apparmor=<name>`, including `unconfined`); `unconfined`
/// for `--privileged`; berth-default otherwise.
pub fn process_profile(enabled: bool, requested: Option<&str>, privileged: bool) -> Option<String> {
    if !enabled {
        return None;
    }
    Some(match (requested, privileged) {
        (Some(name), _) => name.to_string(),
        (None, true) => UNCONFINED.to_string(),
        (None, false) => DEFAULT_PROFILE.to_string(),
    })
}

/// Loads (or replaces) a profile from its text: `apparmor_parser -Kr` on a temporary file,
/// as dockerd loads docker-default (-K: no cache files on the host).
fn load(text: &str) -> Result<(), String> {
    let mut file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    file.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    let output = Command::new("apparmor_parser")
        .arg("-Kr")
        .arg(file.path())
        .output()
        .map_err(|e| format!("running apparmor_parser: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "apparmor_parser -Kr failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// berth's default profile `name`. The rules give the effect of Docker's docker-default:
/// everything a container normally does (files, network, capabilities the runtime left it)
/// is allowed, and the host-facing knobs no container needs are denied.
pub fn profile_text(name: &str, tunables: bool, base: bool) -> String {
    let mut text = String::new();
    if tunables {
        text.push_str("#include <tunables/global>\n\n");
    }
    text.push_str(&format!(
        "profile {name} flags=(attach_disconnected,mediate_deleted) {{\n"
    ));
    if base {
        text.push_str("  #include <abstractions/base>\n\n");
    }
    let signal_peer = format!("signal (send,receive) peer={name},");
    let ptrace_peer = format!("ptrace (trace,read,tracedby,readby) peer={name},");
    let rules = [
        "# What a container's processes do every day: capabilities are already limited by",
        "# the runtime's bounding set, files by the mount namespace.",
        "network,",
        "capability,",
        "file,",
        "umount,",
        "",
        "# Signals from the host; among containers only within this profile.",
        "signal (receive) peer=unconfined,",
        signal_peer.as_str(),
        "",
        "# Mounting stays outside (CAP_SYS_ADMIN containers included).",
        "deny mount,",
        "",
        "# /proc: files at its top and other processes' trees are read-only, kernel knobs",
        "# under /proc/sys are read-only except kernel.shm*, and the raw interfaces are closed.",
        "deny /proc/* w,",
        "deny /proc/{[^1-9],[^1-9][^0-9],[^1-9s][^0-9y][^0-9s],[^1-9][^0-9][^0-9][^0-9/]*}/** w,",
        "deny /proc/sys/[^k]** w,",
        "deny /proc/sys/kernel/{?,??,[^s][^h][^m]**} w,",
        "deny /proc/sysrq-trigger rwklx,",
        "deny /proc/kcore rwklx,",
        "",
        "# /sys: only the cgroup filesystem may be written; firmware, power capping and",
        "# securityfs are not even readable.",
        "deny /sys/[^f]*/** wklx,",
        "deny /sys/f[^s]*/** wklx,",
        "deny /sys/fs/[^c]*/** wklx,",
        "deny /sys/fs/c[^g]*/** wklx,",
        "deny /sys/fs/cg[^r]*/** wklx,",
        "deny /sys/firmware/** rwklx,",
        "deny /sys/devices/virtual/powercap/** rwklx,",
        "deny /sys/kernel/security/** rwklx,",
        "",
        "# ptrace only between processes of this profile (never of the host).",
        ptrace_peer.as_str(),
    ];
    for rule in rules {
        if rule.is_empty() {
            text.push('\n');
        } else {
            text.push_str("  ");
            text.push_str(rule);
            text.push('\n');
        }
    }
    text.push_str("}\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake host: sysfs with or without AppArmor, loaded profiles, and includes.
    fn host(enabled: &str, securityfs: bool, profiles: &str) -> (tempfile::TempDir, AppArmorHost) {
        let dir = tempfile::tempdir().expect("tempdir");
        let sys = dir.path().join("sys");
        let params = sys.join("module/apparmor/parameters");
        std::fs::create_dir_all(&params).expect("mkdir");
        std::fs::write(params.join("enabled"), enabled).expect("param");
        if securityfs {
            let fs = sys.join("kernel/security/apparmor");
            std::fs::create_dir_all(&fs).expect("mkdir");
            std::fs::write(fs.join("profiles"), profiles).expect("profiles");
        }
        let host = AppArmorHost::at(&sys, &dir.path().join("apparmor.d"));
        (dir, host)
    }

    #[test]
    fn apparmor_is_enabled_only_with_y_and_securityfs() {
        assert!(host("Y\n", true, "").1.enabled());
        assert!(!host("N\n", true, "").1.enabled());
        assert!(!host("Y\n", false, "").1.enabled());
    }

    #[test]
    fn loaded_profiles_are_read_from_securityfs() {
        let (_d, h) = host(
            "Y",
            true,
            "berth-default (enforce)\n/usr/bin/man (complain)\nmy profile (enforce)\n",
        );
        assert!(h.is_loaded("berth-default"));
        assert!(h.is_loaded("/usr/bin/man"));
        assert!(h.is_loaded("my profile"));
        assert!(!h.is_loaded("berth"));
        assert!(!h.is_loaded("docker-default"));
    }

    #[test]
    fn containers_get_berth_default_unless_privileged_or_asked_otherwise() {
        assert_eq!(process_profile(false, None, false), None);
        assert_eq!(process_profile(false, None, true), None);
        assert_eq!(
            process_profile(true, None, false).as_deref(),
            Some(DEFAULT_PROFILE)
        );
        assert_eq!(
            process_profile(true, None, true).as_deref(),
            Some(UNCONFINED)
        );
        assert_eq!(
            process_profile(true, Some("unconfined"), false).as_deref(),
            Some(UNCONFINED)
        );
        // An explicit profile wins over --privileged, as in moby.
        assert_eq!(
            process_profile(true, Some("custom"), true).as_deref(),
            Some("custom")
        );
    }

    #[test]
    fn an_unknown_profile_is_refused_and_known_ones_pass() {
        let (_d, h) = host("Y", true, "custom (enforce)\nberth-default (enforce)\n");
        h.ensure("custom").expect("loaded");
        h.ensure(UNCONFINED).expect("unconfined");
        h.ensure(DEFAULT_PROFILE)
            .expect("already loaded: no parser run");
        let err = h.ensure("nosuch").expect_err("unknown");
        assert!(
            err.to_string().starts_with(
                "unable to apply apparmor profile: apparmor profile \"nosuch\" is not loaded"
            ),
            "{err}"
        );
    }

    #[test]
    fn the_default_profile_confines_like_docker_default() {
        let text = profile_text(DEFAULT_PROFILE, true, true);
        assert!(text.starts_with("#include <tunables/global>\n\nprofile berth-default flags=(attach_disconnected,mediate_deleted) {\n  #include <abstractions/base>\n"));
        for rule in [
            "  deny mount,\n",
            "  deny /proc/sysrq-trigger rwklx,\n",
            "  deny /proc/kcore rwklx,\n",
            "  deny /sys/firmware/** rwklx,\n",
            "  deny /sys/kernel/security/** rwklx,\n",
            "  deny /proc/sys/[^k]** w,\n",
            "  signal (send,receive) peer=berth-default,\n",
            "  ptrace (trace,read,tracedby,readby) peer=berth-default,\n",
            "  network,\n",
            "  capability,\n",
            "  file,\n",
        ] {
            assert!(text.contains(rule), "missing {rule:?} in\n{text}");
        }
        assert!(text.ends_with("}\n"));
        // Balanced braces: the parser needs exactly one profile block.
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }

    #[test]
    fn includes_are_left_out_where_the_host_has_none() {
        let (dir, h) = host("Y", true, "");
        let text = h.default_profile();
        assert!(!text.contains("#include"), "{text}");
        let d = dir.path().join("apparmor.d");
        std::fs::create_dir_all(d.join("tunables")).expect("mkdir");
        std::fs::create_dir_all(d.join("abstractions")).expect("mkdir");
        std::fs::write(d.join("tunables/global"), "").expect("write");
        std::fs::write(d.join("abstractions/base"), "").expect("write");
        let text = h.default_profile();
        assert!(text.contains("#include <tunables/global>"));
        assert!(text.contains("#include <abstractions/base>"));
    }
}
