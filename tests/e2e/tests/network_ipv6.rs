//! IPv6 between containers through the real docker CLI against berthd: on a user network
//! created with `--ipv6 --subnet`, a container reaches another by name over IPv6 (the
//! embedded DNS answers AAAA) with ping and with TCP (busybox httpd and nc on the IPv6
//! address); no user bridge is left afterwards.

use berth_e2e::daemon::{Berthd, Daemon};

const SUBNET6: &str = "fd15:216::/64";

/// Deletes the network's bridge (`br-<12 hex of the id>`) if an assertion fails first.
struct BridgeOf(String);

impl Drop for BridgeOf {
    fn drop(&mut self) {
        let link = format!("br-{}", &self.0[..12.min(self.0.len())]);
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &link])
            .output();
    }
}

#[test]
fn containers_talk_over_ipv6_by_name() {
    let berthd = Berthd::start();
    berthd.import_busybox();
    let id = berthd.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.216.0.0/24",
        "--subnet",
        SUBNET6,
        "v6net",
    ]);
    let _bridge = BridgeOf(id.clone());
    berthd.ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "v6net",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo hello-v6 > /www/index.html && httpd -f -p [::]:80 -h /www",
    ]);
    let srv6 = berthd.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.v6net.GlobalIPv6Address}}",
        "srv",
    ]);
    assert!(srv6.starts_with("fd15:216::"), "{srv6}");

    let ping = berthd.docker(&[
        "run",
        "--rm",
        "--network",
        "v6net",
        "busybox",
        "ping6",
        "-c",
        "1",
        "-W",
        "5",
        "srv",
    ]);
    let ping_out = String::from_utf8_lossy(&ping.stdout).to_string();
    assert!(
        ping.status.success(),
        "ping6 srv: {ping_out}{}",
        String::from_utf8_lossy(&ping.stderr)
    );
    assert!(
        ping_out.contains(&srv6),
        "srv resolved to its IPv6 address: {ping_out}"
    );

    // TCP over IPv6 (busybox-static's wget crashes on this host; its nc does not).
    let request = format!("printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc {srv6} 80");
    let response = berthd.ok(&[
        "run",
        "--rm",
        "--network",
        "v6net",
        "busybox",
        "sh",
        "-c",
        &request,
    ]);
    let page = response.lines().last().unwrap_or_default().trim();
    assert_eq!(page, "hello-v6");

    berthd.ok(&["rm", "-f", "srv"]);
    berthd.ok(&["network", "rm", "v6net"]);
    let link = format!("br-{}", &id[..12]);
    let links = std::process::Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains(&link),
        "{link} is gone"
    );
}
