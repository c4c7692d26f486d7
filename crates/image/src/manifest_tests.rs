use super::*;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn docker_manifest() -> String {
    format!(
        r#"{{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {{"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1469, "digest": "{D1}"}},
   "layers": [{{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2808418, "digest": "{D2}"}}]
}}"#
    )
}

fn index_entry(arch: &str, variant: &str, digest: &str) -> String {
    let variant = if variant.is_empty() {
        String::new()
    } else {
        format!(r#","variant":"{variant}""#)
    };
    format!(
        r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":7,"platform":{{"architecture":"{arch}","os":"linux"{variant}}}}}"#
    )
}

fn digest_n(n: u8) -> String {
    format!("sha256:{}", format!("{n:x}").repeat(64))
}

#[test]
fn docker_schema2_manifest_parses_with_its_descriptors() {
    let m = Manifest::parse(
        docker_manifest().as_bytes(),
        Some(media_type::DOCKER_MANIFEST),
    )
    .expect("parse");
    assert_eq!(m.config.digest.to_string(), D1);
    assert_eq!(m.config.size, 1469);
    assert_eq!(m.layers.len(), 1);
    assert_eq!(m.layers[0].media_type, media_type::DOCKER_LAYER);
    m.check_image().expect("image");
}

#[test]
fn manifest_without_media_type_field_takes_the_served_type() {
    let body = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":2}},"layers":[]}}"#
    );
    assert!(matches!(
        parse(body.as_bytes(), Some(media_type::OCI_MANIFEST)),
        Ok(Parsed::Manifest(_))
    ));
    assert!(matches!(
        parse(body.as_bytes(), Some(media_type::OCI_INDEX)),
        Err(ManifestError::UnsupportedMediaType { .. })
    ));
}

#[test]
fn declared_media_type_must_match_what_it_was_served_as() {
    let err = parse(docker_manifest().as_bytes(), Some(media_type::OCI_MANIFEST)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "manifest declares media type \"application/vnd.docker.distribution.manifest.v2+json\" but was served as \"application/vnd.oci.image.manifest.v1+json\""
    );
    // A generic content type says nothing and is accepted.
    assert!(parse(docker_manifest().as_bytes(), Some("application/json")).is_ok());
}

#[test]
fn malformed_manifests_are_refused_with_clear_errors() {
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "manifest is not valid json"),
        (r#"{"schemaVersion":1,"fsLayers":[]}"#.into(), "docker schema 1 manifests are not supported"),
        (r#"{"schemaVersion":3,"layers":[]}"#.into(), "unsupported manifest schemaVersion 3"),
        (r#"{"schemaVersion":2}"#.into(), "neither \"config\" nor \"manifests\""),
        (
            format!(r#"{{"schemaVersion":2,"manifests":[],"layers":[],"config":{{"mediaType":"a","digest":"{D1}","size":1}}}}"#),
            "ambiguous",
        ),
        (
            r#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:abc","size":1},"layers":[]}"#.into(),
            "not valid json",
        ),
        (
            format!(r#"{{"schemaVersion":2,"config":{{"mediaType":"a","digest":"{D1}","size":-1}},"layers":[]}}"#),
            "not valid json",
        ),
        (
            format!(r#"{{"schemaVersion":2,"config":{{"mediaType":"","digest":"{D1}","size":1}},"layers":[]}}"#),
            "empty media type",
        ),
        (
            format!(r#"{{"schemaVersion":2,"config":{{"mediaType":"a","digest":"{D1}","size":18014398509481984}},"layers":[]}}"#),
            "larger than any blob",
        ),
        (
            r#"{"schemaVersion":2,"mediaType":"text/plain","manifests":[]}"#.into(),
            "unsupported manifest media type",
        ),
    ];
    for (body, want) in cases {
        let err = parse(body.as_bytes(), None).expect_err(&body);
        let text = format!("{err}");
        assert!(text.contains(want), "{body}: {text}");
    }
    let big = vec![b' '; MAX_MANIFEST_SIZE + 1];
    assert!(matches!(
        parse(&big, None),
        Err(ManifestError::TooLarge { .. })
    ));
}

#[test]
fn artifact_manifests_parse_but_are_not_images() {
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{D1}","size":2}},"layers":[]}}"#
    );
    let m = Manifest::parse(body.as_bytes(), None).expect("parse");
    assert!(matches!(
        m.check_image(),
        Err(ManifestError::NotAnImageConfig { .. })
    ));
}

#[test]
fn index_selects_the_best_platform_and_skips_attestations() {
    let attestation = format!(
        r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":7,"platform":{{"architecture":"unknown","os":"unknown"}}}}"#,
        digest_n(9)
    );
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{},{},{},{},{attestation}]}}"#,
        index_entry("arm", "v6", &digest_n(1)),
        index_entry("arm", "v7", &digest_n(2)),
        index_entry("amd64", "", &digest_n(3)),
        index_entry("arm64", "v8", &digest_n(4)),
    );
    let index = Index::parse(body.as_bytes(), None).expect("parse");
    let pick = |p: &str| {
        index
            .select(&PlatformMatcher::only(
                &Platform::parse(p).expect("platform"),
            ))
            .map(|d| d.digest.to_string())
    };
    assert_eq!(pick("linux/amd64"), Some(digest_n(3)));
    assert_eq!(pick("linux/arm/v7"), Some(digest_n(2)));
    assert_eq!(pick("linux/arm/v6"), Some(digest_n(1)));
    assert_eq!(pick("linux/arm64"), Some(digest_n(4)));
    assert_eq!(pick("linux/s390x"), None);
    assert_eq!(
        index
            .select(&PlatformMatcher::strict(
                &Platform::parse("linux/arm/v5").expect("platform")
            ))
            .map(|d| d.digest.to_string()),
        None
    );
}

#[test]
fn index_entry_without_platform_is_the_fallback() {
    let body = format!(
        r#"{{"schemaVersion":2,"manifests":[{},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":3}}]}}"#,
        index_entry("ppc64le", "", &digest_n(1)),
        digest_n(2)
    );
    let index = Index::parse(body.as_bytes(), None).expect("parse");
    let amd64 = PlatformMatcher::only(&Platform::parse("linux/amd64").expect("platform"));
    assert_eq!(
        index.select(&amd64).map(|d| d.digest.to_string()),
        Some(digest_n(2))
    );
}

#[test]
fn docker_manifest_list_is_an_index() {
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{}]}}"#,
        index_entry("amd64", "", &digest_n(5))
            .replace(media_type::OCI_MANIFEST, media_type::DOCKER_MANIFEST)
    );
    assert!(matches!(parse(body.as_bytes(), None), Ok(Parsed::Index(_))));
    assert!(Manifest::parse(body.as_bytes(), None).is_err());
}
