//! `/networks/*`: list (filters), inspect, create, connect, disconnect, rm and prune with
//! Docker's shapes (`network.Inspect`) and texts, plus the `NetworkSettings` and `Ports`
//! that container inspect and ps show, built from the engine's network records.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_api::container::{NetworkSettings, PortMap};
use berth_api::network::{
    ConfigReference, EndpointIpamConfig, EndpointResource, EndpointSettings, Ipam, IpamPool,
    NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest,
    NetworkInspect, NetworksPruneResponse,
};
use berth_api::Filters;
use berth_engine::container::ContainerRecord;
use berth_engine::network::{
    EndpointRecord, EndpointRequest, NetworkError, NetworkRecord, NetworkService,
};

use crate::error::ApiError;
use crate::json;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

type Params = Query<HashMap<String, String>>;

fn error(e: NetworkError) -> Response {
    ApiError::from_error(e.kind(), &e).into_response()
}

fn filters(params: &HashMap<String, String>) -> Result<Filters, ApiError> {
    match params.get("filters") {
        Some(text) if !text.is_empty() => Ok(Filters::parse(text)?),
        _ => Ok(Filters::new()),
    }
}

/// Docker's `network.Inspect` of a record (`Containers` only for inspect).
pub fn inspect_of(record: &NetworkRecord, with_containers: bool) -> NetworkInspect {
    let config: Vec<IpamPool> = record
        .ipam_config
        .iter()
        .map(|c| IpamPool {
            subnet: c.subnet.clone(),
            ip_range: c.ip_range.clone(),
            gateway: c.gateway.clone(),
            auxiliary_addresses: None,
        })
        .collect();
    let containers = record
        .endpoints
        .values()
        .map(|e| {
            (
                e.container_id.clone(),
                EndpointResource {
                    name: e.container_name.clone(),
                    endpoint_id: e.endpoint_id.clone(),
                    mac_address: e.mac.clone(),
                    ipv4_address: e.ipv4.map(|s| s.to_string()).unwrap_or_default(),
                    ipv6_address: e.ipv6.map(|s| s.to_string()).unwrap_or_default(),
                },
            )
        })
        .collect();
    NetworkInspect {
        name: record.name.clone(),
        id: record.id.clone(),
        created: record.created.clone(),
        scope: "local".to_string(),
        driver: record.driver.as_str().to_string(),
        enable_ipv4: record.driver == berth_engine::network::Driver::Bridge,
        enable_ipv6: record.enable_ipv6,
        ipam: Ipam {
            driver: "default".to_string(),
            options: if record.predefined {
                None
            } else {
                Some(BTreeMap::new())
            },
            config: Some(config),
        },
        internal: record.internal,
        attachable: record.attachable,
        ingress: false,
        config_from: ConfigReference::default(),
        config_only: false,
        containers: Some(if with_containers {
            containers
        } else {
            BTreeMap::new()
        }),
        options: Some(record.options.clone()),
        labels: Some(record.labels.clone()),
    }
}

/// `docker network ls` filters: driver, id, label, name, scope, type, dangling.
fn matches(filters: &Filters, record: &NetworkRecord) -> Result<bool, ApiError> {
    filters.validate(&["dangling", "driver", "id", "label", "name", "scope", "type"])?;
    let any = |name: &str, ok: &dyn Fn(&str) -> bool| {
        !filters.contains(name) || filters.values(name).iter().any(|v| ok(v))
    };
    let kind = if record.predefined {
        "builtin"
    } else {
        "custom"
    };
    if !any("driver", &|v| v == record.driver.as_str())
        || !any("id", &|v| record.id.starts_with(v))
        || !any("name", &|v| record.name.contains(v))
        || !any("scope", &|v| v == "local")
        || !any("type", &|v| v == kind)
    {
        return Ok(false);
    }
    if filters.contains("label") && !filters.match_key_values("label", &record.labels) {
        return Ok(false);
    }
    if filters.contains("dangling") {
        let dangling = filters.bool_or("dangling", false)?;
        let unused = !record.predefined && record.endpoints.is_empty();
        if dangling != unused {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn list(State(engine): State<AppState>, Query(params): Params) -> Response {
    let filters = match filters(&params) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let mut out = Vec::new();
    for record in engine.networks.list() {
        match matches(&filters, &record) {
            Ok(true) => out.push(inspect_of(&record, false)),
            Ok(false) => {}
            Err(e) => return e.into_response(),
        }
    }
    json::ok(&out)
}

async fn inspect(State(engine): State<AppState>, Path(id): Path<String>) -> Response {
    match engine.networks.get(&id) {
        Ok(record) => json::ok(&inspect_of(&record, true)),
        Err(e) => error(e),
    }
}

async fn create(State(engine): State<AppState>, body: Bytes) -> Response {
    let request: NetworkCreateRequest = match json::parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match engine.networks.create(request).await {
        Ok(id) => json::with_status(
            StatusCode::CREATED,
            &NetworkCreateResponse {
                id,
                warning: String::new(),
            },
        ),
        Err(e) => error(e),
    }
}

async fn remove(State(engine): State<AppState>, Path(id): Path<String>) -> Response {
    match engine.networks.remove(&id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(e),
    }
}

async fn prune(State(engine): State<AppState>, Query(params): Params) -> Response {
    let filters = match filters(&params) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    match engine.networks.prune(&filters).await {
        Ok(names) => json::ok(&NetworksPruneResponse {
            networks_deleted: Some(names),
        }),
        Err(e) => error(e),
    }
}

async fn connect(State(engine): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let request: NetworkConnectRequest = match json::parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let container = match engine.containers.get(&request.container) {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let endpoint = match EndpointRequest::from_settings(&id, request.endpoint_config.as_ref()) {
        Ok(e) => e,
        Err(e) => return error(e),
    };
    let record = container.record();
    let running = container.is_running();
    if let Err(e) = engine
        .networks
        .connect(&id, &record, running, endpoint)
        .await
    {
        return error(e);
    }
    if running {
        let added = endpoint_addresses(&engine.networks, &id, &record.id);
        update_hosts(&engine, record, added, Vec::new()).await;
    }
    StatusCode::OK.into_response()
}

/// The container's addresses on one network (empty when it has no endpoint there).
fn endpoint_addresses(
    networks: &NetworkService,
    network: &str,
    container_id: &str,
) -> Vec<std::net::IpAddr> {
    let Ok(network) = networks.get(network) else {
        return Vec::new();
    };
    network
        .endpoints
        .get(container_id)
        .map(|e| e.ipv4.iter().chain(e.ipv6.iter()).map(|s| s.addr).collect())
        .unwrap_or_default()
}

/// Docker rewrites a running container's /etc/hosts at live connect and disconnect; a
/// failure is logged, the connect itself stands (as Docker's).
async fn update_hosts(
    engine: &AppState,
    record: ContainerRecord,
    add: Vec<std::net::IpAddr>,
    remove: Vec<std::net::IpAddr>,
) {
    if add.is_empty() && remove.is_empty() {
        return;
    }
    let dir = engine.config.container_dir(&record.id);
    let done = tokio::task::spawn_blocking(move || {
        berth_engine::spec::update_hosts(&dir, &record, &add, &remove)
    })
    .await;
    if let Ok(Err(e)) = done {
        eprintln!("berthd: updating /etc/hosts of a connected container: {e}");
    }
}

async fn disconnect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let request: NetworkDisconnectRequest = match json::parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let container = match engine.containers.get(&request.container) {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let record = container.record();
    let removed = endpoint_addresses(&engine.networks, &id, &record.id);
    if let Err(e) = engine
        .networks
        .disconnect(&id, &record, request.force)
        .await
    {
        return error(e);
    }
    if container.is_running() {
        update_hosts(&engine, record, Vec::new(), removed).await;
    }
    StatusCode::OK.into_response()
}

fn endpoint_settings(network: &NetworkRecord, e: &EndpointRecord) -> EndpointSettings {
    let requested = !e.requested_ipv4.is_empty() || !e.requested_ipv6.is_empty();
    EndpointSettings {
        ipam_config: requested.then(|| EndpointIpamConfig {
            ipv4_address: e.requested_ipv4.clone(),
            ipv6_address: e.requested_ipv6.clone(),
            link_local_ips: None,
        }),
        links: None,
        aliases: (!e.aliases.is_empty()).then(|| e.aliases.clone()),
        mac_address: e.mac.clone(),
        driver_opts: None,
        gw_priority: 0,
        network_id: network.id.clone(),
        endpoint_id: e.endpoint_id.clone(),
        gateway: e.gateway4.map(|g| g.to_string()).unwrap_or_default(),
        ip_address: e.ipv4.map(|s| s.addr.to_string()).unwrap_or_default(),
        ip_prefix_len: e.ipv4.map(|s| i64::from(s.prefix)).unwrap_or(0),
        ipv6_gateway: e.gateway6.map(|g| g.to_string()).unwrap_or_default(),
        global_ipv6_address: e.ipv6.map(|s| s.addr.to_string()).unwrap_or_default(),
        global_ipv6_prefix_len: e.ipv6.map(|s| i64::from(s.prefix)).unwrap_or(0),
        dns_names: (!e.dns_names.is_empty()).then(|| e.dns_names.clone()),
    }
}

/// `NetworkSettings.Ports`: exposed ports (`null`) and the running container's mappings.
pub fn ports_of(networks: &NetworkService, record: &ContainerRecord) -> PortMap {
    let exposed: Vec<String> = record
        .config
        .exposed_ports
        .as_ref()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let published = networks
        .sandbox(&record.id)
        .map(|s| s.ports)
        .unwrap_or_default();
    berth_engine::network::ports::port_map(&exposed, &published)
}

/// Container inspect's `NetworkSettings` (Docker 25+: the legacy top-level fields mirror
/// the default bridge endpoint).
pub fn network_settings(networks: &NetworkService, record: &ContainerRecord) -> NetworkSettings {
    let endpoints = networks.endpoints_of(&record.id);
    let mut map: BTreeMap<String, EndpointSettings> = endpoints
        .iter()
        .map(|(n, e)| (n.name.clone(), endpoint_settings(n, e)))
        .collect();
    if map.is_empty() {
        // Not running: the networks it will join, without addresses.
        let mode = match record.host_config.network_mode.as_str() {
            "" | "default" => "bridge".to_string(),
            other => other.to_string(),
        };
        if !mode.starts_with("container:") {
            let network_id = networks.get(&mode).map(|n| n.id).unwrap_or_default();
            map.insert(
                mode,
                EndpointSettings {
                    network_id,
                    ..EndpointSettings::default()
                },
            );
        }
        for name in record
            .networking_config
            .as_ref()
            .and_then(|n| n.endpoints_config.as_ref())
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if let Ok(n) = networks.get(&name) {
                map.entry(n.name.clone()).or_insert(EndpointSettings {
                    network_id: n.id,
                    ..EndpointSettings::default()
                });
            }
        }
    }
    let sandbox = networks.sandbox(&record.id);
    let mut settings = NetworkSettings {
        sandbox_id: sandbox
            .as_ref()
            .filter(|s| s.netns.is_some())
            .map(|s| s.container_id.clone())
            .unwrap_or_default(),
        sandbox_key: sandbox
            .and_then(|s| s.netns)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ports: Some(ports_of(networks, record)),
        networks: Some(map),
        ..NetworkSettings::default()
    };
    if let Some((_, e)) = endpoints
        .iter()
        .find(|(n, _)| n.predefined && n.name == "bridge")
    {
        settings.endpoint_id = e.endpoint_id.clone();
        settings.gateway = e.gateway4.map(|g| g.to_string()).unwrap_or_default();
        settings.ip_address = e.ipv4.map(|s| s.addr.to_string()).unwrap_or_default();
        settings.ip_prefix_len = e.ipv4.map(|s| i64::from(s.prefix)).unwrap_or(0);
        settings.mac_address = e.mac.clone();
        settings.global_ipv6_address = e.ipv6.map(|s| s.addr.to_string()).unwrap_or_default();
        settings.global_ipv6_prefix_len = e.ipv6.map(|s| i64::from(s.prefix)).unwrap_or(0);
        settings.ipv6_gateway = e.gateway6.map(|g| g.to_string()).unwrap_or_default();
    }
    settings
}

/// `docker ps`'s `Ports`: published mappings, then exposed ports without one.
pub fn summary_ports(
    networks: &NetworkService,
    record: &ContainerRecord,
) -> Vec<berth_api::container::list::Port> {
    let mut ports = Vec::new();
    for (key, bindings) in ports_of(networks, record) {
        let (port, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
        let private_port = port.parse().unwrap_or(0);
        match bindings {
            Some(bindings) => {
                ports.extend(
                    bindings
                        .into_iter()
                        .map(|b| berth_api::container::list::Port {
                            ip: b.host_ip,
                            private_port,
                            public_port: b.host_port.parse().unwrap_or(0),
                            r#type: proto.to_string(),
                        }),
                )
            }
            None => ports.push(berth_api::container::list::Port {
                ip: String::new(),
                private_port,
                public_port: 0,
                r#type: proto.to_string(),
            }),
        }
    }
    ports
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::network::NetworkCreateRequest;
    use berth_engine::network::{FakeDatapath, NetworkDefaults, NetworkPaths};
    use std::sync::Arc;

    #[tokio::test]
    async fn inspect_and_list_use_dockers_shapes() {
        let dir = tempfile::tempdir().expect("dir");
        let service = NetworkService::open_with(
            NetworkPaths::under(&dir.path().join("d"), &dir.path().join("e")),
            NetworkDefaults::default(),
            Arc::new(berth_engine::events::EventBus::new()),
            Arc::new(Arc::new(FakeDatapath::default())),
        )
        .await
        .expect("open");
        let request: NetworkCreateRequest = serde_json::from_str(
            r#"{"Name":"app","IPAM":{"Config":[{"Subnet":"10.40.0.0/24","IPRange":"10.40.0.128/25"}]},
                "Labels":{"a":"b"},"Options":{"com.docker.network.bridge.name":"brapp"}}"#,
        )
        .expect("request");
        service.create(request).await.expect("create");
        let record = service.get("app").expect("app");
        let json = serde_json::to_value(inspect_of(&record, true)).expect("encode");
        assert_eq!(json["Driver"], "bridge");
        assert_eq!(json["Scope"], "local");
        assert_eq!(json["EnableIPv6"], false);
        assert_eq!(json["IPAM"]["Driver"], "default");
        assert_eq!(json["IPAM"]["Options"], serde_json::json!({}));
        assert_eq!(
            json["IPAM"]["Config"],
            serde_json::json!([{"Subnet": "10.40.0.0/24", "IPRange": "10.40.0.128/25", "Gateway": "10.40.0.1"}])
        );
        assert_eq!(json["Containers"], serde_json::json!({}));
        assert_eq!(json["Options"]["com.docker.network.bridge.name"], "brapp");
        assert_eq!(json["Labels"]["a"], "b");
        let bridge =
            serde_json::to_value(inspect_of(&service.get("bridge").expect("bridge"), false))
                .expect("encode");
        assert_eq!(bridge["IPAM"]["Options"], serde_json::Value::Null);
        assert_eq!(
            bridge["Options"]["com.docker.network.bridge.default_bridge"],
            "true"
        );
        let filters = Filters::parse(r#"{"type":{"custom":true}}"#).expect("filters");
        let custom: Vec<String> = service
            .list()
            .into_iter()
            .filter(|n| matches(&filters, n).expect("filter"))
            .map(|n| n.name)
            .collect();
        assert_eq!(custom, ["app"]);
    }
}
