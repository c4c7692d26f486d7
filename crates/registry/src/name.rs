//! Repository names and tags as the distribution spec's grammar defines them.

/// Longest repository name distribution accepts (the reference grammar's limit).
pub const NAME_MAX: usize = 255;

/// Whether `name` is a repository name the distribution spec accepts: the reference
/// grammar's path (shared with `berth_oci::reference`) within the total length limit.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= NAME_MAX && berth_oci::reference::is_path(name)
}

/// Whether `tag` matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    berth_oci::reference::is_tag(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_distribution_grammar() {
        for good in [
            "a",
            "library/busybox",
            "a.b/c_d/e__f/g--h",
            "conformance/repo1",
            "0",
        ] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in [
            "", "A", "a//b", "/a", "a/", "a..b", "a___b", "-a", "a-", "a/_b", "a b",
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert!(!is_valid_name(&"a".repeat(256)));
    }

    #[test]
    fn tags_follow_the_distribution_grammar() {
        for good in ["latest", "v1.0", "_x", "A-b.c_d", &"a".repeat(128)] {
            assert!(is_valid_tag(good), "{good}");
        }
        for bad in ["", ".a", "-a", "a/b", "a:b", &"a".repeat(129)] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
    }
}
