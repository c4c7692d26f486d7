//! Linux security modules as runc treats them: AppArmor profiles (`process.apparmorProfile`)
//! and SELinux labels (`process.selinuxLabel`, `linux.mountLabel`), detected on the host,
//! refused early when requested but unavailable, applied on exec in the container init.

use std::io;
use std::path::Path;

/// `SELINUX_MAGIC` from linux/magic.h.
const SELINUX_MAGIC: u64 = 0xf97c_ff8c;

#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    #[error("apparmor profile {profile:?} is requested but apparmor is not enabled on this host (remove process.apparmorProfile)")]
    ApparmorNotEnabled { profile: String },
    #[error("selinux label {label:?} is specified in config, but selinux is disabled or not supported (remove process.selinuxLabel)")]
    SelinuxNotEnabled { label: String },
    #[error("apply apparmor profile {profile:?}")]
    ApparmorApply {
        profile: String,
        #[source]
        source: io::Error,
    },
    #[error("set selinux exec label {label:?}")]
    SelinuxApply {
        label: String,
        #[source]
        source: io::Error,
    },
}

/// Whether AppArmor is enabled, checked like runc: securityfs has an apparmor directory
/// and the module parameter says `Y`.
pub fn apparmor_enabled() -> bool {
    apparmor_enabled_at(
        Path::new("/sys/kernel/security/apparmor"),
        Path::new("/sys/module/apparmor/parameters/enabled"),
    )
}

fn apparmor_enabled_at(securityfs_dir: &Path, enabled_param: &Path) -> bool {
    securityfs_dir.exists() && std::fs::read(enabled_param).is_ok_and(|b| b.first() == Some(&b'Y'))
}

/// Whether SELinux is enabled: selinuxfs is mounted at /sys/fs/selinux.
pub fn selinux_enabled() -> bool {
    rustix::fs::statfs("/sys/fs/selinux").is_ok_and(|s| s.f_type as u64 == SELINUX_MAGIC)
}

fn nonempty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// Parent-side check of `process.apparmorProfile`. runc writes the profile in the init
/// and fails there when AppArmor is missing; berth refuses it before anything is created.
pub fn check_apparmor(profile: Option<&str>) -> Result<(), LsmError> {
    check_apparmor_with(apparmor_enabled(), profile)
}

fn check_apparmor_with(enabled: bool, profile: Option<&str>) -> Result<(), LsmError> {
    match nonempty(profile) {
        Some(p) if !enabled => Err(LsmError::ApparmorNotEnabled {
            profile: p.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Parent-side check of `process.selinuxLabel`, as runc's config validator: a label on a
/// host without SELinux is an error. `linux.mountLabel` needs no check: runc ignores it
/// when SELinux is off.
pub fn check_selinux(process_label: Option<&str>) -> Result<(), LsmError> {
    check_selinux_with(selinux_enabled(), process_label)
}

fn check_selinux_with(enabled: bool, label: Option<&str>) -> Result<(), LsmError> {
    match nonempty(label) {
        Some(l) if !enabled => Err(LsmError::SelinuxNotEnabled {
            label: l.to_string(),
        }),
        _ => Ok(()),
    }
}

/// In the container init, before execve: makes the kernel switch to `profile` on exec
/// (what libapparmor's aa_change_onexec does). No profile, nothing to do.
pub fn apply_apparmor(profile: Option<&str>) -> Result<(), LsmError> {
    let Some(p) = nonempty(profile) else {
        return Ok(());
    };
    check_apparmor(Some(p))?;
    let modern = Path::new("/proc/thread-self/attr/apparmor/exec");
    let path = if modern.exists() {
        modern
    } else {
        Path::new("/proc/thread-self/attr/exec")
    };
    std::fs::write(path, format!("exec {p}")).map_err(|source| LsmError::ApparmorApply {
        profile: p.to_string(),
        source,
    })
}

/// In the container init, before execve: sets the SELinux label the process gets on exec.
pub fn apply_selinux_label(label: Option<&str>) -> Result<(), LsmError> {
    let Some(l) = nonempty(label) else {
        return Ok(());
    };
    check_selinux(Some(l))?;
    std::fs::write("/proc/thread-self/attr/exec", l).map_err(|source| LsmError::SelinuxApply {
        label: l.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apparmor_is_enabled_only_with_securityfs_dir_and_y_parameter() {
        let dir = tempfile::tempdir().unwrap();
        let securityfs = dir.path().join("apparmor");
        let param = dir.path().join("enabled");
        assert!(!apparmor_enabled_at(&securityfs, &param));
        std::fs::create_dir(&securityfs).unwrap();
        assert!(!apparmor_enabled_at(&securityfs, &param));
        std::fs::write(&param, "N\n").unwrap();
        assert!(!apparmor_enabled_at(&securityfs, &param));
        std::fs::write(&param, "Y\n").unwrap();
        assert!(apparmor_enabled_at(&securityfs, &param));
    }

    #[test]
    fn apparmor_profile_without_apparmor_is_refused() {
        let err = check_apparmor_with(false, Some("docker-default")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "apparmor profile \"docker-default\" is requested but apparmor is not enabled on \
             this host (remove process.apparmorProfile)"
        );
        check_apparmor_with(true, Some("docker-default")).unwrap();
        check_apparmor_with(false, None).unwrap();
        check_apparmor_with(false, Some("")).unwrap();
    }

    #[test]
    fn selinux_label_without_selinux_is_refused_like_runc() {
        let err = check_selinux_with(false, Some("system_u:system_r:container_t:s0")).unwrap_err();
        assert!(err
            .to_string()
            .contains("is specified in config, but selinux is disabled or not supported"));
        check_selinux_with(true, Some("system_u:system_r:container_t:s0")).unwrap();
        check_selinux_with(false, None).unwrap();
    }

    #[test]
    fn host_checks_agree_with_detection() {
        // On this host either module may be present or not; the checks follow detection.
        assert_eq!(check_apparmor(Some("p")).is_ok(), apparmor_enabled());
        assert_eq!(check_selinux(Some("l")).is_ok(), selinux_enabled());
        apply_apparmor(None).unwrap();
        apply_selinux_label(Some("")).unwrap();
    }
}
