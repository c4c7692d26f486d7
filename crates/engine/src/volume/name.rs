//! Volume names: the local driver's rule (moby's `validateName`) and generated names of
//! anonymous volumes.

use super::VolumeError;

/// The characters moby allows in a local volume name (`names.RestrictedNameChars`).
const RESTRICTED_NAME_CHARS: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

/// Checks `name` as Docker's local driver does: two characters at least, the first
/// alphanumeric, the rest alphanumerics or `_.-`.
pub fn validate(name: &str) -> Result<(), VolumeError> {
    if name.chars().count() == 1 {
        return Err(VolumeError::InvalidArgument(
            "volume name is too short, names should be at least two alphanumeric characters"
                .to_string(),
        ));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if name.is_empty() || !first_ok || !rest_ok {
        return Err(VolumeError::InvalidArgument(format!(
            "{name:?} includes invalid characters for a local volume name, only {RESTRICTED_NAME_CHARS:?} are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(())
}

/// A new 64-hex name, as Docker names anonymous (and unnamed) volumes.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: getrandom writes at most `len - filled` bytes into the rest of the array.
        let n = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if n <= 0 {
            break;
        }
        filled += n as usize;
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_local_drivers_rule() {
        for good in ["ab", "data", "my_vol.1-x", "0abc"] {
            assert!(validate(good).is_ok(), "{good}");
        }
        assert_eq!(
            validate("a").expect_err("short").to_string(),
            "volume name is too short, names should be at least two alphanumeric characters"
        );
        assert_eq!(
            validate("a/b").expect_err("slash").to_string(),
            "\"a/b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
        assert!(validate("_ab").is_err());
        assert!(validate("..").is_err());
    }

    #[test]
    fn generated_names_are_valid_and_distinct() {
        let a = generate();
        assert_eq!(a.len(), 64);
        assert!(validate(&a).is_ok());
        assert_ne!(a, generate());
    }
}
