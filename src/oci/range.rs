//! Parsing a blob GET's `Range` header (one RFC 9110 byte range) and a PATCH's
//! `Content-Range` (`<start>-<end>`).

/// What to serve for a `Range` header and a blob of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// No (usable) range: the whole blob with 200.
    Full,
    /// Inclusive byte range, with 206.
    Partial(u64, u64),
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

pub fn parse_range(header: Option<&str>, size: u64) -> RangeOutcome {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeOutcome::Full;
    };
    // Several ranges: serve the whole representation, as RFC 9110 allows.
    if spec.contains(',') {
        return RangeOutcome::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeOutcome::Full;
    };
    let num = |s: &str| {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) { None } else { s.parse::<u64>().ok() }
    };
    match (first.is_empty(), num(first), num(last)) {
        // Suffix: the last N bytes.
        (true, _, Some(n)) => {
            if n == 0 || size == 0 {
                RangeOutcome::Unsatisfiable
            } else {
                RangeOutcome::Partial(size.saturating_sub(n), size - 1)
            }
        }
        (false, Some(a), None) if last.is_empty() => {
            if a >= size {
                RangeOutcome::Unsatisfiable
            } else {
                RangeOutcome::Partial(a, size - 1)
            }
        }
        (false, Some(a), Some(b)) => {
            if a > b || a >= size {
                RangeOutcome::Unsatisfiable
            } else {
                RangeOutcome::Partial(a, b.min(size - 1))
            }
        }
        _ => RangeOutcome::Full,
    }
}

/// A PATCH `Content-Range`: `start-end` (inclusive); `None` if malformed.
pub fn parse_content_range(header: &str) -> Option<(u64, u64)> {
    let h = header.trim();
    let h = h.strip_prefix("bytes ").unwrap_or(h);
    let (a, b) = h.split_once('-')?;
    let b = b.split('/').next()?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

#[cfg(test)]
mod tests {
    use super::{RangeOutcome::*, *};

    #[test]
    fn ranges() {
        let cases: &[(Option<&str>, u64, RangeOutcome)] = &[
            (None, 10, Full),
            (Some("bytes=0-4"), 10, Partial(0, 4)),
            (Some("bytes=5-"), 10, Partial(5, 9)),
            (Some("bytes=-3"), 10, Partial(7, 9)),
            (Some("bytes=-30"), 10, Partial(0, 9)),
            (Some("bytes=2-100"), 10, Partial(2, 9)),
            (Some("bytes=9-9"), 10, Partial(9, 9)),
            (Some("bytes=10-"), 10, Unsatisfiable),
            (Some("bytes=10-20"), 10, Unsatisfiable),
            (Some("bytes=500-0"), 1000, Unsatisfiable),
            (Some("bytes=-0"), 10, Unsatisfiable),
            (Some("bytes=0-0"), 0, Unsatisfiable),
            (Some("bytes=0-1,3-4"), 10, Full),
            (Some("items=0-1"), 10, Full),
            (Some("bytes=x-y"), 10, Full),
            (Some("bytes=+1-2"), 10, Full),
        ];
        for (h, size, want) in cases {
            assert_eq!(&parse_range(*h, *size), want, "{h:?} size {size}");
        }
    }

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 100-199/*"), Some((100, 199)));
        assert_eq!(parse_content_range("5-1"), None);
        assert_eq!(parse_content_range("abc"), None);
    }
}
