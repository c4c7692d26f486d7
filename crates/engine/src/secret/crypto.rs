//! Encryption at rest of secret data: AES-256-GCM (ring) under one daemon key kept in
//! `<data-root>/secrets/key` (32 random bytes, mode 0600 in a 0700 directory, created on
//! first use). Each secret gets a fresh random 96-bit nonce and its ID as associated data,
//! so a ciphertext cannot be moved onto another secret's record.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::SecretError;

/// The daemon key's file name inside the secrets directory.
pub const KEY_FILE: &str = "key";

const KEY_LEN: usize = 32;

/// A secret's data as stored: nonce and ciphertext with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

/// The daemon key, loaded once per use and wiped from memory when dropped.
pub struct DaemonKey {
    key: LessSafeKey,
}

impl DaemonKey {
    /// Reads `<dir>/key`, creating it (and `dir`, 0700) with fresh random bytes if absent.
    pub fn load_or_create(dir: &Path) -> Result<DaemonKey, SecretError> {
        let path = dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => DaemonKey::from_bytes(&Zeroizing::new(bytes), &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DaemonKey::create(dir, &path),
            Err(e) => Err(SecretError::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Reads an existing key; a missing key means no secret could have been stored.
    pub fn load(dir: &Path) -> Result<DaemonKey, SecretError> {
        let path = dir.join(KEY_FILE);
        let bytes = std::fs::read(&path)
            .map_err(|e| SecretError::io(format!("reading {}", path.display()), e))?;
        DaemonKey::from_bytes(&Zeroizing::new(bytes), &path)
    }

    fn create(dir: &Path, path: &PathBuf) -> Result<DaemonKey, SecretError> {
        super::store::create_private_dir(dir)?;
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| SecretError::Crypto("no randomness for the daemon key".to_string()))?;
        // create_new: two berthds on one data root never overwrite each other's key.
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut file| {
                file.write_all(bytes.as_ref())?;
                file.sync_all()
            });
        match written {
            Ok(()) => DaemonKey::from_bytes(bytes.as_ref(), path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => DaemonKey::load(dir),
            Err(e) => Err(SecretError::io(format!("writing {}", path.display()), e)),
        }
    }

    fn from_bytes(bytes: &[u8], path: &Path) -> Result<DaemonKey, SecretError> {
        if bytes.len() != KEY_LEN {
            return Err(SecretError::Crypto(format!(
                "{} holds {} bytes, not a {KEY_LEN}-byte key (restore it from a backup; without it stored secrets cannot be read)",
                path.display(),
                bytes.len()
            )));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| SecretError::Crypto("invalid daemon key".to_string()))?;
        Ok(DaemonKey {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Encrypts `plaintext` for the secret `id`.
    pub fn seal(&self, id: &str, plaintext: &[u8]) -> Result<Sealed, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretError::Crypto("no randomness for a nonce".to_string()))?;
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| SecretError::Crypto("encrypting secret data".to_string()))?;
        Ok(Sealed {
            nonce,
            ciphertext: buffer,
        })
    }

    /// Decrypts the data of secret `id`; fails if it was altered or moved from another ID.
    pub fn open(&self, id: &str, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        let mut buffer = Zeroizing::new(sealed.ciphertext.clone());
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(sealed.nonce),
                Aad::from(id.as_bytes()),
                buffer.as_mut_slice(),
            )
            .map_err(|_| {
                SecretError::Crypto(format!(
                    "secret {id} does not decrypt with this daemon's key (altered record or replaced key)"
                ))
            })?
            .len();
        buffer.truncate(plain);
        Ok(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_under_its_own_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = DaemonKey::load_or_create(dir.path()).expect("key");
        let sealed = key.seal("abc", b"hunter2").expect("seal");
        assert!(!sealed.ciphertext.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            key.open("abc", &sealed).expect("open").as_slice(),
            b"hunter2"
        );
        assert!(key.open("abd", &sealed).is_err());
    }

    #[test]
    fn tampered_ciphertext_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = DaemonKey::load_or_create(dir.path()).expect("key");
        let mut sealed = key.seal("id", b"data").expect("seal");
        sealed.ciphertext[0] ^= 1;
        assert!(matches!(
            key.open("id", &sealed),
            Err(SecretError::Crypto(_))
        ));
    }

    #[test]
    fn key_file_is_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let secrets = dir.path().join("secrets");
        let sealed = DaemonKey::load_or_create(&secrets)
            .expect("key")
            .seal("id", b"x")
            .expect("seal");
        let mode = std::fs::metadata(secrets.join(KEY_FILE))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&secrets)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let again = DaemonKey::load(&secrets).expect("reload");
        assert_eq!(again.open("id", &sealed).expect("open").as_slice(), b"x");
    }

    #[test]
    fn short_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(KEY_FILE), b"short").expect("write");
        let error = DaemonKey::load_or_create(dir.path()).err().expect("error");
        assert!(error.to_string().contains("not a 32-byte key"), "{error}");
    }
}
