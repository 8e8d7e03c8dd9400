//! [`EventMetrics`]: Flower's Prometheus series that need every event (`flower_events_total`,
//! `flower_task_runtime_seconds`, `flower_task_prefetch_time_seconds`), and the completion rate
//! the overview shows.
//!
//! One tokio task, started by [`EventMetrics::spawn`], holds a `broadcast` receiver of the
//! monitor's event batches. Each batch wakes it; it looks up the task names and receive times
//! the batch's events lack (only `task-sent` and `task-received` carry a name) in the monitor's
//! state, under one short lock, and adds to its counters under its own mutex. When it falls
//! behind the channel's capacity it skips the lost batches (counted in `lagged`) rather than
//! buffering; it ends when the monitor is dropped and the channel closes.
//!
//! Bounded: at most [`MAX_SERIES`] label sets per family plus one; later ones are all counted
//! in a single overflow series whose every label is [`OTHER`] (task, type and worker alike, so
//! a flood of made-up hostnames or types adds nothing once the family is full). The type label
//! is one of Celery's task event types or [`OTHER`]; label texts were already cut to
//! [`celeriac::events::weight::MAX_LABEL_BYTES`] by the receiver.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use celeriac::events::Monitor;
use celeriac::protocol::event::{Event, EventKind};
use tokio::sync::broadcast::error::RecvError;

use super::throughput::{MinutePoint, Throughput};

/// Label sets kept per metric family.
pub(crate) const MAX_SERIES: usize = 10_000;
/// The task label of series past [`MAX_SERIES`].
pub(crate) const OTHER: &str = "(other)";
/// Upper bounds of the runtime histogram: Python `prometheus_client`'s defaults, which Flower
/// uses.
const RUNTIME_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Whole seconds the completion rate is averaged over.
const RATE_WINDOW_SECONDS: u64 = 10;

/// Counters fed from the monitor's batches. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct EventMetrics {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// (task name, event type, worker) → events.
    events: HashMap<(String, String, String), u64>,
    /// (task name, worker) → runtimes of successes.
    runtimes: HashMap<(String, String), Histogram>,
    /// (task name, worker) → seconds between received and started of the latest start.
    prefetch: HashMap<(String, String), f64>,
    /// (epoch second, tasks that finished in it), oldest first.
    completions: VecDeque<(u64, u64)>,
    /// Batches missed because this collector fell behind.
    lagged: u64,
    /// Succeeded and failed per minute, for the overview's chart.
    throughput: Throughput,
}

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Counts per bucket of [`RUNTIME_BUCKETS`] (not cumulative; summed when rendered).
    buckets: [u64; RUNTIME_BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(index) = RUNTIME_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[index] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// What a batch's events need from the monitor's state.
struct Known {
    name: Option<String>,
    received: Option<f64>,
}

impl EventMetrics {
    /// Starts the collector over `monitor`'s batches (module docs).
    pub(crate) fn spawn(monitor: &Arc<Monitor>) -> Arc<EventMetrics> {
        let metrics = Arc::new(EventMetrics::default());
        let mut batches = monitor.subscribe();
        let monitor: Weak<Monitor> = Arc::downgrade(monitor);
        let collector = metrics.clone();
        tokio::spawn(async move {
            loop {
                match batches.recv().await {
                    Ok(batch) => {
                        let Some(monitor) = monitor.upgrade() else {
                            return;
                        };
                        collector.apply(&monitor, &batch, celeriac::clock::epoch_now());
                    }
                    Err(RecvError::Lagged(missed)) => collector.lock().lagged += missed,
                    Err(RecvError::Closed) => return,
                }
            }
        });
        metrics
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Counters stay meaningful after a panic elsewhere; keep serving them.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn apply(&self, monitor: &Monitor, batch: &[Event], now: f64) {
        let known: Vec<Option<Known>> = monitor.read(|state| {
            batch
                .iter()
                .map(|event| {
                    let task = state.task(event.uuid()?)?;
                    Some(Known {
                        name: task.name,
                        received: task.received.map(|at| at.timestamp_micros() as f64 / 1e6),
                    })
                })
                .collect()
        });
        let mut inner = self.lock();
        let second = now.max(0.0) as u64;
        for (event, known) in batch.iter().zip(known) {
            if event.uuid().is_none() {
                continue;
            }
            let name = known
                .as_ref()
                .and_then(|known| known.name.clone())
                .or_else(|| event.str_field("name").map(str::to_owned))
                .unwrap_or_default();
            let series = (name.clone(), event.hostname.clone());
            let kind = match event.kind {
                EventKind::Other(_) => OTHER,
                ref kind => kind.as_str(),
            };
            let key = (name, kind.to_owned(), event.hostname.clone());
            let key = bounded(&inner.events, key, |_| {
                (OTHER.to_owned(), OTHER.to_owned(), OTHER.to_owned())
            });
            *inner.events.entry(key).or_insert(0) += 1;
            match event.kind {
                EventKind::TaskSucceeded => {
                    if let Some(runtime) = event.f64_field("runtime") {
                        let series = bounded(&inner.runtimes, series.clone(), other_task);
                        inner.runtimes.entry(series).or_default().observe(runtime);
                    }
                    inner.count_completion(second);
                    inner
                        .throughput
                        .count(event_second(event.timestamp, second), false);
                }
                EventKind::TaskFailed => {
                    inner.count_completion(second);
                    inner
                        .throughput
                        .count(event_second(event.timestamp, second), true);
                }
                EventKind::TaskStarted => {
                    if let Some(received) = known.and_then(|known| known.received) {
                        let series = bounded(&inner.prefetch, series, other_task);
                        inner
                            .prefetch
                            .insert(series, (event.timestamp - received).max(0.0));
                    }
                }
                _ => {}
            }
        }
    }

    /// Tasks finished per second over the last complete seconds (up to ten), at `now`.
    pub(crate) fn completion_rate(&self, now: f64) -> f64 {
        let current = now.max(0.0) as u64;
        let first = current.saturating_sub(RATE_WINDOW_SECONDS);
        let finished: u64 = self
            .lock()
            .completions
            .iter()
            .filter(|(second, _)| *second >= first && *second < current)
            .map(|(_, count)| count)
            .sum();
        finished as f64 / RATE_WINDOW_SECONDS as f64
    }

    /// The overview chart's points at `now` and the first second counted (see [`Throughput`]).
    pub(crate) fn throughput(&self, now: f64) -> (Vec<MinutePoint>, Option<u64>) {
        self.lock().throughput.series(now.max(0.0) as u64)
    }

    /// Appends the families in Prometheus' text format.
    pub(crate) fn render(&self, out: &mut String) {
        let inner = self.lock();
        out.push_str("# HELP flower_events_total Number of events\n");
        out.push_str("# TYPE flower_events_total counter\n");
        for ((task, kind, worker), count) in &inner.events {
            let _ = writeln!(
                out,
                "flower_events_total{{task=\"{}\",type=\"{}\",worker=\"{}\"}} {count}",
                escape(task),
                escape(kind),
                escape(worker)
            );
        }
        out.push_str("# HELP flower_task_runtime_seconds Task runtime\n");
        out.push_str("# TYPE flower_task_runtime_seconds histogram\n");
        for ((task, worker), histogram) in &inner.runtimes {
            let labels = format!("task=\"{}\",worker=\"{}\"", escape(task), escape(worker));
            let mut cumulative = 0;
            for (bound, count) in RUNTIME_BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "flower_task_runtime_seconds_bucket{{{labels},le=\"{bound:?}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "flower_task_runtime_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
                 flower_task_runtime_seconds_sum{{{labels}}} {:?}\n\
                 flower_task_runtime_seconds_count{{{labels}}} {}",
                histogram.count, histogram.sum, histogram.count
            );
        }
        out.push_str(
            "# HELP flower_task_prefetch_time_seconds The time the task spent waiting at the \
             worker to be executed\n",
        );
        out.push_str("# TYPE flower_task_prefetch_time_seconds gauge\n");
        for ((task, worker), seconds) in &inner.prefetch {
            let _ = writeln!(
                out,
                "flower_task_prefetch_time_seconds{{task=\"{}\",worker=\"{}\"}} {seconds:?}",
                escape(task),
                escape(worker)
            );
        }
        out.push_str(
            "# HELP celeriac_metrics_lagged_batches_total Event batches the metrics missed\n",
        );
        out.push_str("# TYPE celeriac_metrics_lagged_batches_total counter\n");
        let _ = writeln!(
            out,
            "celeriac_metrics_lagged_batches_total {}",
            inner.lagged
        );
    }
}

impl Inner {
    fn count_completion(&mut self, second: u64) {
        match self.completions.back_mut() {
            Some((last, count)) if *last == second => *count += 1,
            _ => {
                self.completions.push_back((second, 1));
                while self.completions.len() as u64 > RATE_WINDOW_SECONDS + 1 {
                    self.completions.pop_front();
                }
            }
        }
    }
}

/// The second an event happened (its worker's clock), or `received` when it names none.
fn event_second(timestamp: f64, received: u64) -> u64 {
    if timestamp > 0.0 {
        timestamp as u64
    } else {
        received
    }
}

fn other_task(_: &(String, String)) -> (String, String) {
    (OTHER.to_owned(), OTHER.to_owned())
}

/// `key` itself while the family has room (or already has it), else its overflow series.
fn bounded<K: std::hash::Hash + Eq, V>(
    family: &HashMap<K, V>,
    key: K,
    overflow: impl FnOnce(&K) -> K,
) -> K {
    if family.len() < MAX_SERIES || family.contains_key(&key) {
        key
    } else {
        overflow(&key)
    }
}

/// A label value in the text format: backslash, double quote and newline escaped.
pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
