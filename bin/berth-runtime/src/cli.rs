//! runc's command line as clap definitions: the same commands, flags and defaults.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "berth-runtime",
    version,
    about = "berth's OCI runtime (runc's command line)"
)]
pub struct Cli {
    /// enable debug logging
    #[arg(long, global = true)]
    pub debug: bool,
    /// set the log file to write berth-runtime logs to (default is stderr)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// set the log format ('text' (default), or 'json')
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// root directory for storage of container state (this should be located in tmpfs)
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    pub root: PathBuf,
    /// path to the criu binary (accepted for compatibility; checkpoint is not supported)
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// enable systemd cgroup support
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// path to the root of the bundle directory, defaults to the current directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// do not use pivot root to jail process inside rootfs
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// do not create a new session keyring for the container
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// create a container
    Create(CreateArgs),
    /// create and run a container
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// detach from the container's process
        #[arg(short = 'd', long)]
        detach: bool,
        /// do not delete the container after it exits
        #[arg(long)]
        keep: bool,
        /// disable the use of the subreaper used to reap reparented processes
        #[arg(long = "no-subreaper")]
        no_subreaper: bool,
    },
    /// executes the user defined process in a created container
    Start { id: String },
    /// output the state of a container
    State { id: String },
    /// lists containers started by berth-runtime with the given root
    #[command(alias = "ls")]
    List {
        /// select one of: table or json
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        /// display only container IDs
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// kill sends the specified signal (default: SIGTERM) to the container's init process
    Kill {
        /// send the specified signal to all processes inside the container
        #[arg(short = 'a', long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// delete any resources held by the container often used with detached containers
    Delete {
        /// forcibly deletes the container if it is still running (uses SIGKILL)
        #[arg(short = 'f', long)]
        force: bool,
        id: String,
    },
    /// execute new process inside the container
    Exec(Box<ExecArgs>),
    /// ps displays the processes running inside a container
    Ps {
        /// select one of: table or json
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// pause suspends all processes inside the container
    Pause { id: String },
    /// resumes all processes that have been previously paused
    Resume { id: String },
    /// display container events such as OOM notifications, cpu, memory, and IO usage statistics
    Events {
        /// display the container's stats then exit
        #[arg(long)]
        stats: bool,
        /// set the stats collection interval
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// update container resource constraints
    Update(Box<UpdateArgs>),
    /// create a new specification file
    Spec {
        /// path to the root of the bundle directory
        #[arg(short = 'b', long, default_value = ".")]
        bundle: PathBuf,
        /// generate a configuration for a rootless container
        #[arg(long)]
        rootless: bool,
    },
    /// show the enabled features
    Features,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// path to an AF_UNIX socket which will receive the console's pseudoterminal master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// current working directory in the container
    #[arg(long)]
    pub cwd: Option<String>,
    /// set environment variables
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// UID (format: <uid>[:<gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// additional gids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// path to the process.json
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// set the asm process label for the process commonly used with selinux
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// set the apparmor profile for the process
    #[arg(long)]
    pub apparmor: Option<String>,
    /// set the no new privileges value for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// add a capability to the bounding set for the process
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    /// pass N additional file descriptors to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    /// allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// path to the file containing the resources to update or '-' to read from the standard input
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<String>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<String>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<String>,
    #[arg(long = "cpu-share", alias = "cpu-shares")]
    pub cpu_shares: Option<String>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<String>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<String>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp")]
    pub kernel_memory_tcp: Option<String>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<String>,
    pub id: String,
}

/// Go's time.ParseDuration for the forms `events --interval` takes ("5s", "100ms", "1m").
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs > 0.0).then(|| std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_flags_parse_like_runc() {
        let cli = Cli::try_parse_from([
            "berth-runtime",
            "--root",
            "/tmp/r",
            "run",
            "-d",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "c1",
        ])
        .expect("parses");
        assert_eq!(cli.root, PathBuf::from("/tmp/r"));
        match cli.command {
            Command::Run { create, detach, .. } => {
                assert!(detach);
                assert_eq!(create.bundle, PathBuf::from("/b"));
                assert_eq!(create.id, "c1");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn exec_keeps_the_command_s_own_flags() {
        let cli = Cli::try_parse_from([
            "berth-runtime",
            "exec",
            "-e",
            "A=1",
            "c1",
            "sh",
            "-c",
            "echo -n hi",
        ])
        .expect("parses");
        match cli.command {
            Command::Exec(e) => {
                assert_eq!(e.env, vec!["A=1"]);
                assert_eq!(e.command, vec!["sh", "-c", "echo -n hi"]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn kill_takes_an_optional_signal_and_global_flags_anywhere() {
        let cli = Cli::try_parse_from([
            "berth-runtime",
            "kill",
            "--all",
            "c1",
            "KILL",
            "--root",
            "/r",
        ])
        .expect("parses");
        assert_eq!(cli.root, PathBuf::from("/r"));
        assert!(
            matches!(cli.command, Command::Kill { all: true, ref signal, .. } if signal.as_deref() == Some("KILL"))
        );
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(
            parse_duration("5s"),
            Some(std::time::Duration::from_secs(5))
        );
        assert_eq!(
            parse_duration("100ms"),
            Some(std::time::Duration::from_millis(100))
        );
        assert_eq!(
            parse_duration("2m"),
            Some(std::time::Duration::from_secs(120))
        );
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("0s"), None);
    }
}
