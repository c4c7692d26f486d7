//! Signed images, cosign-compatible: ECDSA P-256 keys ([`keys`]), cosign's simple-signing
//! payload and signature manifests stored next to the image in its registry ([`payload`]),
//! signing and verifying against a registry ([`registry`], one signature: [`verify`]), and
//! the trust policy ([`policy`]) that berthd enforces before it pulls (and so before `run`
//! pulls) and again, offline, when a container is created or build resolves FROM
//! ([`local`]).
//!
//! Not here: keyless (Fulcio/Rekor) signatures and cosign's encrypted key format.

pub mod keys;
pub mod local;
pub mod payload;
pub mod policy;
mod pull;
pub mod registry;
pub mod verify;

use std::path::PathBuf;

use crate::error::ErrorKind;

pub use keys::{PrivateKey, PublicKey};
pub use policy::{Policy, Requirement, DEFAULT_POLICY_PATH};

/// Failures of signing, verification and policy.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{0}")]
    Key(String),
    #[error("invalid trust policy {path}: {message}")]
    Policy { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
    /// The policy refused the image; the text says which rule.
    #[error("{0}")]
    Refused(String),
    #[error("{context}")]
    Registry {
        context: String,
        #[source]
        source: Box<berth_registry::client::ClientError>,
    },
    #[error("content store failure")]
    Store(#[from] berth_content::ContentError),
    #[error("background task failed: {0}")]
    Join(String),
}

impl TrustError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            TrustError::Key(_) | TrustError::Invalid(_) => ErrorKind::InvalidArgument,
            TrustError::Policy { .. } => ErrorKind::Internal,
            TrustError::Refused(_) => ErrorKind::Forbidden,
            TrustError::Registry { source, .. } => match source.as_ref() {
                berth_registry::client::ClientError::Unauthorized { .. }
                | berth_registry::client::ClientError::Auth { .. } => ErrorKind::Unauthorized,
                berth_registry::client::ClientError::Registry { status: 404, .. } => {
                    ErrorKind::NotFound
                }
                _ => ErrorKind::Internal,
            },
            TrustError::Store(_) | TrustError::Join(_) => ErrorKind::Internal,
        }
    }
}

impl From<TrustError> for crate::image::ImageError {
    fn from(error: TrustError) -> Self {
        crate::image::ImageError::Trust(Box::new(error))
    }
}
