//! The event bus behind `GET /events`: every service publishes here; subscribers get the
//! bounded history they ask for (`since`/`until`) and then live events, filtered as moby's
//! daemon/events/filter.go filters them, as Docker's `events.Message`.
//!
//! History keeps the last [`HISTORY`] events (Docker keeps 256). A subscriber that falls
//! [`BACKLOG`] events behind misses the newer ones instead of slowing publishers down, as
//! Docker's pubsub drops events for slow subscribers.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_api::events::EventMessage;
use berth_api::{Filters, FiltersError};
use tokio::sync::mpsc;

use crate::error::ErrorKind;

/// Events kept for `since`.
pub const HISTORY: usize = 1024;
/// Events that may wait for one subscriber.
pub const BACKLOG: usize = 1024;

/// Filter names `/events` accepts (Docker's list).
const ACCEPTED_FILTERS: [&str; 14] = [
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// Failures subscribing.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(transparent)]
    Filter(#[from] FiltersError),
}

impl EventsError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EventsError::Filter(e) => e.kind(),
        }
    }
}

struct Subscriber {
    filters: Filters,
    until: Option<i64>,
    sender: mpsc::Sender<EventMessage>,
}

#[derive(Default)]
struct State {
    history: VecDeque<EventMessage>,
    subscribers: Vec<Subscriber>,
}

/// Fan-out of engine events to `/events` subscribers, with a bounded history for `since`.
#[derive(Default)]
pub struct EventBus {
    state: Mutex<State>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("listeners", &self.listeners())
            .finish()
    }
}

impl EventBus {
    pub fn new() -> EventBus {
        EventBus::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Publishes one event now (`type` is container, image, volume, network, daemon...).
    pub fn publish(
        &self,
        r#type: &str,
        action: &str,
        actor_id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        self.publish_at(r#type, action, actor_id, attributes, now_nanos());
    }

    /// Publishes one event with the given time (Unix nanoseconds).
    pub fn publish_at(
        &self,
        r#type: &str,
        action: &str,
        actor_id: &str,
        attributes: BTreeMap<String, String>,
        time_nano: i64,
    ) {
        let event = EventMessage::new(r#type, action, actor_id, attributes, time_nano);
        let mut state = self.lock();
        if state.history.len() == HISTORY {
            state.history.pop_front();
        }
        state.history.push_back(event.clone());
        state.subscribers.retain(|subscriber| {
            if subscriber.sender.is_closed() {
                return false;
            }
            if subscriber
                .until
                .is_some_and(|until| event.time_nano > until)
            {
                return true;
            }
            if matches(&subscriber.filters, &event) {
                // A full backlog drops this event for this subscriber only.
                let _ = subscriber.sender.try_send(event.clone());
            }
            true
        });
    }

    /// Events at or after `since` from the history (none without `since`), then live
    /// events until `until` (Unix nanoseconds) passes; without `until`, until dropped.
    pub fn subscribe(
        &self,
        since: Option<i64>,
        until: Option<i64>,
        filters: Filters,
    ) -> Result<EventStream, EventsError> {
        filters.validate(&ACCEPTED_FILTERS)?;
        let now = now_nanos();
        let mut state = self.lock();
        let replay: VecDeque<EventMessage> = match since {
            Some(since) => state
                .history
                .iter()
                .filter(|e| e.time_nano >= since)
                .filter(|e| until.is_none_or(|until| e.time_nano <= until))
                .filter(|e| matches(&filters, e))
                .cloned()
                .collect(),
            None => VecDeque::new(),
        };
        let live = if until.is_some_and(|until| until <= now) {
            None
        } else {
            let (sender, receiver) = mpsc::channel(BACKLOG);
            state.subscribers.push(Subscriber {
                filters,
                until,
                sender,
            });
            Some(receiver)
        };
        let deadline = until.filter(|_| live.is_some()).map(|until| {
            let wait = Duration::from_nanos(u64::try_from(until - now).unwrap_or(0));
            Box::pin(tokio::time::sleep(wait))
        });
        Ok(EventStream {
            replay,
            live,
            deadline,
        })
    }

    /// Live subscribers (Docker's `NEventsListener` in `/info`).
    pub fn listeners(&self) -> usize {
        let mut state = self.lock();
        state.subscribers.retain(|s| !s.sender.is_closed());
        state.subscribers.len()
    }
}

/// What one `/events` request receives: replayed history, then live events. A `Stream`
/// of [`EventMessage`]; it ends at `until`, never otherwise.
pub struct EventStream {
    replay: VecDeque<EventMessage>,
    live: Option<mpsc::Receiver<EventMessage>>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl EventStream {
    /// The next event, `None` once `until` has passed.
    pub async fn next(&mut self) -> Option<EventMessage> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<EventMessage>> {
        if let Some(event) = self.replay.pop_front() {
            return Poll::Ready(Some(event));
        }
        let Some(live) = self.live.as_mut() else {
            return Poll::Ready(None);
        };
        // Events already queued before the deadline still go out.
        if let Poll::Ready(event) = live.poll_recv(cx) {
            return Poll::Ready(event);
        }
        if let Some(deadline) = self.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                self.live = None;
                return Poll::Ready(None);
            }
        }
        Poll::Pending
    }
}

impl futures_core::Stream for EventStream {
    type Item = EventMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<EventMessage>> {
        self.poll_event(cx)
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Docker's `Args.FuzzyMatch`: no values, an equal value, or a value that is a prefix.
fn fuzzy_match(filters: &Filters, name: &str, source: &str) -> bool {
    let values = filters.values(name);
    values.is_empty() || values.iter().any(|v| source == *v || source.starts_with(v))
}

/// moby's `fuzzyMatchName`: the actor's ID or `name` attribute.
fn match_name(filters: &Filters, name: &str, event: &EventMessage) -> bool {
    let actor_name = attribute(event, "name");
    fuzzy_match(filters, name, &event.actor.id) || fuzzy_match(filters, name, actor_name)
}

fn attribute<'a>(event: &'a EventMessage, key: &str) -> &'a str {
    event
        .actor
        .attributes
        .as_ref()
        .and_then(|a| a.get(key))
        .map_or("", String::as_str)
}

/// `busybox:latest` → `busybox` (the last path component's tag; registry ports stay).
fn strip_tag(image: &str) -> &str {
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].find(':') {
        Some(colon) if !image.contains('@') => &image[..name_start + colon],
        _ => image,
    }
}

/// moby's daemon/events `Filter.Include`.
fn matches(filters: &Filters, event: &EventMessage) -> bool {
    if filters.is_empty() {
        return true;
    }
    // `health_status`, `exec_create` and `exec_start` also match their `: detail` forms.
    let fuzzy_actions = ["health_status", "exec_create", "exec_start"];
    let action_ok = if filters
        .values("event")
        .iter()
        .any(|v| fuzzy_actions.contains(v))
    {
        fuzzy_match(filters, "event", &event.action)
    } else {
        filters.exact_match("event", &event.action)
    };
    let image_ok = {
        let name = if event.r#type == "image" {
            attribute(event, "name")
        } else {
            attribute(event, "image")
        };
        let id = event.actor.id.as_str();
        !filters.contains("image")
            || [id, name, strip_tag(id), strip_tag(name)]
                .iter()
                .any(|candidate| {
                    !candidate.is_empty() && filters.values("image").contains(candidate)
                })
    };
    let labels = event.actor.attributes.clone().unwrap_or_default();
    action_ok
        && filters.exact_match("type", &event.r#type)
        && filters.exact_match("scope", &event.scope)
        && [
            "daemon",
            "container",
            "plugin",
            "volume",
            "network",
            "node",
            "service",
            "secret",
            "config",
        ]
        .iter()
        .all(|name| match_name(filters, name, event))
        && image_ok
        && filters.match_key_values("label", &labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn filters(json: &str) -> Filters {
        Filters::parse(json).expect("filters")
    }

    fn bus_with_history() -> EventBus {
        let bus = EventBus::new();
        let web = attrs(&[
            ("name", "web"),
            ("image", "busybox:latest"),
            ("app", "shop"),
        ]);
        bus.publish_at("container", "create", "c1", web.clone(), 10);
        bus.publish_at("container", "start", "c1", web, 20);
        bus.publish_at(
            "image",
            "pull",
            "busybox:latest",
            attrs(&[("name", "busybox")]),
            30,
        );
        bus.publish_at(
            "network",
            "connect",
            "n1",
            attrs(&[("container", "c1")]),
            40,
        );
        bus.publish_at(
            "container",
            "exec_start: sh -c true",
            "c1",
            attrs(&[("name", "web")]),
            50,
        );
        bus
    }

    async fn replayed(bus: &EventBus, since: i64, until: Option<i64>, f: &str) -> Vec<String> {
        let until = until.or(Some(now_nanos() - 1));
        let mut stream = bus
            .subscribe(Some(since), until, filters(f))
            .expect("subscribe");
        let mut out = Vec::new();
        while let Some(event) = stream.next().await {
            out.push(format!("{} {}", event.r#type, event.action));
        }
        out
    }

    #[tokio::test]
    async fn since_and_until_replay_a_window_of_history() {
        let bus = bus_with_history();
        assert_eq!(
            replayed(&bus, 20, Some(40), "{}").await,
            vec!["container start", "image pull", "network connect"]
        );
    }

    #[tokio::test]
    async fn filters_follow_dockers_rules() {
        let bus = bus_with_history();
        let cases = [
            (r#"{"type":["image"]}"#, vec!["image pull"]),
            (r#"{"event":["start"]}"#, vec!["container start"]),
            (
                r#"{"event":["exec_start"]}"#,
                vec!["container exec_start: sh -c true"],
            ),
            (
                r#"{"container":["we"]}"#,
                vec![
                    "container create",
                    "container start",
                    "container exec_start: sh -c true",
                ],
            ),
            (
                r#"{"image":["busybox"]}"#,
                vec!["container create", "container start", "image pull"],
            ),
            (
                r#"{"label":["app=shop"]}"#,
                vec!["container create", "container start"],
            ),
            (r#"{"network":["n1"]}"#, vec!["network connect"]),
            (
                r#"{"type":["container"],"event":["create","start"]}"#,
                vec!["container create", "container start"],
            ),
        ];
        for (f, want) in cases {
            assert_eq!(replayed(&bus, 0, None, f).await, want, "{f}");
        }
    }

    #[tokio::test]
    async fn unknown_filter_names_are_refused() {
        let err = EventBus::new()
            .subscribe(None, None, filters(r#"{"colour":["red"]}"#))
            .err()
            .expect("refused");
        assert_eq!(err.to_string(), "invalid filter 'colour'");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }

    #[tokio::test]
    async fn live_events_reach_matching_subscribers_with_dockers_shape() {
        let bus = EventBus::new();
        let mut all = bus
            .subscribe(None, None, Filters::new())
            .expect("subscribe");
        let mut images = bus
            .subscribe(None, None, filters(r#"{"type":["image"]}"#))
            .expect("subscribe");
        assert_eq!(bus.listeners(), 2);
        bus.publish(
            "container",
            "die",
            "c1",
            attrs(&[("image", "busybox"), ("exitCode", "0")]),
        );
        bus.publish("image", "tag", "sha256:x", attrs(&[("name", "b:1")]));
        let first = all.next().await.expect("event");
        assert_eq!(
            (first.status.as_str(), first.from.as_str()),
            ("die", "busybox")
        );
        assert!(first.time_nano > 0);
        assert_eq!(all.next().await.expect("event").action, "tag");
        assert_eq!(images.next().await.expect("event").action, "tag");
        drop(images);
        assert_eq!(bus.listeners(), 1);
    }

    #[tokio::test]
    async fn live_stream_ends_at_until() {
        let bus = EventBus::new();
        let until = now_nanos() + 50_000_000;
        let mut stream = bus
            .subscribe(None, Some(until), Filters::new())
            .expect("subscribe");
        bus.publish_at("daemon", "reload", "d", BTreeMap::new(), until - 1);
        bus.publish_at("daemon", "reload", "late", BTreeMap::new(), until + 1);
        assert_eq!(stream.next().await.expect("before until").actor.id, "d");
        assert!(stream.next().await.is_none(), "ends once until passes");
    }

    #[tokio::test]
    async fn history_is_bounded_and_without_since_nothing_is_replayed() {
        let bus = EventBus::new();
        for i in 0..(HISTORY as i64 + 10) {
            bus.publish_at("daemon", "reload", &i.to_string(), BTreeMap::new(), i + 1);
        }
        let first = replayed(&bus, 0, None, "{}").await;
        assert_eq!(first.len(), HISTORY);
        let mut live = bus
            .subscribe(None, None, Filters::new())
            .expect("subscribe");
        bus.publish("daemon", "reload", "new", BTreeMap::new());
        assert_eq!(live.next().await.expect("live").actor.id, "new");
    }

    #[test]
    fn tags_are_stripped_but_registry_ports_stay() {
        assert_eq!(strip_tag("busybox:latest"), "busybox");
        assert_eq!(strip_tag("localhost:5000/app:1"), "localhost:5000/app");
        assert_eq!(strip_tag("localhost:5000/app"), "localhost:5000/app");
    }
}
