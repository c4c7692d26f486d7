//! Go's time printing for the columns docker fills with `time.Time.String()` and
//! `RFC3339Nano` text: civil dates from Unix seconds, in UTC.

/// `(year, month, day)` of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
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

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Go's `time.Unix(s, 0).String()` in UTC: `2026-11-30 07:24:04 +0000 UTC`.
pub fn go_time_string(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} +0000 UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Unix seconds (with fraction) of an RFC 3339 time such as Docker's
/// `2026-11-30T07:24:04.123456789Z` or with a `+01:00` offset.
pub fn parse_rfc3339(text: &str) -> Option<f64> {
    let (date, rest) = text.split_once('T')?;
    let mut date_parts = date.split('-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let (clock, offset) = if let Some(clock) = rest.strip_suffix('Z') {
        (clock, 0i64)
    } else {
        let split = rest.rfind(['+', '-'])?;
        let (clock, zone) = rest.split_at(split);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (hours, minutes) = zone[1..].split_once(':')?;
        let offset = hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().ok()? * 60;
        (clock, sign * offset)
    };
    let mut clock_parts = clock.split(':');
    let hour: i64 = clock_parts.next()?.parse().ok()?;
    let minute: i64 = clock_parts.next()?.parse().ok()?;
    let seconds: f64 = clock_parts.next()?.parse().ok()?;
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + minute * 60 - offset) as f64 + seconds)
}

/// Go's `RFC3339Nano` of Unix seconds and nanoseconds (trailing zeros trimmed).
pub fn rfc3339_nano(unix_seconds: i64, nanos: u32) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut fraction = String::new();
    if nanos > 0 {
        fraction = format!(".{nanos:09}").trim_end_matches('0').to_string();
    }
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{fraction}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Go's `time.ANSIC` (`Mon Jan _2 15:04:05 2006`) of an RFC 3339 time, in UTC, as
/// `docker version` prints build times; the text itself when it does not parse.
pub fn ansic(rfc3339: &str) -> String {
    let Some(seconds) = parse_rfc3339(rfc3339) else {
        return rfc3339.to_string();
    };
    let seconds = seconds.floor() as i64;
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {day:>2} {:02}:{:02}:{:02} {year}",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_print_like_go() {
        assert_eq!(go_time_string(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_time_string(1_796_023_444),
            "2026-11-30 07:24:04 +0000 UTC"
        );
        assert_eq!(
            rfc3339_nano(1_796_023_444, 120_000_000),
            "2026-11-30T07:24:04.12Z"
        );
    }

    #[test]
    fn build_times_print_as_go_ansic() {
        assert_eq!(
            ansic("2026-05-07T21:09:36.000000000+00:00"),
            "Thu May  7 21:09:36 2026"
        );
        assert_eq!(ansic("2025-05-30T12:07:14Z"), "Fri May 30 12:07:14 2025");
        assert_eq!(ansic("not a time"), "not a time");
    }

    #[test]
    fn rfc3339_round_trips_and_honours_offsets() {
        assert_eq!(parse_rfc3339("2026-11-30T07:24:04Z"), Some(1_796_023_444.0));
        assert_eq!(
            parse_rfc3339("2026-11-30T08:24:04+01:00"),
            Some(1_796_023_444.0)
        );
        let nanos = parse_rfc3339("2026-11-30T07:24:04.5Z").expect("parse");
        assert!((nanos - 1_796_023_444.5).abs() < 1e-6);
        assert_eq!(
            parse_rfc3339("0001-01-01T00:00:00Z").map(|s| s < 0.0),
            Some(true)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
