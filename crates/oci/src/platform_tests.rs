//! Table tests for platform parsing, normalisation and manifest-list selection.

use super::*;

#[test]
fn parse_table_follows_containerd() {
    let host = Platform::host();
    let cases: Vec<(&str, Platform)> = vec![
        ("linux/amd64", Platform::new("linux", "amd64", "")),
        ("linux/x86_64", Platform::new("linux", "amd64", "")),
        ("linux/x86-64", Platform::new("linux", "amd64", "")),
        ("Linux/AMD64", Platform::new("linux", "amd64", "")),
        ("linux/i386", Platform::new("linux", "386", "")),
        ("linux/arm64", Platform::new("linux", "arm64", "")),
        ("linux/aarch64", Platform::new("linux", "arm64", "")),
        ("linux/arm64/v8", Platform::new("linux", "arm64", "v8")),
        ("linux/aarch64/8", Platform::new("linux", "arm64", "v8")),
        ("linux/arm64/9", Platform::new("linux", "arm64", "v9")),
        ("linux/arm64/V8", Platform::new("linux", "arm64", "v8")),
        ("linux/arm", Platform::new("linux", "arm", "")),
        ("linux/arm/v7", Platform::new("linux", "arm", "v7")),
        ("linux/arm/7", Platform::new("linux", "arm", "v7")),
        ("linux/arm/6", Platform::new("linux", "arm", "v6")),
        ("linux/armhf", Platform::new("linux", "arm", "")),
        ("linux/armel", Platform::new("linux", "arm", "v6")),
        ("linux/amd64/v1", Platform::new("linux", "amd64", "")),
        ("linux/amd64/v3", Platform::new("linux", "amd64", "v3")),
        ("macos/arm64", Platform::new("darwin", "arm64", "")),
        ("linux/s390x", Platform::new("linux", "s390x", "")),
        (
            "linux",
            Platform {
                os: "linux".into(),
                ..host.clone()
            },
        ),
        (
            "arm64",
            Platform {
                architecture: "arm64".into(),
                variant: String::new(),
                ..host.clone()
            },
        ),
        (
            "aarch64",
            Platform {
                architecture: "arm64".into(),
                variant: String::new(),
                ..host.clone()
            },
        ),
        (
            "windows(10.0.17763)/amd64",
            Platform {
                os_version: "10.0.17763".into(),
                ..Platform::new("windows", "amd64", "")
            },
        ),
    ];
    for (input, want) in cases {
        assert_eq!(Platform::parse(input), Ok(want), "{input:?}");
    }
}

#[test]
fn bad_specifiers_are_refused_with_containerds_messages() {
    let cases = [
        ("linux/*", "\"linux/*\": wildcards not yet supported"),
        ("foo", "\"foo\": unknown operating system or architecture"),
        ("linux/amd64/v2/extra", "\"linux/amd64/v2/extra\": cannot parse platform specifier"),
        (
            "linux//amd64",
            "\"\" is an invalid component of \"linux//amd64\": platform specifier component must match \"^[A-Za-z0-9_-]+$\"",
        ),
        (
            "linux/am.d64",
            "\"am.d64\" is an invalid component of \"linux/am.d64\": platform specifier component must match \"^[A-Za-z0-9_-]+$\"",
        ),
        ("", "\"\" is an invalid component of \"\": platform specifier component must match \"^[A-Za-z0-9_-]+$\""),
    ];
    for (input, message) in cases {
        assert_eq!(
            Platform::parse(input).map_err(|e| e.to_string()),
            Err(message.to_owned()),
            "{input:?}"
        );
    }
}

#[test]
fn normalisation_makes_equivalent_spellings_equal() {
    let same = [
        ("linux/arm64/v8", "linux/aarch64"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/amd64/v1", "linux/x86_64"),
    ];
    for (a, b) in same {
        let (pa, pb) = (Platform::parse(a).expect(a), Platform::parse(b).expect(b));
        assert_eq!(pa.normalized(), pb.normalized(), "{a} vs {b}");
    }
    assert_eq!(
        Platform::parse("linux/arm")
            .expect("valid")
            .normalized()
            .variant,
        "v7"
    );
    assert_eq!(
        Platform::parse("linux/arm64/v8")
            .expect("valid")
            .normalized()
            .variant,
        ""
    );
}

#[test]
fn display_is_os_arch_variant() {
    assert_eq!(
        Platform::new("linux", "arm64", "v8").to_string(),
        "linux/arm64/v8"
    );
    assert_eq!(
        Platform::new("linux", "amd64", "").to_string(),
        "linux/amd64"
    );
    assert_eq!(Platform::default().to_string(), "unknown");
    for s in [
        "linux/amd64",
        "linux/arm64/v8",
        "linux/arm/v6",
        "windows/amd64",
    ] {
        assert_eq!(Platform::parse(s).expect(s).to_string(), s);
    }
}

#[test]
fn host_platform_is_normalised() {
    let host = Platform::host();
    assert_eq!(host.normalized(), host);
    assert!(!host.os.is_empty() && !host.architecture.is_empty());
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    assert_eq!(host, Platform::new("linux", "amd64", ""));
}

fn index_entries() -> Vec<Platform> {
    [
        ("linux", "386", ""),
        ("linux", "amd64", ""),
        ("linux", "arm", "v5"),
        ("linux", "arm", "v6"),
        ("linux", "arm", "v7"),
        ("linux", "arm64", "v8"),
        ("linux", "ppc64le", ""),
        ("windows", "amd64", ""),
        ("unknown", "unknown", ""),
    ]
    .into_iter()
    .map(|(os, arch, variant)| Platform::new(os, arch, variant))
    .collect()
}

#[test]
fn manifest_list_selection_prefers_the_exact_platform() {
    let entries = index_entries();
    let pick = |spec: &str| {
        let wanted = Platform::parse(spec).expect(spec);
        PlatformMatcher::only(&wanted)
            .best(&entries)
            .map(|i| entries[i].to_string())
    };
    assert_eq!(pick("linux/amd64"), Some("linux/amd64".into()));
    assert_eq!(pick("linux/arm64"), Some("linux/arm64/v8".into()));
    assert_eq!(pick("linux/arm64/v8"), Some("linux/arm64/v8".into()));
    assert_eq!(pick("linux/arm/v7"), Some("linux/arm/v7".into()));
    assert_eq!(pick("linux/arm"), Some("linux/arm/v7".into()));
    assert_eq!(pick("linux/arm/v6"), Some("linux/arm/v6".into()));
    assert_eq!(pick("windows/amd64"), Some("windows/amd64".into()));
    assert_eq!(pick("linux/s390x"), None);
}

#[test]
fn compatible_fallbacks_are_ordered_like_containerd() {
    let arm64 = PlatformMatcher::only(&Platform::new("linux", "arm64", ""));
    let order: Vec<Option<usize>> = [
        "linux/arm64/v8",
        "linux/arm/v8",
        "linux/arm/v7",
        "linux/arm/v6",
        "linux/arm/v5",
    ]
    .iter()
    .map(|s| arm64.rank(&Platform::parse(s).expect(s)))
    .collect();
    assert_eq!(order, vec![Some(0), Some(1), Some(2), Some(3), Some(4)]);
    assert!(!arm64.matches(&Platform::new("linux", "amd64", "")));

    let amd64 = PlatformMatcher::only(&Platform::new("linux", "amd64", ""));
    assert!(amd64.matches(&Platform::new("linux", "386", "")));
    assert!(amd64.less(
        &Platform::new("linux", "amd64", ""),
        &Platform::new("linux", "386", "")
    ));
    assert!(amd64.less(
        &Platform::new("linux", "386", ""),
        &Platform::new("linux", "arm64", "")
    ));
    assert!(!amd64.matches(&Platform::new("linux", "amd64", "v2")));
    let v3 = PlatformMatcher::only(&Platform::new("linux", "amd64", "v3"));
    assert_eq!(v3.rank(&Platform::new("linux", "amd64", "v2")), Some(1));
    assert_eq!(v3.rank(&Platform::new("linux", "amd64", "")), Some(2));

    let arm_v6 = PlatformMatcher::only(&Platform::new("linux", "arm", "v6"));
    assert!(!arm_v6.matches(&Platform::new("linux", "arm", "v7")));
    assert!(arm_v6.matches(&Platform::new("linux", "arm", "v5")));

    let strict = PlatformMatcher::strict(&Platform::new("linux", "amd64", ""));
    assert!(!strict.matches(&Platform::new("linux", "386", "")));
    assert!(strict.matches(&Platform::new("linux", "x86_64", "")));
}

#[test]
fn windows_os_version_must_share_the_build() {
    let wanted = Platform {
        os_version: "10.0.17763.1".into(),
        ..Platform::new("windows", "amd64", "")
    };
    let m = PlatformMatcher::only(&wanted);
    let same = Platform {
        os_version: "10.0.17763.5000".into(),
        ..Platform::new("windows", "amd64", "")
    };
    let other = Platform {
        os_version: "10.0.20348.1".into(),
        ..Platform::new("windows", "amd64", "")
    };
    assert!(m.matches(&same));
    assert!(!m.matches(&other));
}

#[test]
fn serde_uses_oci_field_names() {
    let p = Platform {
        os_version: "10.0".into(),
        os_features: vec!["win32k".into()],
        ..Platform::new("windows", "amd64", "")
    };
    let json = serde_json::to_string(&p).expect("serialize");
    assert_eq!(
        json,
        r#"{"architecture":"amd64","os":"windows","os.version":"10.0","os.features":["win32k"]}"#
    );
    assert_eq!(
        serde_json::from_str::<Platform>(&json).expect("deserialize"),
        p
    );
    let minimal: Platform =
        serde_json::from_str(r#"{"architecture":"arm64","os":"linux","variant":"v8"}"#)
            .expect("parse");
    assert_eq!(minimal, Platform::new("linux", "arm64", "v8"));
}

/// Regression from the `platform_parse` fuzz target: a huge variant number made a fallback
/// list with millions of entries. Fallbacks stop at the highest real variant.
#[test]
fn huge_variants_do_not_explode_the_fallback_list() {
    let arm = PlatformMatcher::only(&Platform::parse("S/arm/v7792287").expect("valid"));
    assert_eq!(arm.ordered.len(), 1 + 4, "itself, then v8 down to v5");
    assert!(arm.matches(&Platform::new("s", "arm", "v5")));
    let amd64 = PlatformMatcher::only(&Platform::new("linux", "amd64", "v4294967295"));
    assert_eq!(
        amd64.ordered.len(),
        1 + 4 + 1,
        "itself, v4 down to v1, then 386"
    );
}
