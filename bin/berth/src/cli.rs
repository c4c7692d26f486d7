//! The command line grammar: docker's global flags, top-level verbs and the `container`,
//! `image` and `system` groups, all mapped onto one set of argument structs.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::{
    build, containers, cp, create, events, exec, images, inspect, lifecycle, logs, objects,
    registry, system, transfer,
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
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
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
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Show the history of an image
    History(objects::HistoryArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(objects::DiffArgs),
    /// Export a container's filesystem as a tar archive
    Export(objects::ExportArgs),
    /// Create a new image from a container's changes
    Commit(objects::CommitArgs),
    /// Manage volumes
    #[command(subcommand)]
    Volume(objects::VolumeCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(objects::NetworkCommand),
    /// Manage secrets (without swarm)
    #[command(subcommand)]
    Secret(crate::commands::secret::SecretCommand),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage Docker
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage builds
    #[command(subcommand)]
    Builder(BuilderCommand),
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
    Diff(objects::DiffArgs),
    Export(objects::ExportArgs),
    Commit(objects::CommitArgs),
    Cp(cp::CpArgs),
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
    History(objects::HistoryArgs),
    /// Sign an image in its registry (cosign's format)
    Sign(crate::commands::sign::SignArgs),
    /// Verify an image's signatures in its registry
    Verify(crate::commands::sign::VerifyArgs),
    /// Generate an ECDSA P-256 key pair for signing
    Keygen(crate::commands::sign::KeygenArgs),
}

#[derive(Subcommand, Debug)]
pub enum BuilderCommand {
    Prune(system::PruneArgs),
}

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    Df(system::DfArgs),
    Prune(system::PruneArgs),
    Info(system::InfoArgs),
    Events(events::EventsArgs),
}

/// docker's usage line of each command (after `docker <command>`), and how many
/// arguments it wants ("at least 1", "exactly 2", ...).
fn usage_of(command: &str) -> (&'static str, &'static str) {
    match command {
        "run" | "create" | "container run" | "container create" => {
            ("[OPTIONS] IMAGE [COMMAND] [ARG...]", "at least 1 argument")
        }
        "rm" | "container rm" | "start" | "stop" | "restart" | "kill" | "container start"
        | "container stop" | "container restart" | "container kill" => {
            ("[OPTIONS] CONTAINER [CONTAINER...]", "at least 1 argument")
        }
        "pause" | "unpause" | "wait" | "container pause" | "container unpause"
        | "container wait" => ("CONTAINER [CONTAINER...]", "at least 1 argument"),
        "ps" | "container ls" => ("[OPTIONS]", "no arguments"),
        "images" | "image ls" => ("[OPTIONS] [REPOSITORY[:TAG]]", "at most 1 argument"),
        "inspect" | "container inspect" | "image inspect" => {
            ("[OPTIONS] NAME|ID [NAME|ID...]", "at least 1 argument")
        }
        "logs" | "container logs" | "attach" | "container attach" => {
            ("[OPTIONS] CONTAINER", "1 argument")
        }
        "exec" | "container exec" => (
            "[OPTIONS] CONTAINER COMMAND [ARG...]",
            "at least 2 arguments",
        ),
        "tag" | "image tag" => ("SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", "2 arguments"),
        "rmi" | "image rm" => ("[OPTIONS] IMAGE [IMAGE...]", "at least 1 argument"),
        "pull" | "image pull" => ("[OPTIONS] NAME[:TAG|@DIGEST]", "1 argument"),
        "push" | "image push" => ("[OPTIONS] NAME[:TAG]", "1 argument"),
        "import" | "image import" => (
            "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
            "at least 1 argument",
        ),
        "save" | "image save" => ("[OPTIONS] IMAGE [IMAGE...]", "at least 1 argument"),
        "rename" | "container rename" => ("CONTAINER NEW_NAME", "2 arguments"),
        "top" | "container top" => ("CONTAINER [ps OPTIONS]", "at least 1 argument"),
        "port" | "container port" => ("CONTAINER [PRIVATE_PORT[/PROTO]]", "at least 1 argument"),
        _ => ("[OPTIONS]", "at least 1 argument"),
    }
}

/// The command words of the invocation (`run`, `container ls`), skipping global flags.
fn command_path(args: &[String]) -> String {
    let mut words = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].as_str();
        if matches!(
            arg,
            "-H" | "--host"
                | "--config"
                | "-l"
                | "--log-level"
                | "-c"
                | "--context"
                | "--tlscacert"
                | "--tlscert"
                | "--tlskey"
        ) {
            i += 2;
            continue;
        }
        if arg.starts_with('-') {
            i += 1;
            continue;
        }
        words.push(arg);
        if !matches!(arg, "container" | "image" | "system" | "volume" | "network")
            || words.len() == 2
        {
            break;
        }
        i += 1;
    }
    words.join(" ")
}

/// Reports a command line error as docker does: help and version go to stdout with status
/// 0; a missing argument or unknown command is status 1, a bad flag status 125, each with
/// docker's wording and usage line.
pub fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ErrorKind};
    let args: Vec<String> = std::env::args().collect();
    let command = command_path(&args);
    let (usage, wants) = usage_of(&command);
    let usage_block = format!("Usage:  berth {command} {usage}");
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        ErrorKind::MissingRequiredArgument
        | ErrorKind::TooFewValues
        | ErrorKind::WrongNumberOfValues => {
            // docker's RequiresMinArgs says "See", ExactArgs says "Run".
            let verb = if wants.starts_with("at least") {
                "See"
            } else {
                "Run"
            };
            eprintln!("berth: 'berth {command}' requires {wants}\n\n{usage_block}\n\n{verb} 'berth {command} --help' for more information");
            ExitCode::from(1)
        }
        ErrorKind::InvalidSubcommand => {
            let name = err
                .get(ContextKind::InvalidSubcommand)
                .map(|v| v.to_string())
                .unwrap_or_default();
            eprintln!(
                "berth: unknown command: berth {name}\n\nRun 'berth --help' for more information"
            );
            ExitCode::from(1)
        }
        ErrorKind::UnknownArgument => {
            let flag = err
                .get(ContextKind::InvalidArg)
                .map(|v| v.to_string())
                .unwrap_or_default();
            let flag = flag.split('=').next().unwrap_or_default().to_string();
            let text = if flag.starts_with("--") {
                format!("unknown flag: {flag}")
            } else {
                format!(
                    "unknown shorthand flag: '{}' in {flag}",
                    flag.trim_start_matches('-')
                )
            };
            eprintln!(
                "{text}\n\n{usage_block}\n\nRun 'berth {command} --help' for more information"
            );
            ExitCode::from(125)
        }
        _ => {
            let text = err.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string();
            eprintln!(
                "{first}\n\n{usage_block}\n\nRun 'berth {command} --help' for more information"
            );
            ExitCode::from(125)
        }
    }
}
