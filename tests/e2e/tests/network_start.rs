//! berthd's start applies its firewall in the background, behind the API (engine
//! `network/reconcile.rs`): a container started right after a restart gets its published
//! port without losing those of the containers that kept running, and a daemon stopped
//! right after its start has finished the start-up firewall (stale tables of an idle daemon
//! are gone). Ports and fixtures are unique to this file; each fixture has its own bridge
//! and tables (`berth-<bridge>`), cleared by a guard even when an assertion fails.

use std::process::Command;
use std::time::{Duration, Instant};

use berth_e2e::daemon::{Berthd, Daemon};
use berth_e2e::http::http_get;

const PORT_KEPT: u16 = 18741;
const PORT_NEW: u16 = 18742;

/// Removes a fixture's tables (its bridge goes with the fixture).
struct TableGuard(String);

impl Drop for TableGuard {
    fn drop(&mut self) {
        let _ = berth_network::firewall::clear_in(&self.0);
    }
}

/// The nftables table name of a fixture's berthd (`berth-<its daemon.json bridge>`).
fn table_of(daemon: &Berthd) -> String {
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(daemon.root().join("daemon.json")).expect("daemon.json"),
    )
    .expect("daemon.json parses");
    format!("berth-{}", json["bridge"].as_str().expect("bridge"))
}

fn nft(args: &[&str]) -> std::process::Output {
    Command::new("nft")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("nft {args:?}: {e}"))
}

fn table_exists(family: &str, table: &str) -> bool {
    nft(&["list", "table", family, table]).status.success()
}

fn table_text(table: &str) -> String {
    String::from_utf8_lossy(&nft(&["list", "table", "ip", table]).stdout).into_owned()
}

/// `docker run -d` of an httpd answering `/name` with `name`, published on 127.0.0.1.
fn run_web(berthd: &Berthd, name: &str, port: u16) {
    berthd.ok(&[
        "run",
        "-d",
        "--name",
        name,
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "busybox",
        "sh",
        "-c",
        &format!("mkdir /w && echo {name} > /w/name && httpd -f -h /w"),
    ]);
}

#[test]
fn a_container_started_right_after_a_restart_gets_its_rules_and_keeps_the_running_ones() {
    let mut berthd = Berthd::start();
    let table = table_of(&berthd);
    let _guard = TableGuard(table.clone());
    berthd.import_busybox();
    run_web(&berthd, "kept", PORT_KEPT);
    assert!(http_get(&format!("127.0.0.1:{PORT_KEPT}"), "/name").contains("kept"));

    // Killed and restarted: the first request after /_ping starts a container while the
    // start-up firewall may still be applied; the last ruleset applied has both ports.
    berthd.kill9();
    berthd.restart();
    run_web(&berthd, "new", PORT_NEW);
    let rules = table_text(&table);
    for port in [PORT_KEPT, PORT_NEW] {
        assert!(
            rules.contains(&format!("dport {port} dnat to")),
            "port {port} missing from\n{rules}"
        );
    }
    assert!(http_get(&format!("127.0.0.1:{PORT_NEW}"), "/name").contains("new"));
    assert!(http_get(&format!("127.0.0.1:{PORT_KEPT}"), "/name").contains("kept"));

    // The last endpoint gone, the tables go (a moment later: berthd lets them linger 2 s
    // for a container started meanwhile).
    berthd.ok(&["rm", "-f", "kept", "new"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while (table_exists("ip", &table) || table_exists("ip6", &table)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!table_exists("ip", &table) && !table_exists("ip6", &table));
}

#[test]
fn an_idle_daemon_stopped_right_after_its_start_has_removed_stale_tables() {
    let mut berthd = Berthd::start();
    let table = table_of(&berthd);
    let _guard = TableGuard(table.clone());
    // Tables left behind (as by a berthd killed with endpoints whose containers are gone
    // by now): the start-up reconcile removes them, and a stop waits for it.
    berthd.stop();
    for family in ["ip", "ip6"] {
        let out = nft(&["add", "table", family, &table]);
        assert!(out.status.success(), "nft add table {family} {table}");
    }
    berthd.restart();
    berthd.stop();
    assert!(
        !table_exists("ip", &table) && !table_exists("ip6", &table),
        "stale tables left after a start and a stop"
    );
}
