//! `berth network connect` and `berth network disconnect` (docker's flags and output; the
//! other `network` verbs live with the other object commands).

use clap::Args;
use serde_json::{json, Value};

use super::create::FlagError;
use super::segment;
use crate::app::App;

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long)]
    pub ip6: Option<String>,
    pub network: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

pub async fn connect(app: &App, args: ConnectArgs) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "Container": args.container,
        "EndpointConfig": {
            "IPAMConfig": {
                "IPv4Address": args.ip.unwrap_or_default(),
                "IPv6Address": args.ip6.unwrap_or_default(),
            },
            "Aliases": args.alias,
        },
    });
    let path = format!("/networks/{}/connect", segment(&args.network));
    app.client.post_json(&path, &body).await?;
    Ok(())
}

pub async fn disconnect(app: &App, args: DisconnectArgs) -> anyhow::Result<()> {
    let body = serde_json::json!({"Container": args.container, "Force": args.force});
    let path = format!("/networks/{}/disconnect", segment(&args.network));
    app.client.post_json(&path, &body).await?;
    Ok(())
}

/// `run`/`create`'s NetworkingConfig: `--ip`, `--ip6`, `--network-alias` and
/// `--mac-address` go to the endpoint of the container's network (`default` without
/// `--network`, as the docker CLI names it); nothing given, no endpoint settings.
pub fn endpoints_config(
    network: &str,
    ip: &Option<String>,
    ip6: &Option<String>,
    aliases: &[String],
    mac: &Option<String>,
) -> Result<Value, FlagError> {
    if let Some(mac) = mac {
        if !valid_mac(mac) {
            return Err(FlagError::MacAddress(mac.clone()));
        }
    }
    if ip.is_none() && ip6.is_none() && aliases.is_empty() && mac.is_none() {
        return Ok(json!({"EndpointsConfig": {}}));
    }
    let mut endpoint =
        json!({"Aliases": if aliases.is_empty() { Value::Null } else { json!(aliases) }});
    if ip.is_some() || ip6.is_some() {
        endpoint["IPAMConfig"] = json!({
            "IPv4Address": ip.clone().unwrap_or_default(),
            "IPv6Address": ip6.clone().unwrap_or_default(),
        });
    }
    if let Some(mac) = mac {
        endpoint["MacAddress"] = json!(mac);
    }
    Ok(json!({"EndpointsConfig": {network: endpoint}}))
}

/// Go's `net.ParseMAC` for 48-bit addresses: six hex pairs split by `:` or `-`.
fn valid_mac(text: &str) -> bool {
    let separator = if text.contains('-') { '-' } else { ':' };
    let parts: Vec<&str> = text.split(separator).collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_flags_go_to_the_containers_network() {
        let none = endpoints_config("default", &None, &None, &[], &None).expect("empty");
        assert_eq!(none, json!({"EndpointsConfig": {}}));
        let body = endpoints_config(
            "app",
            &Some("10.1.0.9".into()),
            &None,
            &["web".to_string()],
            &Some("02:42:0a:01:00:09".into()),
        )
        .expect("body");
        let endpoint = &body["EndpointsConfig"]["app"];
        assert_eq!(endpoint["IPAMConfig"]["IPv4Address"], "10.1.0.9");
        assert_eq!(endpoint["Aliases"], json!(["web"]));
        assert_eq!(endpoint["MacAddress"], "02:42:0a:01:00:09");
    }

    #[test]
    fn a_bad_mac_address_is_refused_as_the_docker_cli_does() {
        let err = endpoints_config("default", &None, &None, &[], &Some("xx".into()))
            .expect_err("bad mac");
        assert_eq!(err.to_string(), "xx is not a valid mac address");
        assert!(valid_mac("92-d0-c6-0a-29-33"));
        assert!(!valid_mac("92:d0:c6:0a:29"));
    }
}
