//! `berth network connect` and `berth network disconnect` (docker's flags and output; the
//! other `network` verbs live with the other object commands).

use clap::Args;

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
