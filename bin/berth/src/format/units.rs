//! Human sizes and durations exactly as docker prints them (go-units `HumanSize`,
//! `BytesSize`, `HumanDuration`) and Go's `%g` number formatting they rely on.

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

fn scaled(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// go-units `HumanSizeWithPrecision`: decimal units, `%.{precision}g`.
pub fn human_size_precision(size: f64, precision: usize) -> String {
    let (value, unit) = scaled(size, 1000.0, &DECIMAL);
    format!("{}{unit}", format_g(value, precision))
}

/// go-units `HumanSize` (precision 4).
pub fn human_size(size: f64) -> String {
    human_size_precision(size, 4)
}

/// go-units `BytesSize`: binary units, `%.4g`.
pub fn bytes_size(size: f64) -> String {
    let (value, unit) = scaled(size, 1024.0, &BINARY);
    format!("{}{unit}", format_g(value, 4))
}

/// Go's `%.{precision}g`: shortest of fixed or exponent form for that many significant
/// digits, trailing zeros removed.
pub fn format_g(value: f64, precision: usize) -> String {
    let precision = precision.max(1);
    if value == 0.0 {
        return "0".to_string();
    }
    let exp_form = format!("{:.*e}", precision - 1, value);
    let (mantissa, exponent) = exp_form.split_once('e').unwrap_or((&exp_form, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if exponent < -4 || exponent >= precision as i32 {
        let mantissa = trim_zeros(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
    trim_zeros(&format!("{value:.decimals$}")).to_string()
}

fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// go-units `HumanDuration` of a number of seconds.
pub fn human_duration(seconds: f64) -> String {
    let whole = seconds as i64;
    if whole < 1 {
        return "Less than a second".to_string();
    }
    if whole == 1 {
        return "1 second".to_string();
    }
    if whole < 60 {
        return format!("{whole} seconds");
    }
    let minutes = (seconds / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (seconds / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".to_string();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (seconds / 3600.0) as i64 / 24 / 365)
}

/// Seconds since the Unix epoch, now.
pub fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `"<duration> ago"` for a Unix timestamp, as the CREATED columns print it.
pub fn ago(unix_seconds: f64) -> String {
    format!("{} ago", human_duration(now_seconds() - unix_seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_go_units() {
        let cases = [
            (0.0, 3, "0B"),
            (999.0, 3, "999B"),
            (1000.0, 3, "1kB"),
            (1_981_032.0, 3, "1.98MB"),
            (12_000_000.0, 3, "12MB"),
            (123_456_789.0, 3, "123MB"),
            (999_900.0, 3, "1e+03kB"),
            (1_500_000_000.0, 4, "1.5GB"),
        ];
        for (size, precision, expected) in cases {
            assert_eq!(human_size_precision(size, precision), expected, "{size}");
        }
        assert_eq!(bytes_size(1024.0 * 1024.0 * 1.5), "1.5MiB");
        assert_eq!(bytes_size(512.0), "512B");
        assert_eq!(format_g(0.000012345, 3), "1.23e-05");
    }

    #[test]
    fn durations_match_go_units() {
        let cases = [
            (0.4, "Less than a second"),
            (1.0, "1 second"),
            (59.0, "59 seconds"),
            (61.0, "About a minute"),
            (150.0, "2 minutes"),
            (3600.0, "About an hour"),
            (5400.0, "2 hours"),
            (47.0 * 3600.0, "47 hours"),
            (3.0 * 86400.0, "3 days"),
            (20.0 * 86400.0, "2 weeks"),
            (90.0 * 86400.0, "3 months"),
            (800.0 * 86400.0, "2 years"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(human_duration(seconds), expected, "{seconds}");
        }
    }
}
