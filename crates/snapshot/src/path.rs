//! Lexical cleaning of layer entry names: relative, no `.`/`..`, never above the root.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Why an entry name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A `..` component climbs above the root.
    #[error("escapes the root")]
    Escape,
    /// The name holds a NUL byte (no file can have it).
    #[error("contains a NUL byte")]
    Nul,
}

/// An entry name made relative to the root: `/a/./b/../c` becomes `a/c`.
///
/// An empty component list names the root itself (`./` or `/` in a tar).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CleanPath {
    components: Vec<OsString>,
}

impl CleanPath {
    /// Cleans `raw` the way Docker's `filepath.Clean` + breakout check does: leading `/` are
    /// dropped (absolute names are relative to the root), `.` is skipped and `..` pops the
    /// previous component; a `..` with nothing left to pop escapes the root and is refused.
    pub fn parse(raw: &[u8]) -> Result<Self, PathError> {
        if raw.contains(&0) {
            return Err(PathError::Nul);
        }
        let mut components: Vec<OsString> = Vec::new();
        for part in raw.split(|b| *b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    if components.pop().is_none() {
                        return Err(PathError::Escape);
                    }
                }
                name => components.push(OsString::from_vec(name.to_vec())),
            }
        }
        Ok(CleanPath { components })
    }

    /// The root itself.
    pub fn root() -> Self {
        CleanPath {
            components: Vec::new(),
        }
    }

    /// Whether this names the root.
    pub fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    /// The components, outermost first.
    pub fn components(&self) -> &[OsString] {
        &self.components
    }

    /// The last component, or `.` for the root.
    pub fn file_name(&self) -> &OsStr {
        self.components
            .last()
            .map_or(OsStr::new("."), OsString::as_os_str)
    }

    /// The path without its last component (the root's parent is the root).
    pub fn parent(&self) -> CleanPath {
        let mut components = self.components.clone();
        components.pop();
        CleanPath { components }
    }

    /// This path with `name` appended.
    pub fn join(&self, name: &OsStr) -> CleanPath {
        let mut components = self.components.clone();
        components.push(name.to_os_string());
        CleanPath { components }
    }

    /// The first `n` components.
    pub fn prefix(&self, n: usize) -> CleanPath {
        CleanPath {
            components: self.components[..n.min(self.components.len())].to_vec(),
        }
    }

    /// `a/b/c`, or `.` for the root: the form handed to `openat2`.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.components.is_empty() {
            return b".".to_vec();
        }
        let mut out = Vec::new();
        for (i, c) in self.components.iter().enumerate() {
            if i > 0 {
                out.push(b'/');
            }
            out.extend_from_slice(c.as_bytes());
        }
        out
    }
}

impl std::fmt::Display for CleanPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(raw: &str) -> Result<String, PathError> {
        CleanPath::parse(raw.as_bytes()).map(|p| p.to_string())
    }

    #[test]
    fn absolute_names_become_relative() {
        assert_eq!(clean("/etc/passwd"), Ok("etc/passwd".into()));
        assert_eq!(clean("//a//b/"), Ok("a/b".into()));
    }

    #[test]
    fn dot_components_are_skipped_and_dotdot_pops() {
        assert_eq!(clean("./a/./b/../c"), Ok("a/c".into()));
        assert_eq!(clean("a/.."), Ok(".".into()));
        assert_eq!(clean("./"), Ok(".".into()));
    }

    #[test]
    fn dotdot_above_the_root_is_refused() {
        assert_eq!(clean("../../etc/passwd"), Err(PathError::Escape));
        assert_eq!(clean("a/../../b"), Err(PathError::Escape));
        assert_eq!(clean("/.."), Err(PathError::Escape));
    }

    #[test]
    fn nul_bytes_are_refused() {
        assert_eq!(CleanPath::parse(b"a\0b"), Err(PathError::Nul));
    }

    #[test]
    fn parent_and_file_name_split_the_last_component() {
        let p = CleanPath::parse(b"a/b/c").expect("valid");
        assert_eq!(p.parent().to_string(), "a/b");
        assert_eq!(p.file_name(), OsStr::new("c"));
        assert_eq!(CleanPath::root().file_name(), OsStr::new("."));
        assert_eq!(p.prefix(1).to_string(), "a");
    }
}
