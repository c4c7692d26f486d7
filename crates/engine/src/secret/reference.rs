//! A container's secret references (`HostConfig.BerthSecrets`) checked at create: each
//! names an existing secret (by name, ID or ID prefix; stored back by ID and name), and its
//! file gets swarm's defaults (target = secret name, uid and gid 0, mode 0444).

use std::collections::BTreeSet;
use std::path::Path;

use berth_api::secret::{SecretFileTarget, SecretReference};

use super::{find, secrets_dir, store, SecretError};

/// Where secrets appear in the container.
pub const SECRETS_DIR: &str = "/run/secrets";

/// Swarm's default mode for a secret file.
pub const DEFAULT_MODE: u32 = 0o444;

/// Resolves and validates `references` in place against the secrets under `data_root`.
pub fn resolve_references(
    data_root: &Path,
    references: &mut [SecretReference],
) -> Result<(), SecretError> {
    if references.is_empty() {
        return Ok(());
    }
    let records: std::collections::BTreeMap<String, super::SecretRecord> =
        store::load_all(&secrets_dir(data_root))?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
    let mut targets = BTreeSet::new();
    for reference in references.iter_mut() {
        let key = if reference.secret_id.is_empty() {
            &reference.secret_name
        } else {
            &reference.secret_id
        };
        if key.is_empty() {
            return Err(SecretError::InvalidArgument(
                "secret reference without a secret name or ID".to_string(),
            ));
        }
        let record = find(&records, key)?;
        reference.secret_id = record.id.clone();
        reference.secret_name = record.name.clone();
        let mut file = reference.file.take().unwrap_or_default();
        file.name = target_name(&file.name, &record.name)?;
        for (what, value) in [("uid", &mut file.uid), ("gid", &mut file.gid)] {
            if value.is_empty() {
                *value = "0".to_string();
            }
            // -1 (u32::MAX) means "unchanged" to chown: not an owner.
            if value
                .parse::<u32>()
                .ok()
                .filter(|v| *v != u32::MAX)
                .is_none()
            {
                return Err(SecretError::InvalidArgument(format!(
                    "invalid {what} {value:?} for secret {}: a number below 4294967295 is needed",
                    record.name
                )));
            }
        }
        if file.mode == 0 {
            file.mode = DEFAULT_MODE;
        }
        if file.mode & !0o777 != 0 {
            return Err(SecretError::InvalidArgument(format!(
                "invalid mode {:o} for secret {}: only permission bits (0-0777) are allowed",
                file.mode, record.name
            )));
        }
        if !targets.insert(file.name.clone()) {
            return Err(SecretError::InvalidArgument(format!(
                "secret target {} is used more than once",
                file.name
            )));
        }
        reference.file = Some(file);
    }
    Ok(())
}

/// The file's path relative to /run/secrets: a relative name (default: the secret's name)
/// or an absolute path inside /run/secrets; nothing that climbs out of it.
fn target_name(target: &str, secret_name: &str) -> Result<String, SecretError> {
    let target = if target.is_empty() {
        secret_name
    } else {
        target
    };
    let relative = match target.strip_prefix('/') {
        None => target,
        Some(_) => target
            .strip_prefix(SECRETS_DIR)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| {
                SecretError::InvalidArgument(format!(
                    "secret target {target} is outside {SECRETS_DIR}: berth mounts secrets only there"
                ))
            })?,
    };
    let parts: Vec<&str> = relative.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(SecretError::InvalidArgument(format!(
            "invalid secret target {target:?}: use a file name or a relative path without . or .."
        )));
    }
    Ok(relative.to_string())
}

/// The file target of a resolved reference.
pub(crate) fn file_of(reference: &SecretReference) -> SecretFileTarget {
    reference.file.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_defaults_to_the_secret_name() {
        assert_eq!(target_name("", "db").expect("name"), "db");
        assert_eq!(target_name("x/y", "db").expect("name"), "x/y");
        assert_eq!(target_name("/run/secrets/k", "db").expect("name"), "k");
    }

    #[test]
    fn target_may_not_leave_run_secrets() {
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a//b",
            "/run/secrets",
            "./a",
        ] {
            assert!(target_name(bad, "db").is_err(), "{bad} accepted");
        }
    }
}
