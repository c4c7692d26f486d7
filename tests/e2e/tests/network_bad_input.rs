//! Bad network input through the real docker CLI 28, each refused with Docker's text and
//! nothing changed: a name that exists, an overlapping subnet, a subnet with host bits, a
//! gateway or ip-range outside the subnet, an `--ip` outside the subnet, on the default
//! bridge or not an address (at run and at `network connect`), an address in use,
//! connecting twice, disconnecting what is not connected, a missing network, removing a
//! network in use. The CLI's own checks (gateway/ip-range against --subnet) print what
//! dockerd 20.10 + CLI 28 print here. The daemon's texts are current moby's where it words
//! them differently from 20.10 (checked side by side on this host): the overlap's `invalid
//! pool request:` prefix, `invalid config for network <key>: invalid endpoint settings:` at
//! create (20.10 refused at start), `no configured subnet contains IP address` (20.10:
//! `Invalid address ...: It does not belong to any of this network's subnets`),
//! `user-specified IP address is supported on user-defined networks only`, `invalid network
//! config:` with `invalid subnet ...: it should be ...` (20.10 took host bits), and `network
//! <name> has active endpoints (name:"<container>" id:"<endpoint>")` (moby 28.2+; 20.10:
//! `network <name> id <id> has active endpoints`). An `--ip` on a network created without
//! `--subnet` is taken when the address is in its subnet: 20.10 and 29.0 refused it, current
//! moby does not (moby#51569).

use berth_e2e::daemon::{Berthd, Daemon};

const SUBNET: &str = "10.220.0.0/24";

/// Deletes the bridges of the networks created here (`br-<12 hex of the id>`), which a
/// failed assertion would otherwise leave behind.
struct BridgesOf(Vec<String>);

impl Drop for BridgesOf {
    fn drop(&mut self) {
        for id in &self.0 {
            let link = format!("br-{}", &id[..12.min(id.len())]);
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &link])
                .output();
        }
    }
}

fn refused(berthd: &Berthd, args: &[&str]) -> String {
    let out = berthd.docker(args);
    assert!(!out.status.success(), "docker {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

fn network_names(berthd: &Berthd) -> String {
    berthd.ok(&["network", "ls", "--format", "{{.Name}}"])
}

fn containers_of(berthd: &Berthd, network: &str) -> String {
    berthd.ok(&[
        "network",
        "inspect",
        network,
        "-f",
        "{{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}",
    ])
}

#[test]
fn bad_network_input_is_refused_with_dockers_text_and_changes_nothing() {
    let berthd = Berthd::start();
    berthd.import_busybox();
    let id = berthd.ok(&["network", "create", "--subnet", SUBNET, "na"]);
    let other = berthd.ok(&["network", "create", "nn"]);
    let _bridges = BridgesOf(vec![id.clone(), other]);
    let names = network_names(&berthd);

    for (args, text) in [
        (
            vec!["network", "create", "na"],
            "Error response from daemon: network with name na already exists".to_string(),
        ),
        (
            vec!["network", "create", "--subnet", "10.220.0.128/25", "nb"],
            "Error response from daemon: invalid pool request: Pool overlaps with other one on \
             this address space"
                .to_string(),
        ),
        (
            vec!["network", "create", "--subnet", "10.220.0.0/16", "nb"],
            "Error response from daemon: invalid pool request: Pool overlaps with other one on \
             this address space"
                .to_string(),
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.220.1.0/24",
                "--gateway",
                "10.220.2.1",
                "nc",
            ],
            "no matching subnet for gateway 10.220.2.1".to_string(),
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.220.1.0/24",
                "--ip-range",
                "10.220.3.0/25",
                "nd",
            ],
            "no matching subnet for range 10.220.3.0/25".to_string(),
        ),
        (
            vec!["network", "create", "--gateway", "10.1.1.1", "ne"],
            "every ip-range or gateway must have a corresponding subnet".to_string(),
        ),
        (
            vec!["network", "create", "--subnet", "10.220.5.1/24", "nf"],
            "Error response from daemon: invalid network config:\ninvalid subnet 10.220.5.1/24: \
             it should be 10.220.5.0/24"
                .to_string(),
        ),
    ] {
        assert_eq!(refused(&berthd, &args), text, "{args:?}");
        assert_eq!(
            network_names(&berthd),
            names,
            "{args:?} changed the networks"
        );
    }

    // Addresses a container cannot have; no container is left behind.
    for (args, text) in [
        (
            vec![
                "run",
                "--network",
                "na",
                "--ip",
                "10.220.9.9",
                "busybox",
                "true",
            ],
            "Error response from daemon: invalid config for network na: invalid endpoint \
             settings:\nno configured subnet contains IP address 10.220.9.9",
        ),
        (
            vec![
                "run",
                "--network",
                "na",
                "--ip",
                "10.220.0.300",
                "busybox",
                "true",
            ],
            "invalid IPv4 address: 10.220.0.300",
        ),
        (
            // The fixture's default bridge is on its own 10.x subnet: both problems, listed.
            vec!["run", "--ip", "172.17.0.9", "busybox", "true"],
            "Error response from daemon: invalid config for network default: invalid endpoint \
             settings:\n* user-specified IP address is supported on user-defined networks \
             only\n* no configured subnet contains IP address 172.17.0.9",
        ),
    ] {
        let err = refused(&berthd, &args);
        assert!(err.contains(text), "{args:?}: {err}");
        assert_eq!(berthd.ok(&["ps", "-aq"]), "", "{args:?} left a container");
    }

    // Connect, disconnect and rm against a container in use.
    berthd.ok(&[
        "run",
        "-d",
        "--name",
        "user1",
        "--network",
        "na",
        "busybox",
        "sleep",
        "600",
    ]);
    let full_id = berthd.ok(&["inspect", "-f", "{{.Id}}", "user1"]);
    let attached = containers_of(&berthd, "na");
    assert!(attached.starts_with("user1=10.220.0."), "{attached}");
    assert_eq!(
        refused(&berthd, &["network", "connect", "na", "user1"]),
        "Error response from daemon: endpoint with name user1 already exists in network na"
    );
    assert_eq!(
        refused(&berthd, &["network", "disconnect", "nn", "user1"]),
        format!("Error response from daemon: container {full_id} is not connected to network nn")
    );
    assert_eq!(
        refused(&berthd, &["network", "connect", "nonet", "user1"]),
        "Error response from daemon: network nonet not found"
    );
    let endpoint = berthd.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.na.EndpointID}}",
        "user1",
    ]);
    let err = refused(&berthd, &["network", "rm", "na"]);
    assert_eq!(
        err,
        format!(
            "Error response from daemon: error while removing network: network na has active \
             endpoints (name:\"user1\" id:\"{}\")\nexit status 1",
            &endpoint[..12]
        ),
        "the CLI adds `exit status 1` after the daemon's text, for dockerd as well"
    );
    // Live connect: an address outside the subnet and one in use are refused and leave the
    // container's networks as they were; an address in the subnet berth picked for a network
    // created without --subnet is taken (current moby).
    berthd.ok(&[
        "run",
        "-d",
        "--name",
        "user2",
        "--network",
        "nn",
        "busybox",
        "sleep",
        "600",
    ]);
    let user2_networks = || {
        berthd.ok(&[
            "inspect",
            "-f",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}",
            "user2",
        ])
    };
    let user2_before = user2_networks();
    assert_eq!(
        refused(
            &berthd,
            &["network", "connect", "--ip", "10.220.9.9", "na", "user2"]
        ),
        "Error response from daemon: invalid endpoint settings:\nno configured subnet contains \
         IP address 10.220.9.9"
    );
    // Every bad setting at once, listed as moby joins them.
    assert_eq!(
        refused(
            &berthd,
            &[
                "network",
                "connect",
                "--ip",
                "10.220.9.9",
                "--alias",
                "web",
                "bridge",
                "user2",
            ]
        ),
        "Error response from daemon: invalid endpoint settings:\n\
         * user-specified IP address is supported on user-defined networks only\n\
         * network-scoped aliases are only supported for user-defined networks\n\
         * no configured subnet contains IP address 10.220.9.9"
    );
    let user1_ip = attached.trim().trim_start_matches("user1=");
    let user1_ip = user1_ip.split('/').next().unwrap_or_default();
    assert_eq!(
        refused(
            &berthd,
            &["network", "connect", "--ip", user1_ip, "na", "user2"]
        ),
        "Error response from daemon: Address already in use"
    );
    assert_eq!(user2_networks(), user2_before, "user2 untouched");
    assert_eq!(containers_of(&berthd, "na"), attached, "na untouched");
    let nn_subnet = berthd.ok(&[
        "network",
        "inspect",
        "nn",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
    ]);
    let octets: Vec<&str> = nn_subnet.split(['.', '/']).collect();
    let chosen = format!("{}.{}.{}.77", octets[0], octets[1], octets[2]);
    berthd.ok(&[
        "run",
        "--rm",
        "--network",
        "nn",
        "--ip",
        &chosen,
        "busybox",
        "true",
    ]);
    berthd.ok(&["rm", "-f", "user2"]);
    assert_eq!(containers_of(&berthd, "na"), attached, "state untouched");
    assert_eq!(containers_of(&berthd, "nn"), "");
    assert_eq!(network_names(&berthd), names);
    let eth0 = berthd.ok(&["exec", "user1", "ip", "-4", "-o", "addr", "show", "eth0"]);
    let address = attached.trim().trim_start_matches("user1=").to_string();
    assert!(
        eth0.contains(&address),
        "the endpoint is intact: {eth0} vs {address}"
    );

    berthd.ok(&["rm", "-f", "user1"]);
    berthd.ok(&["network", "rm", "na", "nn"]);
}
