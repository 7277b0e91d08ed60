//! Quartz cron expressions, as ElasticJob's Quartz scheduler reads them: seconds first,
//! `?`, `L`, `W`, `#`, an optional year, weekdays 1-7 = SUN-SAT, steps like `0/5`.
//! Parsing and evaluation are `croner`'s (in its Quartz mode); this module adds the
//! Quartz rules `croner` is more lenient about, and the time zones ElasticJob accepts.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::{Error, Result};

/// Where fire times are computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    /// `GMT±hh:mm` (ElasticJob's documented form), or `GMT`/`UTC`.
    Fixed(FixedOffset),
    /// An IANA name such as `Asia/Shanghai`.
    Named(chrono_tz::Tz),
    /// No zone configured: this machine's local zone, as Java uses the JVM default.
    Local,
}

impl Zone {
    /// Parses a `timeZone` config value; `None` or empty means [`Zone::Local`].
    ///
    /// # Errors
    /// [`Error::TimeZone`].
    pub fn parse(value: Option<&str>) -> Result<Zone> {
        let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Zone::Local);
        };
        if v == "GMT" || v == "UTC" || v == "Z" {
            return Ok(Zone::Fixed(FixedOffset::east_opt(0).expect("zero offset")));
        }
        if let Some(rest) = v.strip_prefix("GMT") {
            return parse_offset(rest)
                .map(Zone::Fixed)
                .ok_or_else(|| Error::TimeZone(v.to_owned()));
        }
        v.parse::<chrono_tz::Tz>()
            .map(Zone::Named)
            .map_err(|_| Error::TimeZone(v.to_owned()))
    }
}

/// `+08:00`, `-5`, `+0530`.
fn parse_offset(s: &str) -> Option<FixedOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() > 2 => rest.split_at(rest.len() - 2),
        None => (rest, "0"),
    };
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..=23).contains(&h) || !(0..=59).contains(&m) {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// A parsed cron expression in a zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: Zone,
    expr: String,
}

fn invalid(expr: &str, reason: impl Into<String>) -> Error {
    Error::Cron {
        expr: expr.to_owned(),
        reason: reason.into(),
    }
}

impl Schedule {
    /// Parses a Quartz expression for `zone`.
    ///
    /// # Errors
    /// [`Error::Cron`] naming what Quartz would refuse.
    pub fn parse(expr: &str, zone: Zone) -> Result<Schedule> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        if !(6..=7).contains(&fields.len()) {
            return Err(invalid(
                expr,
                format!(
                    "Quartz expects 6 or 7 fields (second minute hour day-of-month month day-of-week [year]), found {}",
                    fields.len()
                ),
            ));
        }
        // Quartz: exactly one of day-of-month and day-of-week is '?'.
        match (fields[3] == "?", fields[5] == "?") {
            (true, true) => {
                return Err(invalid(
                    expr,
                    "'?' may be used in only one of day-of-month and day-of-week",
                ));
            }
            (false, false) => {
                return Err(invalid(
                    expr,
                    "use '?' in day-of-month or in day-of-week (Quartz does not support both)",
                ));
            }
            _ => {}
        }
        let normalised = fields.join(" ");
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Optional)
            .alternative_weekdays(true)
            .sloppy_ranges(true)
            .build()
            .parse(&normalised)
            .map_err(|e| invalid(expr, e.to_string()))?;
        let schedule = Schedule {
            cron,
            zone,
            expr: normalised,
        };
        Ok(schedule)
    }

    /// The expression, whitespace normalised.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// Whether `other` fires at exactly the same times (same expression, same zone).
    pub fn same_timing(&self, other: &Schedule) -> bool {
        self.expr == other.expr && self.zone == other.zone
    }

    /// The first fire time strictly after `after_ms` (ms since the epoch), if any.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let after = Utc.timestamp_millis_opt(after_ms).single()?;
        match self.zone {
            Zone::Fixed(z) => self.next_in(&after.with_timezone(&z)),
            Zone::Named(z) => self.next_in(&after.with_timezone(&z)),
            Zone::Local => self.next_in(&after.with_timezone(&chrono::Local)),
        }
    }

    fn next_in<Z: TimeZone>(&self, after: &DateTime<Z>) -> Option<i64> {
        self.cron
            .find_next_occurrence(after, false)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// The next `n` fire times after `after_ms` (fewer if the schedule ends, e.g. a
    /// bounded year).
    pub fn next_n(&self, after_ms: i64, n: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(n);
        let mut t = after_ms;
        while out.len() < n {
            match self.next_after(t) {
                Some(next) => {
                    out.push(next);
                    t = next;
                }
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> Zone {
        Zone::parse(Some("GMT")).expect("gmt")
    }

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .timestamp_millis()
    }

    fn fires(expr: &str, zone: Zone, after: &str, n: usize) -> Vec<String> {
        Schedule::parse(expr, zone)
            .expect("parse")
            .next_n(ms(after), n)
            .into_iter()
            .map(|t| {
                Utc.timestamp_millis_opt(t)
                    .single()
                    .expect("t")
                    .format("%Y-%m-%dT%H:%M:%SZ")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn quartz_features() {
        // Every 5 seconds.
        assert_eq!(
            fires("0/5 * * * * ?", utc(), "2026-11-22T10:00:02Z", 3),
            [
                "2026-11-22T10:00:05Z",
                "2026-11-22T10:00:10Z",
                "2026-11-22T10:00:15Z"
            ]
        );
        // Last day of the month.
        assert_eq!(
            fires("0 0 0 L * ?", utc(), "2026-02-10T00:00:00Z", 2),
            ["2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"]
        );
        // Weekday nearest the 15th: 2026-11-15 is a Sunday, so Monday the 16th.
        assert_eq!(
            fires("0 0 9 15W * ?", utc(), "2026-11-01T00:00:00Z", 1),
            ["2026-11-16T09:00:00Z"]
        );
        // Third Friday (Quartz weekday 6 = FRI).
        assert_eq!(
            fires("0 0 12 ? * 6#3", utc(), "2026-11-01T00:00:00Z", 1),
            ["2026-11-20T12:00:00Z"]
        );
        // Last Friday.
        assert_eq!(
            fires("0 15 10 ? * 6L", utc(), "2026-11-01T00:00:00Z", 1),
            ["2026-11-27T10:15:00Z"]
        );
        // Names, ranges and an optional year.
        assert_eq!(
            fires("0 30 8 ? * MON-FRI 2027", utc(), "2026-12-31T00:00:00Z", 2),
            ["2027-01-01T08:30:00Z", "2027-01-04T08:30:00Z"]
        );
        // A year in the past never fires.
        assert!(fires("0 0 0 1 1 ? 2020", utc(), "2026-01-01T00:00:00Z", 1).is_empty());
    }

    #[test]
    fn time_zones() {
        let shanghai = Zone::parse(Some("Asia/Shanghai")).expect("iana");
        let gmt8 = Zone::parse(Some("GMT+08:00")).expect("gmt+8");
        for zone in [shanghai, gmt8] {
            assert_eq!(
                fires("0 0 9 * * ?", zone, "2026-11-22T00:00:00Z", 1),
                ["2026-11-22T01:00:00Z"]
            );
        }
        assert_eq!(
            Zone::parse(Some("GMT-05:30")).expect("neg"),
            Zone::Fixed(FixedOffset::west_opt(19800).expect("off"))
        );
        assert_eq!(Zone::parse(None).expect("local"), Zone::Local);
        for bad in ["GMT+25:00", "Mars/Olympus", "GMT8"] {
            assert!(Zone::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_expressions_are_refused_with_a_reason() {
        for bad in [
            "* * * * *",
            "0 0 12 * * *",
            "0 0 12 ? * ?",
            "61 * * * * ?",
            "0 0 25 * * ?",
            "0 0 12 ? * 9",
            "0 0 12 32 * ?",
            "not a cron at all ?",
            "",
        ] {
            let err = Schedule::parse(bad, Zone::Local).expect_err(bad);
            assert!(err.to_string().contains("invalid cron"), "{bad}: {err}");
        }
    }
}
