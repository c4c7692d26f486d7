//! Golden tests: realistic Docker 28 bodies under `test_data/` decode into berth's types
//! and encode back to the same JSON (key order aside; presence and nullness exact).

use std::path::PathBuf;

use berth_api::container::{
    ContainerCreateRequest, ContainerInspect, ContainerSummary, ExecInspect, StatsResponse,
};
use berth_api::disk_usage::DiskUsage;
use berth_api::image::{HistoryItem, ImageInspect, ImageSummary};
use berth_api::network::NetworkInspect;
use berth_api::system::{SystemInfo, VersionResponse};
use berth_api::volume::VolumeListResponse;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

fn test_data(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

/// Decodes `name` as `T`, re-encodes it and asserts the JSON is unchanged; returns `T`.
fn round_trip<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let bytes = test_data(name);
    let original: Value = serde_json::from_slice(&bytes).expect("test data is JSON");
    let typed: T = serde_json::from_slice(&bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
    let again = serde_json::to_value(&typed).expect("encode");
    if again != original {
        panic!(
            "{name} does not round-trip\nwant: {}\ngot:  {}",
            serde_json::to_string_pretty(&original).unwrap_or_default(),
            serde_json::to_string_pretty(&again).unwrap_or_default()
        );
    }
    typed
}

#[test]
fn container_inspect_of_running_busybox_round_trips() {
    let inspect: ContainerInspect = round_trip("container_inspect_busybox.json");
    let state = inspect.state.expect("state");
    assert!(state.running);
    assert_eq!(state.finished_at, berth_api::time::ZERO_TIME);
    let host = inspect.host_config.expect("host config");
    assert_eq!(host.shm_size, 67_108_864);
    assert_eq!(host.binds, None, "nil slice stays null");
    assert_eq!(host.dns, Some(Vec::new()), "empty slice stays []");
    let networks = inspect.network_settings.expect("network settings").networks;
    assert_eq!(
        networks.expect("networks")["bridge"].ip_address,
        "172.17.0.2"
    );
}

#[test]
fn container_inspect_with_every_host_option_round_trips() {
    let inspect: ContainerInspect = round_trip("container_inspect_exited_healthcheck.json");
    let health = inspect.state.expect("state").health.expect("health");
    assert_eq!(health.failing_streak, 3);
    let host = inspect.host_config.expect("host config");
    assert_eq!(host.resources.nano_cpus, 1_500_000_000);
    assert_eq!(host.resources.pids_limit, Some(100));
    assert_eq!(host.init, Some(true));
    assert_eq!(
        host.mounts.expect("mounts")[1]
            .tmpfs_options
            .as_ref()
            .expect("tmpfs")
            .mode,
        0o1777
    );
    let config = inspect.config.expect("config");
    assert_eq!(config.stop_timeout, Some(3));
    assert_eq!(
        config.healthcheck.expect("healthcheck").start_interval,
        2_000_000_000
    );
    assert_eq!(inspect.size_rw, Some(12));
}

#[test]
fn docker_cli_create_request_round_trips() {
    let request: ContainerCreateRequest = round_trip("container_create_docker_cli.json");
    assert_eq!(request.config.image, "busybox");
    assert!(request.config.tty);
    let host = request.host_config.expect("host config");
    assert!(host.auto_remove);
    assert_eq!(host.console_size, [48, 160]);
    assert_eq!(host.resources.memory, 67_108_864);
    assert_eq!(host.resources.ulimits.expect("ulimits")[0].soft, 1024);
    let ports = host.port_bindings.expect("port bindings");
    let binding = ports["8080/tcp"].as_ref().expect("bindings");
    assert_eq!(binding[0].host_port, "18080");
}

#[test]
fn docker_py_create_request_with_nulls_decodes_to_zero_values() {
    let request = ContainerCreateRequest::parse(&test_data("container_create_docker_py.json"))
        .expect("parse");
    assert_eq!(request.config.hostname, "");
    assert_eq!(request.config.working_dir, "");
    assert_eq!(
        request.config.cmd.expect("cmd").0,
        vec!["echo hello".to_string()]
    );
    assert_eq!(request.config.stop_timeout, None);
    assert!(request.networking_config.is_none());
    let host = request.host_config.expect("host config");
    assert_eq!(host.restart_policy.name, "unless-stopped");
    assert_eq!(host.console_size, [0, 0]);
    assert_eq!(host.runtime, "");
    assert_eq!(host.log_config.config, None);
    assert_eq!(host.resources.memory, 134_217_728);
}

#[test]
fn container_list_round_trips() {
    let list: Vec<ContainerSummary> = round_trip("container_list.json");
    assert_eq!(list[0].ports.as_ref().expect("ports")[2].public_port, 0);
    assert_eq!(list[1].size_rw, 12);
}

#[test]
fn stats_round_trip_and_give_the_clis_numbers() {
    let v2: StatsResponse = round_trip("stats_cgroup_v2.json");
    // (20483000 - 20383000) / (1893740000000 - 1891740000000) * 2 * 100
    assert!(
        (v2.cpu_percent() - 0.01).abs() < 1e-9,
        "{}",
        v2.cpu_percent()
    );
    assert_eq!(v2.memory_usage(), 2_150_400 - 1_024_000);
    let v1: StatsResponse = round_trip("stats_cgroup_v1_first_sample.json");
    assert_eq!(v1.preread, berth_api::time::ZERO_TIME);
    assert_eq!(v1.memory_usage(), 3_104_768 - 1_081_344);
    // The first sample's precpu is empty: the CLI divides by the whole system usage.
    let expected = 20_383_000.0 / 1_891_740_000_000.0 * 2.0 * 100.0;
    assert!(
        (v1.cpu_percent() - expected).abs() < 1e-12,
        "{}",
        v1.cpu_percent()
    );
}

#[test]
fn exec_inspect_round_trips() {
    let exec: ExecInspect = round_trip("exec_inspect.json");
    assert_eq!(exec.exit_code, Some(0));
    assert_eq!(exec.process_config.privileged, Some(false));
}

#[test]
fn system_version_and_info_round_trip() {
    let version: VersionResponse = round_trip("version.json");
    assert_eq!(version.api_version, "1.50");
    assert_eq!(version.components.expect("components").len(), 4);
    let info: SystemInfo = round_trip("info.json");
    assert_eq!(info.cgroup_version, "2");
    assert_eq!(info.swarm.local_node_state, "inactive");
    assert_eq!(
        info.driver_status.expect("driver status")[0][0],
        "Backing Filesystem"
    );
    assert_eq!(info.warnings, None);
}

#[test]
fn system_df_round_trips() {
    let df: DiskUsage = round_trip("system_df.json");
    assert_eq!(df.build_cache, Some(Vec::new()));
    let volume = &df.volumes.expect("volumes")[0];
    assert_eq!(volume.usage_data.as_ref().expect("usage").size, 4096);
}

#[test]
fn image_bodies_round_trip() {
    let inspect: ImageInspect = round_trip("image_inspect_busybox.json");
    assert_eq!(inspect.metadata.last_tag_time, berth_api::time::ZERO_TIME);
    assert_eq!(inspect.root_fs.layers.expect("layers").len(), 1);
    let list: Vec<ImageSummary> = round_trip("image_list.json");
    assert_eq!(list[0].containers, -1);
    assert_eq!(list[1].repo_tags, Some(Vec::new()));
    let history: Vec<HistoryItem> = round_trip("image_history.json");
    assert_eq!(history[1].id, "<missing>");
}

#[test]
fn network_and_volume_bodies_round_trip() {
    let network: NetworkInspect = round_trip("network_inspect_bridge.json");
    assert_eq!(
        network.ipam.config.expect("ipam config")[0].gateway,
        "172.17.0.1"
    );
    let volumes: VolumeListResponse = round_trip("volume_list.json");
    assert_eq!(volumes.volumes.expect("volumes").len(), 2);
}
