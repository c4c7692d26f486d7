//! Reading berth-probe output: normalisation of per-run values and differential comparison.
//!
//! The probe prints `<section> <key> <value...>` lines. Values that must differ between two
//! runs (container id, bundle path, namespace inodes, pipe inodes) are rewritten to stable
//! tokens; everything else is compared verbatim, as a sorted multiset of lines.

use std::path::Path;

use anyhow::{bail, Result};
use serde_json::Value;

use crate::bundle::PROBE_IN_ROOTFS;
use crate::{host, Bundle, Runtime, Subject};

/// What the differential tests compare runc against: berth-runtime. It is a constant of its
/// own so it can point at runc (checking only the harness) while berth-runtime catches up on
/// some difference; `BERTH_E2E_SUBJECT` overrides it like [`crate::runtime::SUBJECT`].
pub const DIFFERENTIAL_SUBJECT: Subject = Subject::Berth;

/// Normalised, sorted probe lines from one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The lines, normalised and sorted.
    pub lines: Vec<String>,
}

impl Observation {
    /// Normalises raw probe output from container `id` in `bundle`.
    pub fn parse(stdout: &str, id: &str, bundle: &Path) -> Observation {
        let bundle = bundle.to_string_lossy();
        let mut lines: Vec<String> = stdout
            .lines()
            .map(|l| normalise_line(&l.replace(bundle.as_ref(), "<bundle>").replace(id, "<id>")))
            .collect();
        lines.sort();
        Observation { lines }
    }

    /// Lines starting with `prefix` (e.g. `"mount "` or `"status Cap"`).
    pub fn with_prefix(&self, prefix: &str) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|l| l.starts_with(prefix))
            .map(String::as_str)
            .collect()
    }

    /// The rest of the first line starting with `"<key> "` (e.g. `value("status CapEff")`).
    pub fn value(&self, key: &str) -> Option<&str> {
        let prefix = format!("{key} ");
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .or_else(|| self.lines.iter().find(|l| *l == key).map(|_| ""))
    }

    /// Whether some line equals `line` exactly.
    pub fn has(&self, line: &str) -> bool {
        self.lines.iter().any(|l| l == line)
    }

    /// A readable description of the lines only one side has, or None when equal.
    pub fn diff(&self, left: &str, other: &Observation, right: &str) -> Option<String> {
        let only_left = multiset_minus(&self.lines, &other.lines);
        let only_right = multiset_minus(&other.lines, &self.lines);
        if only_left.is_empty() && only_right.is_empty() {
            return None;
        }
        Some(format!(
            "only under {left}:\n  {}\nonly under {right}:\n  {}",
            only_left.join("\n  "),
            only_right.join("\n  ")
        ))
    }
}

fn multiset_minus(a: &[String], b: &[String]) -> Vec<String> {
    let mut rest: Vec<&String> = b.iter().collect();
    let mut out = Vec::new();
    for line in a {
        if let Some(i) = rest.iter().position(|r| *r == line) {
            rest.swap_remove(i);
        } else {
            out.push(line.clone());
        }
    }
    out
}

fn normalise_line(line: &str) -> String {
    let fields: Vec<&str> = line.splitn(3, ' ').collect();
    match fields.as_slice() {
        ["ns", kind, value] if !value.starts_with("err") => {
            let relation = if *value == host::namespace(kind) {
                "same"
            } else {
                "new"
            };
            format!("ns {kind} {relation}")
        }
        // What backs stdio is the caller's choice (runc's foreground `run` interposes its own
        // pipes, others pass the caller's fds through); that they are the only fds is compared.
        ["fd", n @ ("0" | "1" | "2"), _] => format!("fd {n} stdio"),
        ["fd", n, target] => format!("fd {n} {}", strip_inode(target)),
        _ => line.to_string(),
    }
}

/// `pipe:[1234]` -> `pipe`, `socket:[99]` -> `socket`; other targets unchanged.
fn strip_inode(target: &str) -> String {
    match target.split_once(":[") {
        Some((kind, rest)) if rest.ends_with(']') => kind.to_string(),
        _ => target.to_string(),
    }
}

/// Runs the probe (with `probe_args`) in a fresh busybox bundle made from `config` under
/// `runtime` and returns its observation; a non-zero exit is an error carrying all output.
pub fn observe(runtime: &Runtime, config: &Value, probe_args: &[&str]) -> Result<Observation> {
    let mut config = config.clone();
    let mut args = vec![PROBE_IN_ROOTFS];
    args.extend_from_slice(probe_args);
    crate::spec::set_args(&mut config, &args);
    let bundle = Bundle::busybox(&config)?;
    observe_in(runtime, &bundle)
}

/// Runs the already configured `bundle` under `runtime` and parses the probe's output.
pub fn observe_in(runtime: &Runtime, bundle: &Bundle) -> Result<Observation> {
    let container = runtime.container("probe");
    let ran = container.run(bundle)?;
    if ran.code() != 0 {
        bail!("the probe failed under {}: {ran}", runtime.name());
    }
    Ok(Observation::parse(
        &ran.stdout,
        container.id(),
        bundle.path(),
    ))
}

/// Runs the same config under runc and under the runtime under test and fails with a diff
/// when what the container observes differs. Returns the (shared) observation.
pub fn differential(config: &Value, probe_args: &[&str]) -> Result<Observation> {
    let oracle = Runtime::runc();
    let subject = Runtime::subject_or(DIFFERENTIAL_SUBJECT);
    let expected = observe(&oracle, config, probe_args)?;
    let actual = observe(&subject, config, probe_args)?;
    if let Some(diff) = expected.diff(oracle.name(), &actual, subject.name()) {
        bail!("the container observes different things:\n{diff}");
    }
    Ok(actual)
}
