//! The command line grammar: docker's global flags, top-level verbs and the `container`,
//! `image` and `system` groups, all mapped onto one set of argument structs.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::{
    containers, create, events, exec, images, inspect, lifecycle, logs, registry, system, transfer,
};

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "A self-sufficient runtime for containers",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host")]
    pub host: Vec<String>,
    /// Location of client config files
    #[arg(long)]
    pub config: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Set the logging level
    #[arg(short = 'l', long = "log-level")]
    pub log_level: Option<String>,
    /// Name of the context to use (accepted and ignored: berth has no contexts)
    #[arg(short = 'c', long)]
    pub context: Option<String>,
    /// Use TLS (not supported yet; accepted for compatibility)
    #[arg(long)]
    pub tls: bool,
    #[arg(long)]
    pub tlsverify: bool,
    #[arg(long)]
    pub tlscacert: Option<String>,
    #[arg(long)]
    pub tlscert: Option<String>,
    #[arg(long)]
    pub tlskey: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show the berth and daemon version information
    Version(system::VersionArgs),
    /// Display system-wide information
    Info(system::InfoArgs),
    /// List containers
    Ps(containers::PsArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Return low-level information on objects
    Inspect(inspect::InspectArgs),
    /// Download an image from a registry
    Pull(transfer::PullArgs),
    /// Upload an image to a registry
    Push(transfer::PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(images::TagArgs),
    /// Remove one or more images
    Rmi(images::RmiArgs),
    /// Load an image from a tar archive or STDIN
    Load(transfer::LoadArgs),
    /// Save one or more images to a tar archive
    Save(transfer::SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(transfer::ImportArgs),
    /// Create a new container
    Create(create::RunArgs),
    /// Create and run a new container from an image
    Run(create::RunArgs),
    /// Start one or more stopped containers
    Start(lifecycle::StartArgs),
    /// Stop one or more running containers
    Stop(lifecycle::StopArgs),
    /// Restart one or more containers
    Restart(lifecycle::StopArgs),
    /// Kill one or more running containers
    Kill(lifecycle::KillArgs),
    /// Remove one or more containers
    Rm(lifecycle::RmArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(exec::AttachArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(lifecycle::ContainersArgs),
    /// Rename a container
    Rename(lifecycle::RenameArgs),
    /// Pause all processes within one or more containers
    Pause(lifecycle::ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(lifecycle::ContainersArgs),
    /// Display the running processes of a container
    Top(containers::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(containers::StatsArgs),
    /// List port mappings or a specific mapping for the container
    Port(containers::PortArgs),
    /// Get real time events from the server
    Events(events::EventsArgs),
    /// Authenticate to a registry
    Login(registry::LoginArgs),
    /// Log out from a registry
    Logout(registry::LogoutArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage Docker
    #[command(subcommand)]
    System(SystemCommand),
}

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    #[command(alias = "ps", alias = "list")]
    Ls(containers::PsArgs),
    Inspect(inspect::TypedInspectArgs),
    Create(create::RunArgs),
    Run(create::RunArgs),
    Start(lifecycle::StartArgs),
    Stop(lifecycle::StopArgs),
    Restart(lifecycle::StopArgs),
    Kill(lifecycle::KillArgs),
    #[command(alias = "remove")]
    Rm(lifecycle::RmArgs),
    Logs(logs::LogsArgs),
    Exec(exec::ExecArgs),
    Attach(exec::AttachArgs),
    Wait(lifecycle::ContainersArgs),
    Rename(lifecycle::RenameArgs),
    Pause(lifecycle::ContainersArgs),
    Unpause(lifecycle::ContainersArgs),
    Top(containers::TopArgs),
    Stats(containers::StatsArgs),
    Port(containers::PortArgs),
    Prune(system::PruneArgs),
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    #[command(alias = "list")]
    Ls(images::ImagesArgs),
    Inspect(inspect::TypedInspectArgs),
    Pull(transfer::PullArgs),
    Push(transfer::PushArgs),
    Tag(images::TagArgs),
    #[command(alias = "remove")]
    Rm(images::RmiArgs),
    Load(transfer::LoadArgs),
    Save(transfer::SaveArgs),
    Import(transfer::ImportArgs),
    Prune(system::PruneArgs),
}

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    Df(system::DfArgs),
    Prune(system::PruneArgs),
    Info(system::InfoArgs),
    Events(events::EventsArgs),
}

/// Reports a command line error as docker does: help and version go to stdout with status
/// 0; anything else is a usage error, status 125.
pub fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        _ => {
            let _ = err.print();
            ExitCode::from(125)
        }
    }
}
