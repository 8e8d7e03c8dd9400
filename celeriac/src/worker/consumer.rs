//! The consumer: fetches messages while prefetch slots are free and hands each to the
//! [`super::strategy`] in its own tokio task.
//!
//! 1. Wait for at least one free prefetch slot (`prefetch_multiplier × concurrency` in all;
//!    the pool commands resize it), and for at least one queue to consume.
//! 2. Take as many more slots as are free and fetch that many messages in one script call,
//!    queues in round-robin order within each priority step, as kombu's `BRPOP` key order.
//! 3. Nothing there: wait, doubling from 1 ms up to `polling_interval`, then try again. Redis
//!    unreachable: log, wait a second, try again (the connection reconnects by itself).
//!    A failed fetch may have run with only its reply lost, so the next attempt first reclaims
//!    what that fetch handed out ([`crate::broker::RedisBroker::reclaim_lost_fetch`]): without
//!    it those messages would sit in `unacked` until the visibility timeout.
//! 4. On stop: fetch no more, then wait until every message handed out is finished or restored.
//!
//! Acks ride along: the executor queues them in `PendingAcks` and the next fetch script settles
//! them before fetching, so a finished task and the next delivery cost one round trip. When
//! every slot is busy, queued acks are sent on their own as soon as they arrive.
//!
//! Each handed-out message carries one prefetch slot; dropping it (when the task finished,
//! or when an ETA message starts waiting) frees the slot.
//!
//! The queue list is live: `add_consumer` and `cancel_consumer` change it through
//! `ConsumedQueues`, and the consumer picks the change up before its next fetch.

use super::queues::reorder;
use super::request::truncate;
use super::{strategy, Shared};
use crate::broker::Fetched;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

const MAX_BATCH: usize = 256;

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut consumed = shared.queues.subscribe();
    let mut queues = reorder(&[], &consumed.borrow_and_update());
    let mut resync = false;
    let mut handlers = JoinSet::new();
    let mut stopping = shared.stopping.clone();
    let max_idle = shared
        .config
        .broker_transport_options
        .polling_interval()
        .max(Duration::from_millis(1));
    let mut idle = Duration::from_millis(1);
    // The last fetch failed: its messages may be recorded as ours without our knowing them.
    let mut lost_fetch = false;
    loop {
        while handlers.try_join_next().is_some() {}
        if *stopping.borrow() {
            break;
        }
        // `changed()` below marks the new list as seen, so it sets `resync` for this check.
        if std::mem::take(&mut resync) || consumed.has_changed().unwrap_or(false) {
            queues = reorder(&queues, &consumed.borrow_and_update());
            tracing::info!(queues = ?queues, "consuming from a changed queue list");
        }
        if queues.is_empty() {
            // Every queue was cancelled: fetch nothing until one is added.
            let acks_waiting = tokio::select! {
                _ = consumed.changed() => false,
                _ = shared.acks.pushed() => true,
                _ = stopping.wait_for(|stop| *stop) => break,
            };
            if acks_waiting {
                flush_acks(&shared, &queues).await;
            } else {
                resync = true;
            }
            continue;
        }
        let first = tokio::select! {
            slot = shared.prefetch.acquire() => Some(slot),
            _ = shared.acks.pushed() => None,
            _ = stopping.wait_for(|stop| *stop) => break,
        };
        let Some(first) = first else {
            // Every slot is busy but acks are waiting (early acks of running tasks): settle
            // them now rather than when a slot frees.
            flush_acks(&shared, &queues).await;
            continue;
        };
        let mut permits = vec![first];
        while permits.len() < MAX_BATCH {
            match shared.prefetch.try_acquire() {
                Some(slot) => permits.push(slot),
                None => break,
            }
        }
        // After a failed fetch, take back what it may have handed out before fetching more;
        // the acks wait for the next fetch.
        let (acks, fetch) = if lost_fetch {
            let reclaimed = shared.broker.reclaim_lost_fetch().await;
            if let Ok(reclaimed) = &reclaimed {
                lost_fetch = false;
                if !reclaimed.is_empty() {
                    tracing::warn!(
                        messages = reclaimed.len(),
                        "the last fetch ran but its reply was lost; running what it handed out"
                    );
                }
            }
            (Vec::new(), reclaimed.map(|fetched| (fetched, 0)))
        } else {
            let acks = shared.acks.take();
            let fetch = shared
                .broker
                .fetch_and_ack(&queues, permits.len(), &acks)
                .await;
            (acks, fetch)
        };
        let pause = match fetch {
            Ok((fetched, stale)) if fetched.is_empty() => {
                report_stale(stale);
                let pause = idle;
                idle = (idle * 2).min(max_idle);
                pause
            }
            Ok((fetched, stale)) => {
                report_stale(stale);
                idle = Duration::from_millis(1);
                if queues.len() > 1 {
                    queues.rotate_left(1);
                }
                for item in fetched {
                    match item {
                        Fetched::Delivery(delivery) => {
                            shared.in_flight.insert(&delivery);
                            let permit = permits.pop();
                            handlers.spawn(strategy::handle(shared.clone(), delivery, permit));
                        }
                        Fetched::DeadLettered { queue, raw } => {
                            shared
                                .counters
                                .dead_lettered
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::error!(
                                queue = %queue,
                                message = %truncate(&raw, 200),
                                "the fetch moved a message to the dead-letter list (no delivery tag, not JSON, or a poison message)"
                            );
                        }
                    }
                }
                Duration::ZERO
            }
            Err(error) => {
                shared.acks.put_back(acks);
                lost_fetch = !crate::failpoint::active("no_reclaim");
                if crate::failpoint::active("stop_on_fetch_error") {
                    tracing::error!(%error, "failpoint stop_on_fetch_error: no longer consuming");
                    break;
                }
                tracing::warn!(%error, "fetch failed; retrying in 1 s");
                Duration::from_secs(1)
            }
        };
        drop(permits);
        if !pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shared.acks.pushed() => {}
                _ = consumed.changed() => resync = true,
                _ = stopping.wait_for(|stop| *stop) => break,
            }
        }
    }
    if lost_fetch {
        hand_back_lost_fetch(&shared).await;
    }
    while handlers.join_next().await.is_some() {}
    // Settle the acks of everything that finished, before the worker restores what is left.
    for _ in 0..20 {
        if !flush_acks(&shared, &queues).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Stopping with a fetch whose reply was lost: puts what it handed out back in its queue, so
/// another worker takes it now rather than after the visibility timeout. Redis still away:
/// the restore sweep does it then.
async fn hand_back_lost_fetch(shared: &Shared) {
    let Ok(reclaimed) = shared.broker.reclaim_lost_fetch().await else {
        return;
    };
    for item in reclaimed {
        if let Fetched::Delivery(delivery) = item {
            if let Err(error) = shared.broker.requeue(&delivery, true).await {
                tracing::warn!(%error, delivery_tag = %delivery.delivery_tag, "could not hand back a message of a lost fetch; the visibility timeout will restore it");
            }
        }
    }
}

/// Sends the waiting acks without fetching. Returns true when some are still waiting because
/// Redis did not answer.
async fn flush_acks(shared: &Shared, queues: &[String]) -> bool {
    let acks = shared.acks.take();
    if acks.is_empty() {
        return false;
    }
    match shared.broker.fetch_and_ack(queues, 0, &acks).await {
        Ok((_, stale)) => {
            report_stale(stale);
            false
        }
        Err(error) => {
            tracing::warn!(%error, waiting = acks.len(), "could not send acks; keeping them for the next attempt");
            shared.acks.put_back(acks);
            true
        }
    }
}

fn report_stale(stale: usize) {
    if stale > 0 {
        tracing::warn!(
            stale,
            "late acks ignored: those messages were restored and redelivered after this worker held them past the visibility timeout"
        );
    }
}
