//! The event bus behind `GET /events`: every service publishes here (skeleton; the events
//! helper fills in history, filters and subscriptions).

use std::collections::BTreeMap;

/// Fan-out of engine events to `/events` subscribers, with a bounded history for `since`.
#[derive(Debug, Default)]
pub struct EventBus {}

impl EventBus {
    pub fn new() -> EventBus {
        EventBus {}
    }

    /// Publishes one event (`type` is container, image, volume, network, daemon...).
    pub fn publish(
        &self,
        r#type: &str,
        action: &str,
        actor_id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let _ = (r#type, action, actor_id, attributes);
    }
}
