//! Secret records on disk: `<data-root>/secrets/<id>.json` (0600, in a 0700 directory,
//! written atomically), holding the spec's name and labels and the sealed data; the
//! plaintext is never written anywhere under the data root.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::crypto::Sealed;
use super::SecretError;

/// One stored secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRecord {
    pub id: String,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Base64 of the AES-GCM nonce.
    pub nonce: String,
    /// Base64 of the ciphertext and its tag.
    pub sealed: String,
}

impl SecretRecord {
    pub fn sealed(&self) -> Result<Sealed, SecretError> {
        let broken = || SecretError::Crypto(format!("secret {} has a damaged record", self.id));
        let nonce = BASE64.decode(&self.nonce).map_err(|_| broken())?;
        let nonce = nonce.try_into().map_err(|_| broken())?;
        let ciphertext = BASE64.decode(&self.sealed).map_err(|_| broken())?;
        Ok(Sealed { nonce, ciphertext })
    }

    pub fn set_sealed(&mut self, sealed: &Sealed) {
        self.nonce = BASE64.encode(sealed.nonce);
        self.sealed = BASE64.encode(&sealed.ciphertext);
    }
}

/// Creates `dir` as 0700 (and tightens it if it exists with looser bits).
pub fn create_private_dir(dir: &Path) -> Result<(), SecretError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| SecretError::io(format!("creating {}", dir.display()), e))
}

fn record_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

/// Every record under `dir`; leftovers of an interrupted write are removed.
pub fn load_all(dir: &Path) -> Result<Vec<SecretRecord>, SecretError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SecretError::io(format!("reading {}", dir.display()), e)),
    };
    let mut records = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json.tmp") {
            let _ = std::fs::remove_file(&path);
        } else if let Some(id) = name.strip_suffix(".json") {
            records.push(read(dir, id)?);
        }
    }
    Ok(records)
}

/// The record of secret `id`.
pub fn read(dir: &Path, id: &str) -> Result<SecretRecord, SecretError> {
    let path = record_path(dir, id);
    let bytes = std::fs::read(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            SecretError::NotFound(id.to_string())
        } else {
            SecretError::io(format!("reading {}", path.display()), e)
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        SecretError::io(
            format!("decoding {}", path.display()),
            std::io::Error::other(e),
        )
    })
}

/// Writes the record atomically (temp file, fsync, rename).
pub fn save(dir: &Path, record: &SecretRecord) -> Result<(), SecretError> {
    create_private_dir(dir)?;
    let path = record_path(dir, &record.id);
    let temp = dir.join(format!("{}.json.tmp", record.id));
    let bytes = serde_json::to_vec(record)
        .map_err(|e| SecretError::io("encoding a secret record", std::io::Error::other(e)))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(&bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temp, &path))
        .map_err(|e| SecretError::io(format!("writing {}", path.display()), e))
}

/// Deletes the record of `id`.
pub fn delete(dir: &Path, id: &str) -> Result<(), SecretError> {
    let path = record_path(dir, id);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SecretError::io(format!("removing {}", path.display()), e)),
    }
}
