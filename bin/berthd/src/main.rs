//! berthd: the daemon serving the Docker Engine API. Thin: flags and daemon.json, the
//! listeners, signals; everything else is berth-engine (core) and berth-server (HTTP).

mod daemon_json;
mod memory;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use berth_engine::{Engine, EngineConfig};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "berthd",
    version,
    about = "A Docker-compatible container engine daemon"
)]
struct Flags {
    /// Daemon socket(s) to listen on: unix:///path (default unix:///run/berth/berth.sock)
    /// or tcp://host:port (needs --tlsverify)
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Root directory of persistent state
    #[arg(long = "data-root")]
    data_root: Option<PathBuf>,
    /// Root directory of runtime state (shim sockets)
    #[arg(long = "exec-root")]
    exec_root: Option<PathBuf>,
    /// Daemon configuration file
    #[arg(long = "config-file", default_value = "/etc/berth/daemon.json")]
    config_file: PathBuf,
    /// Enable debug mode
    #[arg(short = 'D', long = "debug")]
    debug: bool,
    /// Path to use for the daemon PID file
    #[arg(short = 'p', long = "pidfile")]
    pidfile: Option<PathBuf>,
    /// Group for the unix socket
    #[arg(short = 'G', long = "group", default_value = "berth")]
    group: String,
    /// Use TLS and verify the remote (mutual TLS on tcp:// listeners)
    #[arg(long = "tlsverify")]
    tlsverify: bool,
    /// Trust certs signed only by this CA
    #[arg(long = "tlscacert", default_value = "/etc/berth/ca.pem")]
    tlscacert: PathBuf,
    /// Path to TLS certificate file
    #[arg(long = "tlscert", default_value = "/etc/berth/cert.pem")]
    tlscert: PathBuf,
    /// Path to TLS key file
    #[arg(long = "tlskey", default_value = "/etc/berth/key.pem")]
    tlskey: PathBuf,
    /// Serve tcp:// listeners without TLS: anyone who reaches the port is root on this host
    #[arg(long = "insecure-tcp-i-know-this-is-root")]
    insecure_tcp: bool,
    /// IPv4 address and prefix of the default bridge (daemon.json `bip`), e.g. 172.17.0.1/16
    #[arg(long = "bip")]
    bip: Option<String>,
    /// User/Group setting for user namespaces: "default" (user berthremap), user[:group]
    /// or uid[:gid]; data moves to <data-root>/<uid>.<gid> as with dockerd
    #[arg(long = "userns-remap")]
    userns_remap: Option<String>,
    /// Give containers in user namespaces a chowned copy of their image layers instead of
    /// idmapped mounts, even where the kernel has them
    #[arg(long = "no-idmapped-mounts")]
    no_idmapped_mounts: bool,
    /// Compression of the layers berth compresses for push: gzip (default, as dockerd) or
    /// zstd (OCI zstd layers in an OCI manifest; pulled by berthd, containerd, BuildKit)
    #[arg(long = "push-compression")]
    push_compression: Option<berth_engine::image::PushCompression>,
}

fn main() -> std::process::ExitCode {
    memory::tune_allocator();
    let flags = Flags::parse();
    match daemon(flags) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berthd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn daemon(flags: Flags) -> anyhow::Result<()> {
    let file = daemon_json::load(&flags.config_file)?;
    let data_root = flags
        .data_root
        .clone()
        .or(file.data_root.clone())
        .unwrap_or_else(|| PathBuf::from("/var/lib/berth"));
    let exec_root = flags
        .exec_root
        .clone()
        .or(file.exec_root.clone())
        .unwrap_or_else(|| PathBuf::from("/run/berth"));
    let mut config = EngineConfig::new(data_root, exec_root.clone());
    file.apply(&mut config)?;
    if let Some(bip) = &flags.bip {
        if let Some(in_file) = &file.bip {
            // dockerd refuses a directive given both ways (config.MergeDaemonConfigurations).
            anyhow::bail!(
                "unable to configure the daemon with file {}: the following directives are \
                 specified both as a flag and in the configuration file: bip: (from flag: {bip}, \
                 from file: {in_file})",
                flags.config_file.display()
            );
        }
        config.network.bip = Some(daemon_json::parse_bip(bip)?);
    }
    let remap = flags.userns_remap.clone().or(file.userns_remap.clone());
    if let Some(remap) = remap.filter(|r| !r.is_empty()) {
        berth_engine::container::userns::setup_remap(&mut config, &remap)
            .context("setting up userns-remap")?;
    }
    config.debug |= flags.debug;
    if flags.no_idmapped_mounts {
        config.userns_idmapped_mounts = false;
    }
    if let Some(compression) = flags.push_compression {
        if file.push_compression.is_some_and(|f| f != compression) {
            // dockerd refuses a directive given both ways (config.MergeDaemonConfigurations).
            bail!("push-compression is specified both as a flag and in the configuration file");
        }
        config.push_compression = compression;
    }
    let hosts = if !flags.hosts.is_empty() {
        flags.hosts.clone()
    } else if !file.hosts.is_empty() {
        file.hosts.clone()
    } else {
        vec![format!("unix://{}", exec_root.join("berth.sock").display())]
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(flags, config, hosts))
}

async fn run(flags: Flags, config: EngineConfig, hosts: Vec<String>) -> anyhow::Result<()> {
    // Caught before anything is served: a SIGTERM that comes as soon as `/_ping` answers
    // (or while the state is opened) still stops berthd the orderly way, after the
    // start-up firewall work, instead of the default action killing it half-way.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let engine = Engine::open(config)
        .await
        .context("opening the engine state")?;
    let router = berth_server::router(engine.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    for host in &hosts {
        if let Some(path) = host.strip_prefix("unix://") {
            let listener = bind_unix(Path::new(path), &flags.group)?;
            let mut stop = stop_rx.clone();
            servers.push(tokio::spawn(berth_server::serve::serve_unix(
                listener,
                router.clone(),
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            )));
        } else if let Some(address) = host.strip_prefix("tcp://") {
            let tls = tcp_tls(&flags, host)?;
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("listening on {host}"))?;
            let mut stop = stop_rx.clone();
            servers.push(tokio::spawn(berth_server::serve::serve_tcp(
                listener,
                router.clone(),
                tls,
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            )));
        } else {
            bail!("invalid host {host:?}: use unix:///path");
        }
    }
    if let Some(pidfile) = &flags.pidfile {
        std::fs::write(pidfile, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing {}", pidfile.display()))?;
    }
    eprintln!(
        "berthd {} listening on {}",
        berth_server::SERVER_VERSION,
        hosts.join(", ")
    );
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    let _ = stop_tx.send(true);
    for server in servers {
        let _ = server.await;
    }
    // Containers keep running: live restore is always on.
    engine.shutdown().await;
    if let Some(pidfile) = &flags.pidfile {
        let _ = std::fs::remove_file(pidfile);
    }
    for host in &hosts {
        if let Some(path) = host.strip_prefix("unix://") {
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(())
}

/// TCP listeners need mutual TLS; plain TCP only with the explicit flag and a loud warning
/// (dockerd merely sleeps 15 s before binding an unauthenticated socket).
fn tcp_tls(flags: &Flags, host: &str) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    if flags.tlsverify {
        let files = berth_server::tls::TlsFiles {
            ca: flags.tlscacert.clone(),
            cert: flags.tlscert.clone(),
            key: flags.tlskey.clone(),
        };
        return berth_server::tls::mutual_tls_acceptor(&files)
            .map(Some)
            .with_context(|| format!("setting up mutual TLS for {host}"));
    }
    if flags.insecure_tcp {
        eprintln!(
            "WARNING: serving the API on {host} WITHOUT TLS: anyone who can reach it has root \
             access to this host. Use --tlsverify with --tlscacert, --tlscert and --tlskey."
        );
        return Ok(None);
    }
    bail!(
        "refusing to serve the API on {host} without mutual TLS: pass --tlsverify with \
         --tlscacert, --tlscert and --tlskey (or --insecure-tcp-i-know-this-is-root)"
    )
}

/// Binds the API socket: root-owned, 0660, group `berth` when that group exists (as
/// Docker's `docker` group).
fn bind_unix(path: &Path, group: &str) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => bail!("another daemon is already listening on {}", path.display()),
        Err(_) => {
            let _ = std::fs::remove_file(path);
        }
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    if let Some(gid) = group_id(group) {
        rustix::fs::chown(path, None, Some(rustix::fs::Gid::from_raw(gid)))
            .with_context(|| format!("giving {} to group {group}", path.display()))?;
    }
    Ok(listener)
}

fn group_id(name: &str) -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}
