//! Container ids as the OCI runtime command line accepts them.

use thiserror::Error;

/// Why a container id was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdError {
    #[error("container id cannot be empty")]
    Empty,
    #[error(
        "invalid container id {id:?}: only letters, digits, '_', '+', '-' and '.' are allowed"
    )]
    InvalidCharacter { id: String },
    #[error("invalid container id {id:?}: \".\" and \"..\" are not allowed")]
    Dots { id: String },
    #[error("invalid container id {id:?}: longer than 1024 bytes")]
    TooLong { id: String },
}

/// Checks an id the way runc does (`^[\w+\-.]+$`, and never `.` or `..`), so that it
/// is always safe as a single path component under the runtime's state root.
pub fn validate_container_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id == "." || id == ".." {
        return Err(IdError::Dots { id: id.to_owned() });
    }
    if id.len() > 1024 {
        return Err(IdError::TooLong { id: id.to_owned() });
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.');
    if !id.chars().all(allowed) {
        return Err(IdError::InvalidCharacter { id: id.to_owned() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_style_ids_are_accepted() {
        for id in ["a", "abc-123", "x.y_z+w", "0123456789abcdef"] {
            assert_eq!(validate_container_id(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn ids_that_could_escape_the_state_root_are_refused() {
        assert_eq!(validate_container_id(""), Err(IdError::Empty));
        assert!(matches!(
            validate_container_id(".."),
            Err(IdError::Dots { .. })
        ));
        assert!(matches!(
            validate_container_id("a/b"),
            Err(IdError::InvalidCharacter { .. })
        ));
        assert!(matches!(
            validate_container_id("a b"),
            Err(IdError::InvalidCharacter { .. })
        ));
        assert!(matches!(
            validate_container_id("é"),
            Err(IdError::InvalidCharacter { .. })
        ));
    }
}
