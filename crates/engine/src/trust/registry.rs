//! Signing and verifying an image in its registry as cosign does: the signed object is the
//! manifest digest the reference resolves to; signatures live in the manifest tagged
//! `sha256-<hex>.sig` of the same repository (a new signature is appended to the ones there).

use berth_content::{Expected, Store};
use berth_oci::Digest;
use berth_registry::client::{ClientError, ClientOptions, Credentials, RegistryClient};

use super::keys::{PrivateKey, PublicKey};
use super::local::{Verified, VerifiedSignature};
use super::payload::{self, Payload, SignatureLayer};
use super::policy::{normalize_scope, Policy, Requirement};
use super::verify::signature_verifies;
use super::TrustError;

/// A repository in a registry and the tag or digest named in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host[:port]` as the registry client connects to it.
    pub host: String,
    /// The path inside the registry (`library/busybox`).
    pub path: String,
    pub tag_or_digest: String,
}

impl Target {
    /// `host/path`, the payload's `docker-reference` and the policy's scope.
    pub fn repository(&self) -> String {
        normalize_scope(&format!("{}/{}", self.host, self.path))
    }
}

fn registry_error(context: String) -> impl FnOnce(ClientError) -> TrustError {
    move |source| TrustError::Registry {
        context,
        source: Box::new(source),
    }
}

async fn connect(
    target: &Target,
    credentials: Credentials,
    options: &ClientOptions,
) -> Result<RegistryClient, TrustError> {
    RegistryClient::connect(&target.host, credentials, options.clone())
        .await
        .map_err(registry_error(format!("connecting to {}", target.host)))
}

/// The manifest digest `target` names now.
async fn resolve(
    client: &RegistryClient,
    target: &Target,
    store: &Store,
) -> Result<Digest, TrustError> {
    let (_, _, digest) = client
        .fetch_manifest(&target.path, &target.tag_or_digest, store)
        .await
        .map_err(registry_error(format!(
            "resolving {}:{}",
            target.repository(),
            target.tag_or_digest
        )))?;
    Ok(digest)
}

/// The signature layers stored for `digest` (none when there is no signature manifest).
async fn signatures(
    client: &RegistryClient,
    target: &Target,
    digest: &Digest,
    store: &Store,
) -> Result<Vec<SignatureLayer>, TrustError> {
    let tag = payload::signature_tag(digest);
    match client.fetch_manifest(&target.path, &tag, store).await {
        Ok((bytes, _, _)) => payload::signature_layers(&bytes),
        Err(ClientError::Registry { status: 404, .. }) => Ok(Vec::new()),
        Err(e) => Err(registry_error(format!(
            "fetching {}:{tag}",
            target.repository()
        ))(e)),
    }
}

fn put_blob(store: &Store, bytes: &[u8]) -> Result<Digest, TrustError> {
    let digest = Digest::sha256_of(bytes);
    let expected = Expected::exact(digest.clone(), bytes.len() as u64);
    let mut writer = match store.writer(&format!("berth-signature/{digest}"), expected.clone()) {
        Ok(writer) => writer,
        Err(berth_content::ContentError::AlreadyExists { .. }) => return Ok(digest),
        Err(e) => return Err(e.into()),
    };
    writer.truncate(0)?;
    writer.append(bytes)?;
    writer.commit(expected)?;
    Ok(digest)
}

/// Signs what `target` resolves to with `key` and pushes the signature; returns the
/// signed manifest digest.
pub async fn sign(
    target: &Target,
    key: &PrivateKey,
    credentials: Credentials,
    options: &ClientOptions,
    store: &Store,
) -> Result<Digest, TrustError> {
    let client = connect(target, credentials, options).await?;
    let digest = resolve(&client, target, store).await?;
    let body = Payload::new(&target.repository(), &digest).to_bytes();
    let mut layers = signatures(&client, target, &digest, store).await?;
    layers.push(SignatureLayer {
        payload_digest: put_blob(store, &body)?,
        payload_size: body.len() as u64,
        signature: key.sign(&body)?,
    });
    let config = payload::signature_config(&layers);
    let config_digest = put_blob(store, &config)?;
    for blob in layers
        .iter()
        .map(|l| &l.payload_digest)
        .chain(std::iter::once(&config_digest))
    {
        if !store.contains(blob) {
            client
                .fetch_blob(&target.path, blob, None, store, None)
                .await
                .map_err(registry_error(format!("fetching signature payload {blob}")))?;
        }
        client
            .push_blob(&target.path, blob, store, None, None)
            .await
            .map_err(registry_error(format!("pushing {blob}")))?;
    }
    let manifest = payload::signature_manifest(&layers, &config);
    let tag = payload::signature_tag(&digest);
    client
        .put_manifest(&target.path, &tag, payload::OCI_MANIFEST, manifest)
        .await
        .map_err(registry_error(format!(
            "pushing {}:{tag}",
            target.repository()
        )))?;
    Ok(digest)
}

/// Checks the stored signatures of `digest` against `keys`: the valid ones (at least one),
/// or why none verified.
async fn verify_digest(
    client: &RegistryClient,
    target: &Target,
    digest: &Digest,
    keys: &[PublicKey],
    store: &Store,
) -> Result<Vec<VerifiedSignature>, TrustError> {
    let layers = signatures(client, target, digest, store).await?;
    if layers.is_empty() {
        return Err(TrustError::Refused(format!(
            "no signature found for {}@{digest}",
            target.repository()
        )));
    }
    let repository = target.repository();
    let mut valid = Vec::new();
    for layer in &layers {
        client
            .fetch_blob(&target.path, &layer.payload_digest, None, store, None)
            .await
            .map_err(registry_error(format!(
                "fetching signature payload {}",
                layer.payload_digest
            )))?;
        let body = store.read_to_vec(&layer.payload_digest)?;
        if signature_verifies(keys, &body, &layer.signature, digest, &repository) {
            valid.push(VerifiedSignature::new(&repository, &body, &layer.signature));
        }
    }
    if valid.is_empty() {
        return Err(TrustError::Refused(format!(
            "none of the {} signatures of {repository}@{digest} verifies with the trusted keys",
            layers.len(),
        )));
    }
    Ok(valid)
}

/// `berth image verify`: the digest `target` resolves to and its valid signature count.
pub async fn verify(
    target: &Target,
    keys: &[PublicKey],
    credentials: Credentials,
    options: &ClientOptions,
    store: &Store,
) -> Result<(Digest, usize), TrustError> {
    let client = connect(target, credentials, options).await?;
    let digest = resolve(&client, target, store).await?;
    let valid = verify_digest(&client, target, &digest, keys, store).await?;
    Ok((digest, valid.len()))
}

/// Applies `policy` before a pull of `target`: None when the image may be pulled as named;
/// Some when signatures were required and verified: the pull must then fetch exactly that
/// digest (so the registry cannot swap the tag between check and pull), and the signatures
/// are kept for the checks at create ([`super::local`]).
pub async fn enforce(
    policy: &Policy,
    target: &Target,
    credentials: Credentials,
    options: &ClientOptions,
    store: &Store,
) -> Result<Option<Verified>, TrustError> {
    let requirements = policy.requirements_for(&target.repository());
    if requirements.contains(&Requirement::Reject) {
        return Err(TrustError::Refused(format!(
            "the trust policy rejects images from {}",
            target.repository()
        )));
    }
    let key_sets: Vec<&[PublicKey]> = requirements
        .iter()
        .filter_map(|r| match r {
            Requirement::Signed(keys) => Some(keys.as_slice()),
            _ => None,
        })
        .collect();
    if key_sets.is_empty() {
        return Ok(None);
    }
    let client = connect(target, credentials, options).await?;
    let digest = resolve(&client, target, store).await?;
    let mut signatures = Vec::new();
    for keys in key_sets {
        let valid = verify_digest(&client, target, &digest, keys, store)
            .await
            .map_err(|e| match e {
                TrustError::Refused(text) => TrustError::Refused(format!(
                    "{text}: the trust policy requires a signature by a trusted key"
                )),
                other => other,
            })?;
        for signature in valid {
            if !signatures.contains(&signature) {
                signatures.push(signature);
            }
        }
    }
    Ok(Some(Verified { digest, signatures }))
}
