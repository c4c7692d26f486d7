//! The portable container configuration (`Config`, Go's `container.Config`) and its
//! healthcheck, as sent in create requests and returned by inspect.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::json::{is_empty_vec, is_false, is_zero, nullable, Empty, StrSlice};

/// Docker's `container.HealthConfig`; durations are integer nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` disable, `["CMD", ...]` or `["CMD-SHELL", cmd]`.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub test: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub interval: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub timeout: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub start_period: i64,
    /// API 1.44+.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub start_interval: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub retries: i64,
}

/// Docker's `container.Config`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    #[serde(default, deserialize_with = "nullable")]
    pub hostname: String,
    #[serde(default, deserialize_with = "nullable")]
    pub domainname: String,
    #[serde(default, deserialize_with = "nullable")]
    pub user: String,
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stdin: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stdout: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stderr: bool,
    /// `"80/tcp": {}` set.
    #[serde(default, skip_serializing_if = "crate::json::is_empty_map")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(default, deserialize_with = "nullable")]
    pub tty: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub open_stdin: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub stdin_once: bool,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<StrSlice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub args_escaped: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub image: String,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(default, deserialize_with = "nullable")]
    pub working_dir: String,
    #[serde(default)]
    pub entrypoint: Option<StrSlice>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub network_disabled: bool,
    /// Deprecated in API 1.44 (moved to the endpoint settings), still accepted.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub mac_address: String,
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<StrSlice>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_py_nulls_decode_as_zero_values() {
        let config: Config = serde_json::from_str(
            r#"{"Hostname":null,"User":null,"Tty":null,"Image":"busybox","Cmd":"true",
                "StopSignal":null,"WorkingDir":null,"Unknown":{"x":1}}"#,
        )
        .expect("decode");
        assert_eq!(config.hostname, "");
        assert!(!config.tty);
        assert_eq!(config.cmd, Some(StrSlice(vec!["true".into()])));
        let json = serde_json::to_value(&config).expect("encode");
        assert!(json.get("StopSignal").is_none(), "omitempty");
        assert_eq!(json["Env"], serde_json::Value::Null, "nil slice is null");
        assert_eq!(json["Entrypoint"], serde_json::Value::Null);
    }

    #[test]
    fn healthcheck_omits_zero_durations() {
        let health = HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), "true".into()]),
            interval: 1_000_000_000,
            ..HealthConfig::default()
        };
        assert_eq!(
            serde_json::to_string(&health).expect("encode"),
            r#"{"Test":["CMD-SHELL","true"],"Interval":1000000000}"#
        );
    }
}
