//! The one place that reads the wall clock.
//!
//! ETAs, expiry, visibility timeouts and result timestamps all compare against this, so a test
//! (or a later injected clock) has one seam to control, and clippy can ban `Utc::now`
//! everywhere else.

use chrono::{DateTime, Utc};

/// The current time in UTC.
#[expect(
    clippy::disallowed_methods,
    reason = "this is the one place that reads the wall clock"
)]
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// The current time as epoch seconds, the unit kombu scores `unacked_index` with.
pub fn epoch_now() -> f64 {
    crate::protocol::time::epoch_seconds(now())
}

/// This machine's UTC offset in seconds east of UTC, for the `utcoffset` of events.
pub fn local_minus_utc_seconds() -> i64 {
    i64::from(chrono::Local::now().offset().local_minus_utc())
}
