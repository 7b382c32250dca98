//! Sizes and times for people: `12.4 MB`, `3 hours ago`, each rendered with its exact value
//! in `title` (and a `<time datetime>`), so hovering shows what the short form rounds.

use maud::{Markup, html};

use crate::auth::token::rfc3339;

/// Decimal units, as registries and `docker images` show them.
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    if v >= 100.0 { format!("{v:.0} {unit}") } else { format!("{v:.1} {unit}") }
}

/// `1234567` as `1,234,567`.
pub fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// `secs` (unix) relative to `now`: `just now`, `5 minutes ago`, `in 3 days`.
pub fn ago(secs: i64, now: i64) -> String {
    let d = now - secs;
    let (n, future) = if d < 0 { (-d, true) } else { (d, false) };
    let (count, unit) = match n {
        0..45 => return "just now".into(),
        45..3_600 => ((n + 30) / 60, "minute"),
        3_600..86_400 => ((n + 1_800) / 3_600, "hour"),
        86_400..2_592_000 => ((n + 43_200) / 86_400, "day"),
        2_592_000..31_536_000 => ((n + 1_296_000) / 2_592_000, "month"),
        _ => (n / 31_536_000, "year"),
    };
    let count = count.max(1);
    let plural = if count == 1 { "" } else { "s" };
    if future { format!("in {count} {unit}{plural}") } else { format!("{count} {unit}{plural} ago") }
}

/// A size with the exact byte count on hover.
pub fn size_html(bytes: i64) -> Markup {
    html! { span.size title=(format!("{} bytes", grouped(bytes))) { (size(bytes)) } }
}

/// A time with the exact UTC value on hover and in `datetime`.
pub fn time_html(secs: i64) -> Markup {
    let exact = rfc3339(secs);
    html! { time datetime=(exact) title=(exact) { (ago(secs, crate::db::now())) } }
}

/// Unix seconds of an RFC 3339 time (`2024-05-01T12:00:00Z`, fractions and offsets
/// allowed), as image configs write `created`; `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && rest.get(3..4) == Some(":") => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (rest.get(1..3)?.parse::<i64>().ok()? * 3600 + rest.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from civil (H. Hinnant), proleptic Gregorian.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

/// An RFC 3339 time from a document: relative, with the text as written on hover; text
/// that is not such a time is shown as it is.
pub fn written_time_html(s: &str) -> Markup {
    match parse_rfc3339(s) {
        Some(secs) => html! { time datetime=(s) title=(s) { (ago(secs, crate::db::now())) } },
        None => html! { (s) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1000), "1.0 kB");
        assert_eq!(size(12_400_000), "12.4 MB");
        assert_eq!(size(123_456_789), "123 MB");
        assert_eq!(size(5_000_000_000), "5.0 GB");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
    }

    #[test]
    fn rfc3339_round_trips() {
        for secs in [0, 951_782_400, 1_700_000_000, 1_767_323_045] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs), "{}", rfc3339(secs));
        }
        assert_eq!(parse_rfc3339("2026-01-02T03:04:05.123456789Z"), parse_rfc3339("2026-01-02T03:04:05Z"));
        assert_eq!(parse_rfc3339("2026-01-02T05:04:05+02:00"), parse_rfc3339("2026-01-02T03:04:05Z"));
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-01-02T03:04:05",
            "2026-01-02T03:04:05+0200",
            "2026-01-02T03:04:05+\u{e9}\u{e9}0",
            "2026-01-02T03:04:05+0\u{e9}\u{e9}",
            "2026-01-02T03:04:0\u{e9}Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn times() {
        let now = 1_000_000_000;
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now - 60, now), "1 minute ago");
        assert_eq!(ago(now - 3 * 3600, now), "3 hours ago");
        assert_eq!(ago(now - 2 * 86_400, now), "2 days ago");
        assert_eq!(ago(now - 400 * 86_400, now), "1 year ago");
        assert_eq!(ago(now + 3 * 86_400, now), "in 3 days");
    }
}
