//! Time as the engine sees it: microseconds since the Unix epoch, rendered as the protocol's
//! ISO 8601 UTC form (`2026-11-25T09:38:48.123Z`). Pure integer calendar arithmetic, no
//! dependencies.

/// Microseconds since the epoch, from the system clock.
pub fn now_us() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_micros() as i64
}

/// Render epoch microseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn iso(us: i64) -> String {
    let ms = us.div_euclid(1000);
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// Parse the form `iso` writes (fraction optional, 1-6 digits) back to epoch microseconds.
pub fn parse_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let rest = &s[19..];
    let (frac, tail) = match rest.strip_prefix('.') {
        Some(f) => {
            let digits = f.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 6 {
                return None;
            }
            let v: i64 = f[..digits].parse().ok()?;
            (v * 10_i64.pow(6 - digits as u32), &f[digits..])
        }
        None => (0, rest),
    };
    if tail != "Z"
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || se > 60
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) * 1_000_000) + frac)
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_parses_round_trip() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        let us = 1_795_598_328_123_000; // 2026-11-25T09:18:48.123Z
        assert_eq!(iso(us), "2026-11-25T09:18:48.123Z");
        assert_eq!(parse_iso(&iso(us)), Some(us));
        assert_eq!(
            parse_iso("2024-02-29T23:59:59Z"),
            Some(days_from_civil(2024, 2, 29) * 86_400_000_000 + 86_399_000_000)
        );
        assert_eq!(
            parse_iso("2026-11-25T09:18:48.5Z"),
            Some(1_795_598_328_500_000)
        );
        for bad in [
            "",
            "2026-11-25",
            "2026-13-01T00:00:00Z",
            "2026-11-25T09:18:48.123",
            "2026-11-25T09:18:48.1234567Z",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
    }
}
