//! Bodies of the container verbs: create, wait, top, changes, exec, update, prune.

use serde::{Deserialize, Serialize};

use super::config::Config;
use super::host_config::{HostConfig, Resources, RestartPolicy};
use crate::json::nullable;
use crate::network::NetworkingConfig;

/// `POST /containers/create` body: `Config` fields at the top level plus `HostConfig`
/// and `NetworkingConfig`. Unknown fields are ignored, as Go ignores them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerCreateRequest {
    #[serde(flatten)]
    pub config: Config,
    #[serde(
        rename = "HostConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub host_config: Option<HostConfig>,
    #[serde(
        rename = "NetworkingConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub networking_config: Option<NetworkingConfig>,
}

/// Errors parsing a request body, to be answered with 400.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// Docker's text (runconfig's `loadJSON`) when the body is empty.
    #[error("invalid JSON: got EOF while reading request body")]
    Empty,
}

impl ContainerCreateRequest {
    /// Parses a create body as Docker does: an empty body is refused, any JSON error
    /// is an invalid-argument error, a repeated key keeps its last value, and keys of
    /// the request and of `HostConfig` match field names case-insensitively (Go's
    /// `encoding/json` rule, which hand-written clients rely on: `{"image": ...}`).
    pub fn parse(body: &[u8]) -> Result<Self, RequestBodyError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(RequestBodyError::Empty);
        }
        let mut value: serde_json::Value =
            serde_json::from_slice(body).map_err(RequestBodyError::Json)?;
        if let Some(object) = value.as_object_mut() {
            canonicalise_keys(object, &request_field_names());
            if let Some(host) = object.get_mut("HostConfig").and_then(|v| v.as_object_mut()) {
                canonicalise_keys(host, &host_config_field_names());
            }
        }
        serde_json::from_value(value).map_err(RequestBodyError::Json)
    }
}

/// Field names of a struct: those its default value serialises plus its `omitempty` ones.
fn field_names<T: Default + Serialize>(omitempty: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = match serde_json::to_value(T::default()) {
        Ok(serde_json::Value::Object(map)) => map.into_iter().map(|(key, _)| key).collect(),
        _ => Vec::new(),
    };
    names.extend(omitempty.iter().map(|name| name.to_string()));
    names
}

fn request_field_names() -> Vec<String> {
    let mut names = field_names::<Config>(&[
        "ExposedPorts",
        "Healthcheck",
        "ArgsEscaped",
        "NetworkDisabled",
        "MacAddress",
        "StopSignal",
        "StopTimeout",
        "Shell",
    ]);
    names.extend(["HostConfig".to_string(), "NetworkingConfig".to_string()]);
    names
}

fn host_config_field_names() -> Vec<String> {
    field_names::<HostConfig>(&[
        "Annotations",
        "StorageOpt",
        "Tmpfs",
        "Sysctls",
        "Runtime",
        "Mounts",
        "Init",
        "KernelMemory",
        "KernelMemoryTCP",
    ])
}

/// Renames keys that match a field name only case-insensitively to that name, as Go
/// matches them. An exact key wins over a case-insensitive one (Go keeps whichever
/// comes last; only bodies repeating a key in two spellings can tell).
fn canonicalise_keys(object: &mut serde_json::Map<String, serde_json::Value>, names: &[String]) {
    let renames: Vec<(String, String)> = object
        .keys()
        .filter(|key| !names.contains(key))
        .filter_map(|key| {
            names
                .iter()
                .find(|name| name.eq_ignore_ascii_case(key))
                .map(|name| (key.clone(), name.clone()))
        })
        .collect();
    for (from, to) in renames {
        if let Some(value) = object.remove(&from) {
            object.entry(to).or_insert(value);
        }
    }
}

/// `POST /containers/create` response; Docker always writes `Warnings` as a list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerCreateResponse {
    #[serde(rename = "Id", default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(rename = "Warnings", default, deserialize_with = "nullable")]
    pub warnings: Vec<String>,
}

/// `Error` of a wait response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitExitError {
    #[serde(rename = "Message", default, deserialize_with = "nullable")]
    pub message: String,
}

/// `POST /containers/{id}/wait` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerWaitResponse {
    #[serde(rename = "StatusCode", default, deserialize_with = "nullable")]
    pub status_code: i64,
    #[serde(rename = "Error", default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WaitExitError>,
}

/// `GET /containers/{id}/top` response: `ps` columns and rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerTopResponse {
    #[serde(rename = "Titles", default)]
    pub titles: Option<Vec<String>>,
    #[serde(rename = "Processes", default)]
    pub processes: Option<Vec<Vec<String>>>,
}

/// One `GET /containers/{id}/changes` item; `Kind` 0 modified, 1 added, 2 deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesystemChange {
    #[serde(rename = "Path", default, deserialize_with = "nullable")]
    pub path: String,
    #[serde(rename = "Kind", default, deserialize_with = "nullable")]
    pub kind: u8,
}

/// `POST /containers/{id}/exec` body (Go's `container.ExecOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecCreateRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub user: String,
    #[serde(default, deserialize_with = "nullable")]
    pub privileged: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub tty: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<[u32; 2]>,
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stdin: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stderr: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stdout: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub detach: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub detach_keys: String,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub working_dir: String,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
}

/// `{"Id": "..."}`: exec create response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdResponse {
    #[serde(rename = "Id", default, deserialize_with = "nullable")]
    pub id: String,
}

/// `POST /exec/{id}/start` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecStartRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub detach: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub tty: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<[u32; 2]>,
}

/// `ProcessConfig` of exec inspect (lowercase names on the wire).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecProcessConfig {
    #[serde(default, deserialize_with = "nullable")]
    pub tty: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub entrypoint: String,
    #[serde(default)]
    pub arguments: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub user: String,
}

/// `GET /exec/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecInspect {
    #[serde(rename = "ID", default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub running: bool,
    /// `null` until the process exits.
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    pub process_config: ExecProcessConfig,
    #[serde(default, deserialize_with = "nullable")]
    pub open_stdin: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub open_stderr: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub open_stdout: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub can_remove: bool,
    #[serde(rename = "ContainerID", default, deserialize_with = "nullable")]
    pub container_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub detach_keys: String,
    #[serde(default, deserialize_with = "nullable")]
    pub pid: i64,
}

/// `POST /containers/{id}/update` body: resources plus the restart policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerUpdateRequest {
    #[serde(flatten)]
    pub resources: Resources,
    #[serde(rename = "RestartPolicy", default, deserialize_with = "nullable")]
    pub restart_policy: RestartPolicy,
}

/// `POST /containers/{id}/update` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerUpdateResponse {
    #[serde(rename = "Warnings", default)]
    pub warnings: Option<Vec<String>>,
}

/// `POST /containers/prune` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainersPruneResponse {
    #[serde(rename = "ContainersDeleted", default)]
    pub containers_deleted: Option<Vec<String>>,
    #[serde(rename = "SpaceReclaimed", default, deserialize_with = "nullable")]
    pub space_reclaimed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::is_false;

    #[test]
    fn create_request_reads_config_at_top_level() {
        let request = ContainerCreateRequest::parse(
            br#"{"Image":"busybox","Cmd":["echo","hi"],"HostConfig":{"AutoRemove":true,"NetworkMode":"none"},
                "NetworkingConfig":{"EndpointsConfig":{"none":{}}},"Whatever":[1,2]}"#,
        )
        .expect("parse");
        assert_eq!(request.config.image, "busybox");
        let host = request.host_config.as_ref().expect("host config");
        assert!(host.auto_remove);
        assert_eq!(host.network_mode, "none");
        let json = serde_json::to_value(&request).expect("encode");
        assert_eq!(json["Image"], "busybox");
        assert!(json.get("Config").is_none());
        assert!(is_false(&request.config.tty));
    }

    #[test]
    fn create_request_keys_match_case_insensitively_like_go() {
        let request = ContainerCreateRequest::parse(
            br#"{"image":"busybox","CMD":["true"],"hostconfig":{"autoremove":true,"memory":1024,
                "Labels-not-a-field":1},"Labels":{"image":"kept"}}"#,
        )
        .expect("parse");
        assert_eq!(request.config.image, "busybox");
        assert_eq!(
            request.config.cmd.as_ref().map(|c| c.0.clone()),
            Some(vec!["true".to_string()])
        );
        let host = request.host_config.expect("host config");
        assert!(host.auto_remove);
        assert_eq!(host.resources.memory, 1024);
        let labels = request.config.labels.expect("labels");
        assert_eq!(
            labels.get("image").map(String::as_str),
            Some("kept"),
            "user maps untouched"
        );
    }

    #[test]
    fn exact_keys_win_and_repeated_keys_keep_the_last_value() {
        let request = ContainerCreateRequest::parse(
            br#"{"image":"lower","Image":"exact","Tty":false,"Tty":true}"#,
        )
        .expect("parse");
        assert_eq!(request.config.image, "exact");
        assert!(request.config.tty);
    }

    #[test]
    fn create_request_errors_are_explained() {
        assert!(matches!(
            ContainerCreateRequest::parse(b"  "),
            Err(RequestBodyError::Empty)
        ));
        assert_eq!(
            ContainerCreateRequest::parse(b"")
                .expect_err("empty")
                .to_string(),
            "invalid JSON: got EOF while reading request body"
        );
        assert!(matches!(
            ContainerCreateRequest::parse(br#"{"Image":1}"#),
            Err(RequestBodyError::Json(_))
        ));
        assert!(ContainerCreateRequest::parse(b"[]").is_err());
    }

    #[test]
    fn wait_response_omits_a_missing_error() {
        let response = ContainerWaitResponse {
            status_code: 3,
            error: None,
        };
        assert_eq!(
            serde_json::to_string(&response).expect("encode"),
            r#"{"StatusCode":3}"#
        );
        let create = ContainerCreateResponse {
            id: "abc".into(),
            warnings: Vec::new(),
        };
        assert_eq!(
            serde_json::to_string(&create).expect("encode"),
            r#"{"Id":"abc","Warnings":[]}"#
        );
    }
}
