//! `GET /containers/{id}/json` (`docker inspect`): Docker's `ContainerJSON` built from the
//! record: State with Go times, Config and HostConfig as created, Mounts, NetworkSettings,
//! GraphDriver (`overlay2`), the /etc file paths and LogPath.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use berth_api::container::inspect::GraphDriver;
use berth_api::container::{ContainerInspect, ContainerState, MountPoint, NetworkSettings};
use berth_engine::container::{ContainerRecord, Status};

use crate::error::ApiError;
use crate::json;
use crate::AppState;

/// `?size=1` (`docker inspect --size`) adds `SizeRw` and `SizeRootFs`.
pub(super) async fn inspect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match engine.containers.get(&id) {
        Ok(container) => {
            let record = container.record();
            let dir = engine.containers.container_dir(&record.id);
            let mut doc = inspect_of(&record, &dir);
            if super::bool_param(&params, "size") {
                let sizes =
                    berth_engine::container::size::sizes(&engine, std::slice::from_ref(&record))
                        .await;
                if let Some(size) = sizes.first() {
                    doc.size_rw = Some(size.rw);
                    doc.size_root_fs = Some(size.root_fs);
                }
            }
            doc.network_settings = Some(crate::routes::networks::network_settings(
                &engine.networks,
                &record,
            ));
            json::ok(&doc)
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The network a container is attached to, as ps and inspect name it.
pub(crate) fn network_name(record: &ContainerRecord) -> String {
    match record.host_config.network_mode.as_str() {
        "" | "default" => "bridge".to_string(),
        other => other.to_string(),
    }
}

/// `Mounts`: the binds (`-v /host:/ctr[:ro]`) and `--mount`s of the container.
pub(crate) fn mount_points(record: &ContainerRecord) -> Vec<MountPoint> {
    let mut points = Vec::new();
    for bind in record.host_config.binds.iter().flatten() {
        let parts: Vec<&str> = bind.split(':').collect();
        // Volumes (`name:/ctr`, `/ctr`) are in the record's mount points.
        if parts.len() < 2 || !parts[0].starts_with('/') {
            continue;
        }
        let mode = parts.get(2).copied().unwrap_or("");
        points.push(MountPoint {
            r#type: "bind".to_string(),
            source: parts[0].to_string(),
            destination: parts[1].to_string(),
            mode: mode.to_string(),
            rw: !mode.split(',').any(|m| m == "ro"),
            propagation: mode
                .split(',')
                .find(|m| m.contains("private") || m.contains("shared") || m.contains("slave"))
                .unwrap_or("rprivate")
                .to_string(),
            ..MountPoint::default()
        });
    }
    for mount in record.host_config.mounts.iter().flatten() {
        if mount.r#type == "volume" {
            continue;
        }
        points.push(MountPoint {
            r#type: mount.r#type.clone(),
            source: mount.source.clone(),
            destination: mount.target.clone(),
            rw: !mount.read_only,
            propagation: if mount.r#type == "bind" {
                mount
                    .bind_options
                    .as_ref()
                    .map(|b| b.propagation.clone())
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "rprivate".to_string())
            } else {
                String::new()
            },
            ..MountPoint::default()
        });
    }
    points.extend(record.mount_points.iter().map(|p| MountPoint {
        r#type: p.r#type.clone(),
        name: p.name.clone(),
        source: p.source.clone(),
        destination: p.destination.clone(),
        driver: p.driver.clone(),
        mode: p.mode.clone(),
        rw: p.rw,
        propagation: p.propagation.clone(),
    }));
    points
}

fn state_of(record: &ContainerRecord) -> ContainerState {
    let state = &record.state;
    let status = state.status;
    ContainerState {
        status: status.as_str().to_string(),
        running: matches!(status, Status::Running | Status::Paused),
        paused: status == Status::Paused,
        restarting: status == Status::Restarting,
        oom_killed: state.oom_killed,
        dead: status == Status::Dead,
        pid: i64::from(state.pid),
        exit_code: i64::from(state.exit_code),
        error: state.error.clone(),
        started_at: state.started_at.clone(),
        finished_at: state.finished_at.clone(),
        health: state.health.as_ref().map(health_of),
    }
}

/// `State.Health`: status, failing streak and the last probe results.
fn health_of(
    health: &berth_engine::container::health::HealthState,
) -> berth_api::container::Health {
    berth_api::container::Health {
        status: health.status.as_str().to_string(),
        failing_streak: i64::from(health.failing_streak),
        log: Some(
            health
                .log
                .iter()
                .map(|r| berth_api::container::inspect::HealthcheckResult {
                    start: r.start.clone(),
                    end: r.end.clone(),
                    exit_code: r.exit_code,
                    output: r.output.clone(),
                })
                .collect(),
        ),
    }
}

/// The whole inspect document of `record`, whose directory is `dir`.
pub(crate) fn inspect_of(record: &ContainerRecord, dir: &std::path::Path) -> ContainerInspect {
    let path_text = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let graph_data = BTreeMap::from([
        ("MergedDir".to_string(), path_text("rootfs")),
        ("UpperDir".to_string(), path_text("upper")),
        ("WorkDir".to_string(), path_text("work")),
    ]);
    let network = network_name(record);
    ContainerInspect {
        id: record.id.clone(),
        created: record.created.clone(),
        path: record.path.clone(),
        args: Some(record.args.clone()),
        state: Some(state_of(record)),
        image: record.image_id.clone(),
        resolv_conf_path: path_text("resolv.conf"),
        hostname_path: path_text("hostname"),
        hosts_path: path_text("hosts"),
        log_path: record
            .log_path
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        name: record.name.clone(),
        restart_count: i64::from(record.state.restart_count),
        driver: "overlay2".to_string(),
        platform: if record.platform.is_empty() {
            "linux".to_string()
        } else {
            record.platform.clone()
        },
        image_manifest_descriptor: None,
        mount_label: String::new(),
        process_label: String::new(),
        app_armor_profile: String::new(),
        exec_ids: None,
        host_config: Some(record.host_config.clone()),
        graph_driver: GraphDriver {
            data: Some(graph_data),
            name: "overlay2".to_string(),
        },
        size_rw: None,
        size_root_fs: None,
        mounts: Some(mount_points(record)),
        config: Some(record.config.clone()),
        network_settings: Some(NetworkSettings {
            sandbox_key: String::new(),
            ports: Some(BTreeMap::new()),
            networks: Some(BTreeMap::from([(network, Default::default())])),
            ..NetworkSettings::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_shows_dockers_state_and_paths() {
        let mut record = ContainerRecord {
            id: "f".repeat(64),
            name: "/web".to_string(),
            ..ContainerRecord::default()
        };
        record.state.status = Status::Paused;
        record.state.pid = 42;
        record.host_config.network_mode = "none".to_string();
        record.host_config.binds = Some(vec!["/src:/dst:ro".to_string()]);
        let doc = inspect_of(&record, std::path::Path::new("/data/containers/fff"));
        let json = serde_json::to_value(&doc).expect("encode");
        assert_eq!(json["State"]["Status"], "paused");
        assert_eq!(json["State"]["Running"], true);
        assert_eq!(json["State"]["Paused"], true);
        assert_eq!(json["State"]["Pid"], 42);
        assert_eq!(json["HostsPath"], "/data/containers/fff/hosts");
        assert_eq!(json["GraphDriver"]["Name"], "overlay2");
        assert_eq!(json["Mounts"][0]["RW"], false);
        assert_eq!(json["Mounts"][0]["Destination"], "/dst");
        assert!(json["NetworkSettings"]["Networks"]["none"].is_object());
        assert_eq!(json["Platform"], "linux");
    }
}
