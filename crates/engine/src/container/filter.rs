//! `GET /containers/json` selection: `all`, `limit` and every filter the docker CLI sends
//! (id, name, label, status, exited, ancestor, before, since, volume, network, health,
//! is-task, publish, expose, isolation), as Docker's `daemon/list.go`.

use berth_api::{Filters, FiltersError};

use super::{ContainerRecord, Status};

/// Filter names `docker ps` accepts.
pub const ACCEPTED: &[&str] = &[
    "ancestor",
    "before",
    "exited",
    "expose",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// `?all=`, `?limit=` and `?filters=`.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    /// 0 or negative: no limit.
    pub limit: i64,
    pub filters: Filters,
}

/// Checks the filters before any container is looked at, as Docker does.
pub fn validate(filters: &Filters) -> Result<(), FiltersError> {
    filters.validate(ACCEPTED)?;
    for value in filters.values("status") {
        if !STATUSES.contains(&value) {
            return Err(invalid("status", value));
        }
    }
    for value in filters.values("exited") {
        if value.parse::<i32>().is_err() {
            return Err(invalid("exited", value));
        }
    }
    for value in filters.values("health") {
        if !["starting", "healthy", "unhealthy", "none"].contains(&value) {
            return Err(invalid("health", value));
        }
    }
    filters.bool_or("is-task", false)?;
    Ok(())
}

fn invalid(name: &str, value: &str) -> FiltersError {
    FiltersError::InvalidValue {
        name: name.to_string(),
        values: vec![value.to_string()],
    }
}

/// Selects from `records` (newest first). `reference` resolves the containers named by
/// `before`/`since` to their IDs.
pub fn select(
    records: Vec<ContainerRecord>,
    options: &ListOptions,
    reference: impl Fn(&str) -> Option<String>,
) -> Result<Vec<ContainerRecord>, FiltersError> {
    validate(&options.filters)?;
    let filters = &options.filters;
    let resolve = |name: &str| -> Result<Vec<String>, FiltersError> {
        filters
            .values(name)
            .into_iter()
            .map(|value| reference(value).ok_or_else(|| invalid(name, value)))
            .collect()
    };
    let before = resolve("before")?;
    let since = resolve("since")?;
    let show_stopped = options.all
        || options.limit > 0
        || filters.contains("status")
        || filters.contains("exited")
        || !before.is_empty()
        || !since.is_empty();
    let mut selected = Vec::new();
    // Newest first: `since` X keeps what comes before X in this order, `before` X what
    // comes after it.
    let mut seen_before = before.is_empty();
    for record in records {
        if since.contains(&record.id) {
            break;
        }
        if !seen_before {
            if before.contains(&record.id) {
                seen_before = true;
            }
            continue;
        }
        let running = matches!(record.state.status, Status::Running | Status::Paused);
        if !show_stopped && !running {
            continue;
        }
        if matches(&record, filters) {
            selected.push(record);
        }
        if options.limit > 0 && selected.len() as i64 >= options.limit {
            break;
        }
    }
    Ok(selected)
}

/// Whether one record passes every filter except before/since.
fn matches(record: &ContainerRecord, filters: &Filters) -> bool {
    let bare_name = record.name.trim_start_matches('/');
    let any = |name: &str, test: &dyn Fn(&str) -> bool| -> bool {
        let values = filters.values(name);
        values.is_empty() || values.into_iter().any(test)
    };
    let labels = record.config.labels.clone().unwrap_or_default();
    any("id", &|v| pattern_match(v, &record.id))
        && any("name", &|v| {
            pattern_match(v, &record.name) || pattern_match(v, bare_name)
        })
        && filters.match_key_values("label", &labels)
        && any("status", &|v| v == record.state.status.as_str())
        && any("exited", &|v| {
            record.state.status == Status::Exited
                && v.parse::<i32>()
                    .is_ok_and(|code| code == record.state.exit_code)
        })
        && any("ancestor", &|v| is_ancestor(v, record))
        && any("network", &|v| network_of(record) == v)
        && any("volume", &|v| uses_volume(v, record))
        && any("health", &|v| v == health_of(record))
        && any("isolation", &|v| {
            v == "default" || v == record.host_config.isolation
        })
        && !filters.bool_or("is-task", false).unwrap_or(false)
        && any("publish", &|v| publishes(v, record))
        && any("expose", &|v| exposes(v, record))
}

/// The `health` filter's view: the health status, `none` without a healthcheck.
fn health_of(record: &ContainerRecord) -> &'static str {
    record
        .state
        .health
        .as_ref()
        .map_or("none", |h| h.status.as_str())
}

/// Docker matches `id` and `name` as unanchored regular expressions; plain text (the
/// common case) is a substring test, `^` and `$` anchor it.
pub fn pattern_match(pattern: &str, text: &str) -> bool {
    let (anchored_start, rest) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let (anchored_end, core) = match rest.strip_suffix('$') {
        Some(core) => (true, core),
        None => (false, rest),
    };
    match (anchored_start, anchored_end) {
        (true, true) => text == core,
        (true, false) => text.starts_with(core),
        (false, true) => text.ends_with(core),
        (false, false) => text.contains(core),
    }
}

/// `ancestor`: the image as named at create (tag defaulted), or its ID or an ID prefix.
fn is_ancestor(value: &str, record: &ContainerRecord) -> bool {
    let with_tag = |name: &str| {
        let last = name.rsplit('/').next().unwrap_or(name);
        if last.contains(':') || name.contains('@') {
            name.to_string()
        } else {
            format!("{name}:latest")
        }
    };
    let image_hex = record.image_id.trim_start_matches("sha256:");
    with_tag(value) == with_tag(&record.config.image)
        || value == record.image_id
        || (value.len() >= 4 && image_hex.starts_with(value.trim_start_matches("sha256:")))
}

fn network_of(record: &ContainerRecord) -> &str {
    match record.host_config.network_mode.as_str() {
        "" | "default" => "bridge",
        other => other,
    }
}

fn uses_volume(value: &str, record: &ContainerRecord) -> bool {
    let binds = record.host_config.binds.clone().unwrap_or_default();
    let from_binds = binds.iter().any(|bind| {
        let mut parts = bind.split(':');
        let source = parts.next().unwrap_or_default();
        let target = parts.next().unwrap_or_default();
        source == value || target == value
    });
    let mounts = record.host_config.mounts.clone().unwrap_or_default();
    from_binds
        || mounts
            .iter()
            .any(|m| m.source == value || m.target == value)
}

fn with_proto(port: &str) -> String {
    if port.contains('/') {
        port.to_string()
    } else {
        format!("{port}/tcp")
    }
}

fn publishes(value: &str, record: &ContainerRecord) -> bool {
    let wanted = with_proto(value);
    let bindings = record.host_config.port_bindings.clone().unwrap_or_default();
    bindings.values().flatten().flatten().any(|b| {
        let proto = bindings
            .iter()
            .find(|(_, v)| v.as_ref().is_some_and(|list| list.contains(b)))
            .and_then(|(k, _)| k.split('/').nth(1))
            .unwrap_or("tcp");
        format!("{}/{proto}", b.host_port) == wanted
    })
}

fn exposes(value: &str, record: &ContainerRecord) -> bool {
    let wanted = with_proto(value);
    let exposed = record.config.exposed_ports.clone().unwrap_or_default();
    exposed.keys().any(|k| with_proto(k) == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn record(id: &str, name: &str, status: Status, code: i32) -> ContainerRecord {
        let mut record = ContainerRecord {
            id: id.repeat(64 / id.len()),
            name: format!("/{name}"),
            image_id: format!("sha256:{}", "ab".repeat(32)),
            ..ContainerRecord::default()
        };
        record.config.image = "busybox".to_string();
        record.state.status = status;
        record.state.exit_code = code;
        record
    }

    fn sample() -> Vec<ContainerRecord> {
        let mut web = record("c", "web", Status::Running, 0);
        web.config.labels = Some(BTreeMap::from([("tier".to_string(), "front".to_string())]));
        vec![
            web,
            record("b", "job", Status::Exited, 3),
            record("a", "fresh", Status::Created, 0),
        ]
    }

    fn names(selected: &[ContainerRecord]) -> Vec<&str> {
        selected.iter().map(|r| r.name.as_str()).collect()
    }

    fn list(all: bool, limit: i64, filters: &[(&str, &str)]) -> Vec<String> {
        let mut f = Filters::new();
        for (k, v) in filters {
            f.add(k, v);
        }
        let options = ListOptions {
            all,
            limit,
            filters: f,
        };
        let records = sample();
        let ids: Vec<(String, String)> = records
            .iter()
            .map(|r| (r.name.clone(), r.id.clone()))
            .collect();
        let reference = |q: &str| {
            ids.iter()
                .find(|(n, id)| n.trim_start_matches('/') == q || id == q)
                .map(|(_, id)| id.clone())
        };
        names(&select(records, &options, reference).expect("select"))
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn only_running_containers_without_all_limit_or_status() {
        assert_eq!(list(false, 0, &[]), ["/web"]);
        assert_eq!(list(true, 0, &[]), ["/web", "/job", "/fresh"]);
        assert_eq!(list(false, 2, &[]), ["/web", "/job"]);
        assert_eq!(list(false, 0, &[("status", "exited")]), ["/job"]);
        assert_eq!(list(false, 0, &[("exited", "3")]), ["/job"]);
        assert!(list(false, 0, &[("exited", "0")]).is_empty());
    }

    #[test]
    fn name_id_label_and_ancestor_filters_match_like_docker() {
        assert_eq!(list(true, 0, &[("name", "jo")]), ["/job"]);
        assert_eq!(list(true, 0, &[("name", "^/fresh$")]), ["/fresh"]);
        assert_eq!(list(true, 0, &[("id", "bbbb")]), ["/job"]);
        assert_eq!(list(true, 0, &[("label", "tier=front")]), ["/web"]);
        assert!(list(true, 0, &[("label", "tier=back")]).is_empty());
        assert_eq!(list(true, 0, &[("ancestor", "busybox:latest")]).len(), 3);
        assert!(list(true, 0, &[("ancestor", "alpine")]).is_empty());
        assert_eq!(list(true, 0, &[("network", "bridge")]).len(), 3);
        assert!(list(true, 0, &[("is-task", "true")]).is_empty());
    }

    #[test]
    fn before_and_since_use_creation_order() {
        assert_eq!(list(false, 0, &[("since", "fresh")]), ["/web", "/job"]);
        assert_eq!(list(false, 0, &[("before", "web")]), ["/job", "/fresh"]);
    }

    #[test]
    fn bad_filters_are_refused_with_dockers_text() {
        let mut f = Filters::new();
        f.add("status", "sleeping");
        assert_eq!(
            validate(&f).expect_err("status").to_string(),
            "invalid filter 'status=sleeping'"
        );
        let mut f = Filters::new();
        f.add("colour", "red");
        assert_eq!(
            validate(&f).expect_err("name").to_string(),
            "invalid filter 'colour'"
        );
    }
}
