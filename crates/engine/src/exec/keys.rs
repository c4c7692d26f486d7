//! Detach keys: Docker's `--detach-keys` syntax (moby/term's `ToBytes`) and the stdin scanner
//! that holds back a partial sequence and reports a complete one (moby/term's escape proxy).

/// Docker's default detach sequence: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [16, 17];

/// A key name Docker does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown character: '{0}'")]
pub struct UnknownKey(pub String);

/// Parses `ctrl-p,ctrl-q`-style sequences: each comma-separated item is one character, a
/// `ctrl-@`..`ctrl-_` name (codes 0 to 31, `ctrl-a` is 1) or `DEL` (127), as moby/term's
/// `ToBytes` (case-sensitive, like Docker).
pub fn parse_detach_keys(text: &str) -> Result<Vec<u8>, UnknownKey> {
    const CTRL: &[u8; 32] = b"@abcdefghijklmnopqrstuvwxyz[\\]^_";
    let mut codes = Vec::new();
    for key in text.split(',') {
        if key.len() == 1 {
            codes.push(key.as_bytes()[0]);
            continue;
        }
        if key == "DEL" {
            codes.push(127);
            continue;
        }
        let code = key
            .strip_prefix("ctrl-")
            .filter(|rest| rest.len() == 1)
            .and_then(|rest| CTRL.iter().position(|c| *c == rest.as_bytes()[0]));
        match code {
            Some(code) => codes.push(code as u8),
            None => return Err(UnknownKey(key.to_string())),
        }
    }
    Ok(codes)
}

/// What a chunk of stdin turned into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// Bytes to forward (a partial detach sequence at the end is held back).
    Forward(Vec<u8>),
    /// The detach sequence completed; forward these bytes first, then detach.
    Detach(Vec<u8>),
}

/// Streaming detector of the detach sequence across reads.
#[derive(Debug, Clone)]
pub struct EscapeScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeScanner {
    /// A scanner for `keys`; an empty sequence means Docker's default.
    pub fn new(keys: &[u8]) -> EscapeScanner {
        let keys = if keys.is_empty() {
            DEFAULT_DETACH_KEYS.to_vec()
        } else {
            keys.to_vec()
        };
        EscapeScanner { keys, matched: 0 }
    }

    /// Scans one chunk of client input.
    pub fn scan(&mut self, input: &[u8]) -> Scan {
        let mut out = Vec::with_capacity(input.len() + self.matched);
        for &byte in input {
            if byte == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Scan::Detach(out);
                }
                continue;
            }
            // Not the sequence after all: release what was held back, then see whether this
            // byte starts a new sequence (ctrl-p ctrl-p ctrl-q still detaches).
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if byte == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return Scan::Detach(out);
                }
            } else {
                out.push(byte);
            }
        }
        Scan::Forward(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_key_names_parse_to_their_codes() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q"), Ok(vec![16, 17]));
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-a,ctrl-z"),
            Ok(vec![0, 1, 26])
        );
        assert_eq!(
            parse_detach_keys("ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_"),
            Ok(vec![27, 28, 29, 30, 31])
        );
        assert_eq!(parse_detach_keys("a,DEL,,"), Err(UnknownKey(String::new())));
        assert_eq!(parse_detach_keys("x,DEL"), Ok(vec![b'x', 127]));
    }

    #[test]
    fn unknown_keys_get_dockers_text() {
        for bad in ["ctrl-P", "ctrl-", "ctrl-pq", "ab", "del", "ctrl-1"] {
            let err = parse_detach_keys(bad).expect_err(bad);
            assert_eq!(err.to_string(), format!("Unknown character: '{bad}'"));
        }
    }

    #[test]
    fn default_sequence_detaches_and_is_not_forwarded() {
        let mut scanner = EscapeScanner::new(&[]);
        assert_eq!(scanner.scan(b"ab\x10\x11cd"), Scan::Detach(b"ab".to_vec()));
    }

    #[test]
    fn a_sequence_split_across_reads_is_held_then_detaches() {
        let mut scanner = EscapeScanner::new(&[16, 17]);
        assert_eq!(scanner.scan(b"x\x10"), Scan::Forward(b"x".to_vec()));
        assert_eq!(scanner.scan(b"\x11"), Scan::Detach(Vec::new()));
    }

    #[test]
    fn a_broken_sequence_releases_the_held_bytes() {
        let mut scanner = EscapeScanner::new(&[16, 17]);
        assert_eq!(scanner.scan(b"\x10"), Scan::Forward(Vec::new()));
        assert_eq!(scanner.scan(b"z"), Scan::Forward(b"\x10z".to_vec()));
        assert_eq!(
            scanner.scan(b"\x10\x10\x11"),
            Scan::Detach(b"\x10".to_vec())
        );
    }

    #[test]
    fn single_key_sequences_detach_at_once() {
        let mut scanner = EscapeScanner::new(&parse_detach_keys("ctrl-x").expect("keys"));
        assert_eq!(scanner.scan(b"ab\x18"), Scan::Detach(b"ab".to_vec()));
        let mut scanner = EscapeScanner::new(b"q");
        assert_eq!(scanner.scan(b"q"), Scan::Detach(Vec::new()));
    }
}
