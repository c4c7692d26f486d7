//! More bad (and merely unusual) input for `create`: ociVersion outside 1.0–1.2, fields of
//! the wrong type, empty args, relative cwd and duplicate ids are refused clearly with
//! nothing left behind; unknown fields, unknown capability names and unknown seccomp
//! syscall names are ignored as runc ignores them.

use anyhow::{ensure, Result};
use berth_e2e::spec::base_config;
use berth_e2e::{Bundle, Container, Runtime};
use serde_json::{json, Value};

/// `create` must fail naming one of `words`, and leave nothing behind.
fn refused(c: &Container<'_>, bundle: &Bundle, words: &[&str]) -> Result<()> {
    let ran = c.create(bundle)?;
    ensure!(ran.code() != 0, "create must fail: {ran}");
    let stderr = ran.stderr.to_lowercase();
    ensure!(
        words.iter().any(|w| stderr.contains(w)),
        "the error must name the problem ({words:?}): {ran}"
    );
    ensure!(
        c.op("state", &[], &[])?.code() != 0,
        "state must not know a failed container"
    );
    let left = c.leftovers();
    ensure!(left.is_empty(), "left behind by a failed create: {left:?}");
    Ok(())
}

/// `create` must succeed (status "created"), then `delete` must leave nothing behind.
fn accepted(c: &Container<'_>, bundle: &Bundle) -> Result<()> {
    c.create(bundle)?.success()?;
    ensure!(c.status()? == "created", "status after create");
    c.op("delete", &[], &[])?.success()?;
    let left = c.leftovers();
    ensure!(left.is_empty(), "left behind after delete: {left:?}");
    Ok(())
}

#[test]
fn oci_version_2_is_refused_and_leaves_nothing() -> Result<()> {
    // berth-only: runc does not check ociVersion.
    let rt = Runtime::berth();
    for version in ["2.0.0", "0.9.0"] {
        let mut config = base_config(&["true"]);
        config["ociVersion"] = json!(version);
        let bundle = Bundle::busybox(&config)?;
        let c = rt.container("badversion");
        refused(&c, &bundle, &[version])?;
    }
    Ok(())
}

#[test]
fn oci_versions_1_0_to_1_2_are_accepted() -> Result<()> {
    let rt = Runtime::subject();
    for version in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0"] {
        let mut config = base_config(&["true"]);
        config["ociVersion"] = json!(version);
        let bundle = Bundle::busybox(&config)?;
        accepted(&rt.container("okversion"), &bundle)?;
    }
    Ok(())
}

#[test]
fn unknown_fields_are_ignored_like_runc() -> Result<()> {
    // runtime-spec is extended by adding fields; an engine newer than the runtime must
    // still work, so unknown keys anywhere are ignored rather than refused.
    let rt = Runtime::subject();
    let mut config = base_config(&["true"]);
    config["berthFutureField"] = json!({"x": 1});
    config["process"]["futureProcessField"] = json!(true);
    config["linux"]["futureLinuxField"] = json!([1, 2]);
    let bundle = Bundle::busybox(&config)?;
    let c = rt.container("unknownfields");
    accepted(&c, &bundle)
}

#[test]
fn unknown_capability_names_are_ignored_like_runc() -> Result<()> {
    let rt = Runtime::subject();
    let mut config = base_config(&["true"]);
    let caps: &mut Value = &mut config["process"]["capabilities"];
    for set in ["bounding", "effective", "permitted"] {
        caps[set] = json!(["CAP_KILL", "CAP_BERTH_NO_SUCH"]);
    }
    let bundle = Bundle::busybox(&config)?;
    let c = rt.container("unknowncap");
    accepted(&c, &bundle)
}

#[test]
fn unknown_seccomp_syscall_names_are_ignored_like_runc() -> Result<()> {
    let rt = Runtime::subject();
    let mut config = base_config(&["true"]);
    config["linux"]["seccomp"] = json!({ "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [ { "names": ["berth_no_such_syscall", "mkdir"],
                        "action": "SCMP_ACT_ERRNO" } ] });
    let bundle = Bundle::busybox(&config)?;
    let c = rt.container("unknownsyscall");
    accepted(&c, &bundle)
}

/// A word the error must contain, and the change that breaks the config.
type Case = (&'static str, fn(&mut Value));

#[test]
fn wrongly_typed_fields_are_refused_and_leave_nothing() -> Result<()> {
    let rt = Runtime::subject();
    let cases: [Case; 3] = [
        ("process", |c| c["process"] = json!("sh")),
        ("uid", |c| c["process"]["user"]["uid"] = json!("root")),
        ("mounts", |c| c["mounts"] = json!({"destination": "/x"})),
    ];
    for (word, mutate) in cases {
        let mut config = base_config(&["true"]);
        mutate(&mut config);
        let bundle = Bundle::busybox(&config)?;
        let c = rt.container("badtype");
        refused(
            &c,
            &bundle,
            &[word, "json", "invalid type", "cannot unmarshal"],
        )?;
    }
    Ok(())
}

#[test]
fn empty_args_and_relative_cwd_are_refused_and_leave_nothing() -> Result<()> {
    let rt = Runtime::subject();
    let mut config = base_config(&["true"]);
    config["process"]["args"] = json!([]);
    let bundle = Bundle::busybox(&config)?;
    refused(&rt.container("noargs"), &bundle, &["args"])?;
    let mut config = base_config(&["true"]);
    config["process"]["cwd"] = json!("relative/dir");
    let bundle = Bundle::busybox(&config)?;
    let c = rt.container("relcwd");
    refused(&c, &bundle, &["cwd"])
}

#[test]
fn duplicate_id_is_refused_and_keeps_the_first_container() -> Result<()> {
    let rt = Runtime::subject();
    let bundle = Bundle::busybox(&base_config(&["true"]))?;
    let c = rt.container("dupid");
    c.create(&bundle)?.success()?;
    let pid_before = c.state()?["pid"].clone();
    let again = c.create(&bundle)?;
    ensure!(again.code() != 0, "a second create must fail: {again}");
    ensure!(
        again.stderr.to_lowercase().contains("already exists"),
        "the error must say the id exists: {again}"
    );
    ensure!(c.status()? == "created", "the first container is untouched");
    ensure!(c.state()?["pid"] == pid_before, "same init as before");
    c.op("delete", &[], &[])?.success()?;
    let left = c.leftovers();
    ensure!(left.is_empty(), "left behind after delete: {left:?}");
    Ok(())
}
