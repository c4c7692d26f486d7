//! The runc-style commands on containers, one file per verb; this file holds what they
//! share: the state root, loading a container, its live status and its cgroup.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod kill;
pub mod pause;
pub mod ps;
pub mod run;
pub mod start;
pub mod tty;
pub mod update;

use std::path::PathBuf;

use crate::cgroups::{self, Manager};
use crate::error::RuntimeError;
use crate::state::{owner_name, ContainerState, StateJson, Status};

/// Global options every command gets.
#[derive(Debug, Clone)]
pub struct Context {
    /// --root: where container state lives.
    pub root: PathBuf,
    /// --systemd-cgroup.
    pub systemd_cgroup: bool,
}

/// runc's container id rule: letters, digits, and `_ + - .`, not "." or "..".
pub fn validate_id(id: &str) -> Result<(), RuntimeError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidId(id.to_string()))
    }
}

impl Context {
    /// Loads a container's state, `container does not exist` when there is none.
    pub fn load(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        validate_id(id)?;
        ContainerState::load(&self.root, id)?.ok_or(RuntimeError::NotExist)
    }

    /// The container's cgroup manager, rebuilt from its state.
    pub fn cgroup(&self, state: &ContainerState) -> Result<Box<dyn Manager>, RuntimeError> {
        cgroups::new_manager(
            state.cgroups_path.as_deref(),
            &state.id,
            state.systemd_cgroup,
        )
        .map_err(|e| RuntimeError::Cgroup(e.to_string()))
    }

    /// The live status (paused comes from the freezer).
    pub fn status(&self, state: &ContainerState) -> Status {
        state.status(&self.root, || {
            self.cgroup(state)
                .ok()
                .and_then(|m| m.is_frozen().ok())
                .unwrap_or(false)
        })
    }

    /// `state ID`: runc's state JSON, pretty-printed.
    pub fn state_json(&self, id: &str) -> Result<String, RuntimeError> {
        let state = self.load(id)?;
        let status = self.status(&state);
        serde_json::to_string_pretty(&state.to_json(status, String::new()))
            .map_err(|e| RuntimeError::io("encode state", std::io::Error::other(e)))
    }

    /// Every container under the root, sorted by id, for `list`.
    pub fn list(&self) -> Result<Vec<StateJson>, RuntimeError> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(RuntimeError::io(format!("read {}", self.root.display()), e)),
        };
        for entry in entries.flatten() {
            let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if validate_id(&id).is_err() {
                continue;
            }
            // A directory without state (a crash half way through create) is skipped, as runc.
            let Ok(Some(state)) = ContainerState::load(&self.root, &id) else {
                continue;
            };
            let status = self.status(&state);
            out.push(state.to_json(status, owner_name(&entry.path())));
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

/// Waits until `state`'s init is gone (or a zombie), up to `tries` * 10ms.
pub fn wait_gone(state: &ContainerState, tries: u32) -> bool {
    for _ in 0..tries {
        if !state.init_alive() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    !state.init_alive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_follow_runc_s_rule() {
        for ok in ["x", "abc-DEF_1.2+3", "a..b"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ü"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_of_an_empty_or_missing_root_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = Context {
            root: dir.path().join("missing"),
            systemd_cgroup: false,
        };
        assert!(ctx.list().expect("list").is_empty());
        assert!(matches!(ctx.load("x"), Err(RuntimeError::NotExist)));
    }
}
