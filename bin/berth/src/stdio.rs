//! The local end of attached streams: copying stdin into a hijacked connection and its
//! output (raw for a TTY, demultiplexed otherwise) to stdout/stderr, raw terminal mode
//! restored on every exit path, terminal resizes and signal proxying.

use std::io::IsTerminal;
use std::os::fd::AsFd;

use berth_client::{stdcopy, Client, Upgraded};
use rustix::termios::{self, Termios};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Puts stdin in raw mode until dropped (then restores the saved settings).
pub struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    /// Raw mode when stdin is a terminal; `None` otherwise.
    pub fn enable() -> Option<RawTerminal> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(stdin.as_fd(), termios::OptionalActions::Now, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(
            std::io::stdin().as_fd(),
            termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// The terminal size of stdout (or stdin), if either is a terminal.
pub fn terminal_size() -> Option<(u16, u16)> {
    for fd in [std::io::stdout().as_fd(), std::io::stdin().as_fd()] {
        if let Ok(size) = termios::tcgetwinsize(fd) {
            if size.ws_row > 0 {
                return Some((size.ws_row, size.ws_col));
            }
        }
    }
    None
}

/// Sends the current terminal size to `resize_path` (`/containers/x/resize` or
/// `/exec/x/resize`) now and on every SIGWINCH, until the task is dropped.
pub fn follow_resizes(
    client: std::sync::Arc<Client>,
    resize_path: String,
) -> Option<tokio::task::JoinHandle<()>> {
    let send = |client: std::sync::Arc<Client>, path: String| async move {
        if let Some((rows, cols)) = terminal_size() {
            let _ = client.post(&format!("{path}?h={rows}&w={cols}")).await;
        }
    };
    let mut winch =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok()?;
    Some(tokio::spawn(async move {
        send(client.clone(), resize_path.clone()).await;
        while winch.recv().await.is_some() {
            send(client.clone(), resize_path.clone()).await;
        }
    }))
}

/// Forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the container
/// (docker's `--sig-proxy`), until the returned tasks are aborted.
pub fn proxy_signals(
    client: std::sync::Arc<Client>,
    container: String,
) -> Vec<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let kinds = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
    ];
    let mut tasks = Vec::new();
    for (kind, name) in kinds {
        let Ok(mut stream) = signal(kind) else {
            continue;
        };
        let client = client.clone();
        let path = format!("/containers/{container}/kill?signal={name}");
        tasks.push(tokio::spawn(async move {
            while stream.recv().await.is_some() {
                let _ = client.post(&path).await;
            }
        }));
    }
    tasks
}

/// Pumps a hijacked connection: stdin (when `stdin`) into it, its output to stdout and
/// stderr, raw when `tty`. Returns when the daemon ends the output.
pub async fn pump(upgraded: Upgraded, tty: bool, stdin: bool) -> anyhow::Result<()> {
    let (mut reader, mut writer) = tokio::io::split(upgraded.io);
    let input = if stdin {
        Some(tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buffer = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if writer.write_all(&buffer[..n]).await.is_err() {
                            return;
                        }
                        let _ = writer.flush().await;
                    }
                }
            }
            // docker half-closes the connection when stdin ends.
            let _ = writer.shutdown().await;
        }))
    } else {
        drop(writer);
        None
    };
    let mut stdout = tokio::io::stdout();
    let result = if tty {
        let mut buffer = vec![0u8; 32 * 1024];
        loop {
            let n = reader.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            stdout.write_all(&buffer[..n]).await?;
            stdout.flush().await?;
        }
        Ok(())
    } else {
        let mut stderr = tokio::io::stderr();
        stdcopy::demux(reader, &mut stdout, &mut stderr)
            .await
            .map_err(anyhow::Error::from)
    };
    if let Some(input) = input {
        input.abort();
    }
    result
}
