//! The trust policy on local images: the signatures a pull verified are kept beside the
//! image store (`<image-dir>/trust/sha256-<hex>.json`, one record per signed manifest), and
//! creating a container or resolving build's FROM re-checks them offline against the policy
//! of the moment. An image under a name the policy requires signed runs only if its
//! manifest digest in that repository was verified at pull and still verifies with today's
//! keys: an image retagged, committed, loaded, or pulled before the policy asked for
//! signatures is refused, as is everything under a rejected scope.
//!
//! podman and CRI-O apply containers-policy.json only when an image is copied in; berth also
//! applies it at create (as Docker's content trust resolves `docker run` names through its
//! trust data), because a local tag is not evidence of where the image came from.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use berth_oci::{Digest, Reference};
use serde::{Deserialize, Serialize};

use super::policy::{normalize_scope, Policy, Requirement};
use super::verify::signature_verifies;
use super::TrustError;
use crate::image::{ImageError, ImageService};

/// A signature a pull verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedSignature {
    /// `registry/path` the signature was checked for.
    pub repository: String,
    /// Base64 of the simple-signing payload.
    pub payload: String,
    /// Base64 of the ASN.1 DER signature, as in the registry.
    pub signature: String,
}

impl VerifiedSignature {
    pub fn new(repository: &str, body: &[u8], signature: &str) -> VerifiedSignature {
        VerifiedSignature {
            repository: repository.to_string(),
            payload: BASE64.encode(body),
            signature: signature.to_string(),
        }
    }

    fn verifies(&self, keys: &[super::PublicKey], digest: &Digest, repository: &str) -> bool {
        let Ok(body) = BASE64.decode(&self.payload) else {
            return false;
        };
        self.repository == repository
            && signature_verifies(keys, &body, &self.signature, digest, repository)
    }
}

/// The outcome of a pull's verification: the digest to fetch and its valid signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub digest: Digest,
    pub signatures: Vec<VerifiedSignature>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    signatures: Vec<VerifiedSignature>,
}

fn record_path(image_dir: &Path, digest: &Digest) -> PathBuf {
    image_dir.join("trust").join(format!(
        "{}-{}.json",
        digest.algorithm().name(),
        digest.hex()
    ))
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ImageError {
    let path = path.to_path_buf();
    move |source| ImageError::Io { op, path, source }
}

/// Adds the signatures of `verified` to its digest's record (written atomically).
pub(crate) fn remember(image_dir: &Path, verified: &Verified) -> Result<(), ImageError> {
    let path = record_path(image_dir, &verified.digest);
    let dir = image_dir.join("trust");
    std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
    let mut record = Record {
        signatures: recorded(image_dir, &verified.digest),
    };
    for signature in &verified.signatures {
        if !record.signatures.contains(signature) {
            record.signatures.push(signature.clone());
        }
    }
    let bytes = serde_json::to_vec(&record).unwrap_or_default();
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(io_error("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_error("rename", &path))
}

/// The signatures recorded for `digest` (none when there is no readable record).
fn recorded(image_dir: &Path, digest: &Digest) -> Vec<VerifiedSignature> {
    std::fs::read(record_path(image_dir, digest))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Record>(&bytes).ok())
        .map(|r| r.signatures)
        .unwrap_or_default()
}

/// `registry/path` of a reference, as policy scopes name it.
fn repository_of(reference: &Reference) -> String {
    normalize_scope(&format!("{}/{}", reference.domain(), reference.path()))
}

/// The repositories whose rules govern a create from `name`: the repository `name` names
/// when it is one of the image's references; for an image ID (or ID prefix), every
/// repository the image is known under (an unnamed image, a build step's, has none).
fn governing_repositories(name: &str, references: &[Reference]) -> Vec<String> {
    let mut repositories: Vec<String> = references.iter().map(repository_of).collect();
    repositories.sort();
    repositories.dedup();
    if let Ok(named) = Reference::parse_normalized(name) {
        let named = repository_of(&named);
        if repositories.contains(&named) {
            return vec![named];
        }
    }
    repositories
}

/// Applies `policy` to a create from `name` of an image with `references`; `recorded`
/// gives the signatures verified at pull for a manifest digest. A name must satisfy its
/// repository's requirements; an ID passes when the image could run under one of its names
/// (so a local tag under a signed name cannot block the image's other names), or has none.
fn check(
    policy: &Policy,
    name: &str,
    references: &[Reference],
    recorded: impl Fn(&Digest) -> Vec<VerifiedSignature>,
) -> Result<(), TrustError> {
    let mut refusal = None;
    for repository in governing_repositories(name, references) {
        match check_repository(policy, name, &repository, references, &recorded) {
            Ok(()) => return Ok(()),
            Err(e) => {
                refusal.get_or_insert(e);
            }
        }
    }
    refusal.map_or(Ok(()), Err)
}

/// Whether the image with `references` satisfies `repository`'s requirements.
fn check_repository(
    policy: &Policy,
    name: &str,
    repository: &str,
    references: &[Reference],
    recorded: &impl Fn(&Digest) -> Vec<VerifiedSignature>,
) -> Result<(), TrustError> {
    let requirements = policy.requirements_for(repository);
    if requirements.contains(&Requirement::Reject) {
        return Err(TrustError::Refused(format!(
            "the trust policy rejects images from {repository}"
        )));
    }
    let digests: Vec<&Digest> = references
        .iter()
        .filter(|r| repository_of(r) == repository)
        .filter_map(Reference::digest)
        .collect();
    for requirement in requirements {
        let Requirement::Signed(keys) = requirement else {
            continue;
        };
        let verified = digests.iter().any(|digest| {
            recorded(digest)
                .iter()
                .any(|s| s.verifies(keys, digest, repository))
        });
        if !verified {
            return Err(TrustError::Refused(format!(
                "image {name} has no signature by a trusted key verified at pull: the trust policy requires one for {repository} (pull the image from its registry)"
            )));
        }
    }
    Ok(())
}

impl ImageService {
    /// Refuses a create (or build's FROM) from `name_or_id` when the trust policy rejects
    /// the image or requires a signature that was not verified when it was pulled.
    pub async fn check_trusted(&self, name_or_id: &str) -> Result<(), ImageError> {
        let path = self.signature_policy.clone();
        let name = name_or_id.to_string();
        self.blocking(move |inner| {
            let policy = Policy::load(&path)?;
            if policy == Policy::accept_anything() {
                return Ok(());
            }
            let record = inner.images.resolve(&name)?;
            let references = inner.images.references(&record.id);
            check(&policy, &name, &references, |d| recorded(&inner.dir, d))?;
            Ok(())
        })
        .await
    }

    /// Keeps the signatures a pull verified (see [`remember`]).
    pub(crate) async fn remember_verified(&self, verified: Verified) -> Result<(), ImageError> {
        self.blocking(move |inner| remember(&inner.dir, &verified))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::trust::keys::PrivateKey;
    use crate::trust::payload::Payload;
    use crate::trust::PublicKey;

    const REPOSITORY: &str = "127.0.0.1:5000/signed/app";

    fn key() -> (PrivateKey, PublicKey) {
        let (private, public) = PrivateKey::generate().expect("keys");
        (
            PrivateKey::from_pem(&private).expect("private"),
            PublicKey::from_pem(&public).expect("public"),
        )
    }

    fn signed(key: &PrivateKey, repository: &str, digest: &Digest) -> VerifiedSignature {
        let body = Payload::new(repository, digest).to_bytes();
        VerifiedSignature::new(repository, &body, &key.sign(&body).expect("sign"))
    }

    fn reference(text: &str) -> Reference {
        Reference::parse_normalized(text).expect("reference")
    }

    fn policy(requirements: &[(&str, Requirement)]) -> Policy {
        Policy {
            default: vec![Requirement::AcceptAnything],
            scopes: requirements
                .iter()
                .map(|(scope, r)| (scope.to_string(), vec![r.clone()]))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn signed_scope_needs_a_signature_verified_at_pull_with_a_current_key() {
        let (signer, public) = key();
        let (_, other) = key();
        let digest = Digest::sha256_of(b"manifest");
        let references = [
            reference(&format!("{REPOSITORY}:v1")),
            reference(&format!("{REPOSITORY}@{digest}")),
        ];
        let trusted = policy(&[(REPOSITORY, Requirement::Signed(vec![public.clone()]))]);
        let good = vec![signed(&signer, REPOSITORY, &digest)];
        let name = format!("{REPOSITORY}:v1");
        assert!(check(&trusted, &name, &references, |_| good.clone()).is_ok());
        // By image ID, the repositories the image is known under govern.
        assert!(check(&trusted, "0123abcd", &references, |_| good.clone()).is_ok());
        let refused = |result: Result<(), TrustError>| {
            let text = result.expect_err("refused").to_string();
            assert!(text.contains("requires one for"), "{text}");
        };
        refused(check(&trusted, &name, &references, |_| Vec::new()));
        refused(check(&trusted, "0123abcd", &references, |_| Vec::new()));
        // A key removed from the policy no longer vouches for the image.
        let rotated = policy(&[(REPOSITORY, Requirement::Signed(vec![other]))]);
        refused(check(&rotated, &name, &references, |_| good.clone()));
        // A signature for another repository does not count.
        let elsewhere = vec![signed(&signer, "127.0.0.1:5000/other", &digest)];
        refused(check(&trusted, &name, &references, |_| elsewhere.clone()));
        // A retag without a RepoDigest in the repository has nothing to check.
        refused(check(&trusted, &name, &references[..1], |_| good.clone()));
        // By ID, an image that may run under another of its names may run.
        let also_open = [references.to_vec(), vec![reference("busybox:latest")]].concat();
        assert!(check(&trusted, "0123abcd", &also_open, |_| Vec::new()).is_ok());
        refused(check(&trusted, &name, &also_open, |_| Vec::new()));
    }

    #[test]
    fn rejected_scope_refuses_and_unnamed_images_are_not_governed() {
        let references = [reference("127.0.0.1:5000/blocked/app:v1")];
        let rejecting = policy(&[("127.0.0.1:5000/blocked", Requirement::Reject)]);
        let text = check(
            &rejecting,
            "127.0.0.1:5000/blocked/app:v1",
            &references,
            |_| Vec::new(),
        )
        .expect_err("rejected")
        .to_string();
        assert!(text.contains("rejects images from 127.0.0.1:5000/blocked/app"));
        let strict = Policy {
            default: vec![Requirement::Reject],
            scopes: BTreeMap::new(),
        };
        assert!(check(&strict, "0123abcd", &[], |_| Vec::new()).is_ok());
        assert!(check(&strict, "busybox", &[reference("busybox")], |_| Vec::new()).is_err());
    }

    #[test]
    fn remembered_signatures_are_read_back_and_merged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (signer, _) = key();
        let digest = Digest::sha256_of(b"manifest");
        let first = signed(&signer, REPOSITORY, &digest);
        let second = signed(&signer, "127.0.0.1:5000/mirror/app", &digest);
        for signatures in [vec![first.clone()], vec![first.clone(), second.clone()]] {
            let verified = Verified {
                digest: digest.clone(),
                signatures,
            };
            remember(dir.path(), &verified).expect("remember");
        }
        assert_eq!(recorded(dir.path(), &digest), vec![first, second]);
        assert!(recorded(dir.path(), &Digest::sha256_of(b"other")).is_empty());
    }
}
