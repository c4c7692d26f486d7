//! Linux capabilities of the container process: spec names to kernel numbers, dropping the
//! bounding set up to /proc/sys/kernel/cap_last_cap, and setting the other four sets exactly.

use std::io;
use std::str::FromStr;

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// Where the kernel says which capability number is its last one.
const CAP_LAST_CAP_PATH: &str = "/proc/sys/kernel/cap_last_cap";

/// `_LINUX_CAPABILITY_VERSION_3` (64-bit sets split in two 32-bit words).
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    #[error("read {CAP_LAST_CAP_PATH}")]
    LastCap {
        #[source]
        source: io::Error,
    },
    #[error("{CAP_LAST_CAP_PATH} holds {value:?}, not a capability number")]
    LastCapFormat { value: String },
    #[error("unknown capability {name} (not in this runtime's table)")]
    Unknown { name: String },
    #[error("drop capability {name} from the bounding set (the runtime needs CAP_SETPCAP)")]
    DropBounding {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("set effective, permitted and inheritable capabilities")]
    Capset {
        #[source]
        source: io::Error,
    },
    #[error("clear the ambient capability set")]
    AmbientClear {
        #[source]
        source: io::Error,
    },
    #[error("raise ambient capability {name}")]
    AmbientRaise {
        name: String,
        #[source]
        source: io::Error,
    },
}

/// Every capability name the runtime knows, indexed by its kernel number (linux/capability.h).
pub const CAPABILITY_NAMES: [&str; 41] = berth_oci::capability::NAMES;

/// The spec name of a capability (`CAP_SYS_ADMIN`).
pub fn name(c: Capability) -> String {
    // oci-spec's Display drops the CAP_ prefix; its serde name is the spec's.
    format!("CAP_{c}")
}

/// The kernel number of a capability named as in the spec (`CAP_SYS_ADMIN`).
pub fn number_of_name(name: &str) -> Result<u8, CapabilityError> {
    caps::Capability::from_str(name)
        .map(|c| c.index())
        .map_err(|_| CapabilityError::Unknown {
            name: name.to_string(),
        })
}

/// The kernel number of a capability.
pub fn number(c: Capability) -> Result<u8, CapabilityError> {
    number_of_name(&name(c))
}

/// The highest capability number this kernel knows.
///
/// The container init may run chrooted into a rootfs without /proc (the spec has no new
/// mount namespace, or joins one by path, so no /proc is mounted for it); runc has read
/// cap_last_cap before that point. Without the file, the kernel is asked directly:
/// PR_CAPBSET_READ fails with EINVAL for numbers above the last capability.
pub fn last_cap() -> Result<u8, CapabilityError> {
    let text = match std::fs::read_to_string(CAP_LAST_CAP_PATH) {
        Ok(text) => text,
        Err(source) => {
            return last_cap_by_probe(capability_exists).ok_or(CapabilityError::LastCap { source });
        }
    };
    text.trim()
        .parse()
        .map_err(|_| CapabilityError::LastCapFormat { value: text })
}

/// Whether the running kernel knows capability `n` (PR_CAPBSET_READ answers 0 or 1 for a
/// known one, EINVAL otherwise).
fn capability_exists(n: u8) -> bool {
    // SAFETY: PR_CAPBSET_READ takes an integer capability number; no pointers involved.
    unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(n), 0, 0, 0) >= 0 }
}

/// The highest number `exists` accepts, counting up from 0 (capability numbers are
/// contiguous); None when not even 0 exists.
fn last_cap_by_probe(exists: impl Fn(u8) -> bool) -> Option<u8> {
    let mut last = None;
    for n in 0..64u8 {
        if !exists(n) {
            break;
        }
        last = Some(n);
    }
    last
}

/// Parses a capability named as in the spec (`CAP_NET_ADMIN`).
pub fn parse(name: &str) -> Result<Capability, CapabilityError> {
    number_of_name(name)?;
    serde_json::from_value(serde_json::Value::from(name)).map_err(|_| CapabilityError::Unknown {
        name: name.to_string(),
    })
}

/// `exec --cap NAME...` as runc: each capability joins the bounding, effective and
/// permitted sets, and the ambient set only when the process already has an inheritable
/// set (ambient needs inheritable). Unknown names are an error here, since a person typed
/// them.
pub fn add_exec_caps(c: &mut LinuxCapabilities, names: &[String]) -> Result<(), CapabilityError> {
    let parsed = names
        .iter()
        .map(|n| parse(n))
        .collect::<Result<Vec<_>, _>>()?;
    let extend = |set: Option<Capabilities>| -> Capabilities {
        let mut set = set.unwrap_or_default();
        set.extend(parsed.iter().copied());
        set
    };
    c.set_bounding(Some(extend(c.bounding().clone())));
    c.set_effective(Some(extend(c.effective().clone())));
    c.set_permitted(Some(extend(c.permitted().clone())));
    if c.inheritable().is_some() {
        c.set_ambient(Some(extend(c.ambient().clone())));
    }
    Ok(())
}

/// Removes, like runc, capability names the runtime does not know from
/// `process.capabilities` of a config.json document before it is parsed (oci-spec refuses
/// unknown names; runc warns "ignoring unknown or unavailable capabilities" and goes on).
/// Returns the names removed, sorted, so the caller can warn about them.
pub fn strip_unknown(config: &mut serde_json::Value) -> Vec<String> {
    let mut removed = Vec::new();
    let Some(sets) = config
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return removed;
    };
    for set in [
        "bounding",
        "effective",
        "inheritable",
        "permitted",
        "ambient",
    ] {
        if let Some(list) = sets.get_mut(set).and_then(|l| l.as_array_mut()) {
            list.retain(|entry| match entry.as_str() {
                Some(n) if number_of_name(n).is_ok() => true,
                Some(n) => {
                    removed.push(n.to_string());
                    false
                }
                // Not a string: leave it for the parser to reject with its own message.
                None => true,
            });
        }
    }
    removed.sort();
    removed.dedup();
    removed
}

/// A set of capability numbers as the kernel's 64-bit mask, keeping only numbers up to
/// `last`: runc ignores capabilities the running kernel does not have.
fn mask(set: Option<&Capabilities>, last: u8) -> Result<u64, CapabilityError> {
    let mut bits = 0u64;
    for c in set.into_iter().flatten() {
        let n = number(*c)?;
        if n <= last && n < 64 {
            bits |= 1 << n;
        }
    }
    Ok(bits)
}

/// Drops every capability not in `c.bounding` from the bounding set, up to cap_last_cap.
/// Runs before the user switch (needs CAP_SETPCAP). A missing bounding list is the empty
/// set, as in runc.
pub fn drop_bounding(c: &LinuxCapabilities) -> Result<(), CapabilityError> {
    let last = last_cap()?;
    let keep = mask(c.bounding().as_ref(), last)?;
    for n in 0..=last {
        if n < 64 && keep & (1 << n) != 0 {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes an integer capability number; no pointers involved.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(n), 0, 0, 0) };
        if rc != 0 {
            return Err(CapabilityError::DropBounding {
                name: display_number(n),
                source: io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

fn display_number(n: u8) -> String {
    CAPABILITY_NAMES
        .get(usize::from(n))
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("capability {n}"))
}

#[repr(C)]
struct CapUserHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapUserData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets effective, permitted and inheritable in one capset(2) call, so no intermediate
/// state (e.g. effective larger than permitted) is ever refused by the kernel.
fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<(), CapabilityError> {
    let mut header = CapUserHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |v: u64| [(v & 0xffff_ffff) as u32, (v >> 32) as u32];
    let (e, p, i) = (split(effective), split(permitted), split(inheritable));
    let data = [0, 1].map(|w| CapUserData {
        effective: e[w],
        permitted: p[w],
        inheritable: i[w],
    });
    // SAFETY: header and data are valid repr(C) structs of the layout capset(2) expects for
    // version 3 (a header and two data words); the kernel only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapUserHeader,
            data.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(CapabilityError::Capset {
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// After the user switch: sets effective, permitted and inheritable exactly as listed, then
/// the ambient set. An ambient capability is raised only when it is also permitted and
/// inheritable, which the kernel requires (runc warns and skips the others).
pub fn apply(c: &LinuxCapabilities) -> Result<(), CapabilityError> {
    let last = last_cap()?;
    let effective = mask(c.effective().as_ref(), last)?;
    let permitted = mask(c.permitted().as_ref(), last)?;
    let inheritable = mask(c.inheritable().as_ref(), last)?;
    let ambient = mask(c.ambient().as_ref(), last)?;
    capset(effective, permitted, inheritable)?;
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes integer arguments only.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(CapabilityError::AmbientClear {
            source: io::Error::last_os_error(),
        });
    }
    for n in 0..=last.min(63) {
        let bit = 1u64 << n;
        if ambient & bit == 0 || permitted & bit == 0 || inheritable & bit == 0 {
            continue;
        }
        // SAFETY: PR_CAP_AMBIENT_RAISE takes an integer capability number; no pointers.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                libc::c_ulong::from(n),
                0,
                0,
            )
        };
        if rc != 0 {
            return Err(CapabilityError::AmbientRaise {
                name: display_number(n),
                source: io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_OCI: [Capability; 41] = {
        use Capability::*;
        [
            AuditControl,
            AuditRead,
            AuditWrite,
            BlockSuspend,
            Bpf,
            CheckpointRestore,
            Chown,
            DacOverride,
            DacReadSearch,
            Fowner,
            Fsetid,
            IpcLock,
            IpcOwner,
            Kill,
            Lease,
            LinuxImmutable,
            MacAdmin,
            MacOverride,
            Mknod,
            NetAdmin,
            NetBindService,
            NetBroadcast,
            NetRaw,
            Perfmon,
            Setgid,
            Setfcap,
            Setpcap,
            Setuid,
            SysAdmin,
            SysBoot,
            SysChroot,
            SysModule,
            SysNice,
            SysPacct,
            SysPtrace,
            SysRawio,
            SysResource,
            SysTime,
            SysTtyConfig,
            Syslog,
            WakeAlarm,
        ]
    };

    #[test]
    fn every_spec_capability_maps_to_its_kernel_number() {
        for c in ALL_OCI {
            let spec_name = serde_json::to_value(c).unwrap();
            assert_eq!(spec_name.as_str().unwrap(), name(c));
            let n = number(c).unwrap();
            assert_eq!(CAPABILITY_NAMES[usize::from(n)], name(c));
        }
        assert_eq!(number(Capability::Chown).unwrap(), 0);
        assert_eq!(number(Capability::SysAdmin).unwrap(), 21);
        assert_eq!(number(Capability::CheckpointRestore).unwrap(), 40);
    }

    #[test]
    fn name_table_matches_the_caps_crate_numbering() {
        for (n, cap_name) in CAPABILITY_NAMES.iter().enumerate() {
            assert_eq!(usize::from(number_of_name(cap_name).unwrap()), n);
        }
    }

    #[test]
    fn unknown_capability_name_is_an_error_naming_it() {
        let err = number_of_name("CAP_NOT_A_THING").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown capability CAP_NOT_A_THING (not in this runtime's table)"
        );
    }

    #[test]
    fn strip_unknown_removes_unknown_names_like_runc_and_reports_them() {
        let mut config = serde_json::json!({"process": {"capabilities": {
            "bounding": ["CAP_KILL", "CAP_FUTURE_THING", "CAP_CHOWN"],
            "effective": ["CAP_FUTURE_THING"],
            "ambient": ["CAP_ZZZ", "CAP_KILL"]
        }}});
        let removed = strip_unknown(&mut config);
        assert_eq!(removed, vec!["CAP_FUTURE_THING", "CAP_ZZZ"]);
        assert_eq!(
            config["process"]["capabilities"],
            serde_json::json!({"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": [],
                "ambient": ["CAP_KILL"]})
        );
        let parsed: LinuxCapabilities =
            serde_json::from_value(config["process"]["capabilities"].clone()).unwrap();
        assert_eq!(parsed.bounding().as_ref().unwrap().len(), 2);
    }

    #[test]
    fn exec_cap_adds_to_bounding_effective_permitted_and_ambient_only_with_inheritable() {
        // Built from JSON: oci-spec's builder fills unset sets with its own defaults.
        let mut c: LinuxCapabilities =
            serde_json::from_value(serde_json::json!({"bounding": []})).unwrap();
        add_exec_caps(&mut c, &["CAP_NET_ADMIN".to_string()]).unwrap();
        let admin: Capabilities = [Capability::NetAdmin].into_iter().collect();
        assert_eq!(c.bounding().as_ref(), Some(&admin));
        assert_eq!(c.effective().as_ref(), Some(&admin));
        assert_eq!(c.permitted().as_ref(), Some(&admin));
        assert!(c.ambient().is_none());
        let mut with_inheritable: LinuxCapabilities =
            serde_json::from_value(serde_json::json!({"inheritable": []})).unwrap();
        add_exec_caps(&mut with_inheritable, &["CAP_KILL".to_string()]).unwrap();
        assert!(with_inheritable
            .ambient()
            .as_ref()
            .unwrap()
            .contains(&Capability::Kill));
        let err = add_exec_caps(&mut c, &["CAP_BOGUS".to_string()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown capability CAP_BOGUS (not in this runtime's table)"
        );
    }

    #[test]
    fn mask_ignores_capabilities_above_the_kernel_last_cap() {
        let set: Capabilities = [Capability::Chown, Capability::CheckpointRestore]
            .into_iter()
            .collect();
        assert_eq!(mask(Some(&set), 40).unwrap(), 1 | (1 << 40));
        assert_eq!(mask(Some(&set), 39).unwrap(), 1);
        assert_eq!(mask(None, 40).unwrap(), 0);
    }

    #[test]
    fn last_cap_reads_the_running_kernel() {
        let last = last_cap().unwrap();
        // CAP_AUDIT_READ (37) exists on every kernel this runtime supports.
        assert!(last >= 37, "cap_last_cap {last}");
    }

    #[test]
    fn last_cap_by_probe_finds_the_highest_contiguous_number() {
        assert_eq!(last_cap_by_probe(|n| n <= 40), Some(40));
        assert_eq!(last_cap_by_probe(|n| n == 0), Some(0));
        assert_eq!(last_cap_by_probe(|_| false), None);
        assert_eq!(last_cap_by_probe(|_| true), Some(63));
    }

    #[test]
    fn probing_the_kernel_agrees_with_cap_last_cap() {
        let from_file = last_cap().unwrap();
        assert_eq!(last_cap_by_probe(capability_exists), Some(from_file));
    }

    /// Reads CapEff/CapPrm/CapInh/CapAmb from /proc/self/status.
    fn status_sets() -> [u64; 4] {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        ["CapInh:", "CapPrm:", "CapEff:", "CapAmb:"].map(|key| {
            let line = status.lines().find(|l| l.starts_with(key)).unwrap();
            u64::from_str_radix(line[key.len()..].trim(), 16).unwrap()
        })
    }

    #[test]
    fn apply_sets_the_sets_exactly_in_a_forked_child() {
        // Target: a subset of what this process holds, so it works as root and non-root.
        let [_, prm, _, _] = status_sets();
        let wanted = [
            Capability::Kill,
            Capability::Chown,
            Capability::NetBindService,
        ];
        let held: Capabilities = wanted
            .into_iter()
            .filter(|c| prm & (1 << number(*c).unwrap()) != 0)
            .collect();
        let mut effective = held.clone();
        effective.remove(&Capability::Chown);
        let c = oci_spec::runtime::LinuxCapabilitiesBuilder::default()
            .effective(effective.clone())
            .permitted(held.clone())
            .inheritable(held.clone())
            .ambient(held.clone())
            .build()
            .unwrap();
        let expect_eff = mask(Some(&effective), 63).unwrap();
        let expect_prm = mask(Some(&held), 63).unwrap();
        // SAFETY: the child only calls capset/prctl, reads /proc and _exits; glibc's fork
        // keeps malloc usable in the child.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = match apply(&c) {
                Err(_) => 2,
                Ok(()) => {
                    let [inh, prm, eff, amb] = status_sets();
                    let ok = eff == expect_eff
                        && prm == expect_prm
                        && inh == expect_prm
                        && amb == expect_prm;
                    if ok {
                        0
                    } else {
                        3
                    }
                }
            };
            // SAFETY: leaving the forked child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status));
        assert_eq!(libc::WEXITSTATUS(status), 0);
    }

    #[test]
    fn ambient_capability_not_in_inheritable_is_skipped_not_raised() {
        let [_, prm, _, _] = status_sets();
        let kill: Capabilities = [Capability::Kill].into_iter().collect();
        let held = prm & (1 << 5) != 0;
        let c = oci_spec::runtime::LinuxCapabilitiesBuilder::default()
            .effective(if held {
                kill.clone()
            } else {
                Capabilities::new()
            })
            .permitted(if held {
                kill.clone()
            } else {
                Capabilities::new()
            })
            .inheritable(Capabilities::new())
            .ambient(kill)
            .build()
            .unwrap();
        // SAFETY: as above, the child only does capset/prctl and reads /proc.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = match apply(&c) {
                Ok(()) if status_sets()[3] == 0 => 0,
                Ok(()) => 3,
                Err(_) => 2,
            };
            // SAFETY: leaving the forked child.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(libc::WEXITSTATUS(status), 0);
    }
}
