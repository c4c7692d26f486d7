//! Log entries as `GET /containers/{id}/logs` sends them (moby's daemon/logs.go and
//! stdcopy): `details` puts the attributes first (`k=v,k2=v2 `, query-escaped, sorted),
//! `timestamps` puts the time first (RFC 3339 with a fixed nine-digit fraction and a space),
//! and without a TTY each message is one stdcopy frame of its stream.

use berth_api::stream::{encode_frame_header, StdStream};

use super::{LogEntry, LogStreamKind};

/// The query parameters and container facts that shape the bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// The container has a TTY: raw bytes, no frames.
    pub tty: bool,
    pub timestamps: bool,
    pub details: bool,
}

/// The bytes of one entry on the wire.
pub fn encode(entry: &LogEntry, options: &EncodeOptions) -> Vec<u8> {
    let mut payload = Vec::with_capacity(entry.line.len() + 48);
    if options.timestamps {
        payload.extend_from_slice(fixed_rfc3339_nano(entry.time_nanos).as_bytes());
        payload.push(b' ');
    }
    if options.details {
        let attrs: Vec<String> = entry
            .attrs
            .iter()
            .map(|(key, value)| format!("{}={}", query_escape(key), query_escape(value)))
            .collect();
        payload.extend_from_slice(attrs.join(",").as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(&entry.line);
    if options.tty {
        return payload;
    }
    let stream = match entry.stream {
        LogStreamKind::Stdout => StdStream::Stdout,
        LogStreamKind::Stderr => StdStream::Stderr,
    };
    let mut frame = Vec::with_capacity(payload.len() + 8);
    frame.extend_from_slice(&encode_frame_header(stream, payload.len() as u32));
    frame.extend_from_slice(&payload);
    frame
}

/// Docker's `RFC3339NanoFixed` in UTC: `2006-01-02T15:04:05.000000000Z`.
fn fixed_rfc3339_nano(time_nanos: i64) -> String {
    let seconds = time_nanos.div_euclid(1_000_000_000);
    let nanos = time_nanos.rem_euclid(1_000_000_000);
    let whole = berth_api::time::format_rfc3339_nano(seconds, 0);
    let date_time = whole.trim_end_matches('Z');
    format!("{date_time}.{nanos:09}Z")
}

/// Go's `url.QueryEscape`: unreserved bytes stay, space becomes `+`, the rest `%XX`.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn entry(stream: LogStreamKind, line: &str) -> LogEntry {
        LogEntry {
            stream,
            line: line.as_bytes().to_vec(),
            time_nanos: 1_700_000_000_000_000_005,
            attrs: BTreeMap::new(),
        }
    }

    #[test]
    fn non_tty_entries_are_stdcopy_frames_of_their_stream() {
        let bytes = encode(
            &entry(LogStreamKind::Stderr, "oops\n"),
            &EncodeOptions::default(),
        );
        assert_eq!(bytes, b"\x02\0\0\0\0\0\0\x05oops\n".to_vec());
        let bytes = encode(
            &entry(LogStreamKind::Stdout, "hi\n"),
            &EncodeOptions::default(),
        );
        assert_eq!(&bytes[..8], &[1, 0, 0, 0, 0, 0, 0, 3]);
    }

    #[test]
    fn tty_entries_are_raw_bytes() {
        let options = EncodeOptions {
            tty: true,
            ..EncodeOptions::default()
        };
        assert_eq!(
            encode(&entry(LogStreamKind::Stdout, "hi\n"), &options),
            b"hi\n".to_vec()
        );
    }

    #[test]
    fn timestamps_have_a_fixed_nine_digit_fraction() {
        let options = EncodeOptions {
            tty: true,
            timestamps: true,
            ..EncodeOptions::default()
        };
        assert_eq!(
            encode(&entry(LogStreamKind::Stdout, "hi\n"), &options),
            b"2023-11-14T22:13:20.000000005Z hi\n".to_vec()
        );
        assert_eq!(fixed_rfc3339_nano(0), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn details_prefix_sorted_query_escaped_attrs() {
        let mut e = entry(LogStreamKind::Stdout, "hi\n");
        e.attrs.insert("b".into(), "x y".into());
        e.attrs.insert("a".into(), "1&2".into());
        let options = EncodeOptions {
            tty: true,
            timestamps: true,
            details: true,
        };
        assert_eq!(
            String::from_utf8(encode(&e, &options)).expect("utf-8"),
            "2023-11-14T22:13:20.000000005Z a=1%262,b=x+y hi\n"
        );
        let mut bare = entry(LogStreamKind::Stdout, "hi\n");
        bare.attrs.clear();
        let details = EncodeOptions {
            tty: true,
            details: true,
            ..EncodeOptions::default()
        };
        assert_eq!(encode(&bare, &details), b" hi\n".to_vec());
    }
}
