//! Keeps the history current while a [`Monitor`] runs: its event batches are written to SQL in
//! larger batches, and what events cannot tell (tasks that ran while nobody listened, or
//! batches this recorder fell behind on) is read from the result backend.
//!
//! Writes are grouped (every `flush_every` or `max_batch` events) because one transaction per
//! event batch would make SQLite the bottleneck at the rates the monitor takes. The monitor's
//! broadcast tells a subscriber that fell behind how many batches it missed; the recorder then
//! runs a catch-up from the result backend, so a burst costs the timeline entries of the
//! missed events but not the tasks' final states.
//!
//! Events published while Redis was down are lost for good (PUB/SUB keeps nothing), so two
//! more repairs run: a catch-up each time the monitor's receiver has reconnected (tasks that
//! finished meanwhile, known only to the backend, are added), and every `reconcile_every` a
//! reconciling round (`reconcile.rs`) that looks up the rows left unfinished for
//! `stuck_after`.

use super::{HistoryError, ReconcilePosition, TaskEvent, TaskHistory};
use crate::backend::RedisBackend;
use crate::events::Monitor;
use crate::protocol::event::Event;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How the recorder batches and catches up.
#[derive(Debug, Clone)]
pub struct RecorderOptions {
    /// The longest a received event waits before it is written.
    pub flush_every: Duration,
    /// Events that trigger a write at once.
    pub max_batch: usize,
    /// Read the whole result backend once at start (a restarted monitor shows the past).
    pub catch_up_at_start: bool,
    /// How often unfinished rows are looked up in the result backend.
    pub reconcile_every: Duration,
    /// How long a row must have been unfinished and unchanged before it is looked up.
    pub stuck_after: Duration,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            flush_every: Duration::from_millis(250),
            max_batch: 5_000,
            catch_up_at_start: true,
            reconcile_every: Duration::from_secs(60),
            stuck_after: Duration::from_secs(120),
        }
    }
}

/// What a recorder did, returned when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Task events written.
    pub events: u64,
    /// Event batches the recorder fell behind on (repaired by a catch-up).
    pub missed_batches: u64,
    /// Catch-ups run.
    pub catch_ups: u64,
    /// Reconciling rounds run.
    pub reconciles: u64,
    /// Rows the reconciling rounds brought up to date.
    pub reconciled: u64,
    /// Writes that failed (logged; the events were dropped, a catch-up repairs states).
    pub failed_writes: u64,
}

/// Records `monitor`'s task events into `history` until `shutdown` completes. With a
/// `backend`, catches up from it at start (per `options`) and after falling behind.
pub async fn record_from_monitor(
    history: TaskHistory,
    monitor: &Monitor,
    backend: Option<RedisBackend>,
    options: RecorderOptions,
    shutdown: impl Future<Output = ()>,
) -> RecorderStats {
    let mut batches = monitor.subscribe();
    let mut stats = RecorderStats::default();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut catch_up_wanted = options.catch_up_at_start && backend.is_some();
    let mut pending: Vec<TaskEvent> = Vec::new();
    let mut flush = tokio::time::interval(options.flush_every.max(Duration::from_millis(10)));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let reconcile_every = options.reconcile_every.max(Duration::from_millis(100));
    let mut reconcile = tokio::time::interval_at(
        tokio::time::Instant::now() + reconcile_every,
        reconcile_every,
    );
    reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut position = ReconcilePosition::default();
    let mut reconnects = monitor.receiver_stats().reconnects;
    loop {
        if catch_up_wanted {
            catch_up_wanted = false;
            if let Some(backend) = &backend {
                stats.catch_ups += 1;
                match history.catch_up(backend).await {
                    Ok(report) => tracing::info!(
                        results = report.results,
                        changed = report.changed,
                        "task history caught up from the result backend"
                    ),
                    Err(error) => tracing::warn!(%error, "task history catch-up failed"),
                }
            }
        }
        tokio::select! {
            () = &mut shutdown => break,
            batch = batches.recv() => match batch {
                Ok(batch) => {
                    pending.extend(task_events(&batch));
                    if pending.len() >= options.max_batch
                        && !write(&history, &mut pending, &mut stats).await
                    {
                        catch_up_wanted = backend.is_some();
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "task history fell behind the event stream; catching up from the result backend");
                    stats.missed_batches += missed;
                    catch_up_wanted = backend.is_some();
                }
                Err(RecvError::Closed) => break,
            },
            _ = flush.tick() => {
                if !write(&history, &mut pending, &mut stats).await {
                    catch_up_wanted = backend.is_some();
                }
                let now = monitor.receiver_stats().reconnects;
                if now != reconnects {
                    reconnects = now;
                    tracing::info!("the event receiver reconnected; catching up from the result backend");
                    catch_up_wanted = backend.is_some();
                }
            }
            _ = reconcile.tick() => {
                let Some(backend) = &backend else { continue };
                // What is pending first, so a row is not looked up for an event on its way.
                let _written = write(&history, &mut pending, &mut stats).await;
                let before = crate::clock::now()
                    - chrono::TimeDelta::from_std(options.stuck_after).unwrap_or_default();
                stats.reconciles += 1;
                match history.reconcile(backend, before, &mut position).await {
                    Ok(report) => {
                        stats.reconciled += report.changed;
                        if report.changed > 0 {
                            tracing::info!(
                                checked = report.checked,
                                changed = report.changed,
                                "unfinished tasks brought up to date from the result backend"
                            );
                        }
                    }
                    Err(error) => tracing::warn!(%error, "reconciling unfinished tasks failed"),
                }
            }
        }
    }
    let _written = write(&history, &mut pending, &mut stats).await;
    stats
}

/// The task events of a batch in the history's input form (worker events are left out).
pub fn task_events(batch: &Arc<Vec<Event>>) -> impl Iterator<Item = TaskEvent> + '_ {
    batch.iter().filter_map(TaskEvent::from_event)
}

/// Writes what is pending; false when the write failed (the events are dropped).
async fn write(
    history: &TaskHistory,
    pending: &mut Vec<TaskEvent>,
    stats: &mut RecorderStats,
) -> bool {
    if pending.is_empty() {
        return true;
    }
    let events = std::mem::take(pending);
    match history.record_events(&events).await {
        Ok(_) => {
            stats.events += events.len() as u64;
            true
        }
        Err(error) => {
            stats.failed_writes += 1;
            log_write_error(&error, events.len());
            false
        }
    }
}

fn log_write_error(error: &HistoryError, count: usize) {
    tracing::warn!(%error, count, "writing task events to the history failed");
}
