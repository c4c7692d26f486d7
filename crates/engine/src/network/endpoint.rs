//! What a container asks of each network (`--network`, `--ip`, `--ip6`, `--mac-address`,
//! `--network-alias`, a `network connect` body) and Docker's refusals of it, checked at
//! create and again at attach; MAC addresses.

use std::net::IpAddr;

use berth_network::ipam::IpamError;
use serde::{Deserialize, Serialize};

use super::record::NetworkRecord;
use super::NetworkError;
use crate::container::ContainerRecord;

/// What a container asks of one network (`--network`, `--ip`, `--ip6`, `--mac-address`,
/// `--network-alias`, or a `network connect` body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRequest {
    /// Network name or ID as given.
    pub network: String,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
    pub mac: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
}

impl EndpointRequest {
    /// From the API's endpoint settings.
    pub fn from_settings(
        network: &str,
        settings: Option<&berth_api::network::EndpointSettings>,
    ) -> Result<EndpointRequest, NetworkError> {
        let mut request = EndpointRequest {
            network: network.to_string(),
            ..EndpointRequest::default()
        };
        let Some(settings) = settings else {
            return Ok(request);
        };
        // Docker's texts (moby's normalizeEndpointIPAMConfig), as `invalid endpoint
        // settings` (requests_for names the network for a create request).
        let parse = |text: &str, v4: bool| -> Result<Option<IpAddr>, NetworkError> {
            if text.is_empty() {
                return Ok(None);
            }
            match text.parse::<IpAddr>() {
                Ok(ip) if ip.is_ipv4() == v4 && !ip.is_unspecified() => Ok(Some(ip)),
                _ => Err(invalid_endpoint(format!(
                    "invalid IPv{} address: {text}",
                    if v4 { 4 } else { 6 }
                ))),
            }
        };
        if let Some(ipam) = &settings.ipam_config {
            request.ipv4 = parse(&ipam.ipv4_address, true)?;
            request.ipv6 = parse(&ipam.ipv6_address, false)?;
        }
        if !settings.mac_address.is_empty() {
            parse_mac(&settings.mac_address)?;
            request.mac = Some(settings.mac_address.clone());
        }
        request.aliases = settings.aliases.clone().unwrap_or_default();
        Ok(request)
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Result<[u8; 6], NetworkError> {
    let invalid = || NetworkError::InvalidArgument(format!("{text} is not a valid mac address"));
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        return Err(invalid());
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(parts) {
        *byte = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
    }
    Ok(mac)
}

pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Docker's MAC for an IPv4 address: `02:42:` followed by the address bytes.
pub fn mac_for(ip: Option<IpAddr>) -> [u8; 6] {
    match ip {
        Some(IpAddr::V4(v4)) => {
            let o = v4.octets();
            [0x02, 0x42, o[0], o[1], o[2], o[3]]
        }
        _ => {
            let r = super::new_id();
            let b = r.as_bytes();
            let hex = |i: usize| {
                u8::from_str_radix(std::str::from_utf8(&b[i..i + 2]).unwrap_or("00"), 16)
                    .unwrap_or(0)
            };
            [0x02, 0x42, hex(0), hex(2), hex(4), hex(6)]
        }
    }
}

/// The networks the container's create request asks for, primary (`NetworkMode`) first.
pub fn requests_of(record: &ContainerRecord) -> Result<Vec<EndpointRequest>, NetworkError> {
    requests_for(
        &record.host_config.network_mode,
        record.networking_config.as_ref(),
        &record.config.mac_address,
    )
}

/// [`requests_of`] from the parts of a create request. The docker CLI names the default
/// network `default` in EndpointsConfig (`--ip`, `--network-alias`, `--mac-address`
/// without `--network`), so that key counts for `bridge`.
pub fn requests_for(
    network_mode: &str,
    networking: Option<&berth_api::network::NetworkingConfig>,
    mac_address: &str,
) -> Result<Vec<EndpointRequest>, NetworkError> {
    let mode = match network_mode {
        "" | "default" => "bridge",
        other => other,
    };
    let configs = networking
        .and_then(|n| n.endpoints_config.clone())
        .unwrap_or_default();
    let primary = configs
        .get(mode)
        .or_else(|| (mode == "bridge").then(|| configs.get("default")).flatten())
        .and_then(|s| s.as_ref());
    let primary_key = if configs.contains_key(mode) || mode != "bridge" {
        mode
    } else {
        "default"
    };
    let mut requests = vec![EndpointRequest::from_settings(mode, primary)
        .map_err(|e| in_create_config(primary_key, e))?];
    for (name, settings) in &configs {
        if name != mode && !(mode == "bridge" && name == "default") {
            requests.push(
                EndpointRequest::from_settings(name, settings.as_ref())
                    .map_err(|e| in_create_config(name, e))?,
            );
        }
    }
    if requests[0].mac.is_none() && !mac_address.is_empty() {
        parse_mac(mac_address)?;
        requests[0].mac = Some(mac_address.to_string());
    }
    Ok(requests)
}

/// Docker's refusals of endpoint settings on predefined networks, and addresses outside
/// every subnet of the network (moby's validateEndpointSettings, current texts).
///
/// An `--ip`/`--ip6` on a user network created without `--subnet` is accepted when the
/// address is in the subnet picked for it: moby refused it in 20.10 and again in 29.0
/// ("user specified IP address is supported only when connecting to networks with user
/// configured subnets"), but 25-28 accepted it in practice and moby restored that in 29.1
/// (moby#51569, "Allow configured address with no configured subnet"); berth follows
/// current moby.
pub(super) fn check_request(
    network: &NetworkRecord,
    request: &EndpointRequest,
) -> Result<(), NetworkError> {
    // Every problem is reported, in moby's order (validateEndpointSettings).
    let mut problems: Vec<String> = Vec::new();
    if network.predefined && (request.ipv4.is_some() || request.ipv6.is_some()) {
        problems.push(
            "user-specified IP address is supported on user-defined networks only".to_string(),
        );
    }
    if network.predefined && !request.aliases.is_empty() {
        problems.push(
            "network-scoped aliases are only supported for user-defined networks".to_string(),
        );
    }
    for ip in request.ipv4.iter().chain(request.ipv6.iter()) {
        let family = if ip.is_ipv4() { 4 } else { 6 };
        if !network.ipam.family(family).any(|p| p.subnet.contains(*ip)) {
            problems.push(IpamError::OutOfRange(*ip).to_string());
        }
    }
    match problems.len() {
        0 => Ok(()),
        1 => Err(invalid_endpoint(problems.remove(0))),
        _ => Err(invalid_endpoint(joined(&problems))),
    }
}

/// Several problems in one message as moby's multierror.Join words them: `* ` before each,
/// one per line (a problem's own line breaks indented by a tab).
fn joined(problems: &[String]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| p.replace('\n', "\n\t")).collect();
    format!("* {}", lines.join("\n* "))
}

/// An `invalid endpoint settings` error as `network connect` words it.
fn invalid_endpoint(detail: impl Into<String>) -> NetworkError {
    NetworkError::InvalidEndpoint {
        context: String::new(),
        detail: detail.into(),
    }
}

/// The create request's wording of an endpoint settings error: moby's validateNetworkingConfig
/// prefixes `invalid config for network <EndpointsConfig key>: `.
pub(super) fn in_create_config(key: &str, error: NetworkError) -> NetworkError {
    match error {
        NetworkError::InvalidEndpoint { context, detail } if context.is_empty() => {
            NetworkError::InvalidEndpoint {
                context: format!("invalid config for network {key}: "),
                detail,
            }
        }
        other => other,
    }
}
