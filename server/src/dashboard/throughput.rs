//! [`Throughput`]: tasks succeeded and failed per minute over the last hour, for the overview's
//! chart.
//!
//! Counted from the same event batches as the Prometheus series (`event_metrics` owns one and
//! feeds it), so the chart costs one counter bump per finished task and a fixed 61 buckets of
//! memory. It starts empty when the server starts: the history could rebuild it, but a minute
//! later the live counts are what matters, and the chart says how far back it knows.

use std::collections::VecDeque;

use serde::Serialize;

/// Minutes the chart shows, the current (partial) one excluded.
pub(crate) const MINUTES: u64 = 60;

/// Per-minute counts, oldest first, at most [`MINUTES`] + 1 buckets.
#[derive(Debug, Default)]
pub(crate) struct Throughput {
    buckets: VecDeque<Bucket>,
    /// The first second anything was counted: the chart has no data before it.
    since: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    minute: u64,
    succeeded: u64,
    failed: u64,
}

/// One point of the chart, as the overview's JSON carries it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct MinutePoint {
    /// The minute's start, seconds since the epoch.
    pub(crate) minute: u64,
    /// Tasks that succeeded in it.
    pub(crate) succeeded: u64,
    /// Tasks that failed in it.
    pub(crate) failed: u64,
}

impl Throughput {
    /// Counts one finished task at epoch `second`.
    pub(crate) fn count(&mut self, second: u64, failed: bool) {
        self.since.get_or_insert(second);
        let minute = second - second % 60;
        let bucket = match self.buckets.back_mut() {
            Some(bucket) if bucket.minute == minute => bucket,
            // A late event (clock skew between workers) lands in the minute it names, if kept.
            Some(last) if last.minute > minute => {
                match self
                    .buckets
                    .iter_mut()
                    .find(|bucket| bucket.minute == minute)
                {
                    Some(bucket) => bucket,
                    None => return,
                }
            }
            _ => {
                self.buckets.push_back(Bucket {
                    minute,
                    succeeded: 0,
                    failed: 0,
                });
                while self.buckets.len() as u64 > MINUTES + 1 {
                    self.buckets.pop_front();
                }
                let Some(bucket) = self.buckets.back_mut() else {
                    return;
                };
                bucket
            }
        };
        if failed {
            bucket.failed += 1;
        } else {
            bucket.succeeded += 1;
        }
    }

    /// The last [`MINUTES`] whole minutes before `now` plus the current one, oldest first,
    /// zero where nothing finished; and the first second counted.
    pub(crate) fn series(&self, now: u64) -> (Vec<MinutePoint>, Option<u64>) {
        let current = now - now % 60;
        let first = current.saturating_sub(MINUTES * 60);
        let points = (0..=MINUTES)
            .map(|index| first + index * 60)
            .map(|minute| {
                let bucket = self.buckets.iter().find(|bucket| bucket.minute == minute);
                MinutePoint {
                    minute,
                    succeeded: bucket.map_or(0, |bucket| bucket.succeeded),
                    failed: bucket.map_or(0, |bucket| bucket.failed),
                }
            })
            .collect();
        (points, self.since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_minute_and_old_minutes_fall_off() {
        let mut throughput = Throughput::default();
        let start = 1_700_000_040; // a minute boundary
        throughput.count(start + 5, false);
        throughput.count(start + 59, true);
        throughput.count(start + 60, false);
        // A late event for the first minute still counts there.
        throughput.count(start + 1, false);
        let (points, since) = throughput.series(start + 61);
        assert_eq!(since, Some(start + 5));
        assert_eq!(points.len() as u64, MINUTES + 1);
        let last = points[points.len() - 1];
        let previous = points[points.len() - 2];
        assert_eq!(
            (last.minute, last.succeeded, last.failed),
            (start + 60, 1, 0)
        );
        assert_eq!(
            (previous.minute, previous.succeeded, previous.failed),
            (start, 2, 1)
        );

        // Two hours on, only the new minute is left.
        let later = start + 2 * 3600;
        throughput.count(later, true);
        let (points, _) = throughput.series(later);
        let total: u64 = points
            .iter()
            .map(|point| point.succeeded + point.failed)
            .sum();
        assert_eq!(total, 1);
        assert!(throughput.buckets.len() as u64 <= MINUTES + 1);
    }
}
