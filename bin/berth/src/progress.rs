//! Rendering the JSON message streams of pull, push, load and import as the docker CLI
//! does (`jsonmessage.DisplayJSONMessagesStream`): on a non-terminal, status lines and layer
//! ids without progress bars; on a terminal, one line per layer id rewritten in place (cursor
//! up to its line, erase, bar, cursor back down) with docker's `[===>   ]` bar, byte counts
//! and time left. The stream's error is the command's failure.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;

use berth_api::progress::{JsonMessage, ProgressDetail};
use berth_client::Response;

use crate::format::units::human_size;

use crate::app::StatusError;

/// Formats one message; `None` when docker prints nothing for it on a non-terminal.
pub fn render(message: &JsonMessage) -> Option<String> {
    if let Some(detail) = &message.progress_detail {
        if detail.current > 0 || detail.total > 0 {
            // A progress bar: only terminals get it.
            return None;
        }
    }
    let mut line = String::new();
    if message.time_nano != 0 {
        let seconds = message.time_nano.div_euclid(1_000_000_000);
        let nanos = message.time_nano.rem_euclid(1_000_000_000) as u32;
        line.push_str(&format!("{} ", rfc3339_nano_fixed(seconds, nanos)));
    } else if message.time != 0 {
        line.push_str(&format!("{} ", rfc3339_nano_fixed(message.time, 0)));
    }
    if !message.id.is_empty() {
        line.push_str(&format!("{}: ", message.id));
    }
    if !message.from.is_empty() {
        line.push_str(&format!("(from {}) ", message.from));
    }
    if !message.progress.is_empty() {
        line.push_str(&format!("{} {}", message.status, message.progress));
    } else if !message.stream.is_empty() {
        line.push_str(&message.stream);
    } else {
        line.push_str(&message.status);
        line.push('\n');
    }
    Some(line)
}

/// Go's `RFC3339NanoFixed`: always nine fraction digits.
fn rfc3339_nano_fixed(seconds: i64, nanos: u32) -> String {
    let text = crate::format::time::rfc3339_nano(seconds, 0);
    let base = text.trim_end_matches('Z');
    format!("{base}.{nanos:09}Z")
}

/// docker's rendering on a terminal: the line each progress id holds, counted from the
/// first progress line after the last line without one.
pub struct TerminalProgress {
    ids: HashMap<String, usize>,
    /// Terminal columns: the bar needs more than 110, the time left more than 50.
    width: usize,
}

impl TerminalProgress {
    pub fn new(width: usize) -> TerminalProgress {
        TerminalProgress {
            ids: HashMap::new(),
            width,
        }
    }

    /// The bytes docker writes for `message` at `now_nanos` (Unix time, for the time left).
    pub fn render(&mut self, message: &JsonMessage, now_nanos: i128) -> String {
        let mut out = String::new();
        let mut diff = 0;
        if !message.id.is_empty()
            && (message.progress_detail.is_some() || !message.progress.is_empty())
        {
            let line = match self.ids.get(&message.id) {
                Some(line) => *line,
                None => {
                    let line = self.ids.len();
                    self.ids.insert(message.id.clone(), line);
                    out.push('\n');
                    line
                }
            };
            diff = self.ids.len() - line;
            cursor(&mut out, diff, 'A');
        } else {
            // Anything else starts a new block: earlier ids are no longer rewritten.
            self.ids.clear();
        }
        let mut endl = "";
        if message.stream.is_empty() && message.progress_detail.is_some() {
            out.push_str("\x1b[2K\r");
            endl = "\r";
        }
        if message.time_nano != 0 {
            let seconds = message.time_nano.div_euclid(1_000_000_000);
            let nanos = message.time_nano.rem_euclid(1_000_000_000) as u32;
            out.push_str(&format!("{} ", rfc3339_nano_fixed(seconds, nanos)));
        } else if message.time != 0 {
            out.push_str(&format!("{} ", rfc3339_nano_fixed(message.time, 0)));
        }
        if !message.id.is_empty() {
            out.push_str(&format!("{}: ", message.id));
        }
        if !message.from.is_empty() {
            out.push_str(&format!("(from {}) ", message.from));
        }
        if let Some(detail) = &message.progress_detail {
            let bar = progress_bar(detail, self.width, now_nanos);
            out.push_str(&format!("{} {bar}{endl}", message.status));
        } else if !message.progress.is_empty() {
            out.push_str(&format!("{} {}{endl}", message.status, message.progress));
        } else if !message.stream.is_empty() {
            out.push_str(&format!("{}{endl}", message.stream));
        } else {
            out.push_str(&format!("{}{endl}\n", message.status));
        }
        if !message.id.is_empty() {
            cursor(&mut out, diff, 'B');
        }
        out
    }
}

/// ANSI cursor up (`A`) or down (`B`) by `lines`; nothing for 0.
fn cursor(out: &mut String, lines: usize, direction: char) {
    if lines > 0 {
        out.push_str(&format!("\x1b[{lines}{direction}"));
    }
}

/// docker's `JSONProgress.String()`.
pub fn progress_bar(detail: &ProgressDetail, width: usize, now_nanos: i128) -> String {
    let (current, total) = (detail.current, detail.total);
    if current <= 0 && total <= 0 {
        return String::new();
    }
    if total <= 0 {
        return if detail.units.is_empty() {
            format!("{:>8}", human_size(current as f64))
        } else {
            format!("{current} {}", detail.units)
        };
    }
    let percentage = ((current as f64 / total as f64 * 100.0) as i64 / 2).min(50);
    let mut bar = String::new();
    if width > 110 {
        let spaces = (50 - percentage).max(0) as usize;
        bar = format!(
            "[{}>{}] ",
            "=".repeat(percentage.max(0) as usize),
            " ".repeat(spaces)
        );
    }
    let numbers = if detail.hide_counts {
        String::new()
    } else if detail.units.is_empty() {
        let done = human_size(current as f64);
        if current > total {
            format!("{done:>8}")
        } else {
            format!("{done:>8}/{}", human_size(total as f64))
        }
    } else if current > total {
        format!("{current} {}", detail.units)
    } else {
        format!("{current}/{total} {}", detail.units)
    };
    let mut left_box = String::new();
    if current > 0 && detail.start > 0 && percentage < 50 {
        let from_start = now_nanos - i128::from(detail.start) * 1_000_000_000;
        let per_entry = from_start / i128::from(current);
        let left = i128::from(total - current) * per_entry;
        if width > 50 {
            left_box = format!(" {}", go_seconds(left / 1_000_000_000));
        }
    }
    format!("{bar}{numbers}{left_box}")
}

/// Go's `time.Duration.String()` of a whole number of seconds (`0s`, `45s`, `2m0s`,
/// `1h0m5s`).
fn go_seconds(seconds: i128) -> String {
    if seconds == 0 {
        return "0s".to_string();
    }
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.abs();
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, _) => format!("{sign}{m}m{s}s"),
        _ => format!("{sign}{h}h{m}m{s}s"),
    }
}

/// The columns of the terminal on `fd`, or docker's 200 when it cannot tell.
fn terminal_width(fd: impl AsFd) -> usize {
    rustix::termios::tcgetwinsize(fd)
        .ok()
        .map(|size| usize::from(size.ws_col))
        .filter(|cols| *cols > 0)
        .unwrap_or(200)
}

fn now_nanos() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Reads a message stream to its end, printing each message (unless `quiet`) and
/// collecting `aux` values. The stream's error message fails the command, as in docker.
pub async fn display(
    response: &mut Response,
    quiet: bool,
) -> anyhow::Result<Vec<serde_json::Value>> {
    display_to(response, quiet, false).await
}

/// [`display`] onto stderr when `to_stderr` (docker run shows its implicit pull there).
pub async fn display_to(
    response: &mut Response,
    quiet: bool,
    to_stderr: bool,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut aux = Vec::new();
    let terminal = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let mut bars = terminal.then(|| {
        TerminalProgress::new(if to_stderr {
            terminal_width(std::io::stderr())
        } else {
            terminal_width(std::io::stdout())
        })
    });
    while let Some(message) = response.json_line::<JsonMessage>().await? {
        if let Some(detail) = &message.error_detail {
            let text = if detail.message.is_empty() {
                message.error.clone()
            } else {
                detail.message.clone()
            };
            return Err(StatusError::new(1, text).into());
        }
        if !message.error.is_empty() {
            return Err(StatusError::new(1, message.error.clone()).into());
        }
        if let Some(value) = &message.aux {
            aux.push(value.clone());
            continue;
        }
        if quiet {
            continue;
        }
        let text = match bars.as_mut() {
            Some(bars) => Some(bars.render(&message, now_nanos())),
            None => render(&message),
        };
        if let Some(line) = text {
            if to_stderr {
                let mut err = std::io::stderr().lock();
                err.write_all(line.as_bytes())?;
                err.flush()?;
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes())?;
                out.flush()?;
            }
        }
    }
    Ok(aux)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(json: &str) -> Option<String> {
        render(&serde_json::from_str(json).expect("json"))
    }

    fn message(json: &str) -> JsonMessage {
        serde_json::from_str(json).expect("json")
    }

    #[test]
    fn a_terminal_gets_one_line_per_layer_rewritten_in_place() {
        let mut bars = TerminalProgress::new(120);
        let now = 1_000_i128 * 1_000_000_000;
        let mut out = String::new();
        for json in [
            r#"{"status":"Pulling from library/busybox","id":"latest"}"#,
            r#"{"status":"Pulling fs layer","progressDetail":{},"id":"aaa"}"#,
            r#"{"status":"Pulling fs layer","progressDetail":{},"id":"bbb"}"#,
            r#"{"status":"Downloading","progressDetail":{"current":500,"total":1000},"id":"aaa"}"#,
            r#"{"status":"Pull complete","progressDetail":{},"id":"bbb"}"#,
            r#"{"status":"Digest: sha256:abc"}"#,
        ] {
            out.push_str(&bars.render(&message(json), now));
        }
        let bar = format!("[{}>{}] ", "=".repeat(25), " ".repeat(25));
        assert_eq!(
            out,
            format!(
                "latest: Pulling from library/busybox\n\
                 \n\x1b[1A\x1b[2K\raaa: Pulling fs layer \r\x1b[1B\
                 \n\x1b[1A\x1b[2K\rbbb: Pulling fs layer \r\x1b[1B\
                 \x1b[2A\x1b[2K\raaa: Downloading {bar}    500B/1kB\r\x1b[2B\
                 \x1b[1A\x1b[2K\rbbb: Pull complete \r\x1b[1B\
                 Digest: sha256:abc\n"
            )
        );
    }

    #[test]
    fn the_progress_bar_follows_dockers_widths_and_time_left() {
        let detail = ProgressDetail {
            current: 250,
            total: 1000,
            start: 990,
            ..ProgressDetail::default()
        };
        let now = 1_000_i128 * 1_000_000_000;
        // 10 s for 250 bytes: 30 s left for the other 750.
        assert_eq!(
            progress_bar(&detail, 120, now),
            format!("[{}>{}]     250B/1kB 30s", "=".repeat(12), " ".repeat(38))
        );
        assert_eq!(progress_bar(&detail, 80, now), "    250B/1kB 30s");
        assert_eq!(progress_bar(&detail, 40, now), "    250B/1kB");
        let unknown_total = ProgressDetail {
            current: 2048,
            ..ProgressDetail::default()
        };
        // Go's %8v: the size right-aligned in eight columns, no bar.
        assert_eq!(progress_bar(&unknown_total, 120, now), " 2.048kB");
        assert_eq!(go_seconds(125), "2m5s");
        assert_eq!(go_seconds(3600), "1h0m0s");
    }

    #[test]
    fn non_terminal_rendering_matches_docker() {
        assert_eq!(
            line(r#"{"status":"Pulling from library/busybox","id":"latest"}"#).as_deref(),
            Some("latest: Pulling from library/busybox\n")
        );
        assert_eq!(
            line(
                r#"{"status":"Downloading","progressDetail":{"current":10,"total":20},"progress":"[==>  ]","id":"abc"}"#
            ),
            None
        );
        assert_eq!(
            line(r#"{"status":"Pull complete","progressDetail":{},"id":"abc"}"#).as_deref(),
            Some("abc: Pull complete\n")
        );
        assert_eq!(
            line(r#"{"stream":"Loaded image: busybox:latest\n"}"#).as_deref(),
            Some("Loaded image: busybox:latest\n")
        );
        assert_eq!(
            line(r#"{"status":"sha256:abc"}"#).as_deref(),
            Some("sha256:abc\n")
        );
    }
}
