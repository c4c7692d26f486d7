//! Times as Go's `encoding/json` writes them: RFC 3339 with nanoseconds, trailing zeros
//! trimmed (`time.RFC3339Nano`), `Z` for UTC, and `0001-01-01T00:00:00Z` for the zero time.

/// Go's zero `time.Time`, which Docker writes for "never" (e.g. `FinishedAt` of a
/// container that has not exited).
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Formats a UTC instant (seconds since the Unix epoch plus nanoseconds) as Go's
/// `time.RFC3339Nano`.
pub fn format_rfc3339_nano(unix_seconds: i64, nanos: u32) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let second_of_day = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        second_of_day / 3600,
        (second_of_day / 60) % 60,
        second_of_day % 60
    );
    let nanos = nanos % 1_000_000_000;
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// Parses an RFC 3339 time (as Go's `time.Time` JSON decoding accepts it) into seconds
/// since the Unix epoch and nanoseconds, honouring any `±hh:mm` offset.
pub fn parse_rfc3339(text: &str) -> Option<(i64, u32)> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' {
        return None;
    }
    if !matches!(bytes[10], b'T' | b't') || bytes[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 59 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos: u32 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let padded = format!("{:0<9}", &fraction[..digits]);
        nanos = padded.parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let hours: i64 = rest[1..3].parse().ok()?;
            let minutes: i64 = rest[4..6].parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    Some((
        days * 86_400 + hour * 3600 + minute * 60 + second - offset,
        nanos,
    ))
}

/// Howard Hinnant's days-from-civil algorithm (proleptic Gregorian calendar).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Seconds from 0001-01-01 to the Unix epoch: Go's zero time as a Unix timestamp.
pub const ZERO_TIME_UNIX: i64 = -62_135_596_800;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_zero_time_formats_as_docker_writes_it() {
        assert_eq!(format_rfc3339_nano(ZERO_TIME_UNIX, 0), ZERO_TIME);
        assert_eq!(parse_rfc3339(ZERO_TIME), Some((ZERO_TIME_UNIX, 0)));
    }

    #[test]
    fn nanoseconds_are_trimmed_like_rfc3339nano() {
        assert_eq!(
            format_rfc3339_nano(1_700_000_000, 123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(
            format_rfc3339_nano(1_700_000_000, 120_000_000),
            "2023-11-14T22:13:20.12Z"
        );
        assert_eq!(format_rfc3339_nano(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339_nano(951_782_400, 0), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn parsing_honours_offsets_and_round_trips() {
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.5+01:00"),
            Some((1_700_000_000, 500_000_000))
        );
        for (secs, nanos) in [
            (0, 0),
            (1_700_000_000, 1),
            (-1, 999_999_999),
            (4_102_444_800, 42),
        ] {
            let text = format_rfc3339_nano(secs, nanos);
            assert_eq!(parse_rfc3339(&text), Some((secs, nanos)), "{text}");
        }
    }

    #[test]
    fn malformed_times_are_refused() {
        for text in [
            "",
            "2023-11-14",
            "2023-13-01T00:00:00Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+0100",
            "２023-11-14T22:13:20Z",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
    }
}
