//! Container names at create and rename, through `crate::names` (Docker's pattern, texts
//! and adjective_surname names), in the `/name` form the records keep.

use super::ContainerError;

/// Docker's `validContainerNamePattern`: returns the name with its leading `/`.
pub fn validate(name: &str) -> Result<String, ContainerError> {
    crate::names::validate(name).map_err(|e| ContainerError::InvalidArgument(e.to_string()))
}

/// A random free name for container `id` (with `/`); `taken` sees the `/name` form.
pub fn generate(id: &str, taken: impl Fn(&str) -> bool) -> String {
    let bare = crate::names::generate_for(id, |bare| taken(&format!("/{bare}")));
    format!("/{bare}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_dockers_leading_slash() {
        assert_eq!(validate("web").expect("valid"), "/web");
        assert_eq!(validate("/web").expect("valid"), "/web");
        let err = validate("a b").expect_err("invalid");
        assert_eq!(err.kind(), crate::error::ErrorKind::InvalidArgument);
        let first = generate(&"a".repeat(64), |_| false);
        assert!(
            first.starts_with('/') && validate(&first).is_ok(),
            "{first}"
        );
        let second = generate(&"a".repeat(64), |name| name == first);
        assert_ne!(first, second);
    }
}
