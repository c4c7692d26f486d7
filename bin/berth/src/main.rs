//! berth: the command line, mirroring docker's commands, flags, output and exit codes
//! against any Docker Engine API daemon (berthd or dockerd). It does not know the engine:
//! everything goes through berth-client.

mod app;
mod cli;
mod commands;
mod format;
mod progress;
mod stdio;

#[cfg(test)]
mod golden;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return cli::usage_error(err),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("berth: starting the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(app::run(cli));
    // Attach copiers may still block on stdin; never wait for them.
    runtime.shutdown_background();
    ExitCode::from(code)
}
