//! `.dockerignore` tests: pattern kinds, exceptions, cleaning, always-sent files.

use super::*;

/// A one-line `.dockerignore` checked against `path` as the docker CLI checks context files.
fn matches(pattern: &str, path: &str) -> bool {
    PatternMatcher::new(&read_patterns(pattern))
        .unwrap()
        .matches_or_parent_matches(path)
}

#[test]
fn single_patterns_match_like_patternmatcher() {
    let cases = [
        ("**", "anything/at/all", true),
        ("**/", "x", true),
        ("src/**", "src/a/b.go", true),
        ("src/**", "src", false),
        ("**/node_modules", "node_modules", true),
        ("**/node_modules", "web/app/node_modules/x/y.js", true),
        ("**/*.log", "a.log", true),
        ("**/*.log", "deep/er/a.log", true),
        ("**/*.log", "deep/er/a.logx", false),
        ("**.md", "docs/x.md", true),
        ("lib**/*.so", "lib/x/y.so", true),
        ("*.txt", "a.txt", true),
        ("*.txt", "dir/a.txt", false),
        ("dir/*.txt", "dir/a.txt", true),
        ("dir/*.txt", "dir/sub/a.txt", false),
        ("dir", "dir/sub/file", true),
        ("d?r", "dar/x", true),
        ("d?r", "d/r", false),
        ("x[0-9]y", "x5y", true),
        ("x[0-9]y", "xay", false),
        ("x[^0-9]y", "xay", true),
        ("a.b", "aXb", false),
        ("a(b)+c|$", "a(b)+c|$", true),
        ("a\\*b", "a*b", true),
        ("a\\*b", "axb", false),
        ("/abs/path", "abs/path", true),
        ("./rel/../other", "other/file", true),
        (".*", ".git", true),
        (".*", "git", false),
    ];
    for (pattern, path, want) in cases {
        assert_eq!(
            matches(pattern, path),
            want,
            "pattern {pattern:?} path {path:?}"
        );
    }
}

#[test]
fn last_matching_pattern_wins_with_exceptions() {
    let pm = PatternMatcher::new(&["**", "!src", "src/*.tmp", "!src/keep.tmp"]).unwrap();
    assert!(pm.is_excluded("README.md"));
    assert!(!pm.is_excluded("src/main.rs"));
    assert!(pm.is_excluded("src/x.tmp"));
    assert!(!pm.is_excluded("src/keep.tmp"));
    assert!(pm.has_exclusions());
    let pm = PatternMatcher::new(&["!a", "a"]).unwrap();
    assert!(pm.is_excluded("a"));
}

#[test]
fn matches_cuts_parent_to_pattern_depth() {
    let pm = PatternMatcher::new(&["a/b"]).unwrap();
    assert!(pm.matches("a/b/c/d"));
    let pm = PatternMatcher::new(&["b"]).unwrap();
    assert!(!pm.matches("a/b/c"));
    assert!(pm.matches_or_parent_matches("b/c"));
    // Only `.dockerignore` reading strips a leading slash; the matcher itself does not.
    assert!(!PatternMatcher::new(&["/abs"]).unwrap().matches("abs"));
}

#[test]
fn read_patterns_cleans_and_skips_comments() {
    let text = "\u{feff}# comment\n  \n node_modules \n/dist/\n!./dist/keep\r\n  # not a comment\n!\nfoo//bar/../baz\n";
    assert_eq!(
        read_patterns(text),
        [
            "node_modules",
            "dist",
            "!dist/keep",
            "# not a comment",
            "!",
            "foo/baz"
        ]
    );
}

#[test]
fn malformed_patterns_are_errors() {
    assert_eq!(
        PatternMatcher::new(&["!"]).unwrap_err(),
        IgnoreError::IllegalExclusion
    );
    for bad in ["[", "a[]", "a[b-]", "x\\"] {
        assert!(
            matches!(
                PatternMatcher::new(&[bad]),
                Err(IgnoreError::BadPattern { .. })
            ),
            "{bad}"
        );
    }
    assert_eq!(
        PatternMatcher::new(&["["]).unwrap_err().to_string(),
        "syntax error in pattern"
    );
}

#[test]
fn dockerfile_and_dockerignore_are_always_sent() {
    let pm = PatternMatcher::from_dockerignore("*\n", Some("build/Dockerfile.prod")).unwrap();
    assert!(!pm.is_excluded(".dockerignore"));
    assert!(pm.is_excluded("build"));
    let pm = PatternMatcher::from_dockerignore("Dockerfile\n.dockerignore\n", Some("Dockerfile"))
        .unwrap();
    assert!(!pm.is_excluded("Dockerfile"));
    assert!(!pm.is_excluded(".dockerignore"));
    let pm = PatternMatcher::from_dockerignore("Dockerfile\n", None).unwrap();
    assert!(pm.is_excluded("Dockerfile"));
}

#[test]
fn clean_path_matches_go() {
    let cases = [
        ("", "."),
        ("a//b/./c/..", "a/b"),
        ("/../a", "/a"),
        ("../../a", "../../a"),
        ("a/../..", ".."),
        ("./", "."),
        ("/", "/"),
    ];
    for (input, want) in cases {
        assert_eq!(clean_path(input), want, "{input:?}");
    }
}
