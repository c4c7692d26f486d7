//! Capabilities: Docker's default set, `--cap-add`/`--cap-drop` (with or without `CAP_`,
//! any case, `ALL`) and `--privileged`, with the ordering moby's `TweakCapabilities` gives.

use super::SpecError;

/// Docker's default capabilities, in Docker's order.
pub const DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability by number (index = capability number, linux/capability.h).
pub const ALL: [&str; 41] = berth_oci::capability::NAMES;

/// Every capability the host kernel knows (`last_cap` from
/// /proc/sys/kernel/cap_last_cap), in number order: what `--privileged` and `ALL` give.
pub fn all(last_cap: usize) -> Vec<String> {
    ALL.iter()
        .take(last_cap.saturating_add(1))
        .map(|c| c.to_string())
        .collect()
}

/// berthd's own capability bounding set (`CapBnd` in /proc/self/status), bit N for
/// capability N; every bit set when it cannot be read. No process berthd starts can hold a
/// capability outside it (e.g. CAP_SYS_RESOURCE on hosts that withhold it from root).
pub fn bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// Keeps the capabilities present in `bounding` (as [`bounding_set`] gives it).
pub fn within_bounding<S: AsRef<str>>(caps: &mut Vec<S>, bounding: u64) {
    caps.retain(|c| {
        ALL.iter()
            .position(|n| *n == c.as_ref())
            .is_none_or(|bit| bit >= 64 || bounding & (1u64 << bit) != 0)
    });
}

/// `chown`, `CAP_CHOWN`, `Cap_Chown` → `CAP_CHOWN`; `all` → `ALL`; unknown → Docker's error.
fn normalize(name: &str) -> Result<String, SpecError> {
    let upper = name.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(SpecError::InvalidArgument(format!(
            "unknown capability: \"{full}\""
        )))
    }
}

/// Normalises a `--cap-add`/`--cap-drop` list; errors name the field as Docker's create does
/// (`invalid CapAdd: unknown capability: "CAP_FOO"`).
fn normalize_all(field: &str, names: &[String]) -> Result<Vec<String>, SpecError> {
    names
        .iter()
        .map(|c| {
            normalize(c).map_err(|e| SpecError::InvalidArgument(format!("invalid {field}: {e}")))
        })
        .collect()
}

/// Checks `CapAdd` and `CapDrop` at create, as Docker's daemon does before storing the
/// container (so a bad name never reaches start).
pub fn validate(add: &[String], drop: &[String]) -> Result<(), SpecError> {
    normalize_all("CapAdd", add)?;
    normalize_all("CapDrop", drop)?;
    Ok(())
}

/// The capability set of a container (moby's `TweakCapabilities`).
pub fn tweak(
    add: &[String],
    drop: &[String],
    privileged: bool,
    last_cap: usize,
) -> Result<Vec<String>, SpecError> {
    if privileged {
        return Ok(all(last_cap));
    }
    let add = normalize_all("CapAdd", add)?;
    let drop = normalize_all("CapDrop", drop)?;
    let mut caps: Vec<String> = if add.iter().any(|c| c == "ALL") {
        all(last_cap)
            .into_iter()
            .filter(|c| !drop.contains(c))
            .collect()
    } else if drop.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        DEFAULT
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    if !add.iter().any(|c| c == "ALL") {
        for cap in add {
            if !caps.contains(&cap) {
                caps.push(cap);
            }
        }
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn privileged_sets_keep_only_what_the_bounding_set_holds() {
        let mut caps = all(40);
        // Every capability but CAP_SYS_RESOURCE (24), as on hosts that withhold it.
        within_bounding(&mut caps, !(1u64 << 24));
        assert_eq!(caps.len(), 40);
        assert!(!caps.iter().any(|c| c == "CAP_SYS_RESOURCE"));
        assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
        let mut everything = all(40);
        within_bounding(&mut everything, u64::MAX);
        assert_eq!(everything, all(40));
    }

    #[test]
    fn no_flags_give_dockers_fourteen_defaults() {
        assert_eq!(tweak(&[], &[], false, 40).expect("caps"), strings(&DEFAULT));
    }

    #[test]
    fn adds_append_and_drops_remove_in_any_spelling() {
        let caps = tweak(&strings(&["net_admin"]), &strings(&["CHOWN"]), false, 40).expect("caps");
        assert_eq!(caps.first().map(String::as_str), Some("CAP_DAC_OVERRIDE"));
        assert_eq!(caps.last().map(String::as_str), Some("CAP_NET_ADMIN"));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(caps.len(), 14);
    }

    #[test]
    fn drop_all_keeps_only_the_adds() {
        let caps = tweak(&strings(&["cap_kill"]), &strings(&["all"]), false, 40).expect("caps");
        assert_eq!(caps, strings(&["CAP_KILL"]));
    }

    #[test]
    fn add_all_gives_every_known_cap_minus_drops() {
        let caps = tweak(&strings(&["ALL"]), &strings(&["SYS_ADMIN"]), false, 37).expect("caps");
        assert_eq!(caps.len(), 37);
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));
    }

    #[test]
    fn privileged_gets_every_cap_the_kernel_knows_in_number_order() {
        let caps = tweak(&[], &[], true, 37).expect("caps");
        assert_eq!(caps.len(), 38);
        assert_eq!(caps[2], "CAP_DAC_READ_SEARCH");
        assert_eq!(caps.last().map(String::as_str), Some("CAP_AUDIT_READ"));
        assert_eq!(tweak(&[], &[], true, 40).expect("caps").len(), 41);
    }

    #[test]
    fn unknown_capabilities_are_refused_with_dockers_text() {
        let err = tweak(&strings(&["FOO"]), &[], false, 40).expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "invalid CapAdd: unknown capability: \"CAP_FOO\""
        );
        let err = validate(&strings(&["chown", "ALL"]), &strings(&["cap_bogus"]))
            .expect_err("unknown drop");
        assert_eq!(
            err.to_string(),
            "invalid CapDrop: unknown capability: \"CAP_BOGUS\""
        );
        assert!(validate(&strings(&["Sys_Admin", "all"]), &strings(&["CAP_KILL"])).is_ok());
    }
}
