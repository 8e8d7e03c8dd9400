//! Timestamps as Celery writes and reads them.
//!
//! Celery parses `eta` and `expires` with dateutil's `isoparse`, which accepts an explicit offset,
//! `Z`, or no offset at all (a naive time, taken as UTC). Python producers always write an
//! explicit offset with microseconds (`2026-11-24T02:32:25.367238+00:00`), and so do we.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};

/// Parses an ISO-8601 timestamp the way Celery's worker does; naive times are UTC.
pub fn parse_iso(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(parsed) = DateTime::parse_from_rfc3339(text) {
        return Some(parsed.with_timezone(&Utc));
    }
    if let Ok(parsed) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(parsed.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Some(Utc.from_utc_datetime(&naive));
        }
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|naive| Utc.from_utc_datetime(&naive));
    }
    None
}

/// Formats a time as Python's `datetime.isoformat()` does for an aware UTC value.
pub fn format_iso(time: DateTime<Utc>) -> String {
    let text = time.to_rfc3339_opts(SecondsFormat::Micros, false);
    // chrono writes `+00:00` with `use_z = false`, matching Python.
    text
}

/// Seconds since the Unix epoch as a float, the way Python's `time.time()` reports them.
pub fn epoch_seconds(time: DateTime<Utc>) -> f64 {
    time.timestamp() as f64 + f64::from(time.timestamp_subsec_micros()) / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_python_writes_and_what_isoparse_accepts() {
        let explicit = parse_iso("2026-11-24T02:32:25.367238+00:00").unwrap();
        assert_eq!(format_iso(explicit), "2026-11-24T02:32:25.367238+00:00");
        let zulu = parse_iso("2030-01-01T12:00:00Z").unwrap();
        assert_eq!(format_iso(zulu), "2030-01-01T12:00:00.000000+00:00");
        let naive = parse_iso("2020-01-01T00:00:00").unwrap();
        assert_eq!(naive.timestamp(), 1_577_836_800);
        let offset = parse_iso("2030-01-01T14:00:00+02:00").unwrap();
        assert_eq!(offset, zulu);
        assert!(parse_iso("not a time").is_none());
    }
}
