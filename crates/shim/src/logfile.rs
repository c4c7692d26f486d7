//! The json-file log driver as Docker writes it: one JSON object per line, 16 KiB partial
//! messages, size-based rotation (`max-size`, `max-file`).
//!
//! Matches moby's daemon/logger/jsonfilelog: `{"log":"...","stream":"stdout","time":"..."}`
//! with the time in Go's RFC3339Nano (trailing zeros of the fraction trimmed), Go's string
//! escaping (`<`, `>`, `&`, U+2028/9 as `\u....`, invalid UTF-8 as U+FFFD), lines longer than
//! the copier's 16 KiB buffer split into partial entries without a trailing newline.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Docker's copier buffer: longer lines become several partial entries.
pub const PARTIAL_SIZE: usize = 16 * 1024;

/// Failures writing or rotating a log file.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("opening log file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing log file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("rotating log file {path}")]
    Rotate {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Rotation limits; `max_size == 0` means unbounded (Docker's `-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_size: u64,
    pub max_file: u32,
}

/// An open json-file log with its rotation state.
pub struct JsonFileLog {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
}

impl JsonFileLog {
    /// Opens (appending to) `path`.
    pub fn open(path: &Path, rotation: Rotation) -> Result<JsonFileLog, LogError> {
        let file = open_append(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(JsonFileLog {
            path: path.to_path_buf(),
            file,
            size,
            rotation,
        })
    }

    /// Writes one entry (`message` already holds its trailing newline, or none if partial).
    pub fn write_entry(
        &mut self,
        stream: &str,
        message: &[u8],
        time: SystemTime,
    ) -> Result<(), LogError> {
        let mut line = Vec::with_capacity(message.len() + 64);
        line.extend_from_slice(b"{\"log\":");
        escape_json_string(message, &mut line);
        line.extend_from_slice(b",\"stream\":\"");
        line.extend_from_slice(stream.as_bytes());
        line.extend_from_slice(b"\",\"time\":\"");
        line.extend_from_slice(rfc3339_nano(time).as_bytes());
        line.extend_from_slice(b"\"}\n");
        // moby rotates before a write once the current file reached its capacity.
        if self.rotation.max_size > 0 && self.size >= self.rotation.max_size {
            self.rotate()?;
        }
        self.file
            .write_all(&line)
            .map_err(|source| LogError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), LogError> {
        let err = |source| LogError::Rotate {
            path: self.path.clone(),
            source,
        };
        let max_file = self.rotation.max_file.max(1);
        if max_file > 1 {
            for n in (1..max_file).rev() {
                let from = rotated_name(&self.path, n - 1);
                let to = rotated_name(&self.path, n);
                match fs::rename(&from, &to) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(err(e)),
                }
            }
            self.file = open_append(&self.path)?;
        } else {
            self.file.set_len(0).map_err(err)?;
        }
        self.size = 0;
        Ok(())
    }
}

/// `path` for n == 0, else `path.n` (Docker's names for rotated files).
pub fn rotated_name(path: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return path.to_path_buf();
    }
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn open_append(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| LogError::Open {
            path: path.to_path_buf(),
            source,
        })
}

/// Splits a byte stream into log messages: whole lines, or [`PARTIAL_SIZE`] chunks of a longer
/// line, and whatever is left at end of stream.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes; calls `emit` for every complete message.
    pub fn push(&mut self, mut data: &[u8], emit: &mut dyn FnMut(&[u8])) {
        while !data.is_empty() {
            let room = PARTIAL_SIZE - self.pending.len();
            let window = &data[..data.len().min(room)];
            if let Some(nl) = window.iter().position(|&b| b == b'\n') {
                self.pending.extend_from_slice(&window[..=nl]);
                emit(&self.pending);
                self.pending.clear();
                data = &data[nl + 1..];
            } else {
                self.pending.extend_from_slice(window);
                data = &data[window.len()..];
                if self.pending.len() == PARTIAL_SIZE {
                    emit(&self.pending);
                    self.pending.clear();
                }
            }
        }
    }

    /// End of stream: emits a final unterminated message if any.
    pub fn finish(&mut self, emit: &mut dyn FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending.clear();
        }
    }
}

/// Writes `bytes` as a JSON string the way Go's encoding/json does.
pub fn escape_json_string(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let text = String::from_utf8_lossy(bytes);
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Go's `time.RFC3339Nano` in UTC: `2006-01-02T15:04:05.999999999Z`, fraction zeros trimmed.
pub fn rfc3339_nano(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let nanos = since.subsec_nanos();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let mut text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's civil_from_days algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn escaped(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        escape_json_string(bytes, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn escaping_matches_go_encoding_json() {
        assert_eq!(escaped(b"a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(escaped(b"<&>"), r#""\u003c\u0026\u003e""#);
        assert_eq!(escaped(b"\x01\x1b\t\r"), r#""\u0001\u001b\t\r""#);
        assert_eq!(escaped(b"\xff ok"), "\"\u{fffd} ok\"");
        assert_eq!(escaped("é \u{2028}".as_bytes()), "\"é \\u2028\"");
    }

    #[test]
    fn escaped_strings_parse_back_as_json() {
        let input = "tab\there \"quoted\" <html> \u{7f} ünïcode\n";
        let back: String = serde_json::from_str(&escaped(input.as_bytes())).expect("valid json");
        assert_eq!(back, input);
    }

    #[test]
    fn time_is_rfc3339_nano_with_trimmed_fraction() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 120_000_000);
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20.12Z");
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = UNIX_EPOCH + Duration::new(951_782_400, 1);
        assert_eq!(rfc3339_nano(leap), "2000-02-29T00:00:00.000000001Z");
    }

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut splitter = LineSplitter::default();
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, &mut |m| out.push(m.to_vec()));
        }
        splitter.finish(&mut |m| out.push(m.to_vec()));
        out
    }

    #[test]
    fn lines_are_joined_across_reads_and_split_at_newlines() {
        let got = split(&[b"hel", b"lo\nwor", b"ld\n\nend"]);
        let want: Vec<Vec<u8>> = vec![
            b"hello\n".to_vec(),
            b"world\n".to_vec(),
            b"\n".to_vec(),
            b"end".to_vec(),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn long_lines_become_16k_partial_messages() {
        let mut line = vec![b'x'; PARTIAL_SIZE * 2 + 10];
        line.push(b'\n');
        let got = split(&[&line]);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].len(), PARTIAL_SIZE);
        assert_eq!(got[1].len(), PARTIAL_SIZE);
        assert_eq!(got[2], b"xxxxxxxxxx\n".to_vec());
        assert!(!got[0].ends_with(b"\n"));
    }

    fn entries(path: &Path) -> Vec<serde_json::Value> {
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is json"))
            .collect()
    }

    #[test]
    fn entries_have_docker_json_file_shape() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c-json.log");
        let rotation = Rotation {
            max_size: 0,
            max_file: 1,
        };
        let mut log = JsonFileLog::open(&path, rotation).expect("open");
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        log.write_entry("stderr", b"oops <x>\n", t).expect("write");
        let text = fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            "{\"log\":\"oops \\u003cx\\u003e\\n\",\"stream\":\"stderr\",\"time\":\"2023-11-14T22:13:20.000000005Z\"}\n"
        );
    }

    #[test]
    fn rotation_keeps_max_file_files_and_drops_the_oldest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let rotation = Rotation {
            max_size: 100,
            max_file: 3,
        };
        let mut log = JsonFileLog::open(&path, rotation).expect("open");
        for i in 0..10 {
            // Each entry is about 70 bytes, so every second write rotates.
            log.write_entry("stdout", format!("line {i}\n").as_bytes(), UNIX_EPOCH)
                .expect("write");
        }
        assert!(rotated_name(&path, 1).exists());
        assert!(rotated_name(&path, 2).exists());
        assert!(!rotated_name(&path, 3).exists());
        let newest: Vec<_> = entries(&path).iter().map(|e| e["log"].clone()).collect();
        assert_eq!(newest, vec!["line 8\n", "line 9\n"]);
        let oldest = entries(&rotated_name(&path, 2));
        assert_eq!(oldest[0]["log"], "line 4\n");
    }

    #[test]
    fn max_file_one_truncates_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let rotation = Rotation {
            max_size: 50,
            max_file: 1,
        };
        let mut log = JsonFileLog::open(&path, rotation).expect("open");
        for i in 0..5 {
            log.write_entry("stdout", format!("n{i}\n").as_bytes(), UNIX_EPOCH)
                .expect("write");
        }
        assert!(!rotated_name(&path, 1).exists());
        let left: Vec<_> = entries(&path).iter().map(|e| e["log"].clone()).collect();
        assert_eq!(left, vec!["n4\n"]);
    }
}
