//! How numbers and times read on every page, so the pages agree.

/// Epoch seconds as `HH:MM:SS` UTC (with the date when it is not today's).
pub fn time(epoch: Option<f64>, now: f64) -> String {
    let Some(epoch) = epoch else {
        return "—".to_owned();
    };
    let Some(at) = chrono::DateTime::from_timestamp_micros((epoch * 1e6) as i64) else {
        return "—".to_owned();
    };
    let same_day = (now / 86_400.0).floor() == (epoch / 86_400.0).floor();
    utc(at, !same_day)
}

/// `YYYY-MM-DD HH:MM:SS` (or only the time). Written out by hand: chrono's `format` brings its
/// whole strftime parser into the browser's WASM.
pub fn utc(at: chrono::DateTime<chrono::Utc>, with_date: bool) -> String {
    use chrono::{Datelike, Timelike};
    let clock = format!("{:02}:{:02}:{:02}", at.hour(), at.minute(), at.second());
    if with_date {
        format!("{:04}-{:02}-{:02} {clock}", at.year(), at.month(), at.day())
    } else {
        clock
    }
}

/// An age in words: `4 s`, `3 min`, `2 h`, `5 d`.
pub fn age(seconds: f64) -> String {
    let seconds = seconds.max(0.0);
    if seconds < 60.0 {
        format!("{seconds:.0} s")
    } else if seconds < 3_600.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds < 86_400.0 {
        format!("{:.0} h", seconds / 3_600.0)
    } else {
        format!("{:.0} d", seconds / 86_400.0)
    }
}

/// A runtime in seconds, to the millisecond.
pub fn runtime(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "—".to_owned(), |seconds| format!("{seconds:.3} s"))
}

/// The first characters of an id, enough to tell tasks apart in a list.
pub fn short_id(task_id: &str) -> String {
    task_id.chars().take(8).collect()
}

/// Text or a dash.
pub fn or_dash(text: Option<&str>) -> String {
    text.filter(|text| !text.is_empty())
        .unwrap_or("—")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_times_read_naturally() {
        assert_eq!(age(4.2), "4 s");
        assert_eq!(age(180.0), "3 min");
        assert_eq!(time(Some(3_661.0), 3_700.0), "01:01:01");
        assert_eq!(time(None, 0.0), "—");
        assert_eq!(
            time(Some(86_400.0 * 365.0 + 7.0), 0.0),
            "1971-01-01 00:00:07"
        );
        assert_eq!(short_id("0123456789"), "01234567");
    }
}
