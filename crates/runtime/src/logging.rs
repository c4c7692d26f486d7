//! Where berth-runtime's own messages go: stderr or the --log file, as text or JSON, in
//! runc's (logrus's) shapes: `time="..." level=error msg="..."` and
//! `{"level":"error","msg":"...","time":"..."}`.

use std::io::Write;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::state::rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

struct Sink {
    file: Option<std::fs::File>,
    json: bool,
    debug: bool,
}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Configures logging once at startup (`--log`, `--log-format`, `--debug`).
pub fn init(file: Option<std::fs::File>, json: bool, debug: bool) {
    if let Ok(mut s) = SINK.lock() {
        *s = Some(Sink { file, json, debug });
    }
}

/// True when messages go to a file (the caller then also prints errors on stderr, as runc).
pub fn to_file() -> bool {
    SINK.lock()
        .map(|s| s.as_ref().is_some_and(|s| s.file.is_some()))
        .unwrap_or(false)
}

/// One log line in logrus's text or JSON format.
pub fn format_line(level: Level, msg: &str, json: bool, now: SystemTime) -> String {
    let time = rfc3339(
        now.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    if json {
        let v = serde_json::json!({"level": level.as_str(), "msg": msg, "time": time});
        format!("{v}\n")
    } else {
        let quoted = serde_json::to_string(msg).unwrap_or_default();
        format!("time=\"{time}\" level={} msg={quoted}\n", level.as_str())
    }
}

pub fn log(level: Level, msg: &str) {
    let Ok(mut guard) = SINK.lock() else { return };
    let sink = guard.get_or_insert(Sink {
        file: None,
        json: false,
        debug: false,
    });
    if level == Level::Debug && !sink.debug {
        return;
    }
    let line = format_line(level, msg, sink.json, SystemTime::now());
    match sink.file.as_mut() {
        Some(f) => {
            let _ = f.write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

pub fn warn(msg: &str) {
    log(Level::Warn, msg)
}

pub fn debug(msg: &str) {
    log(Level::Debug, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn text_and_json_lines_have_logrus_shape() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_272_581);
        assert_eq!(
            format_line(Level::Error, "container \"x\" gone", false, t),
            "time=\"2026-12-03T04:36:21Z\" level=error msg=\"container \\\"x\\\" gone\"\n"
        );
        assert_eq!(
            format_line(Level::Warn, "hi", true, t),
            "{\"level\":\"warning\",\"msg\":\"hi\",\"time\":\"2026-12-03T04:36:21Z\"}\n"
        );
    }
}
