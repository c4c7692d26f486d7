//! Secrets without swarm: the verbs behind `/secrets` (create, ls, inspect, update of
//! labels, rm) with swarm's texts and JSON, records sealed at rest under the daemon key
//! ([`crypto`]), and their files on a per-container tmpfs at /run/secrets ([`mount`]),
//! referenced through berth's `HostConfig.BerthSecrets` extension.
//!
//! Rules kept here: plaintext never touches the data root (only memory and the tmpfs of a
//! running container); no response carries `Data`; a secret a container references is
//! never removed (the container keeps its reference by ID, as a swarm task does).

pub mod crypto;
pub mod mount;
mod reference;
mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use berth_api::secret::{ObjectVersion, Secret, SecretSpec};
use berth_api::Filters;
use rand::Rng;
use zeroize::Zeroizing;

use crate::error::ErrorKind;

pub use reference::resolve_references;
pub use store::SecretRecord;

/// swarmkit's `MaxSecretSize` (500 KiB).
pub const MAX_SECRET_SIZE: usize = 500 * 1024;

/// Failures of secret operations, with swarm's texts where it has one.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {0} not found")]
    NotFound(String),
    #[error("secret {name} already exists")]
    AlreadyExists { name: String },
    #[error("secret {key} is ambiguous ({count} matches found)")]
    Ambiguous { key: String, count: usize },
    #[error("secret '{name}' is in use by the following containers: {containers}")]
    InUse { name: String, containers: String },
    #[error("update out of sequence")]
    OutOfSequence,
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    Crypto(String),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("background task failed: {0}")]
    Join(String),
}

impl SecretError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SecretError::NotFound(_) => ErrorKind::NotFound,
            SecretError::AlreadyExists { .. }
            | SecretError::InUse { .. }
            | SecretError::OutOfSequence => ErrorKind::Conflict,
            SecretError::Ambiguous { .. } | SecretError::InvalidArgument(_) => {
                ErrorKind::InvalidArgument
            }
            SecretError::NotImplemented(_) => ErrorKind::NotImplemented,
            SecretError::Crypto(_) | SecretError::Io { .. } | SecretError::Join(_) => {
                ErrorKind::Internal
            }
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> SecretError {
        SecretError::Io {
            context: context.into(),
            source,
        }
    }

    /// As a container error (create and start of a container that references secrets).
    pub fn into_container(self) -> crate::container::ContainerError {
        use crate::container::ContainerError;
        match self {
            SecretError::Io { context, source } => ContainerError::Io { context, source },
            SecretError::NotImplemented(text) => ContainerError::NotImplemented(text),
            other => ContainerError::InvalidArgument(other.to_string()),
        }
    }
}

/// The secrets directory under a data root.
pub fn secrets_dir(data_root: &Path) -> PathBuf {
    data_root.join("secrets")
}

/// The secret service: one per engine.
pub struct SecretService {
    dir: PathBuf,
    records: Mutex<BTreeMap<String, SecretRecord>>,
}

impl SecretService {
    /// Loads the records under `<data_root>/secrets`.
    pub fn open(data_root: &Path) -> Result<SecretService, SecretError> {
        let dir = secrets_dir(data_root);
        let records = store::load_all(&dir)?
            .into_iter()
            .map(|record| (record.id.clone(), record))
            .collect();
        Ok(SecretService {
            dir,
            records: Mutex::new(records),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SecretRecord>> {
        match self.records.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// `POST /secrets/create`: returns the new ID.
    pub fn create(&self, spec: SecretSpec) -> Result<String, SecretError> {
        validate_name(&spec.name)?;
        refuse_plugins(&spec)?;
        let data = decode_data(spec.data.as_deref().unwrap_or(""))?;
        let key = crypto::DaemonKey::load_or_create(&self.dir)?;
        let mut records = self.lock();
        if records.values().any(|r| r.name == spec.name) {
            return Err(SecretError::AlreadyExists { name: spec.name });
        }
        let id = new_id();
        let now = crate::container::now_text();
        let mut record = SecretRecord {
            id: id.clone(),
            version: 1,
            created_at: now.clone(),
            updated_at: now,
            name: spec.name,
            labels: spec.labels.unwrap_or_default(),
            nonce: String::new(),
            sealed: String::new(),
        };
        record.set_sealed(&key.seal(&id, &data)?);
        store::save(&self.dir, &record)?;
        records.insert(id.clone(), record);
        Ok(id)
    }

    /// `GET /secrets` with filters `id` and `name` (prefixes), `names` (exact) and `label`.
    pub fn list(&self, filters: &Filters) -> Result<Vec<Secret>, SecretError> {
        filters
            .validate(&["id", "label", "name", "names"])
            .map_err(|e| SecretError::InvalidArgument(e.to_string()))?;
        let prefixed = |name: &str, value: &str| {
            let wanted = filters.values(name);
            wanted.is_empty() || wanted.iter().any(|w| value.starts_with(w))
        };
        let mut secrets: Vec<Secret> = self
            .lock()
            .values()
            .filter(|r| prefixed("id", &r.id) && prefixed("name", &r.name))
            .filter(|r| {
                let names = filters.values("names");
                names.is_empty() || names.contains(&r.name.as_str())
            })
            .filter(|r| filters.match_key_values("label", &r.labels))
            .map(to_wire)
            .collect();
        secrets.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        Ok(secrets)
    }

    /// `GET /secrets/{id}`: by ID, name or unique ID prefix.
    pub fn inspect(&self, key: &str) -> Result<Secret, SecretError> {
        let records = self.lock();
        find(&records, key).map(to_wire)
    }

    /// `POST /secrets/{id}/update`: swarm lets only the labels change.
    pub fn update(&self, key: &str, version: u64, spec: SecretSpec) -> Result<(), SecretError> {
        let mut records = self.lock();
        let mut record = find(&records, key)?.clone();
        if record.version != version {
            return Err(SecretError::OutOfSequence);
        }
        if spec.name != record.name || spec.data.as_deref().is_some_and(|d| !d.is_empty()) {
            return Err(SecretError::InvalidArgument(
                "only updates to Labels are allowed".to_string(),
            ));
        }
        refuse_plugins(&spec)?;
        record.labels = spec.labels.unwrap_or_default();
        record.version += 1;
        record.updated_at = crate::container::now_text();
        store::save(&self.dir, &record)?;
        records.insert(record.id.clone(), record);
        Ok(())
    }

    /// `DELETE /secrets/{id}`; `users` names the containers that reference a secret ID.
    pub fn remove(
        &self,
        key: &str,
        users: impl Fn(&str) -> Vec<String>,
    ) -> Result<(), SecretError> {
        let mut records = self.lock();
        let record = find(&records, key)?.clone();
        let containers = users(&record.id);
        if !containers.is_empty() {
            return Err(SecretError::InUse {
                name: record.name,
                containers: containers.join(", "),
            });
        }
        store::delete(&self.dir, &record.id)?;
        records.remove(&record.id);
        Ok(())
    }
}

/// Looks a secret up by ID, then name, then unique ID prefix (as dockerd's `getSecret`).
pub(crate) fn find<'a>(
    records: &'a BTreeMap<String, SecretRecord>,
    key: &str,
) -> Result<&'a SecretRecord, SecretError> {
    if let Some(record) = records.get(key) {
        return Ok(record);
    }
    if let Some(record) = records.values().find(|r| r.name == key) {
        return Ok(record);
    }
    let matches: Vec<&SecretRecord> = records
        .values()
        .filter(|r| !key.is_empty() && r.id.starts_with(key))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(SecretError::NotFound(key.to_string())),
        many => Err(SecretError::Ambiguous {
            key: key.to_string(),
            count: many.len(),
        }),
    }
}

fn to_wire(record: &SecretRecord) -> Secret {
    Secret {
        id: record.id.clone(),
        version: ObjectVersion {
            index: record.version,
        },
        created_at: record.created_at.clone(),
        updated_at: record.updated_at.clone(),
        spec: SecretSpec {
            name: record.name.clone(),
            labels: Some(record.labels.clone()),
            ..SecretSpec::default()
        },
    }
}

/// swarmkit's rule for object names: up to 64 of `[a-zA-Z0-9-_.]`, alphanumeric at both ends.
fn validate_name(name: &str) -> Result<(), SecretError> {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && alnum(name.chars().next())
        && alnum(name.chars().last());
    if valid {
        Ok(())
    } else {
        Err(SecretError::InvalidArgument(format!(
            "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]: {name:?}"
        )))
    }
}

/// Secret drivers and templating are swarm plugins berth does not have.
fn refuse_plugins(spec: &SecretSpec) -> Result<(), SecretError> {
    if spec.driver.as_ref().is_some_and(|d| !d.name.is_empty()) {
        return Err(SecretError::NotImplemented(
            "secret drivers are not supported by berth (omit --driver)".to_string(),
        ));
    }
    if spec.templating.as_ref().is_some_and(|d| !d.name.is_empty()) {
        return Err(SecretError::NotImplemented(
            "secret templating is not supported by berth (omit --template-driver)".to_string(),
        ));
    }
    Ok(())
}

fn decode_data(text: &str) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    let data = Zeroizing::new(BASE64.decode(text).map_err(|_| {
        SecretError::InvalidArgument("secret data is not valid base64".to_string())
    })?);
    if data.is_empty() || data.len() >= MAX_SECRET_SIZE {
        return Err(SecretError::InvalidArgument(format!(
            "secret data must be larger than 0 and less than {MAX_SECRET_SIZE} bytes"
        )));
    }
    Ok(data)
}

/// swarm's IDs: 25 characters of base 36.
fn new_id() -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    (0..25)
        .map(|_| DIGITS[rng.gen_range(0..DIGITS.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests;
