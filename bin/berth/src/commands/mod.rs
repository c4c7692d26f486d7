//! One module per command family; [`dispatch`] routes the parsed command line, and the
//! helpers here are what several commands share (filters, query strings, multi-target
//! error collection).

pub mod build;
mod build_context;
pub mod containers;
pub mod cp;
pub mod create;
pub mod events;
pub mod exec;
pub mod images;
pub mod info;
pub mod inspect;
pub mod lifecycle;
pub mod logs;
pub mod network;
pub mod objects;
pub mod registry;
pub mod run;
pub mod secret;
pub mod sign;
pub mod stats;
pub mod system;
pub mod transfer;

use berth_api::Filters;

use crate::app::App;
use crate::cli::{BuilderCommand, Command, ContainerCommand, ImageCommand, SystemCommand};

/// Runs one command.
pub async fn dispatch(app: &App, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Version(args) => system::version(app, args).await,
        Command::Info(args) | Command::System(SystemCommand::Info(args)) => {
            system::info(app, args).await
        }
        Command::Ps(args) | Command::Container(ContainerCommand::Ls(args)) => {
            containers::ps(app, args).await
        }
        Command::Images(args) | Command::Image(ImageCommand::Ls(args)) => {
            images::images(app, args).await
        }
        Command::Inspect(args) => inspect::inspect(app, args).await,
        Command::Container(ContainerCommand::Inspect(args)) => {
            inspect::inspect(app, args.with_type("container")).await
        }
        Command::Image(ImageCommand::Inspect(args)) => {
            inspect::inspect(app, args.with_type("image")).await
        }
        Command::Pull(args) | Command::Image(ImageCommand::Pull(args)) => {
            transfer::pull(app, args).await
        }
        Command::Push(args) | Command::Image(ImageCommand::Push(args)) => {
            transfer::push(app, args).await
        }
        Command::Tag(args) | Command::Image(ImageCommand::Tag(args)) => {
            images::tag(app, args).await
        }
        Command::Rmi(args) | Command::Image(ImageCommand::Rm(args)) => images::rmi(app, args).await,
        Command::Load(args) | Command::Image(ImageCommand::Load(args)) => {
            transfer::load(app, args).await
        }
        Command::Save(args) | Command::Image(ImageCommand::Save(args)) => {
            transfer::save(app, args).await
        }
        Command::Import(args) | Command::Image(ImageCommand::Import(args)) => {
            transfer::import(app, args).await
        }
        Command::Build(args) => build::build(app, args).await,
        Command::Create(args) | Command::Container(ContainerCommand::Create(args)) => {
            run::create(app, args).await
        }
        Command::Run(args) | Command::Container(ContainerCommand::Run(args)) => {
            run::run(app, args).await
        }
        Command::Start(args) | Command::Container(ContainerCommand::Start(args)) => {
            lifecycle::start(app, args).await
        }
        Command::Stop(args) | Command::Container(ContainerCommand::Stop(args)) => {
            lifecycle::stop(app, args, "stop").await
        }
        Command::Restart(args) | Command::Container(ContainerCommand::Restart(args)) => {
            lifecycle::stop(app, args, "restart").await
        }
        Command::Kill(args) | Command::Container(ContainerCommand::Kill(args)) => {
            lifecycle::kill(app, args).await
        }
        Command::Rm(args) | Command::Container(ContainerCommand::Rm(args)) => {
            lifecycle::rm(app, args).await
        }
        Command::Logs(args) | Command::Container(ContainerCommand::Logs(args)) => {
            logs::logs(app, args).await
        }
        Command::Exec(args) | Command::Container(ContainerCommand::Exec(args)) => {
            exec::exec(app, args).await
        }
        Command::Attach(args) | Command::Container(ContainerCommand::Attach(args)) => {
            exec::attach(app, args).await
        }
        Command::Wait(args) | Command::Container(ContainerCommand::Wait(args)) => {
            lifecycle::wait(app, args).await
        }
        Command::Rename(args) | Command::Container(ContainerCommand::Rename(args)) => {
            lifecycle::rename(app, args).await
        }
        Command::Pause(args) | Command::Container(ContainerCommand::Pause(args)) => {
            lifecycle::simple(app, args, "pause").await
        }
        Command::Unpause(args) | Command::Container(ContainerCommand::Unpause(args)) => {
            lifecycle::simple(app, args, "unpause").await
        }
        Command::Top(args) | Command::Container(ContainerCommand::Top(args)) => {
            containers::top(app, args).await
        }
        Command::Stats(args) | Command::Container(ContainerCommand::Stats(args)) => {
            containers::stats(app, args).await
        }
        Command::Port(args) | Command::Container(ContainerCommand::Port(args)) => {
            containers::port(app, args).await
        }
        Command::Events(args) | Command::System(SystemCommand::Events(args)) => {
            events::events(app, args).await
        }
        Command::Login(args) => registry::login(app, args).await,
        Command::Logout(args) => registry::logout(app, args).await,
        Command::Container(ContainerCommand::Prune(args)) => {
            system::prune_objects(app, args, "containers").await
        }
        Command::Image(ImageCommand::Prune(args)) => {
            system::prune_objects(app, args, "images").await
        }
        Command::System(SystemCommand::Prune(args)) => system::system_prune(app, args).await,
        Command::Builder(BuilderCommand::Prune(args)) => {
            system::prune_objects(app, args, "build").await
        }
        Command::System(SystemCommand::Df(args)) => system::df(app, args).await,
        Command::History(args) | Command::Image(ImageCommand::History(args)) => {
            objects::history(app, args).await
        }
        Command::Diff(args) | Command::Container(ContainerCommand::Diff(args)) => {
            objects::diff(app, args).await
        }
        Command::Export(args) | Command::Container(ContainerCommand::Export(args)) => {
            objects::export(app, args).await
        }
        Command::Commit(args) | Command::Container(ContainerCommand::Commit(args)) => {
            objects::commit(app, args).await
        }
        Command::Cp(args) | Command::Container(ContainerCommand::Cp(args)) => {
            cp::cp(app, args).await
        }
        Command::Volume(command) => objects::volume(app, command).await,
        Command::Secret(command) => secret::secret(app, command).await,
        Command::Image(ImageCommand::Sign(args)) => sign::sign(app, args).await,
        Command::Image(ImageCommand::Verify(args)) => sign::verify(app, args).await,
        Command::Image(ImageCommand::Keygen(args)) => sign::keygen(app, args).await,
        Command::Network(command) => objects::network(app, command).await,
    }
}

/// Parses `--filter key=value` flags into Docker's filter JSON.
pub fn filters(values: &[String]) -> anyhow::Result<Filters> {
    let mut filters = Filters::new();
    for value in values {
        let Some((name, rest)) = value.split_once('=') else {
            anyhow::bail!("bad format of filter (expected name=value)");
        };
        filters.add(name.trim().to_lowercase().as_str(), rest);
    }
    Ok(filters)
}

/// Adds `filters=<json>` to query pairs when there are any.
pub fn push_filters(
    pairs: &mut Vec<(&'static str, String)>,
    filters: &Filters,
) -> anyhow::Result<()> {
    if !filters.is_empty() {
        pairs.push(("filters", serde_json::to_string(filters)?));
    }
    Ok(())
}

/// `GET path` with a list command's `--filter` flags as its `filters` query, parsed.
pub async fn get_filtered(
    app: &App,
    path: &str,
    filter_flags: &[String],
) -> anyhow::Result<crate::format::Value> {
    let mut pairs = Vec::new();
    push_filters(&mut pairs, &filters(filter_flags)?)?;
    let raw = app
        .client
        .get_raw(&format!("{path}{}", berth_client::query(&pairs)))
        .await?;
    Ok(crate::format::Value::parse(&raw)?)
}

/// Runs `action` for every target, printing each success line and collecting failures
/// into one error with a line per failure, as docker's multi-container verbs do.
pub async fn for_each<F, Fut>(targets: &[String], mut action: F) -> anyhow::Result<()>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<String>>>,
{
    let mut failures = Vec::new();
    for target in targets {
        match action(target.clone()).await {
            Ok(Some(line)) => println!("{line}"),
            Ok(None) => {}
            Err(err) => failures.push(error_text(&err)),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(crate::app::StatusError::new(1, failures.join("\n")).into())
    }
}

/// The text docker prints for an error.
pub fn error_text(err: &anyhow::Error) -> String {
    format!("{err:#}")
}

/// Percent-encodes a path segment (container and image names may hold `/` or `:`).
pub fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~:/@+".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
