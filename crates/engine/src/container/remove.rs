//! `DELETE /containers/{id}` (force kills first) and `POST /containers/prune`.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_api::Filters;

use super::{blocking, image_link, rootfs, start, stop};
use super::{Container, ContainerError, Inner, Status, StopOptions};

/// `?force=`, `?v=`, `?link=`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoveOptions {
    pub force: bool,
    /// Remove the container's anonymous volumes that no other container references.
    pub volumes: bool,
    pub link: bool,
}

pub(super) async fn remove_verb(
    inner: &Arc<Inner>,
    container: &Arc<Container>,
    options: RemoveOptions,
) -> Result<(), ContainerError> {
    if options.link {
        return Err(ContainerError::NotImplemented(
            "legacy links are not implemented in berth".to_string(),
        ));
    }
    let _op = container.op.lock().await;
    if !inner.holds(container) {
        return Err(ContainerError::NotFound(container.id.clone()));
    }
    remove_with_volumes(inner, container, options.force, options.volumes).await
}

/// Removes the container; the caller holds its operation lock. An `--rm` container's
/// anonymous volumes go with it, as Docker's auto-remove passes `RemoveVolume`.
pub(super) async fn remove_locked(
    inner: &Arc<Inner>,
    container: &Arc<Container>,
    force: bool,
) -> Result<(), ContainerError> {
    let auto_remove = container.record().host_config.auto_remove;
    remove_with_volumes(inner, container, force, auto_remove).await
}

/// [`remove_locked`], removing the anonymous volumes when `volumes` (`rm -v`).
async fn remove_with_volumes(
    inner: &Arc<Inner>,
    container: &Arc<Container>,
    force: bool,
    volumes: bool,
) -> Result<(), ContainerError> {
    let record = container.record();
    if record.state.status == Status::Removing {
        return Err(ContainerError::RemovalInProgress(container.id.clone()));
    }
    if container.is_running() {
        if !force {
            return Err(ContainerError::RemoveRunning { name: record.name });
        }
        let kill = StopOptions {
            timeout: Some(0),
            signal: Some("SIGKILL".to_string()),
        };
        stop::stop_locked(inner, container, &kill).await?;
    }
    container.update(|record| record.state.status = Status::Removing);
    let dir = inner.config.container_dir(&container.id);
    let target = rootfs::rootfs_path(&dir);
    // The shim's delete (the runtime's cgroups and state, under the exec root) runs while the
    // layer and the container directory go, and while the network sandbox (veths, namespace,
    // firewall, under the network service's own directories) is released: they share
    // nothing, and the init is dead.
    let layer = async {
        super::volumes::after_exit(inner, &container.id).await;
        crate::secret::mount::release_after_exit(&inner.config.exec_root, &container.id).await;
        blocking(move || rootfs::unmount(&target)).await?;
        match image_link::remove_rootfs(&inner.images, &container.id).await {
            Err(e) if e.kind() != crate::error::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        blocking(move || match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ContainerError::io(format!("removing {}", dir.display()), e)),
        })
        .await
    };
    let ((), removed, ()) = tokio::join!(
        start::remove_stale_shim(inner, &container.id),
        layer,
        super::network_link::forget(inner, &container.id)
    );
    removed?;
    let (config, id) = (inner.config.clone(), container.id.clone());
    let _ = blocking(move || {
        super::userns::release(&config, &id);
        Ok(())
    })
    .await;
    inner.forget(container);
    super::volumes::release(inner, &container.id, volumes).await;
    container.lifecycle.send_modify(|l| l.removed = true);
    inner.publish(container, "destroy", BTreeMap::new());
    Ok(())
}

/// Removes every stopped container matching `until` / `label` / `label!`.
pub(super) async fn prune(
    inner: &Arc<Inner>,
    filters: &Filters,
) -> Result<Vec<String>, ContainerError> {
    filters
        .validate(&["until", "label", "label!"])
        .map_err(|e| ContainerError::InvalidArgument(e.to_string()))?;
    let until = match filters.values("until").first() {
        Some(text) => Some(parse_until(text).ok_or_else(|| {
            ContainerError::InvalidArgument(format!("invalid filter 'until={text}'"))
        })?),
        None => None,
    };
    let mut removed = Vec::new();
    for container in inner.list() {
        let record = container.record();
        if matches!(
            record.state.status,
            Status::Running | Status::Paused | Status::Restarting | Status::Removing
        ) {
            continue;
        }
        let labels = record.config.labels.clone().unwrap_or_default();
        if !filters.match_key_values("label", &labels) || excluded_by_label(filters, &labels) {
            continue;
        }
        if let Some(until) = until {
            let created = berth_api::time::parse_rfc3339(&record.created)
                .map(|(secs, _)| secs)
                .unwrap_or(i64::MAX);
            if created >= until {
                continue;
            }
        }
        let _op = container.op.lock().await;
        if inner.holds(&container) && !container.is_running() {
            remove_locked(inner, &container, false).await?;
            removed.push(container.id.clone());
        }
    }
    inner.events.publish(
        "container",
        "prune",
        "",
        BTreeMap::from([("reclaimed".to_string(), "0".to_string())]),
    );
    Ok(removed)
}

/// `label!=k` / `label!=k=v`: any match excludes.
fn excluded_by_label(filters: &Filters, labels: &BTreeMap<String, String>) -> bool {
    filters
        .values("label!")
        .into_iter()
        .any(|wanted| match wanted.split_once('=') {
            Some((key, value)) => labels.get(key).is_some_and(|have| have == value),
            None => labels.contains_key(wanted),
        })
}

/// Docker's `until`: an RFC 3339 time, Unix seconds (with fraction), or a Go duration
/// before now (`10m`, `1h30m`). Returns Unix seconds.
pub fn parse_until(text: &str) -> Option<i64> {
    if let Some((secs, _)) = berth_api::time::parse_rfc3339(text) {
        return Some(secs);
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return Some(seconds as i64);
    }
    let duration = parse_go_duration(text)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    Some(now - duration)
}

/// Whole seconds of a Go duration (`1h30m`, `45s`, `10m`).
fn parse_go_duration(text: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(next) = chars.peek().filter(|n| n.is_ascii_alphabetic()) {
            unit.push(*next);
            chars.next();
        }
        let value: f64 = number.parse().ok()?;
        number.clear();
        total += value
            * match unit.as_str() {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 0.001,
                "us" | "µs" => 0.000_001,
                "ns" => 0.000_000_001,
                _ => return None,
            };
        any = true;
    }
    (any && number.is_empty()).then_some(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_accepts_times_unix_seconds_and_durations() {
        assert_eq!(parse_until("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_until("1700000000.5"), Some(1_700_000_000));
        assert_eq!(parse_go_duration("1h30m"), Some(5400));
        assert_eq!(parse_go_duration("45s"), Some(45));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("3d"), None);
        assert!(parse_until("soon").is_none());
    }

    #[test]
    fn negated_label_filters_exclude_matches() {
        let mut filters = Filters::new();
        filters.add("label!", "keep");
        let labels = BTreeMap::from([("keep".to_string(), "yes".to_string())]);
        assert!(excluded_by_label(&filters, &labels));
        assert!(!excluded_by_label(&filters, &BTreeMap::new()));
    }
}
