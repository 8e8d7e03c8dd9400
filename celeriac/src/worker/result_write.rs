//! Writing a run's outcome to the result backend, and what to do when the backend cannot take
//! it: wait while it is unreachable (the message is held meanwhile), and when Redis is full,
//! free memory by acking first (see [`write_freeing`]).

use super::Shared;
use crate::backend::ResultBackend;
use crate::broker::Delivery;
use crate::protocol::ResultMeta;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long result writes are retried when Redis answers with an error other than being
/// full, counted from the first such answer; an unreachable or full backend is waited for
/// without a limit (see [`write`]).
const STORE_RETRY_LIMIT: Duration = Duration::from_secs(60);

/// How often a write still waiting for the backend says so again.
const STORE_WAIT_REPORT: Duration = Duration::from_secs(30);

/// Writes `meta`; false when it was not stored. See [`write_freeing`].
pub(crate) async fn write(shared: &Shared, meta: &ResultMeta) -> bool {
    write_freeing(shared, meta, None).await
}

/// Writes `meta`; false when it was not stored.
///
/// While the backend is unreachable the write is retried for as long as it takes (the worker
/// keeps holding the message and refreshing its visibility): a result given up after a fixed
/// time while the message was acked anyway was a result lost for good. It gives up only when
/// a shutdown's grace period has run out, and the caller then puts the message back. Another
/// error Redis answers with is retried for [`STORE_RETRY_LIMIT`].
///
/// A full Redis (`maxmemory` with `noeviction`, results beside the queue) refuses the write,
/// and holding the message then frees nothing: every worker waited on a write that only a
/// drained queue could allow, a live-lock (issue 13). So on the first refusal the message
/// `frees` (the run's own delivery, when it was not acked yet) is acked at once, which frees
/// its envelope, and the write goes on in the background ([`write_when_redis_has_room`]),
/// so the slot runs the next task, whose ack frees more. The acked message can no longer be
/// put back: a result still unwritten when the worker stops is reported as lost.
pub(crate) async fn write_freeing(
    shared: &Shared,
    meta: &ResultMeta,
    frees: Option<&Delivery>,
) -> bool {
    let Some(backend) = &shared.backend else {
        return true;
    };
    let mut frees = frees;
    let started = Instant::now();
    // Since when Redis has been answering with an error that waiting may not cure; an outage
    // before it does not count against STORE_RETRY_LIMIT.
    let mut refused_since: Option<Instant> = None;
    let mut reported: Option<Instant> = None;
    let mut pause = Duration::from_millis(100);
    loop {
        let error = match backend.store(meta).await {
            Ok(_) => {
                if reported.is_some() {
                    tracing::info!(task_id = %meta.task_id, status = %meta.status, waited_s = started.elapsed().as_secs(), "task result stored after the backend came back");
                }
                return true;
            }
            Err(error) => error,
        };
        let aborting = *shared.aborting.borrow();
        let full = error.is_out_of_memory();
        if full {
            if let Some(delivery) = frees.take() {
                shared
                    .counters
                    .acked_before_result
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(task_id = %meta.task_id, status = %meta.status, "REDIS IS FULL (maxmemory with noeviction): acking the message before its result is stored, to free memory; the result is written as soon as Redis has room");
                shared.acks.push(delivery);
                write_when_redis_has_room(shared, backend.clone(), meta.clone());
                return true;
            }
        }
        let waiting_cures = full || error.is_unreachable();
        let refused_for = if waiting_cures {
            Duration::ZERO
        } else {
            refused_since.get_or_insert_with(Instant::now).elapsed()
        };
        let keep_trying = !aborting && (waiting_cures || refused_for < STORE_RETRY_LIMIT);
        if !keep_trying {
            tracing::error!(task_id = %meta.task_id, status = %meta.status, error = %crate::error::chain(&error), aborting, "could not store task result");
            return false;
        }
        if reported.is_none_or(|at| at.elapsed() >= STORE_WAIT_REPORT) {
            tracing::warn!(task_id = %meta.task_id, status = %meta.status, error = %crate::error::chain(&error), waited_s = started.elapsed().as_secs(), "could not store task result; retrying until the backend answers");
            reported = Some(Instant::now());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Writes `meta` in a tokio task of its own, retrying until Redis has room (see
/// [`write_freeing`]); counted in `results_waiting` until written. Given up, and logged as
/// lost, once the worker aborts its runs at the end of a shutdown.
fn write_when_redis_has_room(shared: &Shared, backend: ResultBackend, meta: ResultMeta) {
    let counters = shared.counters.clone();
    let aborting = shared.aborting.clone();
    counters.results_waiting.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(100);
        loop {
            match backend.store(&meta).await {
                Ok(_) => {
                    tracing::info!(task_id = %meta.task_id, status = %meta.status, "task result stored once Redis had room");
                    break;
                }
                Err(error) if *aborting.borrow() => {
                    tracing::error!(task_id = %meta.task_id, status = %meta.status, error = %crate::error::chain(&error), "TASK RESULT LOST: Redis stayed full until the worker stopped; the task ran and its message was acked");
                    break;
                }
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
        counters.results_waiting.fetch_sub(1, Ordering::Relaxed);
    });
}
