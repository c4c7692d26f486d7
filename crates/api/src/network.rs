//! Networks on the wire: endpoint settings (shared with container create and inspect),
//! network list/inspect items, create, connect and disconnect bodies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::json::{is_empty_map, is_empty_vec, nullable};

/// Go's `network.EndpointIPAMConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointIpamConfig {
    #[serde(
        rename = "IPv4Address",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_address: String,
    #[serde(
        rename = "IPv6Address",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6_address: String,
    #[serde(rename = "LinkLocalIPs", default, skip_serializing_if = "is_empty_vec")]
    pub link_local_ips: Option<Vec<String>>,
}

/// Go's `network.EndpointSettings`: one network of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSettings {
    #[serde(rename = "IPAMConfig", default)]
    pub ipam_config: Option<EndpointIpamConfig>,
    #[serde(rename = "Links", default)]
    pub links: Option<Vec<String>>,
    #[serde(rename = "Aliases", default)]
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "MacAddress", default, deserialize_with = "nullable")]
    pub mac_address: String,
    #[serde(rename = "DriverOpts", default)]
    pub driver_opts: Option<BTreeMap<String, String>>,
    /// API 1.48+.
    #[serde(rename = "GwPriority", default, deserialize_with = "nullable")]
    pub gw_priority: i64,
    #[serde(rename = "NetworkID", default, deserialize_with = "nullable")]
    pub network_id: String,
    #[serde(rename = "EndpointID", default, deserialize_with = "nullable")]
    pub endpoint_id: String,
    #[serde(rename = "Gateway", default, deserialize_with = "nullable")]
    pub gateway: String,
    #[serde(rename = "IPAddress", default, deserialize_with = "nullable")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen", default, deserialize_with = "nullable")]
    pub ip_prefix_len: i64,
    #[serde(rename = "IPv6Gateway", default, deserialize_with = "nullable")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address", default, deserialize_with = "nullable")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen", default, deserialize_with = "nullable")]
    pub global_ipv6_prefix_len: i64,
    #[serde(rename = "DNSNames", default)]
    pub dns_names: Option<Vec<String>>,
}

/// `NetworkingConfig` of a create request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkingConfig {
    #[serde(rename = "EndpointsConfig", default)]
    pub endpoints_config: Option<BTreeMap<String, Option<EndpointSettings>>>,
}

/// Go's `network.IPAMConfig`: one subnet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamPool {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub subnet: String,
    #[serde(
        rename = "IPRange",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub ip_range: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub gateway: String,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub auxiliary_addresses: Option<BTreeMap<String, String>>,
}

/// Go's `network.IPAM`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    #[serde(default, deserialize_with = "nullable")]
    pub driver: String,
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub config: Option<Vec<IpamPool>>,
}

/// `{"Network": "..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigReference {
    #[serde(default, deserialize_with = "nullable")]
    pub network: String,
}

/// A container attached to a network, as network inspect lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointResource {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(rename = "EndpointID", default, deserialize_with = "nullable")]
    pub endpoint_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub mac_address: String,
    #[serde(rename = "IPv4Address", default, deserialize_with = "nullable")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address", default, deserialize_with = "nullable")]
    pub ipv6_address: String,
}

/// `GET /networks` item and `GET /networks/{id}` (Go's `network.Inspect`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInspect {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(rename = "Id", default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub created: String,
    #[serde(default, deserialize_with = "nullable")]
    pub scope: String,
    #[serde(default, deserialize_with = "nullable")]
    pub driver: String,
    /// API 1.47+.
    #[serde(rename = "EnableIPv4", default, deserialize_with = "nullable")]
    pub enable_ipv4: bool,
    #[serde(rename = "EnableIPv6", default, deserialize_with = "nullable")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM", default, deserialize_with = "nullable")]
    pub ipam: Ipam,
    #[serde(default, deserialize_with = "nullable")]
    pub internal: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub attachable: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub ingress: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub config_from: ConfigReference,
    #[serde(default, deserialize_with = "nullable")]
    pub config_only: bool,
    #[serde(default)]
    pub containers: Option<BTreeMap<String, EndpointResource>>,
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// `POST /networks/create` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreateRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub driver: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub scope: String,
    #[serde(
        rename = "EnableIPv4",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_ipv4: Option<bool>,
    #[serde(
        rename = "EnableIPv6",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM", default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    #[serde(default, deserialize_with = "nullable")]
    pub internal: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub attachable: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub ingress: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub config_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_from: Option<ConfigReference>,
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// `POST /networks/create` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreateResponse {
    #[serde(rename = "Id", default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub warning: String,
}

/// `POST /networks/{id}/connect` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkConnectRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub container: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_config: Option<EndpointSettings>,
}

/// `POST /networks/{id}/disconnect` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkDisconnectRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub container: String,
    #[serde(default, deserialize_with = "nullable")]
    pub force: bool,
}

/// `POST /networks/prune` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworksPruneResponse {
    #[serde(default)]
    pub networks_deleted: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::is_zero;

    #[test]
    fn endpoint_settings_use_dockers_acronyms() {
        let settings = EndpointSettings {
            ip_address: "172.17.0.2".into(),
            ip_prefix_len: 16,
            ..EndpointSettings::default()
        };
        let json = serde_json::to_value(&settings).expect("encode");
        assert_eq!(json["IPAddress"], "172.17.0.2");
        assert_eq!(json["IPPrefixLen"], 16);
        assert_eq!(json["IPAMConfig"], serde_json::Value::Null);
        assert_eq!(json["DNSNames"], serde_json::Value::Null);
        assert!(is_zero(&settings.gw_priority));
    }
}
