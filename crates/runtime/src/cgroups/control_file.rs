//! Reading and writing cgroupfs interface files, with the path in every error.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use super::CgroupError;

/// Writes `value` to an existing interface file, as one `write(2)` (cgroupfs parses each write
/// on its own). Never creates the file: a missing file means a missing controller or feature.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(|source| CgroupError::io("open", &path, source))?;
    f.write_all(value.as_bytes())
        .map_err(|source| CgroupError::Write {
            path: path.clone(),
            value: value.to_string(),
            source,
        })
}

/// Reads an interface file; `Ok(None)` when the file does not exist.
pub(crate) fn read_optional(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::io("read", &path, source)),
    }
}

/// Reads an interface file that must exist.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|source| CgroupError::io("read", &path, source))
}

pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

/// Parses a single number; `max` (v2 and pids) reads as `u64::MAX`, as runc does.
pub(crate) fn parse_u64(dir: &Path, file: &str, text: &str) -> Result<u64, CgroupError> {
    let t = text.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse::<u64>().map_err(|_| CgroupError::Parse {
        path: dir.join(file),
        content: t.chars().take(80).collect(),
    })
}

/// Reads a single-number file; 0 when the file is absent (stats are best effort, as runc's).
pub(crate) fn read_u64_or_zero(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    match read_optional(dir, file)? {
        Some(text) => parse_u64(dir, file, &text),
        None => Ok(0),
    }
}

/// Parses "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control).
/// Lines that are not a key and a number are skipped.
pub(crate) fn parse_keyed(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let key = parts.next()?;
            let value = parts.next()?.parse::<u64>().ok()?;
            Some((key.to_string(), value))
        })
        .collect()
}

/// The value of `key` in a keyed file's text, 0 when absent.
pub(crate) fn keyed_value(text: &str, key: &str) -> u64 {
    parse_keyed(text)
        .into_iter()
        .find(|(k, _)| k == key)
        .map_or(0, |(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_refuses_to_create_a_missing_interface_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = write(dir.path(), "memory.max", "1").expect_err("missing file");
        assert!(err.to_string().contains("memory.max"), "{err}");
        assert!(!dir.path().join("memory.max").exists());
    }

    #[test]
    fn write_replaces_the_previous_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("pids.max"), "123456789").expect("seed");
        write(dir.path(), "pids.max", "max").expect("write");
        assert_eq!(read(dir.path(), "pids.max").expect("read"), "max");
    }

    #[test]
    fn parse_u64_reads_max_as_unlimited() {
        let d = Path::new("/x");
        assert_eq!(parse_u64(d, "f", "max\n").expect("max"), u64::MAX);
        assert_eq!(parse_u64(d, "f", "42\n").expect("42"), 42);
        assert!(parse_u64(d, "f", "forty").is_err());
    }

    #[test]
    fn keyed_files_skip_malformed_lines() {
        let text = "cache 10\nbogus\nrss 20 extra\nname x\n";
        assert_eq!(
            parse_keyed(text),
            vec![("cache".to_string(), 10), ("rss".to_string(), 20)]
        );
        assert_eq!(keyed_value(text, "rss"), 20);
        assert_eq!(keyed_value(text, "swap"), 0);
    }
}
