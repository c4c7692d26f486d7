//! `events`: the daemon's event stream, printed as docker's default line or a template.

use berth_client::{Method, RequestBody};
use clap::Args;

use crate::app::App;
use crate::format::{Template, Value};

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
}

/// docker's default event line: time, type, action, actor ID and sorted attributes.
pub fn event_line(event: &Value) -> String {
    let nanos = event.int("timeNano");
    let seconds = nanos.div_euclid(1_000_000_000);
    let fraction = nanos.rem_euclid(1_000_000_000);
    let base = crate::format::time::rfc3339_nano(seconds, 0);
    let mut line = format!("{}.{fraction:09}Z ", base.trim_end_matches('Z'));
    let actor = event.field("Actor");
    line.push_str(&format!(
        "{} {} {}",
        event.text("Type"),
        event.text("Action"),
        actor.map(|a| a.text("ID")).unwrap_or("")
    ));
    if let Some(Value::Object(attributes)) = actor.and_then(|a| a.field("Attributes")) {
        let mut pairs: Vec<String> = attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.sort();
        if !pairs.is_empty() {
            line.push_str(&format!(" ({})", pairs.join(", ")));
        }
    }
    line
}

pub async fn events(app: &App, args: EventsArgs) -> anyhow::Result<()> {
    let mut pairs: Vec<(&'static str, String)> = Vec::new();
    if let Some(since) = &args.since {
        pairs.push(("since", super::logs::timestamp(since)));
    }
    if let Some(until) = &args.until {
        pairs.push(("until", super::logs::timestamp(until)));
    }
    super::push_filters(&mut pairs, &super::filters(&args.filter)?)?;
    let template = match args.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(Template::parse("{{json .}}")?),
        Some(format) => Some(Template::parse(format)?),
    };
    let path = format!("/events{}", berth_client::query(&pairs));
    let mut response = app
        .client
        .request(Method::GET, &path, RequestBody::Empty, &[])
        .await?;
    while let Some(line) = response.line().await? {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event = Value::parse(&line)?;
        let text = match &template {
            Some(template) => template.execute(&event)?,
            None => event_line(&event),
        };
        app.print(&format!("{text}\n"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_event_line_matches_docker() {
        let event = Value::parse(
            br#"{"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"web","image":"busybox"}},"time":1796023444,"timeNano":1796023444000000042}"#,
        )
        .expect("json");
        assert_eq!(
            event_line(&event),
            "2026-11-30T07:24:04.000000042Z container start abc (image=busybox, name=web)"
        );
    }
}
