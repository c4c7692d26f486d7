//! The layering rules of ARCHITECTURE.md, checked against `cargo metadata`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use anyhow::Context;
use serde::Deserialize;

/// Layer of each internal package; dependencies may only point to a lower layer.
/// A package missing from this table is itself a violation: place it deliberately.
const LAYERS: &[(&str, u8)] = &[
    ("berth-oci", 0),
    ("berth-api", 0),
    ("berth-runtime", 1),
    ("berth-content", 1),
    ("berth-snapshot", 1),
    ("berth-dockerfile", 1),
    ("berth-network", 1),
    ("berth-shim", 1),
    ("berth-image", 2),
    ("berth-registry", 2),
    ("berth-build", 2),
    ("berth-swarm", 2),
    ("berth-engine", 3),
    ("berth-server", 4),
    ("berth-client", 4),
    ("berth-testkit", 4),
];

/// Packages that are leaves of the graph (binaries, tests, tooling): they may use any library.
const LEAVES: &[&str] = &[
    "berth-runtime-bin",
    "berth-registry-bin",
    "berth-shim-bin",
    "berth-cli",
    "berthd",
    "xtask",
    "berth-e2e",
    "berth-netperf",
    "berth-fuzz",
];

/// Crates that must never appear anywhere in `berth-runtime`'s dependency tree.
const ASYNC_RUNTIMES: &[&str] = &["tokio", "async-std", "smol", "async-executor"];

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    resolve: Resolve,
    workspace_members: Vec<String>,
}

#[derive(Deserialize)]
struct Package {
    id: String,
    name: String,
}

#[derive(Deserialize)]
struct Resolve {
    nodes: Vec<Node>,
}

#[derive(Deserialize)]
struct Node {
    id: String,
    deps: Vec<NodeDep>,
}

#[derive(Deserialize)]
struct NodeDep {
    pkg: String,
    dep_kinds: Vec<DepKind>,
}

#[derive(Deserialize)]
struct DepKind {
    kind: Option<String>,
}

/// The resolved package graph, by package name.
pub struct Graph {
    members: BTreeSet<String>,
    /// Normal and build dependencies (what ships), by package name.
    deps: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    /// Runs `cargo metadata` for this workspace (offline: the lock file must be resolved).
    pub fn load() -> anyhow::Result<Self> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
        // Only the host's dependencies matter for the rules, and filtering by platform
        // lets this run offline without downloading other targets' crates.
        let host = env!("XTASK_HOST");
        let out = Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--offline"])
            .args(["--filter-platform", host, "--manifest-path", manifest])
            .output()
            .context("running cargo metadata")?;
        anyhow::ensure!(
            out.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: Metadata =
            serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
        Ok(Self::from_metadata(meta))
    }

    fn from_metadata(meta: Metadata) -> Self {
        let names: BTreeMap<&str, &str> = meta
            .packages
            .iter()
            .map(|p| (p.id.as_str(), p.name.as_str()))
            .collect();
        let name_of = |id: &str| {
            names
                .get(id)
                .map_or_else(|| id.to_owned(), |n| (*n).to_owned())
        };
        let members = meta
            .workspace_members
            .iter()
            .map(|id| name_of(id))
            .collect();
        let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for node in &meta.resolve.nodes {
            let shipped = node
                .deps
                .iter()
                .filter(|d| d.dep_kinds.iter().any(|k| k.kind.as_deref() != Some("dev")));
            deps.entry(name_of(&node.id))
                .or_default()
                .extend(shipped.map(|d| name_of(&d.pkg)));
        }
        Graph { members, deps }
    }

    /// Edges between workspace packages.
    pub fn internal_edges(&self) -> Vec<(String, String)> {
        let mut edges = Vec::new();
        for from in &self.members {
            for to in self.deps.get(from).into_iter().flatten() {
                if self.members.contains(to) {
                    edges.push((from.clone(), to.clone()));
                }
            }
        }
        edges
    }

    /// Every package reachable from `root` through shipped dependencies.
    pub fn closure(&self, root: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![root.to_owned()];
        while let Some(p) = stack.pop() {
            for d in self.deps.get(&p).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    stack.push(d.clone());
                }
            }
        }
        seen
    }
}

fn layer(name: &str) -> Option<u8> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
}

/// Every broken rule, as a sentence; empty when the graph follows ARCHITECTURE.md.
pub fn violations(graph: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for member in &graph.members {
        if layer(member).is_none() && !LEAVES.contains(&member.as_str()) {
            out.push(format!(
                "package {member} has no layer in xtask's LAYERS table"
            ));
        }
    }
    for (from, to) in graph.internal_edges() {
        if LEAVES.contains(&to.as_str()) {
            out.push(format!(
                "{from} depends on {to}, which is a leaf (binary, test or tool)"
            ));
        }
        if let (Some(lf), Some(lt)) = (layer(&from), layer(&to)) {
            if lt >= lf {
                out.push(format!(
                    "{from} (L{lf}) depends on {to} (L{lt}): edges point down only"
                ));
            }
        }
    }
    if graph.members.contains("berth-engine")
        && graph.closure("berth-engine").contains("berth-runtime")
    {
        out.push("berth-engine depends on berth-runtime: containers belong to shims".into());
    }
    if graph.members.contains("berth-runtime") {
        let closure = graph.closure("berth-runtime");
        for rt in ASYNC_RUNTIMES {
            if closure.contains(*rt) {
                out.push(format!(
                    "berth-runtime depends on {rt}: the runtime stays synchronous"
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_follows_the_layering_in_architecture_md() {
        let graph = Graph::load().expect("cargo metadata");
        assert!(
            graph.members.contains("berth-runtime"),
            "berth-runtime is a workspace member"
        );
        let violations = violations(&graph);
        assert!(violations.is_empty(), "{violations:#?}");
    }

    #[test]
    fn runtime_never_depends_on_an_async_runtime() {
        let graph = Graph::load().expect("cargo metadata");
        let closure = graph.closure("berth-runtime");
        assert!(closure.contains("libc"), "closure is computed: {closure:?}");
        for rt in ASYNC_RUNTIMES {
            assert!(!closure.contains(*rt), "berth-runtime pulls in {rt}");
        }
    }

    fn graph(edges: &[(&str, &str)]) -> Graph {
        let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut members = BTreeSet::new();
        for (f, t) in edges {
            members.insert((*f).to_owned());
            deps.entry((*f).to_owned())
                .or_default()
                .insert((*t).to_owned());
        }
        Graph { members, deps }
    }

    #[test]
    fn upward_edge_and_async_runtime_are_reported() {
        let mut g = graph(&[("berth-oci", "berth-runtime"), ("berth-runtime", "tokio")]);
        g.members.insert("berth-runtime".into());
        let v = violations(&g);
        assert!(
            v.iter().any(|s| s.contains("edges point down only")),
            "{v:?}"
        );
        assert!(v.iter().any(|s| s.contains("stays synchronous")), "{v:?}");
    }

    #[test]
    fn engine_reaching_runtime_is_reported() {
        let mut g = graph(&[
            ("berth-engine", "berth-image"),
            ("berth-image", "berth-runtime"),
        ]);
        g.members.insert("berth-image".into());
        let v = violations(&g);
        assert!(
            v.iter().any(|s| s.contains("containers belong to shims")),
            "{v:?}"
        );
    }
}
