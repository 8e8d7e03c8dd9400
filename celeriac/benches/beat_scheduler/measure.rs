//! What the beat benchmark reads: CPU and RSS from `/proc`, percentiles, minute boundaries, and
//! a poller that timestamps every message as it appears in a Redis list.

use celeriac::clock;
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// User plus system CPU seconds of a process.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<f64>().ok())
    };
    // utime and stime are fields 14 and 15 of stat, 11 and 12 after the name and state.
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / 100.0
}

/// Resident set size in KiB.
pub fn rss_kib(pid: u32) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The `quantile` (0-1) of `values` by nearest rank; NaN when empty.
pub fn percentile(values: &[f64], quantile: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The next minute boundary at least `lead_seconds` away.
pub fn next_minute(lead_seconds: i64) -> DateTime<Utc> {
    let now = clock::now();
    let mut boundary = now
        .with_second(0)
        .and_then(|time| time.with_nanosecond(0))
        .unwrap_or(now)
        + TimeDelta::minutes(1);
    if boundary - now < TimeDelta::seconds(lead_seconds) {
        boundary += TimeDelta::minutes(1);
    }
    boundary
}

/// Sleeps until `at` (at once if it passed).
pub async fn sleep_until(at: DateTime<Utc>) {
    let wait = (at - clock::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
}

/// Polls a list's length every 2 ms and records when each element appeared. It runs on its own
/// thread and runtime, so the beat under test (same process) cannot delay its timestamps.
pub struct Poller {
    arrivals: Arc<Mutex<Vec<DateTime<Utc>>>>,
    stop: Arc<AtomicBool>,
}

impl Poller {
    pub fn start(redis_url: String, key: String) -> Poller {
        let arrivals: Arc<Mutex<Vec<DateTime<Utc>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (recorded, stopped) = (arrivals.clone(), stop.clone());
        std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(client) = redis::Client::open(redis_url) else {
                    return;
                };
                let Ok(mut redis) = client.get_multiplexed_async_connection().await else {
                    return;
                };
                let mut seen = 0usize;
                while !stopped.load(Ordering::Relaxed) {
                    let length: usize = redis::cmd("LLEN")
                        .arg(&key)
                        .query_async(&mut redis)
                        .await
                        .unwrap_or(seen);
                    if length > seen {
                        let now = clock::now();
                        if let Ok(mut arrivals) = recorded.lock() {
                            arrivals.extend((seen..length).map(|_| now));
                        }
                        seen = length;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            });
        });
        Poller { arrivals, stop }
    }

    /// Waits until `count` arrived or `timeout` passed; returns the arrivals and stops.
    pub async fn wait_for(self, count: usize, timeout: Duration) -> Vec<DateTime<Utc>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self
                .arrivals
                .lock()
                .map(|arrivals| arrivals.len())
                .unwrap_or(0);
            if arrived >= count || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Late stragglers past `count` are not counted; the ones seen so far are.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.stop.store(true, Ordering::Relaxed);
        self.arrivals
            .lock()
            .map(|arrivals| arrivals.clone())
            .unwrap_or_default()
    }
}
