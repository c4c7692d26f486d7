//! `berth image sign`, `verify` and `keygen`: cosign-compatible signatures made and checked
//! by the CLI against the image's registry (the private key never reaches berthd), through
//! berth-engine's `trust` module.

use std::path::PathBuf;

use berth_engine::trust::registry::{self, Target};
use berth_engine::trust::{PrivateKey, PublicKey};
use berth_registry::client::{credentials, ClientOptions, Credentials};
use clap::Args;

use crate::app::App;

#[derive(Args, Debug)]
pub struct SignArgs {
    /// Private key (PKCS#8 PEM, ECDSA P-256)
    #[arg(long)]
    pub key: PathBuf,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Public key (PEM); repeat to accept a signature by any of them
    #[arg(long, required = true)]
    pub key: Vec<PathBuf>,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Write PREFIX.key and PREFIX.pub (as cosign's generate-key-pair)
    #[arg(long = "output-key-prefix", default_value = "cosign")]
    pub prefix: String,
}

fn target(app: &App, image: &str) -> anyhow::Result<(Target, Credentials)> {
    let reference = berth_oci::Reference::parse_normalized(image)
        .map_err(|e| anyhow::anyhow!("invalid reference format: {image}: {e}"))?;
    let tag_or_digest = match (reference.digest(), reference.tag()) {
        (Some(digest), _) => digest.to_string(),
        (None, Some(tag)) => tag.to_string(),
        (None, None) => "latest".to_string(),
    };
    let host = reference.domain().to_string();
    let credentials = credentials::from_docker_config(&app.config_dir.join("config.json"), &host)
        .unwrap_or(Credentials::Anonymous);
    let target = Target {
        host,
        path: reference.path().to_string(),
        tag_or_digest,
    };
    Ok((target, credentials))
}

fn scratch_store() -> anyhow::Result<(tempfile::TempDir, berth_content::Store)> {
    let dir = tempfile::tempdir()?;
    let store = berth_content::Store::open(dir.path())?;
    Ok((dir, store))
}

pub async fn sign(app: &App, args: SignArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.key)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", args.key.display()))?;
    let key = PrivateKey::from_pem(&text)?;
    let (target, credentials) = target(app, &args.image)?;
    let (_dir, store) = scratch_store()?;
    let digest = registry::sign(
        &target,
        &key,
        credentials,
        &ClientOptions::default(),
        &store,
    )
    .await?;
    app.print(&format!(
        "Pushing signature to: {}:{}\n",
        target.repository(),
        berth_engine::trust::payload::signature_tag(&digest)
    ))
}

pub async fn verify(app: &App, args: VerifyArgs) -> anyhow::Result<()> {
    let mut keys = Vec::new();
    for path in &args.key {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        keys.push(PublicKey::from_pem(&text)?);
    }
    let (target, credentials) = target(app, &args.image)?;
    let (_dir, store) = scratch_store()?;
    let (digest, valid) = registry::verify(
        &target,
        &keys,
        credentials,
        &ClientOptions::default(),
        &store,
    )
    .await?;
    app.print(&format!(
        "Verification for {}@{digest} --\n{valid} valid signature(s): the signature claims were validated and verified against the given key(s)\n",
        target.repository()
    ))
}

pub async fn keygen(app: &App, args: KeygenArgs) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (private, public) = PrivateKey::generate()?;
    let key_path = format!("{}.key", args.prefix);
    let pub_path = format!("{}.pub", args.prefix);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
        .and_then(|mut file| file.write_all(private.as_bytes()))
        .map_err(|e| anyhow::anyhow!("writing {key_path}: {e}"))?;
    std::fs::write(&pub_path, public).map_err(|e| anyhow::anyhow!("writing {pub_path}: {e}"))?;
    app.print(&format!(
        "Private key written to {key_path}\nPublic key written to {pub_path}\n"
    ))
}
