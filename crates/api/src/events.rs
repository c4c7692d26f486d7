//! `GET /events` messages (Go's `events.Message`), with the legacy `status`/`id`/`from`
//! fields Docker still fills for container and image events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::json::{is_zero, nullable};

/// The object an event is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventActor {
    #[serde(rename = "ID", default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: Option<BTreeMap<String, String>>,
}

/// One event line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMessage {
    /// Legacy: the action, for container and image events only.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub status: String,
    /// Legacy: the actor ID.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    /// Legacy: the image of a container event.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub from: String,
    /// `container`, `image`, `volume`, `network`, `daemon`, `plugin`, ...
    #[serde(rename = "Type", default, deserialize_with = "nullable")]
    pub r#type: String,
    /// `create`, `start`, `die`, `exec_start: sh`, `health_status: healthy`, ...
    #[serde(rename = "Action", default, deserialize_with = "nullable")]
    pub action: String,
    #[serde(rename = "Actor", default, deserialize_with = "nullable")]
    pub actor: EventActor,
    /// `local` or `swarm`.
    #[serde(default, deserialize_with = "nullable")]
    pub scope: String,
    /// Unix seconds.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub time: i64,
    /// Unix nanoseconds.
    #[serde(
        rename = "timeNano",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub time_nano: i64,
}

impl EventMessage {
    /// An event as Docker writes it: the legacy fields are filled for containers
    /// (`from` is the `image` attribute) and images, left empty for everything else.
    pub fn new(
        r#type: &str,
        action: &str,
        actor_id: &str,
        attributes: BTreeMap<String, String>,
        time_nano: i64,
    ) -> Self {
        let legacy = matches!(r#type, "container" | "image");
        EventMessage {
            status: if legacy {
                action.to_string()
            } else {
                String::new()
            },
            id: if legacy {
                actor_id.to_string()
            } else {
                String::new()
            },
            from: if r#type == "container" {
                attributes.get("image").cloned().unwrap_or_default()
            } else {
                String::new()
            },
            r#type: r#type.to_string(),
            action: action.to_string(),
            actor: EventActor {
                id: actor_id.to_string(),
                attributes: Some(attributes),
            },
            scope: "local".to_string(),
            time: time_nano.div_euclid(1_000_000_000),
            time_nano,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_events_fill_the_legacy_fields() {
        let attributes: BTreeMap<String, String> = [
            ("image".to_string(), "busybox".to_string()),
            ("name".to_string(), "web".to_string()),
        ]
        .into_iter()
        .collect();
        let event = EventMessage::new(
            "container",
            "start",
            "abc",
            attributes,
            1_700_000_000_123_456_789,
        );
        let json = serde_json::to_value(&event).expect("encode");
        assert_eq!(
            json,
            serde_json::json!({
                "status": "start", "id": "abc", "from": "busybox", "Type": "container",
                "Action": "start", "Actor": {"ID": "abc", "Attributes": {"image": "busybox", "name": "web"}},
                "scope": "local", "time": 1_700_000_000i64, "timeNano": 1_700_000_000_123_456_789i64
            })
        );
    }

    #[test]
    fn network_events_have_no_legacy_fields() {
        let event = EventMessage::new("network", "connect", "n1", BTreeMap::new(), 5_000_000_000);
        let json = serde_json::to_value(&event).expect("encode");
        assert!(json.get("status").is_none());
        assert!(json.get("id").is_none());
        assert_eq!(json["time"], 5);
    }
}
