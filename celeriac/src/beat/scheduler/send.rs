//! The leader's sending step: due entries → slots (`due::plan`) → one pipelined batch of
//! fenced, claimed pushes → one transaction of run records → the in-memory entries settled and
//! woken at their next slot.

use super::super::due::plan;
use super::super::message::{arguments, send_options};
use super::super::store::{RunOutcome, RunRecord};
use super::super::PeriodicTask;
use super::{delta, Beat};
use crate::broker::{FireOutcome, RedisBroker, SlotFire};
use crate::clock;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::BTreeSet;

/// How long a leader waits before pushing again after Redis refused a batch.
const RETRY_AFTER: TimeDelta = TimeDelta::milliseconds(250);

/// Messages built before a wake-up, so that at the slot only the push remains.
#[derive(Debug)]
pub(super) struct Ahead {
    /// The wake-up they were planned for.
    pub(super) at: DateTime<Utc>,
    fires: Vec<SlotFire>,
    records: Vec<RunRecord>,
}

impl Beat {
    /// Builds the messages of the entries due at `at` (the next wake-up) now, while there is
    /// time: building 10,000 messages takes longer than pushing them.
    pub(super) fn prepare(&mut self, at: DateTime<Utc>) {
        if self.ahead.is_some() {
            return;
        }
        let (fires, records) = self.collect(at);
        if !records.is_empty() {
            self.ahead = Some(Ahead { at, fires, records });
        }
    }

    /// Drops the prepared messages (an edit arrived, which may concern them) and wakes their
    /// entries at the same time, to be planned again.
    pub(super) fn discard_ahead(&mut self) {
        if let Some(ahead) = self.ahead.take() {
            let names: BTreeSet<String> = ahead
                .records
                .into_iter()
                .map(|record| record.name)
                .collect();
            for name in names {
                self.entries.schedule(&name, Some(ahead.at));
            }
        }
    }

    /// Sends what is due now: the prepared batch if its time came, and whatever else is due.
    pub(super) async fn send_due(&mut self, broker: &RedisBroker) {
        let now = clock::now();
        let (mut fires, mut records) = match self.ahead.take() {
            Some(ahead) if ahead.at <= now => (ahead.fires, ahead.records),
            later => {
                self.ahead = later;
                (Vec::new(), Vec::new())
            }
        };
        let (more_fires, more_records) = self.collect(now);
        fires.extend(more_fires);
        records.extend(more_records);
        self.push(broker, now, fires, records).await;
    }

    /// Pops the entries due at `now` and builds their messages and run records (aligned: the
    /// n-th `Sent` record is the n-th message).
    fn collect(&mut self, now: DateTime<Utc>) -> (Vec<SlotFire>, Vec<RunRecord>) {
        let window = delta(self.options.replay_window());
        let mut fires = Vec::new();
        let mut records = Vec::new();
        while let Some(name) = self.entries.pop_due(now.timestamp_millis()) {
            let Some(stored) = self.entries.get(&name) else {
                continue;
            };
            let decision = plan(
                &stored.task,
                stored.anchor_at,
                now,
                self.options.catch_up,
                window,
            );
            let Some(settled) = decision.settled else {
                // Not due (`next` is after `now`); never wake it at `now` again in this loop.
                let next = decision
                    .next
                    .map(|next| next.max(now + TimeDelta::milliseconds(1)));
                self.entries.schedule(&name, next);
                continue;
            };
            let skipped = RunRecord {
                name: name.to_string(),
                slot: settled,
                sent_at: now,
                task_id: None,
                outcome: RunOutcome::Skipped,
                missed: decision.missed,
                late: false,
                disable: false,
            };
            if decision.fire.is_empty() {
                records.push(skipped);
                continue;
            }
            let last = decision.fire.len() - 1;
            for (index, slot) in decision.fire.iter().enumerate() {
                let missed = if index == 0 { decision.missed } else { 0 };
                match self.slot_message(&stored.task, *slot, now) {
                    Ok((fire, task_id)) => {
                        fires.push(fire);
                        records.push(RunRecord {
                            slot: *slot,
                            task_id: Some(task_id),
                            outcome: RunOutcome::Sent,
                            missed,
                            disable: stored.task.one_off && index == last,
                            ..skipped.clone()
                        });
                    }
                    Err(error) => {
                        tracing::error!(schedule = %name, %error, "cannot build the periodic task's message; the slot counts as missed");
                        records.push(RunRecord {
                            slot: *slot,
                            missed: missed + 1,
                            ..skipped.clone()
                        });
                    }
                }
            }
        }
        (fires, records)
    }

    /// Pushes one batch, records it, and settles the entries.
    async fn push(
        &mut self,
        broker: &RedisBroker,
        now: DateTime<Utc>,
        fires: Vec<SlotFire>,
        records: Vec<RunRecord>,
    ) {
        if records.is_empty() {
            return;
        }
        let enforce = !crate::failpoint::active("beat_no_claim");
        let outcomes = match broker.beat_fire(&self.held, &fires, enforce).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                tracing::warn!(%error, count = fires.len(), "beat could not send; retrying");
                self.retry_at = Some(now + RETRY_AFTER);
                let names: BTreeSet<String> =
                    records.into_iter().map(|record| record.name).collect();
                for name in names {
                    self.entries.schedule_now(&name);
                }
                return;
            }
        };
        let pushed_at = clock::now();
        let late_after = delta(self.options.late_after);
        let mut outcomes = outcomes.into_iter();
        let mut settled = Vec::with_capacity(records.len());
        let mut fenced = false;
        for mut record in records {
            if record.outcome == RunOutcome::Sent {
                match outcomes.next() {
                    Some(FireOutcome::Enqueued) => {
                        self.stats.sent += 1;
                        record.sent_at = pushed_at;
                        record.late = pushed_at - record.slot > late_after;
                        self.stats.late += u64::from(record.late);
                    }
                    Some(FireOutcome::AlreadyClaimed(claimed_ms)) => {
                        self.stats.already_sent += 1;
                        record.outcome = RunOutcome::AlreadySent;
                        record.task_id = None;
                        if let Some(claimed) = DateTime::<Utc>::from_timestamp_millis(claimed_ms) {
                            record.slot = record.slot.max(claimed);
                        }
                    }
                    Some(FireOutcome::NotLeader) | None => {
                        // Fenced off: whoever leads now sends it.
                        fenced = true;
                        continue;
                    }
                }
            } else if fenced {
                continue;
            }
            self.stats.missed += record.missed + u64::from(record.outcome == RunOutcome::Skipped);
            settled.push(record);
        }
        if let Err(error) = self.store.record_runs(&settled).await {
            // The claims in Redis keep the slots from being sent twice; the next leader's
            // take-over repairs last_run_at.
            tracing::warn!(%error, "beat could not record its runs");
        }
        if fenced {
            tracing::warn!(node = %self.options.node_name, "beat was fenced off by a newer leader");
            self.held.clear();
            self.leading = false;
            self.step_down_memory();
            return;
        }
        let mut woken = BTreeSet::new();
        for record in &settled {
            self.settle(record);
            woken.insert(record.name.clone());
        }
        for name in woken {
            self.wake(&name, pushed_at);
        }
    }

    /// Applies a settled run to the in-memory entry, as `record_runs` applies it to the row.
    pub(super) fn settle(&mut self, record: &RunRecord) {
        let Some(stored) = self.entries.get_mut(&record.name) else {
            return;
        };
        let task = &mut stored.task;
        match record.outcome {
            RunOutcome::Sent | RunOutcome::AlreadySent => {
                if task.last_run_at.is_none_or(|last| last < record.slot) {
                    task.last_run_at = Some(record.slot);
                    task.total_run_count += 1;
                    stored.missed_count += record.missed;
                    stored.late_count += u64::from(record.late);
                }
            }
            RunOutcome::Skipped => {
                if stored.anchor_at.is_none_or(|anchor| anchor < record.slot) {
                    stored.anchor_at = Some(record.slot);
                    stored.missed_count += record.missed;
                }
            }
        }
        if record.disable {
            stored.task.enabled = false;
        }
    }

    /// The message for one slot, ready for the claimed push.
    fn slot_message(
        &self,
        task: &PeriodicTask,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(SlotFire, String), crate::Error> {
        let (args, kwargs) = arguments(task);
        let options = send_options(task, Some(slot), now);
        let prepared = self
            .producer
            .prepare_message(&task.task, args, kwargs, &options)?;
        Ok((
            SlotFire {
                schedule: task.name.clone(),
                slot_ms: slot.timestamp_millis(),
                queue: prepared.queue,
                priority: prepared.priority,
                raw: prepared.raw,
            },
            prepared.task_id,
        ))
    }
}
