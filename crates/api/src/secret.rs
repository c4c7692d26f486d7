//! Secrets on the wire: swarm's `Secret`, `SecretSpec` and create response (Docker serves
//! them only in swarm mode; berthd serves them on a single node), and the reference a
//! container makes to one through berth's `HostConfig.BerthSecrets` extension (swarm's
//! `SecretReference`, which Docker only has in a service's `ContainerSpec`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::json::nullable;

/// Swarm's `Version` of an object: bumped at every update.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ObjectVersion {
    #[serde(default, deserialize_with = "nullable")]
    pub index: u64,
}

/// Swarm's `Driver` (secret drivers are plugins; berth has none and refuses one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretDriver {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
}

/// `SecretSpec`: the create and update body. `Data` is base64 on the wire (Go's `[]byte`)
/// and never appears in a response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretSpec {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<SecretDriver>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templating: Option<SecretDriver>,
}

/// A secret as `GET /secrets` and `GET /secrets/{id}` answer it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Secret {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: ObjectVersion,
    pub created_at: String,
    pub updated_at: String,
    pub spec: SecretSpec,
}

/// `POST /secrets/create` response (201).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretCreateResponse {
    #[serde(rename = "ID")]
    pub id: String,
}

/// `SecretReferenceFileTarget`: the file the secret becomes in the container. UID and GID
/// are strings, as swarm has them; Mode is a number (Go's `os.FileMode`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretFileTarget {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable", rename = "UID")]
    pub uid: String,
    #[serde(default, deserialize_with = "nullable", rename = "GID")]
    pub gid: String,
    #[serde(default, deserialize_with = "nullable")]
    pub mode: u32,
}

/// `SecretReference`: one entry of `HostConfig.BerthSecrets`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretReference {
    #[serde(default)]
    pub file: Option<SecretFileTarget>,
    #[serde(default, deserialize_with = "nullable", rename = "SecretID")]
    pub secret_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub secret_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_inspect_matches_docker_shape_without_data() {
        let secret = Secret {
            id: "ktnbjxoalbkvbvedmg1urrz8h".to_string(),
            version: ObjectVersion { index: 11 },
            created_at: "2016-11-05T01:20:17.327670065Z".to_string(),
            updated_at: "2016-11-05T01:20:17.327670065Z".to_string(),
            spec: SecretSpec {
                name: "app-dev.crt".to_string(),
                labels: Some(BTreeMap::from([("foo".to_string(), "bar".to_string())])),
                ..SecretSpec::default()
            },
        };
        let text = serde_json::to_string(&secret).expect("encode");
        assert_eq!(
            text,
            r#"{"ID":"ktnbjxoalbkvbvedmg1urrz8h","Version":{"Index":11},"CreatedAt":"2016-11-05T01:20:17.327670065Z","UpdatedAt":"2016-11-05T01:20:17.327670065Z","Spec":{"Name":"app-dev.crt","Labels":{"foo":"bar"}}}"#
        );
    }

    #[test]
    fn create_body_from_docker_cli_decodes() {
        let body =
            r#"{"Name":"db","Labels":null,"Data":"c2VjcmV0","Driver":null,"Templating":null}"#;
        let spec: SecretSpec = serde_json::from_str(body).expect("decode");
        assert_eq!(spec.name, "db");
        assert_eq!(spec.data.as_deref(), Some("c2VjcmV0"));
        assert!(spec.driver.is_none());
    }

    #[test]
    fn reference_uses_swarm_field_names() {
        let body = r#"{"File":{"Name":"db","UID":"1000","GID":"0","Mode":256},"SecretID":"","SecretName":"db"}"#;
        let reference: SecretReference = serde_json::from_str(body).expect("decode");
        let file = reference.file.expect("file");
        assert_eq!((file.uid.as_str(), file.mode), ("1000", 0o400));
        assert_eq!(reference.secret_name, "db");
    }
}
