//! Go value syntaxes instructions accept: `time.ParseDuration`, `strconv.ParseInt`/`ParseUint`
//! and go-units' `RAMInBytes`, with Go's error texts.

use crate::quote::go_quote;

/// A value in Go's syntax that did not parse; texts are Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("time: invalid duration {}", go_quote(.0))]
    InvalidDuration(String),
    #[error("time: missing unit in duration {}", go_quote(.0))]
    MissingUnit(String),
    #[error("time: unknown unit {} in duration {}", go_quote(.unit), go_quote(.input))]
    UnknownUnit { unit: String, input: String },
    #[error("strconv.{func}: parsing {}: invalid syntax", go_quote(.input))]
    IntSyntax { func: &'static str, input: String },
    #[error("strconv.{func}: parsing {}: value out of range", go_quote(.input))]
    IntRange { func: &'static str, input: String },
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_go_duration(input: &str) -> Result<i64, ValueError> {
    let invalid = || ValueError::InvalidDuration(input.to_string());
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        let int_len = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        if unit.is_empty() {
            return Err(ValueError::MissingUnit(input.to_string()));
        }
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(ValueError::UnknownUnit {
                    unit: unit.to_string(),
                    input: input.to_string(),
                })
            }
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        if whole > (1u128 << 63) / scale {
            return Err(invalid());
        }
        let mut value = whole * scale;
        let (frac, frac_scale) = leading_fraction(frac_part);
        if frac > 0 {
            // Go: float64 keeps fractions of hours nanosecond-accurate.
            value += (frac as f64 * (scale as f64 / frac_scale)) as u128;
            if value > 1u128 << 63 {
                return Err(invalid());
            }
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > 1u128 << 63 {
            return Err(invalid());
        }
    }
    if total == 1u128 << 63 && !negative {
        return Err(invalid());
    }
    let total = total as i128;
    Ok((if negative { -total } else { total }) as i64)
}

/// Go's `leadingFraction`: digits until the value would overflow, and the matching scale.
fn leading_fraction(digits: &str) -> (u64, f64) {
    let mut x: u64 = 0;
    let mut scale = 1.0;
    for b in digits.bytes() {
        if x > (i64::MAX as u64) / 10 {
            break;
        }
        let y = x * 10 + u64::from(b - b'0');
        if y > 1 << 63 {
            break;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale)
}

/// Go's `strconv.ParseInt(s, 10, bits)`.
pub fn parse_go_int(input: &str, bits: u32) -> Result<i64, ValueError> {
    let func = "ParseInt";
    let (negative, digits) = match input.strip_prefix(['-', '+']) {
        Some(rest) => (input.starts_with('-'), rest),
        None => (false, input),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::IntSyntax {
            func,
            input: input.to_string(),
        });
    }
    let range = || ValueError::IntRange {
        func,
        input: input.to_string(),
    };
    let magnitude: u128 = digits.parse().map_err(|_| range())?;
    let limit = 1u128 << (bits - 1);
    if (negative && magnitude > limit) || (!negative && magnitude >= limit) {
        return Err(range());
    }
    let magnitude = magnitude as i128;
    Ok((if negative { -magnitude } else { magnitude }) as i64)
}

/// Go's `strconv.ParseUint(s, base, bits)` for base 8 or 10.
pub fn parse_go_uint(input: &str, base: u32, bits: u32) -> Result<u64, ValueError> {
    let func = "ParseUint";
    if input.is_empty() || !input.chars().all(|c| c.is_digit(base)) {
        return Err(ValueError::IntSyntax {
            func,
            input: input.to_string(),
        });
    }
    let value = u128::from_str_radix(input, base).map_err(|_| ValueError::IntRange {
        func,
        input: input.to_string(),
    })?;
    if value >= 1u128 << bits {
        return Err(ValueError::IntRange {
            func,
            input: input.to_string(),
        });
    }
    Ok(value as u64)
}

/// go-units' `RAMInBytes`: `^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$`, binary multiples.
pub fn ram_in_bytes(input: &str) -> Option<i64> {
    let num_len = input.len()
        - input
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
            .len();
    let (number, rest) = input.split_at(num_len);
    let valid_number = !number.is_empty()
        && number
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if !valid_number {
        return None;
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars().peekable();
    let mut multiplier: f64 = 1.0;
    if let Some(c) = chars.peek().copied() {
        let power = match c.to_ascii_lowercase() {
            'k' => Some(1),
            'm' => Some(2),
            'g' => Some(3),
            't' => Some(4),
            'p' => Some(5),
            _ => None,
        };
        if let Some(p) = power {
            multiplier = 1024f64.powi(p);
            chars.next();
        }
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        chars.next();
    }
    if chars.next().is_some() {
        return None;
    }
    // go-units parses with ParseFloat, which accepts only one dot.
    let value: f64 = number.parse().ok()?;
    Some((value * multiplier) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        let ok = [
            ("0", 0),
            ("5s", 5_000_000_000),
            ("1m30s", 90_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("-2ms", -2_000_000),
            ("300us", 300_000),
            ("1µs", 1_000),
            (".5s", 500_000_000),
        ];
        for (input, want) in ok {
            assert_eq!(parse_go_duration(input).unwrap(), want, "{input}");
        }
        assert_eq!(
            parse_go_duration("").unwrap_err().to_string(),
            r#"time: invalid duration """#
        );
        assert_eq!(
            parse_go_duration("5").unwrap_err().to_string(),
            r#"time: missing unit in duration "5""#
        );
        assert_eq!(
            parse_go_duration("5x").unwrap_err().to_string(),
            r#"time: unknown unit "x" in duration "5x""#
        );
        assert!(parse_go_duration("99999999999h").is_err());
        let long_fraction = format!("1.{}h", "9".repeat(60));
        assert_eq!(
            parse_go_duration(&long_fraction).unwrap(),
            7_200_000_000_000
        );
    }

    #[test]
    fn integers_parse_like_strconv() {
        assert_eq!(parse_go_int("-3", 32).unwrap(), -3);
        assert_eq!(
            parse_go_int("x", 32).unwrap_err().to_string(),
            r#"strconv.ParseInt: parsing "x": invalid syntax"#
        );
        assert!(matches!(
            parse_go_int("2147483648", 32),
            Err(ValueError::IntRange { .. })
        ));
        assert_eq!(parse_go_uint("0755", 8, 32).unwrap(), 0o755);
        assert!(parse_go_uint("8", 8, 32).is_err());
    }

    #[test]
    fn ram_sizes_use_binary_multiples() {
        assert_eq!(ram_in_bytes("64m"), Some(64 << 20));
        assert_eq!(ram_in_bytes("1.5 GiB"), Some(1536 << 20));
        assert_eq!(ram_in_bytes("100"), Some(100));
        assert_eq!(ram_in_bytes("1x"), None);
        assert_eq!(ram_in_bytes(""), None);
    }
}
