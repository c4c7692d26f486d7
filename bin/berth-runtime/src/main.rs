//! berth-runtime: the OCI runtime binary (runc's command-line contract).

mod cli;
mod exec_process;
mod fast_cli;

use std::io::Write;

use anyhow::{anyhow, Context as _};
use berth_runtime::container::create::{create, CreateOptions};
use berth_runtime::container::exec::ExecOptions;
use berth_runtime::container::update::{resources_from_flags, UpdateFlags};
use berth_runtime::container::{delete, events, exec, kill, pause, ps, run, start, Context};
use berth_runtime::logging::{self, Level};
use berth_runtime::state::list_table;
use clap::Parser;

use cli::{Cli, Command};

fn main() {
    let cli = fast_cli::parse(std::env::args_os()).unwrap_or_else(Cli::parse);
    let log_file = match &cli.log {
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!(
                    "berth-runtime: cannot open log file {}: {e}",
                    path.display()
                );
                std::process::exit(1);
            }
        },
        None => None,
    };
    let json = match cli.log_format.as_str() {
        "text" => false,
        "json" => true,
        other => {
            eprintln!("berth-runtime: unknown log-format {other:?}");
            std::process::exit(1);
        }
    };
    logging::init(log_file, json, cli.debug);
    let verb = verb(&cli.command);
    match dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // The whole source() chain, each cause once (runc prints `...: <cause>`).
            let text = berth_runtime::error::chain(e.as_ref());
            let (code, msg) = match verb {
                "create" | "run" => (1, format!("berth-runtime {verb} failed: {text}")),
                "exec" => (255, format!("exec failed: {text}")),
                _ => (1, text),
            };
            logging::log(Level::Error, &msg);
            if logging::to_file() {
                eprintln!("{msg}");
            }
            std::process::exit(code);
        }
    }
}

fn verb(c: &Command) -> &'static str {
    match c {
        Command::Create(_) => "create",
        Command::Run { .. } => "run",
        Command::Exec(_) => "exec",
        _ => "other",
    }
}

fn create_options(a: &cli::CreateArgs) -> CreateOptions {
    // Socket activation: LISTEN_FDS are passed on as preserved fds (runc does the same).
    let listen_fds: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    CreateOptions {
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds + listen_fds,
        extra_env: if listen_fds > 0 {
            vec![
                format!("LISTEN_FDS={listen_fds}"),
                "LISTEN_PID=1".to_string(),
            ]
        } else {
            Vec::new()
        },
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let ctx = Context {
        root: cli.root.clone(),
        systemd_cgroup: cli.systemd_cgroup,
    };
    let mut stdout = std::io::stdout();
    match cli.command {
        Command::Create(a) => {
            create(&ctx, &a.id, &create_options(&a))?;
        }
        Command::Run {
            create,
            detach,
            keep,
            no_subreaper,
        } => {
            let flags = run::RunFlags {
                detach,
                keep,
                no_subreaper,
            };
            return Ok(run::run(&ctx, &create.id, &create_options(&create), flags)?);
        }
        Command::Start { id } => start::start(&ctx, &id)?,
        Command::State { id } => {
            write!(stdout, "{}", ctx.state_json(&id)?)?;
        }
        Command::List { format, quiet } => {
            let rows = ctx.list()?;
            if quiet {
                for r in &rows {
                    writeln!(stdout, "{}", r.id)?;
                }
            } else {
                match format.as_str() {
                    "table" => write!(stdout, "{}", list_table(&rows))?,
                    "json" => {
                        if rows.is_empty() {
                            writeln!(stdout, "null")?;
                        } else {
                            writeln!(stdout, "{}", serde_json::to_string(&rows)?)?;
                        }
                    }
                    other => return Err(anyhow!("invalid format option {other:?}")),
                }
            }
        }
        Command::Kill { all, id, signal } => {
            let sig = kill::parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            kill::kill(&ctx, &id, sig, all)?;
        }
        Command::Delete { force, id } => delete::delete(&ctx, &id, force)?,
        Command::Exec(a) => {
            let state = ctx.load(&a.id)?;
            let process = exec_process::build(&a, &state.config)?;
            let opts = ExecOptions {
                console_socket: a.console_socket.clone(),
                detach: a.detach,
                pid_file: a.pid_file.clone(),
                preserve_fds: a.preserve_fds,
            };
            return Ok(exec::exec(&ctx, &a.id, &process, &opts)?);
        }
        Command::Ps {
            format,
            id,
            ps_args,
        } => match format.as_str() {
            "json" => writeln!(stdout, "{}", serde_json::to_string(&ps::pids(&ctx, &id)?)?)?,
            "table" => write!(stdout, "{}", ps::table(&ctx, &id, &ps_args)?)?,
            other => return Err(anyhow!("invalid format option {other:?}")),
        },
        Command::Pause { id } => pause::pause(&ctx, &id)?,
        Command::Resume { id } => pause::resume(&ctx, &id)?,
        Command::Events {
            stats,
            interval,
            id,
        } => {
            let interval = cli::parse_duration(&interval).ok_or_else(|| {
                anyhow!("duration interval must be greater than 0, got {interval:?}")
            })?;
            events::events(&ctx, &id, stats, interval, &mut stdout)?;
        }
        Command::Update(a) => {
            let patch = match &a.resources {
                Some(path) => {
                    let bytes = if path.as_os_str() == "-" {
                        let mut v = Vec::new();
                        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
                        v
                    } else {
                        std::fs::read(path).with_context(|| format!("read {}", path.display()))?
                    };
                    serde_json::from_slice(&bytes).context("parse resources")?
                }
                None => resources_from_flags(&UpdateFlags {
                    memory: a.memory.clone(),
                    memory_reservation: a.memory_reservation.clone(),
                    memory_swap: a.memory_swap.clone(),
                    kernel_memory: a.kernel_memory.clone(),
                    kernel_memory_tcp: a.kernel_memory_tcp.clone(),
                    cpu_shares: a.cpu_shares.clone(),
                    cpu_period: a.cpu_period.clone(),
                    cpu_quota: a.cpu_quota.clone(),
                    cpu_rt_period: a.cpu_rt_period.clone(),
                    cpu_rt_runtime: a.cpu_rt_runtime.clone(),
                    cpuset_cpus: a.cpuset_cpus.clone(),
                    cpuset_mems: a.cpuset_mems.clone(),
                    pids_limit: a.pids_limit.clone(),
                    blkio_weight: a.blkio_weight.clone(),
                })?,
            };
            berth_runtime::container::update::update(&ctx, &a.id, &patch)?;
        }
        Command::Spec { bundle, rootless } => {
            let path = bundle.join("config.json");
            if path.exists() {
                return Err(anyhow!("File {} exists. Remove it first", path.display()));
            }
            let spec = berth_runtime::example::example_spec(rootless);
            // runc's field order and tab indentation (serde_json would sort the keys).
            let text = berth_runtime::go_json::to_string_indent(&spec);
            std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        }
        Command::Features => {
            writeln!(
                stdout,
                "{}",
                serde_json::to_string_pretty(&berth_runtime::features::features())?
            )?;
        }
    }
    Ok(0)
}
