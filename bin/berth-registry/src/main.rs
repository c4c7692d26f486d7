//! berth-registry: `serve` an OCI distribution-spec registry on a berth content store,
//! or `gc` its root offline.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use berth_registry::server::{serve, Htpasswd, TlsFiles, TokenConfig};
use berth_registry::{router, Config, Storage};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "berth-registry",
    version,
    about = "An OCI distribution-spec registry"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the registry API.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:5000")]
        listen: SocketAddr,
        /// Storage root (content store and repository metadata).
        #[arg(long)]
        root: PathBuf,
        /// PEM certificate chain; with --tls-key, serve HTTPS.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// htpasswd file of bcrypt users: require basic auth.
        #[arg(long)]
        htpasswd: Option<PathBuf>,
        /// Refuse DELETE of manifests and blobs (enabled by default).
        #[arg(long)]
        no_delete: bool,
        /// Bearer-token auth: serve /token to the --htpasswd users and require its tokens.
        #[arg(long, requires = "htpasswd")]
        token_auth: bool,
    },
    /// Delete blobs that no manifest references (run with the server stopped).
    Gc {
        #[arg(long)]
        root: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve {
            listen,
            root,
            tls_cert,
            tls_key,
            htpasswd,
            no_delete,
            token_auth,
        } => {
            let storage =
                Storage::open(&root).with_context(|| format!("opening {}", root.display()))?;
            let htpasswd = htpasswd.map(|path| Htpasswd::load(&path)).transpose()?;
            let tls = tls_cert
                .zip(tls_key)
                .map(|(cert, key)| TlsFiles { cert, key });
            // Tokens live five minutes, distribution's default; the key dies with the process.
            let token =
                token_auth.then(|| TokenConfig::random(Duration::from_secs(300), tls.is_some()));
            let config = Config {
                delete_enabled: !no_delete,
                htpasswd,
                token,
            };
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("listening on {listen}"))?;
                eprintln!("berth-registry listening on {}", listener.local_addr()?);
                serve(listener, router(storage, config), tls, shutdown()).await?;
                Ok(())
            })
        }
        Command::Gc { root } => {
            let storage =
                Storage::open(&root).with_context(|| format!("opening {}", root.display()))?;
            let report = berth_registry::gc::collect(&storage, &berth_content_gc_options())?;
            println!(
                "removed {} blobs ({} bytes), {} stale uploads",
                report.removed_blobs.len(),
                report.freed_bytes,
                report.removed_ingests.len()
            );
            Ok(())
        }
    }
}

fn berth_content_gc_options() -> berth_registry::gc::GcOptions {
    berth_registry::gc::GcOptions::with_default_expiry(SystemTime::now())
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
