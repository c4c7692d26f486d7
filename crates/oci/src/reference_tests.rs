//! Table tests for reference parsing, written from distribution/reference's documented
//! cases and Docker's observable behaviour.

use super::*;

fn f64() -> String {
    "f".repeat(64)
}

/// (input, expected domain, path, tag, digest) or the expected error.
type Want = Result<(&'static str, String, Option<&'static str>, Option<String>), ReferenceError>;

fn check_raw(input: &str, want: Want) {
    let got = Reference::parse(input);
    match (got, want) {
        (Ok(r), Ok((domain, path, tag, digest))) => {
            assert_eq!(r.domain(), domain, "domain of {input:?}");
            assert_eq!(r.path(), path, "path of {input:?}");
            assert_eq!(r.tag(), tag, "tag of {input:?}");
            assert_eq!(
                r.digest().map(ToString::to_string),
                digest,
                "digest of {input:?}"
            );
            assert_eq!(r.to_string(), input, "round trip of {input:?}");
        }
        (got, want) => assert_eq!(
            got.map(|r| r.to_string()),
            want.map(|_| String::new()),
            "{input:?}"
        ),
    }
}

#[test]
fn distribution_parse_table() {
    let sha = format!("sha256:{}", f64());
    let sha512 = format!("sha512:{}", "f".repeat(128));
    let ok = |d: &'static str, p: &str, t: Option<&'static str>, g: Option<&String>| -> Want {
        Ok((d, p.to_owned(), t, g.cloned()))
    };
    let cases: Vec<(String, Want)> = vec![
        ("test_com".into(), ok("", "test_com", None, None)),
        ("test.com:tag".into(), ok("", "test.com", Some("tag"), None)),
        (
            "test.com:5000".into(),
            ok("", "test.com", Some("5000"), None),
        ),
        (
            "test.com/repo:tag".into(),
            ok("test.com", "repo", Some("tag"), None),
        ),
        ("test:5000/repo".into(), ok("test:5000", "repo", None, None)),
        (
            "test:5000/repo:tag".into(),
            ok("test:5000", "repo", Some("tag"), None),
        ),
        (
            format!("test:5000/repo@{sha}"),
            ok("test:5000", "repo", None, Some(&sha)),
        ),
        (
            format!("test:5000/repo:tag@{sha}"),
            ok("test:5000", "repo", Some("tag"), Some(&sha)),
        ),
        (String::new(), Err(ReferenceError::NameEmpty)),
        (":justtag".into(), Err(ReferenceError::InvalidFormat)),
        (format!("@{sha}"), Err(ReferenceError::InvalidFormat)),
        (
            format!("repo@sha256:{}", "f".repeat(63)),
            Err(DigestError::InvalidLength.into()),
        ),
        (
            format!("validname@invaliddigest:{}", f64()),
            Err(DigestError::Unsupported.into()),
        ),
        (
            format!("repo@sha256:{}", "F".repeat(64)),
            Err(DigestError::InvalidFormat.into()),
        ),
        (
            format!("repo@sha256:{}", "f".repeat(31)),
            Err(ReferenceError::InvalidFormat),
        ),
        (
            "Uppercase:tag".into(),
            Err(ReferenceError::NameContainsUppercase),
        ),
        (
            "test:5000/Uppercase/lowercase:tag".into(),
            Err(ReferenceError::NameContainsUppercase),
        ),
        (
            "lowercase:Uppercase".into(),
            ok("", "lowercase", Some("Uppercase"), None),
        ),
        (
            format!("{}a:tag", "a/".repeat(128)),
            Err(ReferenceError::NameTooLong),
        ),
        (
            format!("{}a:tag-puts-this-over-max", "a/".repeat(127)),
            ok(
                "a",
                &format!("{}a", "a/".repeat(126)),
                Some("tag-puts-this-over-max"),
                None,
            ),
        ),
        ("aa/asdf$$^/aa".into(), Err(ReferenceError::InvalidFormat)),
        (
            "sub-dom1.foo.com/bar/baz/quux".into(),
            ok("sub-dom1.foo.com", "bar/baz/quux", None, None),
        ),
        (
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(),
            ok(
                "sub-dom1.foo.com",
                "bar/baz/quux",
                Some("some-long-tag"),
                None,
            ),
        ),
        (
            "b.gcr.io/test.example.com/my-app:test.example.com".into(),
            ok(
                "b.gcr.io",
                "test.example.com/my-app",
                Some("test.example.com"),
                None,
            ),
        ),
        (
            "xn--n3h.com/myimage:xn--n3h.com".into(),
            ok("xn--n3h.com", "myimage", Some("xn--n3h.com"), None),
        ),
        (
            format!("xn--7o8h.com/myimage:xn--7o8h.com@{sha512}"),
            ok(
                "xn--7o8h.com",
                "myimage",
                Some("xn--7o8h.com"),
                Some(&sha512),
            ),
        ),
        (
            "foo_bar.com:8080".into(),
            ok("", "foo_bar.com", Some("8080"), None),
        ),
        (
            "foo/foo_bar.com:8080".into(),
            ok("foo", "foo_bar.com", Some("8080"), None),
        ),
        ("192.168.1.1".into(), ok("", "192.168.1.1", None, None)),
        (
            "192.168.1.1:tag".into(),
            ok("", "192.168.1.1", Some("tag"), None),
        ),
        (
            "192.168.1.1:5000".into(),
            ok("", "192.168.1.1", Some("5000"), None),
        ),
        (
            "192.168.1.1/repo".into(),
            ok("192.168.1.1", "repo", None, None),
        ),
        (
            "192.168.1.1:5000/repo".into(),
            ok("192.168.1.1:5000", "repo", None, None),
        ),
        ("[2001:db8::1]".into(), Err(ReferenceError::InvalidFormat)),
        (
            "[2001:db8::1]:5000".into(),
            Err(ReferenceError::InvalidFormat),
        ),
        (
            "[2001:db8::1]:tag".into(),
            Err(ReferenceError::InvalidFormat),
        ),
        (
            "[2001:db8::1]/repo".into(),
            ok("[2001:db8::1]", "repo", None, None),
        ),
        (
            "[2001:db8:1:2:3:4:5:6]/repo:tag".into(),
            ok("[2001:db8:1:2:3:4:5:6]", "repo", Some("tag"), None),
        ),
        (
            "[2001:db8::1]:5000/repo".into(),
            ok("[2001:db8::1]:5000", "repo", None, None),
        ),
        (
            "[2001:db8::1]:5000/repo:tag".into(),
            ok("[2001:db8::1]:5000", "repo", Some("tag"), None),
        ),
        (
            format!("[2001:db8::1]:5000/repo@{sha}"),
            ok("[2001:db8::1]:5000", "repo", None, Some(&sha)),
        ),
        (
            format!("[2001:db8::1]:5000/repo:tag@{sha}"),
            ok("[2001:db8::1]:5000", "repo", Some("tag"), Some(&sha)),
        ),
        (
            "[2001:db8::]:5000/repo".into(),
            ok("[2001:db8::]:5000", "repo", None, None),
        ),
        (
            "[::1]:5000/repo".into(),
            ok("[::1]:5000", "repo", None, None),
        ),
        (
            "[fe80::1%eth0]:5000/repo".into(),
            Err(ReferenceError::InvalidFormat),
        ),
        (
            "[fe80::1%@invalidzone]:5000/repo".into(),
            Err(ReferenceError::InvalidFormat),
        ),
    ];
    for (input, want) in cases {
        check_raw(&input, want);
    }
}

#[test]
fn path_component_separators_follow_the_grammar() {
    for good in [
        "a__b",
        "a--b",
        "a---b",
        "a.b",
        "a_b",
        "a-b.c_d__e",
        "0",
        "a/b/c",
    ] {
        assert!(Reference::parse(good).is_ok(), "{good:?} should parse");
    }
    for bad in [
        "a___b", "a-_b", "a..b", ".a", "a.", "-a", "a-", "a//b", "/a", "a/", "a b", "a:b:c", "a@b",
    ] {
        assert_eq!(
            Reference::parse(bad),
            Err(ReferenceError::InvalidFormat),
            "{bad:?}"
        );
    }
}

#[test]
fn tags_are_word_led_and_at_most_128_characters() {
    let longest = format!("repo:{}", "t".repeat(128));
    assert_eq!(
        Reference::parse(&longest).map(|r| r.tag().map(str::len)),
        Ok(Some(128))
    );
    let too_long = format!("repo:{}", "t".repeat(129));
    assert_eq!(
        Reference::parse(&too_long),
        Err(ReferenceError::InvalidFormat)
    );
    assert_eq!(
        Reference::parse("repo:_ok.-X").map(|r| r.tag().map(str::to_owned)),
        Ok(Some("_ok.-X".into()))
    );
    assert_eq!(
        Reference::parse("repo:.bad"),
        Err(ReferenceError::InvalidFormat)
    );
    assert_eq!(
        Reference::parse("repo:-bad"),
        Err(ReferenceError::InvalidFormat)
    );
    let repo = Reference::parse_normalized("busybox").expect("valid");
    assert_eq!(repo.with_tag("-bad"), Err(ReferenceError::InvalidTag));
    assert_eq!(
        repo.with_tag("1.36").map(|r| r.to_string()),
        Ok("docker.io/library/busybox:1.36".into())
    );
}

/// (input, full string, familiar string) for `ParseNormalizedNamed`.
#[test]
fn normalized_names_and_familiar_forms() {
    let sha = format!("sha256:{}", f64());
    let cases: Vec<(String, String, String)> = vec![
        (
            "busybox".into(),
            "docker.io/library/busybox".into(),
            "busybox".into(),
        ),
        (
            "busybox:latest".into(),
            "docker.io/library/busybox:latest".into(),
            "busybox:latest".into(),
        ),
        (
            "busybox:Latest".into(),
            "docker.io/library/busybox:Latest".into(),
            "busybox:Latest".into(),
        ),
        (
            "docker/docker".into(),
            "docker.io/docker/docker".into(),
            "docker/docker".into(),
        ),
        (
            "library/busybox".into(),
            "docker.io/library/busybox".into(),
            "busybox".into(),
        ),
        (
            "library/foo/bar".into(),
            "docker.io/library/foo/bar".into(),
            "library/foo/bar".into(),
        ),
        (
            "docker.io/busybox".into(),
            "docker.io/library/busybox".into(),
            "busybox".into(),
        ),
        (
            "docker.io/library/busybox".into(),
            "docker.io/library/busybox".into(),
            "busybox".into(),
        ),
        (
            "index.docker.io/busybox".into(),
            "docker.io/library/busybox".into(),
            "busybox".into(),
        ),
        (
            "index.docker.io/library/busybox:1".into(),
            "docker.io/library/busybox:1".into(),
            "busybox:1".into(),
        ),
        (
            "index.docker.io/a/b".into(),
            "docker.io/a/b".into(),
            "a/b".into(),
        ),
        (
            "test_com/foo".into(),
            "docker.io/test_com/foo".into(),
            "test_com/foo".into(),
        ),
        (
            "test.com/foo".into(),
            "test.com/foo".into(),
            "test.com/foo".into(),
        ),
        (
            "test.com:8080/foo".into(),
            "test.com:8080/foo".into(),
            "test.com:8080/foo".into(),
        ),
        (
            "test-com:8080/foo".into(),
            "test-com:8080/foo".into(),
            "test-com:8080/foo".into(),
        ),
        (
            "xn--n3h.com:18080/foo".into(),
            "xn--n3h.com:18080/foo".into(),
            "xn--n3h.com:18080/foo".into(),
        ),
        (
            "localhost/busybox".into(),
            "localhost/busybox".into(),
            "localhost/busybox".into(),
        ),
        (
            "localhost:5000/a/b".into(),
            "localhost:5000/a/b".into(),
            "localhost:5000/a/b".into(),
        ),
        (
            format!("localhost:5000/a/b@{sha}"),
            format!("localhost:5000/a/b@{sha}"),
            format!("localhost:5000/a/b@{sha}"),
        ),
        (
            format!("busybox:1@{sha}"),
            format!("docker.io/library/busybox:1@{sha}"),
            format!("busybox:1@{sha}"),
        ),
        // An uppercase first element can only be a domain (namespaces are lowercase).
        ("Foo/bar".into(), "Foo/bar".into(), "Foo/bar".into()),
        // A tag that looks like a digest id is still a tag of the name `sha256`.
        (
            format!("sha256:{}", f64()),
            format!("docker.io/library/sha256:{}", f64()),
            format!("sha256:{}", f64()),
        ),
    ];
    for (input, full, familiar) in cases {
        let r = Reference::parse_normalized(&input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(r.to_string(), full, "full form of {input:?}");
        assert_eq!(r.familiar_string(), familiar, "familiar form of {input:?}");
        let again =
            Reference::parse_normalized(&r.familiar_string()).expect("familiar form parses");
        assert_eq!(again, r, "familiar form of {input:?} normalises back");
    }
}

#[test]
fn normalized_errors_use_dockers_messages() {
    let cases: Vec<(String, String)> = [
        (
            "Busybox".into(),
            "invalid reference format: repository name (library/Busybox) must be lowercase",
        ),
        (
            "docker.io/Busybox:1".into(),
            "invalid reference format: repository name (library/Busybox) must be lowercase",
        ),
        (
            "localhost:5000/A/b".into(),
            "invalid reference format: repository name (A/b) must be lowercase",
        ),
        (
            "test:5000/Uppercase/lowercase:tag".into(),
            "invalid reference format: repository name (Uppercase/lowercase) must be lowercase",
        ),
        (String::new(), "invalid reference format"),
        ("-busybox".into(), "invalid reference format"),
        ("busybox:".into(), "invalid reference format"),
        ("busybox@".into(), "invalid reference format"),
        ("a b".into(), "invalid reference format"),
        ("localhost:/a".into(), "invalid reference format"),
        (
            format!("busybox@sha256:{}", "A".repeat(64)),
            "invalid checksum digest format",
        ),
        (
            format!("busybox@sha256:{}", "a".repeat(40)),
            "invalid checksum digest length",
        ),
        (
            format!("busybox@sha1:{}", "a".repeat(40)),
            "unsupported digest algorithm",
        ),
        (
            format!("example.com/{}", "a".repeat(244)),
            "repository name must not be more than 255 characters",
        ),
        (
            "a".repeat(238),
            "repository name must not be more than 255 characters",
        ),
    ]
    .into_iter()
    .map(|(input, message)| (input, message.to_owned()))
    .chain([(
        f64(),
        format!(
            "invalid repository name ({}), cannot specify 64-byte hexadecimal strings",
            f64()
        ),
    )])
    .collect();
    for (input, message) in cases {
        let err = Reference::parse_normalized(&input).expect_err(&input);
        assert_eq!(err.to_string(), message, "{input:?}");
    }
    // `docker.io/library/` plus 237 bytes is exactly 255.
    assert!(Reference::parse_normalized(&"a".repeat(237)).is_ok());
}

/// Regression from the `reference_parse` fuzz target: Docker's familiar form of a Hub
/// repository whose namespace looks like a domain names another registry. We keep
/// Docker's output (`docker images` shows `licker.io/byb`); the full form is unambiguous.
#[test]
fn familiar_form_of_a_domain_like_hub_namespace_matches_docker() {
    let hub = Reference::parse_normalized("docker.io/licker.io/byb").expect("valid");
    assert_eq!((hub.domain(), hub.path()), ("docker.io", "licker.io/byb"));
    assert_eq!(hub.familiar_string(), "licker.io/byb");
    let other = Reference::parse_normalized(&hub.familiar_string()).expect("valid");
    assert_eq!((other.domain(), other.path()), ("licker.io", "byb"));
    assert_eq!(Reference::parse_normalized(&hub.to_string()), Ok(hub));
    let id_like = Reference::parse_normalized(&format!("library/{}", f64())).expect("valid");
    assert_eq!(id_like.familiar_name(), f64());
    assert!(matches!(
        Reference::parse_normalized(&id_like.familiar_string()),
        Err(ReferenceError::HexadecimalName { .. })
    ));
}

#[test]
fn parse_docker_ref_adds_latest_or_keeps_only_the_digest() {
    let sha = format!("sha256:{}", f64());
    let cases: Vec<(String, String)> = vec![
        ("busybox".into(), "docker.io/library/busybox:latest".into()),
        (
            "busybox:1.36".into(),
            "docker.io/library/busybox:1.36".into(),
        ),
        (
            format!("busybox@{sha}"),
            format!("docker.io/library/busybox@{sha}"),
        ),
        (
            format!("busybox:latest@{sha}"),
            format!("docker.io/library/busybox@{sha}"),
        ),
        (
            "localhost:5000/a/b".into(),
            "localhost:5000/a/b:latest".into(),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            Reference::parse_docker(&input).map(|r| r.to_string()),
            Ok(want),
            "{input:?}"
        );
    }
}

#[test]
fn parse_any_treats_ids_and_digests_as_ids() {
    let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let id = Digest::parse(&format!("sha256:{hex}")).expect("valid");
    assert_eq!(
        Reference::parse_any(hex),
        Ok(AnyReference::Digest(id.clone()))
    );
    assert_eq!(
        Reference::parse_any(&format!("sha256:{hex}")),
        Ok(AnyReference::Digest(id))
    );
    match Reference::parse_any("busybox") {
        Ok(AnyReference::Named(r)) => assert_eq!(r.to_string(), "docker.io/library/busybox"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(Reference::parse_any("Busybox").is_err());
}

#[test]
fn repository_and_digest_helpers() {
    let sha = Digest::parse(&format!("sha256:{}", f64())).expect("valid");
    let r = Reference::parse_normalized("example.com/ns/app:v1").expect("valid");
    assert_eq!(r.name(), "example.com/ns/app");
    assert_eq!(r.repository().to_string(), "example.com/ns/app");
    assert!(r.repository().is_name_only());
    assert_eq!(
        r.with_digest(sha.clone()).to_string(),
        format!("example.com/ns/app:v1@{sha}")
    );
    assert_eq!(
        "busybox".parse::<Reference>().map(|r| r.familiar_name()),
        Ok("busybox".to_owned())
    );
}

#[test]
fn serde_stores_the_full_form_and_reads_it_back_exactly() {
    for input in ["busybox", "localhost:5000/a/b:1", "foo_bar.com/x"] {
        let r = Reference::parse_normalized(input).expect("valid");
        let json = serde_json::to_string(&r).expect("serialize");
        assert_eq!(json, format!("\"{r}\""));
        assert_eq!(
            serde_json::from_str::<Reference>(&json).expect("deserialize"),
            r
        );
    }
    let err = serde_json::from_str::<Reference>("\"Bad/Name\"").expect_err("invalid");
    assert_eq!(err.to_string(), "repository name must be lowercase");
}

proptest::proptest! {
    #[test]
    fn parsers_never_panic(s in "\\PC{0,300}") {
        let _ = Reference::parse_any(&s);
        if let Ok(r) = Reference::parse(&s) {
            proptest::prop_assert_eq!(r.to_string(), s);
        }
    }

    #[test]
    fn normalized_references_round_trip(s in "([a-z0-9]{1,8}(\\.[a-z0-9]{1,5})?(:[0-9]{1,5})?/)?[a-z0-9]{1,10}([._-][a-z0-9]{1,5}){0,2}(/[a-z0-9]{1,6}){0,2}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,10})?") {
        let r = Reference::parse_normalized(&s).map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{s:?}: {e}")))?;
        proptest::prop_assert_eq!(Reference::parse_normalized(&r.to_string()), Ok(r.clone()));
        proptest::prop_assert_eq!(Reference::parse_normalized(&r.familiar_string()), Ok(r));
    }
}
