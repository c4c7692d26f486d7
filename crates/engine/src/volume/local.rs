//! The local driver's options (`type`, `device`, `o`, as moby's `volume/local`): checked
//! at create, mounted on the volume's `_data` when the first container uses it and
//! unmounted when the last one stops.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::Path;

use super::VolumeError;

/// Options the local driver accepts (`size` needs a quota-capable filesystem, which
/// berth does not manage: refused like Docker on a host without quota support).
const VALID_OPTIONS: [&str; 4] = ["type", "o", "device", "size"];

/// Checks the options of `volume create --opt` as moby's `validateOpts`.
pub fn validate_options(options: &BTreeMap<String, String>) -> Result<(), VolumeError> {
    for key in options.keys() {
        if !VALID_OPTIONS.contains(&key.as_str()) {
            return Err(VolumeError::InvalidArgument(format!(
                "invalid option: {key:?}"
            )));
        }
    }
    if options.contains_key("size") {
        return Err(VolumeError::InvalidArgument(
            "quota size requested but no quota support".to_string(),
        ));
    }
    Ok(())
}

/// Whether the volume is a mount of its own rather than a plain directory.
pub fn needs_mount(options: &BTreeMap<String, String>) -> bool {
    ["type", "device", "o"]
        .iter()
        .any(|key| options.get(*key).is_some_and(|v| !v.is_empty()))
}

/// Mount flags and the filesystem data left over (moby/sys/mount's `ParseOptions`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ParsedOptions {
    pub flags: libc::c_ulong,
    pub propagation: libc::c_ulong,
    pub data: String,
}

/// Splits `o=` into mount flags, propagation flags and filesystem data.
pub fn parse_options(text: &str) -> ParsedOptions {
    let mut parsed = ParsedOptions::default();
    let mut data = Vec::new();
    for option in text.split(',').filter(|o| !o.is_empty()) {
        let (clear, flag): (bool, libc::c_ulong) = match option {
            "defaults" => continue,
            "ro" => (false, libc::MS_RDONLY),
            "rw" => (true, libc::MS_RDONLY),
            "suid" => (true, libc::MS_NOSUID),
            "nosuid" => (false, libc::MS_NOSUID),
            "dev" => (true, libc::MS_NODEV),
            "nodev" => (false, libc::MS_NODEV),
            "exec" => (true, libc::MS_NOEXEC),
            "noexec" => (false, libc::MS_NOEXEC),
            "sync" => (false, libc::MS_SYNCHRONOUS),
            "async" => (true, libc::MS_SYNCHRONOUS),
            "dirsync" => (false, libc::MS_DIRSYNC),
            "remount" => (false, libc::MS_REMOUNT),
            "mand" => (false, libc::MS_MANDLOCK),
            "nomand" => (true, libc::MS_MANDLOCK),
            "atime" => (true, libc::MS_NOATIME),
            "noatime" => (false, libc::MS_NOATIME),
            "diratime" => (true, libc::MS_NODIRATIME),
            "nodiratime" => (false, libc::MS_NODIRATIME),
            "bind" => (false, libc::MS_BIND),
            "rbind" => (false, libc::MS_BIND | libc::MS_REC),
            "relatime" => (false, libc::MS_RELATIME),
            "norelatime" => (true, libc::MS_RELATIME),
            "strictatime" => (false, libc::MS_STRICTATIME),
            "nostrictatime" => (true, libc::MS_STRICTATIME),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                parsed.propagation = propagation_flags(option);
                continue;
            }
            other => {
                data.push(other);
                continue;
            }
        };
        if clear {
            parsed.flags &= !flag;
        } else {
            parsed.flags |= flag;
        }
    }
    parsed.data = data.join(",");
    parsed
}

fn propagation_flags(option: &str) -> libc::c_ulong {
    // rprivate, rshared, rslave, runbindable: the recursive forms.
    let recursive = if option.starts_with('r') {
        libc::MS_REC
    } else {
        0
    };
    let kind = match option.strip_prefix('r').unwrap_or(option) {
        "private" => libc::MS_PRIVATE,
        "shared" => libc::MS_SHARED,
        "slave" => libc::MS_SLAVE,
        _ => libc::MS_UNBINDABLE,
    };
    kind | recursive
}

fn c_path(path: &Path) -> Result<CString, VolumeError> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| VolumeError::InvalidArgument(format!("invalid path {}", path.display())))
}

fn c_text(text: &str) -> Result<CString, VolumeError> {
    CString::new(text)
        .map_err(|_| VolumeError::InvalidArgument(format!("invalid mount option {text:?}")))
}

fn sys_mount(
    source: Option<&CString>,
    target: &CString,
    fstype: Option<&CString>,
    flags: libc::c_ulong,
    data: Option<&CString>,
) -> std::io::Result<()> {
    let ptr = |c: Option<&CString>| c.map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is null or a NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            ptr(source),
            target.as_ptr(),
            ptr(fstype),
            flags,
            ptr(data).cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Mounts the volume's device on `path` (moby's `localVolume.mount`).
pub fn mount(options: &BTreeMap<String, String>, path: &Path) -> Result<(), VolumeError> {
    let device = options.get("device").map(String::as_str).unwrap_or("");
    if device.is_empty() {
        return Err(VolumeError::InvalidArgument(
            "missing device in volume options".to_string(),
        ));
    }
    let fstype = options.get("type").map(String::as_str).unwrap_or("");
    let parsed = parse_options(options.get("o").map(String::as_str).unwrap_or(""));
    let target = c_path(path)?;
    let source = c_text(device)?;
    let fstype_c = c_text(fstype)?;
    let data_c = c_text(&parsed.data)?;
    let failed = |e: std::io::Error| {
        VolumeError::Mount(format!(
            "failed to mount local volume: mount {device}:{}, flags: {:#x}, data: {}: {}",
            path.display(),
            parsed.flags,
            parsed.data,
            errno_text(&e)
        ))
    };
    let bind = parsed.flags & libc::MS_BIND != 0;
    let fstype_arg = (!fstype.is_empty() && !bind).then_some(&fstype_c);
    let data_arg = (!parsed.data.is_empty()).then_some(&data_c);
    sys_mount(Some(&source), &target, fstype_arg, parsed.flags, data_arg).map_err(failed)?;
    if bind && parsed.flags & libc::MS_RDONLY != 0 {
        // A bind mount ignores MS_RDONLY until it is remounted.
        let flags = parsed.flags | libc::MS_REMOUNT;
        if let Err(e) = sys_mount(None, &target, None, flags, None) {
            let _ = unmount(path);
            return Err(failed(e));
        }
    }
    if parsed.propagation != 0 {
        if let Err(e) = sys_mount(None, &target, None, parsed.propagation, None) {
            let _ = unmount(path);
            return Err(failed(e));
        }
    }
    Ok(())
}

/// Go's text for an errno (`no such file or directory`), as moby's errors end.
fn errno_text(error: &std::io::Error) -> String {
    let text = error.to_string();
    let text = match text.find(" (os error") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.to_lowercase()
}

/// Unmounts what is mounted on `path` (lazily, so that a busy mount goes once unused).
pub fn unmount(path: &Path) -> Result<(), VolumeError> {
    let target = c_path(path)?;
    // SAFETY: `target` is a NUL-terminated path that outlives the call.
    let rc = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    if rc == 0 {
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        // Not mounted (any more): nothing to do.
        Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()),
        _ => Err(VolumeError::Io {
            context: format!("unmounting {}", path.display()),
            source: error,
        }),
    }
}

/// Whether something is mounted exactly on `path` (from /proc/self/mountinfo).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.to_string_lossy().replace(' ', "\\040");
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|mount_point| mount_point == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_outside_type_device_o_are_refused() {
        let mut options = BTreeMap::new();
        options.insert("type".to_string(), "tmpfs".to_string());
        options.insert("device".to_string(), "tmpfs".to_string());
        options.insert("o".to_string(), "size=1m".to_string());
        assert!(validate_options(&options).is_ok());
        assert!(needs_mount(&options));
        options.insert("colour".to_string(), "red".to_string());
        assert_eq!(
            validate_options(&options).expect_err("unknown").to_string(),
            "invalid option: \"colour\""
        );
        assert!(!needs_mount(&BTreeMap::new()));
    }

    #[test]
    fn o_splits_into_flags_and_data_like_moby() {
        let parsed = parse_options("size=10m,uid=1000,ro,nosuid,noexec,rw");
        assert_eq!(parsed.flags, libc::MS_NOSUID | libc::MS_NOEXEC);
        assert_eq!(parsed.data, "size=10m,uid=1000");
        let parsed = parse_options("bind,ro,rshared");
        assert_eq!(parsed.flags, libc::MS_BIND | libc::MS_RDONLY);
        assert_eq!(parsed.propagation, libc::MS_SHARED | libc::MS_REC);
        assert_eq!(parse_options("rbind").flags, libc::MS_BIND | libc::MS_REC);
        assert_eq!(parse_options("private").propagation, libc::MS_PRIVATE);
        assert_eq!(parse_options("defaults").flags, 0);
    }

    #[test]
    fn a_volume_without_device_cannot_mount() {
        let mut options = BTreeMap::new();
        options.insert("type".to_string(), "tmpfs".to_string());
        assert_eq!(
            mount(&options, Path::new("/nonexistent"))
                .expect_err("no device")
                .to_string(),
            "missing device in volume options"
        );
    }
}
