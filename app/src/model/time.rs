/// Formats milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS` in UTC.
///
/// Done by hand (days-to-civil) so the browser bundle needs no date library.
pub fn format_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian), valid for the whole i64 day range we use.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// [`format_ms`] with milliseconds: `YYYY-MM-DD HH:MM:SS.mmm` (window bounds).
pub fn format_ms_precise(ms: i64) -> String {
    format!("{}.{:03}", format_ms(ms), ms.rem_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::{format_ms, format_ms_precise};

    #[test]
    fn precise_times_keep_the_milliseconds() {
        assert_eq!(format_ms_precise(1_500), "1970-01-01 00:00:01.500");
        assert_eq!(format_ms_precise(-1), "1969-12-31 23:59:59.999");
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_ms(0), "1970-01-01 00:00:00");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(format_ms(1_795_354_385_123), "2026-11-22 13:33:05");
        assert_eq!(format_ms(-1000), "1969-12-31 23:59:59");
    }
}

/// Parses `YYYY-MM-DD` (a date input's value) as midnight UTC, in ms since the epoch.
pub fn parse_date_ms(s: &str) -> Option<i64> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    // Days-from-civil, the inverse of `format_ms`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400_000)
}

#[cfg(test)]
mod parse_tests {
    use super::{format_ms, parse_date_ms};

    #[test]
    fn dates_round_trip() {
        for s in ["1970-01-01", "2000-02-29", "2026-11-22", "2100-12-31"] {
            let ms = parse_date_ms(s).expect(s);
            assert_eq!(format_ms(ms), format!("{s} 00:00:00"));
        }
        assert_eq!(parse_date_ms("2026-13-01"), None);
        assert_eq!(parse_date_ms("yesterday"), None);
    }
}
