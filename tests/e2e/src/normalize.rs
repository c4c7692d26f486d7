//! Normalising docker CLI output so two daemons' answers compare: what legitimately
//! differs between runs (IDs, relative and absolute times, sizes, table padding) becomes a
//! placeholder; everything else must match byte for byte.

use std::process::Output;

/// Exit code and normalised stdout/stderr of one docker CLI run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Normalises an `Output` (a signal death is code -1).
    pub fn of(output: &Output) -> Outcome {
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: normalize(&String::from_utf8_lossy(&output.stdout)),
            stderr: normalize(&String::from_utf8_lossy(&output.stderr)),
        }
    }
}

/// Relative-time phrases of Docker's `units.HumanDuration` (go-units).
const DURATION_PHRASES: &[&str] = &["Less than a second", "About a minute", "About an hour"];
const DURATION_UNITS: &[&str] = &[
    "second", "seconds", "minute", "minutes", "hour", "hours", "day", "days", "week", "weeks",
    "month", "months", "year", "years",
];
/// Units of go-units `HumanSize` (decimal, as `docker images` prints).
const SIZE_UNITS: &[&str] = &["B", "kB", "MB", "GB", "TB"];

/// Replaces IDs (64 and 12 hex digits) with `<id>`, Docker's relative durations with
/// `<duration>`, RFC 3339 times with `<time>`, human sizes with `<size>`, collapses table
/// padding (2+ spaces) to 3 spaces and trims trailing whitespace on every line.
pub fn normalize(text: &str) -> String {
    text.lines()
        .map(normalize_line)
        .collect::<Vec<_>>()
        .join("\n")
}

fn normalize_line(line: &str) -> String {
    let mut line = replace_ids(line);
    for phrase in DURATION_PHRASES {
        line = line.replace(phrase, "<duration>");
    }
    let mut words: Vec<String> = Vec::new();
    let tokens = split_keeping_spaces(&line);
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i].as_str();
        // "<n> seconds": a number, one space, a unit (punctuation after the unit is kept).
        if is_number(token) && tokens.get(i + 1).is_some_and(|s| s == " ") {
            if let Some(next) = tokens.get(i + 2) {
                let unit = next.trim_end_matches(|c: char| !c.is_ascii_alphabetic());
                if DURATION_UNITS.contains(&unit) {
                    words.push(format!("<duration>{}", &next[unit.len()..]));
                    i += 3;
                    continue;
                }
            }
        }
        if is_size(token) {
            words.push("<size>".to_string());
        } else if is_rfc3339(token) {
            words.push("<time>".to_string());
        } else if token.starts_with("  ") {
            words.push("   ".to_string());
        } else {
            words.push(token.to_string());
        }
        i += 1;
    }
    words.concat().trim_end().to_string()
}

/// Splits into alternating runs of spaces and runs of non-spaces.
fn split_keeping_spaces(line: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    for c in line.chars() {
        let space = c == ' ';
        match tokens.last_mut() {
            Some(last) if last.starts_with(' ') == space => last.push(c),
            _ => tokens.push(c.to_string()),
        }
    }
    tokens
}

/// Maximal runs of lowercase hex digits of length 64 or 12 (not part of a longer word)
/// become `<id>` (all-digit runs too: one short ID in 300 has no letter).
pub fn replace_ids(line: &str) -> String {
    let bytes = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < bytes.len() {
        let is_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if is_hex(bytes[i]) && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            let mut j = i;
            while j < bytes.len() && is_hex(bytes[j]) {
                j += 1;
            }
            let bounded = j == bytes.len() || !bytes[j].is_ascii_alphanumeric();
            let run = &line[i..j];
            if bounded && (run.len() == 64 || run.len() == 12) {
                out.push_str("<id>");
                i = j;
                continue;
            }
            out.push_str(run);
            i = j;
            continue;
        }
        // Copy one whole character.
        let c = line[i..]
            .chars()
            .next()
            .expect("invariant: i is a char boundary");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn is_number(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit())
}

fn is_size(token: &str) -> bool {
    SIZE_UNITS.iter().any(|unit| {
        token.strip_suffix(unit).is_some_and(|number| {
            number.bytes().next().is_some_and(|b| b.is_ascii_digit())
                && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        })
    })
}

/// `2026-11-30T07:22:48.123456789Z` or with an offset.
fn is_rfc3339(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_64_and_12_hex_digits_become_placeholders() {
        let long = "2d055c8adbaaf1c504a13bb1802e2337250d3614f2bc33c0b811d063d60b0cc3";
        assert_eq!(normalize(long), "<id>");
        assert_eq!(normalize(&format!("sha256:{long}")), "sha256:<id>");
        assert_eq!(
            normalize("Conflict. by container \"2d055c8adbaa\"."),
            "Conflict. by container \"<id>\"."
        );
        // Not IDs: a hex run inside a word, other lengths.
        assert_eq!(normalize("x2d055c8adbaa"), "x2d055c8adbaa");
        assert_eq!(normalize("deadbeef"), "deadbeef");
    }

    #[test]
    fn relative_durations_times_and_sizes_become_placeholders() {
        assert_eq!(normalize("Up Less than a second"), "Up <duration>");
        assert_eq!(
            normalize("Exited (137) 3 seconds ago"),
            "Exited (137) <duration> ago"
        );
        assert_eq!(normalize("About a minute ago"), "<duration> ago");
        assert_eq!(
            normalize("created 2026-11-30T07:22:48.1Z"),
            "created <time>"
        );
        assert_eq!(normalize("busybox latest 1.98MB"), "busybox latest <size>");
        assert_eq!(normalize("exit 3 now"), "exit 3 now");
    }

    #[test]
    fn table_padding_collapses_so_column_widths_do_not_matter() {
        let docker = "NAMES     STATUS\nc1        Up Less than a second   ";
        let berth = "NAMES   STATUS\nc1      Up 1 second";
        assert_eq!(normalize(docker), normalize(berth));
        assert_eq!(normalize(berth), "NAMES   STATUS\nc1   Up <duration>");
    }
}
