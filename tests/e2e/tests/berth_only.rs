//! Behaviour issue 2 asks of berth-runtime beyond runc 1.1: `spec` output checked against
//! `runc spec`, refusing a wrong ociVersion, and `domainname`.

use anyhow::{ensure, Context, Result};
use berth_e2e::probe::observe;
use berth_e2e::spec::base_config;
use berth_e2e::{Bundle, Container, Runtime};
use serde_json::{json, Value};

fn spec_in(runtime: &Runtime, dir: &std::path::Path, extra: &[&str]) -> Result<Value> {
    let mut cmd = runtime.command();
    cmd.arg("spec").args(extra).current_dir(dir);
    berth_e2e::runtime::run_bounded(cmd)?.success()?;
    let text = std::fs::read_to_string(dir.join("config.json")).context("spec wrote no config")?;
    serde_json::from_str(&text).context("spec wrote invalid JSON")
}

fn namespace_types(config: &Value) -> Vec<String> {
    let mut types: Vec<String> = config["linux"]["namespaces"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n["type"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    types.sort();
    types
}

fn mount_destinations(config: &Value) -> Vec<String> {
    config["mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["destination"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn spec_writes_runc_s_default_config() -> Result<()> {
    let berth = Runtime::berth();
    let runc = Runtime::runc();
    for extra in [&[][..], &["--rootless"][..]] {
        let ours = tempfile::tempdir()?;
        let theirs = tempfile::tempdir()?;
        let got = spec_in(&berth, ours.path(), extra)?;
        let want = spec_in(&runc, theirs.path(), extra)?;
        ensure!(
            got["ociVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("1.")),
            "{got}"
        );
        for pointer in [
            "/process/terminal",
            "/process/args",
            "/process/cwd",
            "/process/noNewPrivileges",
            // runc 1.1 also lists an ambient set that has no effect without inheritable
            // capabilities; newer runc drops it, so only these three are compared.
            "/process/capabilities/bounding",
            "/process/capabilities/effective",
            "/process/capabilities/permitted",
            "/root",
            "/hostname",
            "/linux/maskedPaths",
            "/linux/readonlyPaths",
        ] {
            ensure!(
                got.pointer(pointer) == want.pointer(pointer),
                "spec {extra:?} {pointer}: berth {:?}, runc {:?}",
                got.pointer(pointer),
                want.pointer(pointer)
            );
        }
        ensure!(
            namespace_types(&got) == namespace_types(&want),
            "spec {extra:?} namespaces"
        );
        ensure!(
            mount_destinations(&got) == mount_destinations(&want),
            "spec {extra:?} mounts"
        );
        let again = berth_e2e::runtime::run_bounded({
            let mut cmd = berth.command();
            cmd.arg("spec").args(extra).current_dir(ours.path());
            cmd
        })?;
        ensure!(
            again.code() != 0,
            "spec must not overwrite config.json: {again}"
        );
    }
    Ok(())
}

#[test]
fn spec_output_runs_the_probe() -> Result<()> {
    let berth = Runtime::berth();
    let dir = tempfile::tempdir()?;
    let mut config = spec_in(&berth, dir.path(), &[])?;
    config["process"]["terminal"] = json!(false);
    let obs = observe(&berth, &config, &[])?;
    ensure!(obs.has("pid self 1"), "{:?}", obs.lines);
    Ok(())
}

fn refused(c: &Container<'_>, bundle: &Bundle, word: &str) -> Result<()> {
    let ran = c.create(bundle)?;
    ensure!(ran.code() != 0, "create must fail: {ran}");
    ensure!(
        ran.stderr.contains(word),
        "the error must name {word:?}: {ran}"
    );
    ensure!(c.leftovers().is_empty(), "left behind: {:?}", c.leftovers());
    Ok(())
}

#[test]
fn wrong_oci_version_is_refused_and_leaves_nothing() -> Result<()> {
    let berth = Runtime::berth();
    for version in ["0.1.0", "2.0.0", "not-a-version"] {
        let mut config = base_config(&["true"]);
        config["ociVersion"] = json!(version);
        let bundle = Bundle::busybox(&config)?;
        let c = berth.container("ociversion");
        refused(&c, &bundle, "ociVersion")?;
    }
    Ok(())
}

#[test]
fn domainname_is_set_in_the_uts_namespace() -> Result<()> {
    let berth = Runtime::berth();
    let mut config = base_config(&[]);
    config["domainname"] = json!("probe.example");
    let obs = observe(&berth, &config, &[])?;
    ensure!(
        obs.has("uts domainname probe.example"),
        "{:?}",
        obs.with_prefix("uts")
    );
    Ok(())
}
