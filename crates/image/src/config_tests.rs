use super::*;

/// A config as Docker 24 writes it for a built image, every `Config` field set, plus keys
/// Docker does not know.
const FULL: &str = r#"{
  "architecture": "arm",
  "variant": "v7",
  "author": "someone",
  "config": {
    "Hostname": "", "Domainname": "", "User": "1000:1000",
    "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
    "ExposedPorts": {"80/tcp": {}},
    "Tty": false, "OpenStdin": false, "StdinOnce": false,
    "Env": ["PATH=/usr/bin"],
    "Cmd": ["serve"],
    "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30000000000, "Timeout": 1000000000, "StartPeriod": 5000000000, "StartInterval": 1000000000, "Retries": 3},
    "ArgsEscaped": true,
    "Image": "sha256:abc",
    "Volumes": {"/data": {}},
    "WorkingDir": "/srv",
    "Entrypoint": ["/app"],
    "OnBuild": ["RUN make"],
    "Labels": {"a": "b"},
    "StopSignal": "SIGQUIT",
    "StopTimeout": 7,
    "Shell": ["/bin/bash", "-c"],
    "FutureField": {"x": 1}
  },
  "created": "2024-01-02T03:04:05.123456789Z",
  "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "RUN x", "empty_layer": true, "future": 1}],
  "os": "linux",
  "rootfs": {"type": "layers", "diff_ids": ["sha256:1111111111111111111111111111111111111111111111111111111111111111"]},
  "moby.buildkit.buildinfo.v1": "e30="
}"#;

#[test]
fn config_keeps_every_docker_field_and_unknown_keys() {
    let c = ImageConfig::parse(FULL.as_bytes()).expect("parse");
    let cc = c.config.as_ref().expect("config");
    assert_eq!(cc.user.as_deref(), Some("1000:1000"));
    assert_eq!(cc.args_escaped, Some(true));
    assert_eq!(cc.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(cc.stop_timeout, Some(7));
    assert_eq!(cc.shell.as_ref().map(Vec::len), Some(2));
    assert_eq!(
        cc.on_build.as_ref().map(|v| v[0].as_str()),
        Some("RUN make")
    );
    let hc = cc.healthcheck.as_ref().expect("healthcheck");
    assert_eq!(hc.interval, Some(30_000_000_000));
    assert_eq!(hc.start_interval, Some(1_000_000_000));
    assert_eq!(hc.retries, Some(3));
    assert!(cc
        .exposed_ports
        .as_ref()
        .expect("ports")
        .contains_key("80/tcp"));
    assert!(cc.volumes.as_ref().expect("volumes").contains_key("/data"));
    assert_eq!(
        cc.extra.get("FutureField"),
        Some(&serde_json::json!({"x": 1}))
    );
    assert_eq!(
        c.extra.get("moby.buildkit.buildinfo.v1"),
        Some(&serde_json::json!("e30="))
    );
    assert_eq!(c.history[0].empty_layer, Some(true));
    assert_eq!(
        c.history[0].extra.get("future"),
        Some(&serde_json::json!(1))
    );
    assert_eq!(c.platform().to_string(), "linux/arm/v7");
    // Re-serialising a parsed config loses nothing (even though berth serves raw bytes).
    let again: serde_json::Value = serde_json::to_value(&c).expect("to value");
    let original: serde_json::Value = serde_json::from_str(FULL).expect("json");
    assert_eq!(again, original);
}

#[test]
fn config_without_layers_rootfs_is_refused() {
    let err = ImageConfig::parse(br#"{"rootfs":{"type":"foo","diff_ids":[]}}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "image config has rootfs type \"foo\", expected \"layers\""
    );
    assert!(matches!(
        ImageConfig::parse(br#"{"os":"linux"}"#),
        Err(ConfigError::NoRootFs)
    ));
    assert!(matches!(
        ImageConfig::parse(br#"{"rootfs":{"type":"layers","diff_ids":["sha256:zz"]}}"#),
        Err(ConfigError::Json(_))
    ));
}

#[test]
fn chain_ids_follow_the_oci_image_spec() {
    let d =
        |c: char| Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).expect("digest");
    let diff_ids = [d('a'), d('b'), d('c')];
    let chain = chain_ids(&diff_ids);
    assert_eq!(chain[0], diff_ids[0]);
    let second = Digest::sha256_of(format!("{} {}", diff_ids[0], diff_ids[1]).as_bytes());
    assert_eq!(chain[1], second);
    assert_eq!(
        chain[2],
        Digest::sha256_of(format!("{second} {}", diff_ids[2]).as_bytes())
    );
    assert!(chain_ids(&[]).is_empty());
}

#[test]
fn chain_id_matches_sha256sum_of_the_spec_string() {
    // Expected value from `echo -n "<chain> <diff>" | sha256sum`, outside this code.
    let base =
        Digest::parse("sha256:3d24ee258efc3bfe4066a1a9fb83febf6dc0b1548dfe896161533668281c9f4f")
            .expect("digest");
    let top =
        Digest::parse("sha256:1111111111111111111111111111111111111111111111111111111111111111")
            .expect("digest");
    let chain = chain_ids(&[base.clone(), top]);
    assert_eq!(chain[0], base);
    assert_eq!(
        chain[1].to_string(),
        "sha256:1af8f9ea26f024daa8be8fb1cef59eeda13597cb8380444f859a4107bd2092da"
    );
}
