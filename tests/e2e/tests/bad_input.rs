//! Bad input and failures half way through create: a clear error, a non-zero exit, and
//! nothing left behind (no state dir, no cgroup named after the id, no mount).

use anyhow::{ensure, Result};
use berth_e2e::spec::{add_mount, base_config};
use berth_e2e::{Bundle, Container, Runtime};
use serde_json::json;

/// `create` must fail, its stderr must contain one of `words`, and nothing may remain.
fn refused(c: &Container<'_>, bundle: &Bundle, words: &[&str]) -> Result<()> {
    let ran = c.create(bundle)?;
    ensure!(ran.code() != 0, "create must fail: {ran}");
    let stderr = ran.stderr.to_lowercase();
    ensure!(
        words.iter().any(|w| stderr.contains(w)),
        "the error must name the problem ({words:?}): {ran}"
    );
    let state = c.op("state", &[], &[])?;
    ensure!(
        state.code() != 0,
        "state must not know a failed container: {state}"
    );
    let left = c.leftovers();
    ensure!(left.is_empty(), "left behind by a failed create: {left:?}");
    Ok(())
}

#[test]
fn missing_rootfs_is_a_clear_error_and_leaves_nothing() -> Result<()> {
    let rt = Runtime::subject();
    let bundle = Bundle::busybox(&base_config(&["true"]))?;
    std::fs::remove_dir_all(bundle.rootfs())?;
    let c = rt.container("norootfs");
    refused(&c, &bundle, &["rootfs"])
}

#[test]
fn malformed_config_json_is_a_clear_error_and_leaves_nothing() -> Result<()> {
    let rt = Runtime::subject();
    let bundle = Bundle::busybox(&base_config(&["true"]))?;
    bundle.write_raw_config(b"{\"ociVersion\": \"1.0.2\", \"process\": ")?;
    let c = rt.container("badjson");
    refused(&c, &bundle, &["eof", "json", "config"])
}

#[test]
fn missing_config_json_is_a_clear_error_and_leaves_nothing() -> Result<()> {
    let rt = Runtime::subject();
    let bundle = Bundle::busybox(&base_config(&["true"]))?;
    std::fs::remove_file(bundle.path().join("config.json"))?;
    let c = rt.container("noconfig");
    refused(&c, &bundle, &["config.json"])
}

#[test]
fn missing_executable_fails_create_and_leaves_nothing() -> Result<()> {
    let rt = Runtime::subject();
    let bundle = Bundle::busybox(&base_config(&["/nosuch/binary"]))?;
    let c = rt.container("noexe");
    refused(&c, &bundle, &["/nosuch/binary"])
}

#[test]
fn mount_failing_inside_init_leaves_nothing() -> Result<()> {
    let rt = Runtime::subject();
    let mut config = base_config(&["true"]);
    add_mount(
        &mut config,
        json!({ "destination": "/data", "type": "bind",
                "source": "/nonexistent/berth-e2e-source", "options": ["bind"] }),
    );
    let bundle = Bundle::busybox(&config)?;
    let c = rt.container("badmount");
    refused(&c, &bundle, &["/nonexistent/berth-e2e-source", "mount"])
}

#[test]
fn failed_run_leaves_nothing() -> Result<()> {
    let rt = Runtime::subject();
    let mut config = base_config(&["true"]);
    config["mounts"][0]["type"] = json!("nosuchfs");
    let bundle = Bundle::busybox(&config)?;
    let c = rt.container("badfs");
    let ran = c.run(&bundle)?;
    ensure!(
        ran.code() != 0,
        "run with an unknown fs type must fail: {ran}"
    );
    let left = c.leftovers();
    ensure!(left.is_empty(), "left behind by a failed run: {left:?}");
    Ok(())
}

#[test]
fn bad_seccomp_action_or_architecture_is_refused_and_leaves_nothing() -> Result<()> {
    let rt = Runtime::subject();
    for (seccomp, word) in [
        (
            json!({ "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [ { "names": ["mkdir"], "action": "SCMP_ACT_NOPE" } ] }),
            "scmp_act_nope",
        ),
        (
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_NOPE"],
                    "syscalls": [ { "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" } ] }),
            "scmp_arch_nope",
        ),
    ] {
        let mut config = base_config(&["true"]);
        config["linux"]["seccomp"] = seccomp;
        let bundle = Bundle::busybox(&config)?;
        let c = rt.container("badseccomp");
        refused(&c, &bundle, &[word])?;
    }
    Ok(())
}
