//! xtask: developer tasks that are not part of any shipped binary.
//!
//! `cargo run -p xtask -- architecture` prints the internal dependency edges and
//! fails if one breaks the layering in ARCHITECTURE.md (the same check runs as a test).

mod architecture;

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "architecture" => {
            let graph = architecture::Graph::load()?;
            for (from, to) in graph.internal_edges() {
                println!("{from} -> {to}");
            }
            let violations = architecture::violations(&graph);
            for v in &violations {
                eprintln!("violation: {v}");
            }
            anyhow::ensure!(
                violations.is_empty(),
                "{} layering violation(s)",
                violations.len()
            );
            Ok(())
        }
        other => anyhow::bail!("unknown task {other:?}; tasks: architecture"),
    }
}
