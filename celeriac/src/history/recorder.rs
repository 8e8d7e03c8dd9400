//! Keeps the history current while a [`Monitor`] runs: its event batches are written to SQL in
//! larger batches, and what events cannot tell (tasks that ran while nobody listened, or
//! batches this recorder fell behind on) is read from the result backend.
//!
//! Writes are grouped (every `flush_every` or `max_batch` events) because one transaction per
//! event batch would make SQLite the bottleneck at the rates the monitor takes.
//!
//! One SQL job runs at a time (a write, one page of a catch-up, one reconciling round) while
//! the loop goes on taking batches from the monitor: a slow write or a catch-up of a million
//! results must not stop the recorder from receiving, or it falls behind the broadcast and
//! misses events, which starts another catch-up (in the issue 13 soak, the inline catch-ups
//! kept the history 350,000 tasks behind). Writes go first; a catch-up walks the backend a page
//! at a time between them. At most `max_pending` events wait for their write: beyond that the
//! recorder stops taking batches, the monitor's broadcast (bounded too) tells it how many it
//! missed, and a catch-up repairs the final states. Memory is bounded by events, not by how far
//! behind the recorder is.
//!
//! Events published while Redis was down are lost for good (PUB/SUB keeps nothing), so two
//! more repairs run: a catch-up each time the monitor's receiver has reconnected (tasks that
//! finished meanwhile, known only to the backend, are added), and every `reconcile_every` a
//! reconciling round (`reconcile.rs`) that looks up the rows left unfinished for
//! `stuck_after`.

use super::{
    CatchUpCursor, CatchUpReport, HistoryError, ReconcilePosition, ReconcileReport, TaskEvent,
    TaskHistory,
};
use crate::backend::ResultBackend;
use crate::events::Monitor;
use crate::protocol::event::Event;
use std::future::Future;
use std::pin::Pin;
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
    /// Events held for writing at most; beyond it the recorder stops taking batches and
    /// repairs what it missed from the result backend.
    pub max_pending: usize,
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
            max_pending: 20_000,
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

/// What an SQL job of the recorder came back with.
enum Done {
    Wrote(Result<usize, HistoryError>, usize),
    CaughtUp(Result<Option<CatchUpCursor>, HistoryError>, CatchUpReport),
    Reconciled(Result<ReconcileReport, HistoryError>, ReconcilePosition),
}

type Job<'a> = Pin<Box<dyn Future<Output = Done> + Send + 'a>>;

/// A catch-up under way: where it goes on, what it found so far, and whether another was asked
/// for while it ran (keys stored meanwhile may be behind its cursor).
struct CatchUp {
    cursor: CatchUpCursor,
    report: CatchUpReport,
    again: bool,
}

/// Records `monitor`'s task events into `history` until `shutdown` completes. With a
/// `backend`, catches up from it at start (per `options`) and after falling behind.
pub async fn record_from_monitor(
    history: TaskHistory,
    monitor: &Monitor,
    backend: Option<ResultBackend>,
    options: RecorderOptions,
    shutdown: impl Future<Output = ()>,
) -> RecorderStats {
    let mut batches = monitor.subscribe();
    let mut stats = RecorderStats::default();
    let mut shutdown = std::pin::pin!(shutdown);
    let history = &history;
    let backend = backend.as_ref();
    let max_pending = options.max_pending.max(options.max_batch).max(1);
    let mut catch_up: Option<CatchUp> = None;
    let mut catch_up_wanted = options.catch_up_at_start;
    let mut pending: Vec<TaskEvent> = Vec::new();
    let mut due = Due::default();
    let mut job: Option<Job<'_>> = None;
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
        if catch_up_wanted && backend.is_some() {
            match &mut catch_up {
                Some(running) => running.again = true,
                None => {
                    stats.catch_ups += 1;
                    catch_up = Some(CatchUp {
                        cursor: CatchUpCursor::default(),
                        report: CatchUpReport::default(),
                        again: false,
                    });
                }
            }
        }
        catch_up_wanted = false;
        if job.is_none() {
            job = next_job(
                history,
                backend,
                &options,
                &mut pending,
                &mut due,
                catch_up.as_ref().map(|running| running.cursor),
                position,
            );
        }
        let room = pending.len() < max_pending;
        tokio::select! {
            () = &mut shutdown => break,
            done = async { job.as_mut().expect("guarded by is_some").await }, if job.is_some() => {
                job = None;
                match done {
                    Done::Wrote(result, count) => {
                        if !wrote(result, count, &mut stats) {
                            catch_up_wanted = true;
                        }
                    }
                    Done::CaughtUp(result, page) => {
                        if let Some(running) = catch_up.take() {
                            match caught_up(running, result, page) {
                                Ok(going_on) => catch_up = Some(going_on),
                                Err(again) => catch_up_wanted |= again,
                            }
                        }
                    }
                    Done::Reconciled(result, next) => {
                        position = next;
                        reconciled(result, &mut stats);
                    }
                }
            }
            batch = batches.recv(), if room => match batch {
                Ok(batch) => {
                    pending.extend(task_events(&batch));
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "task history fell behind the event stream; catching up from the result backend");
                    stats.missed_batches += missed;
                    catch_up_wanted = true;
                }
                Err(RecvError::Closed) => break,
            },
            _ = flush.tick() => {
                due.flush = true;
                let now = monitor.receiver_stats().reconnects;
                if now != reconnects {
                    reconnects = now;
                    tracing::info!("the event receiver reconnected; catching up from the result backend");
                    catch_up_wanted = true;
                }
            }
            _ = reconcile.tick() => due.reconcile = true,
        }
    }
    if let Some(job) = job.take() {
        if let Done::Wrote(result, count) = job.await {
            wrote(result, count, &mut stats);
        }
    }
    if !pending.is_empty() {
        let count = pending.len();
        let result = history.record_events(&pending).await;
        wrote(result, count, &mut stats);
    }
    stats
}

/// The SQL job to run now, if any: a write when events are due, else the next page of the
/// catch-up under way, else a reconciling round when one is due.
fn next_job<'a>(
    history: &'a TaskHistory,
    backend: Option<&'a ResultBackend>,
    options: &RecorderOptions,
    pending: &mut Vec<TaskEvent>,
    due: &mut Due,
    catch_up: Option<CatchUpCursor>,
    position: ReconcilePosition,
) -> Option<Job<'a>> {
    // What is pending goes first, also before a reconciling round, so that a row is not looked
    // up for an event on its way.
    if !pending.is_empty() && (due.flush || due.reconcile || pending.len() >= options.max_batch) {
        due.flush = false;
        let events = std::mem::take(pending);
        return Some(Box::pin(async move {
            let count = events.len();
            Done::Wrote(history.record_events(&events).await, count)
        }));
    }
    let backend = backend?;
    if let Some(cursor) = catch_up {
        return Some(Box::pin(async move {
            let mut page = CatchUpReport::default();
            let result = history.catch_up_page(backend, cursor, &mut page).await;
            Done::CaughtUp(result, page)
        }));
    }
    if due.reconcile {
        due.reconcile = false;
        let before = crate::clock::now()
            - chrono::TimeDelta::from_std(options.stuck_after).unwrap_or_default();
        return Some(Box::pin(async move {
            let mut position = position;
            let result = history.reconcile(backend, before, &mut position).await;
            Done::Reconciled(result, position)
        }));
    }
    None
}

/// The recorder's timers that fired since their job last ran.
#[derive(Default)]
struct Due {
    flush: bool,
    reconcile: bool,
}

/// Counts a finished write; false when it failed (its events are dropped, logged).
fn wrote(result: Result<usize, HistoryError>, count: usize, stats: &mut RecorderStats) -> bool {
    match result {
        Ok(_) => {
            stats.events += count as u64;
            true
        }
        Err(error) => {
            stats.failed_writes += 1;
            tracing::warn!(%error, count, "writing task events to the history failed");
            false
        }
    }
}

/// Folds a catch-up page into the catch-up under way: the catch-up to go on with, or, when it
/// ended, whether another was asked for while it ran.
fn caught_up(
    mut running: CatchUp,
    result: Result<Option<CatchUpCursor>, HistoryError>,
    page: CatchUpReport,
) -> Result<CatchUp, bool> {
    running.report.pages += page.pages;
    running.report.results += page.results;
    running.report.changed += page.changed;
    match result {
        Ok(Some(next)) => {
            running.cursor = next;
            return Ok(running);
        }
        Ok(None) => tracing::info!(
            results = running.report.results,
            changed = running.report.changed,
            "task history caught up from the result backend"
        ),
        Err(error) => tracing::warn!(%error, "task history catch-up failed"),
    }
    Err(running.again)
}

fn reconciled(result: Result<ReconcileReport, HistoryError>, stats: &mut RecorderStats) {
    stats.reconciles += 1;
    match result {
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

/// The task events of a batch in the history's input form (worker events are left out).
pub fn task_events(batch: &Arc<Vec<Event>>) -> impl Iterator<Item = TaskEvent> + '_ {
    batch.iter().filter_map(TaskEvent::from_event)
}
