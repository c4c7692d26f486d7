//! HTTP byte ranges: the `Range` request header of blob GETs (RFC 9110 section 14.1.2,
//! one range only) and the `Content-Range` header of chunked upload PATCHes.

/// The inclusive byte range `[start, end]` to serve from a blob of `size` bytes, or
/// `None` when the range cannot be satisfied (416). `Ok(None)`-like "ignore the header"
/// is the caller's business: a header that is not `bytes=` is ignored as RFC 9110 allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// Serve the whole blob (no or unparseable header).
    Full,
    Partial {
        start: u64,
        end: u64,
    },
    Unsatisfiable,
}

pub fn parse_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        // Multiple ranges would need multipart/byteranges; serve the whole blob instead.
        return ByteRange::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Unsatisfiable;
    };
    let parse = |s: &str| s.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match parse(last) {
            Some(n) if n > 0 && size > 0 => ByteRange::Partial {
                start: size.saturating_sub(n),
                end: size - 1,
            },
            _ => ByteRange::Unsatisfiable,
        },
        (false, true) => match parse(first) {
            Some(start) if start < size => ByteRange::Partial {
                start,
                end: size - 1,
            },
            _ => ByteRange::Unsatisfiable,
        },
        (false, false) => match (parse(first), parse(last)) {
            (Some(start), Some(end)) if start <= end && start < size => ByteRange::Partial {
                start,
                end: end.min(size - 1),
            },
            _ => ByteRange::Unsatisfiable,
        },
        (true, true) => ByteRange::Unsatisfiable,
    }
}

/// Parses a PATCH's `Content-Range: <start>-<end>` (distribution's form, optionally with
/// a `bytes ` prefix and a `/total` suffix).
pub fn parse_content_range(header: &str) -> Option<(u64, u64)> {
    let value = header.trim();
    let value = value.strip_prefix("bytes ").unwrap_or(value);
    let value = value.split('/').next()?;
    let (start, end) = value.split_once('-')?;
    let (start, end) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    (start <= end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_ranges_follow_rfc9110() {
        let p = |start, end| ByteRange::Partial { start, end };
        assert_eq!(parse_range(None, 10), ByteRange::Full);
        assert_eq!(parse_range(Some("bytes=0-4"), 10), p(0, 4));
        assert_eq!(parse_range(Some("bytes=5-"), 10), p(5, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), p(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), p(0, 9));
        assert_eq!(parse_range(Some("bytes=2-50"), 10), p(2, 9));
        assert_eq!(parse_range(Some("bytes=5-0"), 10), ByteRange::Unsatisfiable);
        assert_eq!(
            parse_range(Some("bytes=10-20"), 10),
            ByteRange::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=0-0"), 0), ByteRange::Unsatisfiable);
        assert_eq!(parse_range(Some("items=0-1"), 10), ByteRange::Full);
    }

    #[test]
    fn content_ranges_accept_distribution_and_rfc_forms() {
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 100-199/*"), Some((100, 199)));
        assert_eq!(parse_content_range("9-1"), None);
        assert_eq!(parse_content_range("x"), None);
    }
}
