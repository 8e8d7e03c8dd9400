//! Which slots of a periodic task to send now, and how many were missed: the downtime policy.
//!
//! A slot is an instant the schedule names (a crontab time, `every` after the previous run, the
//! clocked moment). Several slots may have passed since the entry's anchor (its last run, or
//! when it was last resumed): because a leader handed over, because the database was slow for a
//! tick, or because beat was down or the entry disabled. Two cases, told apart by the age of a
//! slot against the replay window (the longest handover: lease timeout plus two ticks):
//!
//! - **Recent slots** (within the window) are all sent, one message each, oldest first: a
//!   handover or a slow tick loses nothing.
//! - **Older slots** are downtime. Sending each of them would stampede the workers with stale
//!   work (a daily report run five times), sending none would silently miss work. The policy,
//!   per beat (`beat_catch_up`):
//!   - [`CatchUp::Once`] (default): if no recent slot is sent, send the latest passed slot once;
//!     the others count as missed.
//!   - [`CatchUp::Skip`]: send none of them; all count as missed.
//!
//! Either way the count of missed slots is returned, so the store can record it and the
//! dashboard can show it. No IO: the scheduler feeds it the clock.

use super::{PeriodicTask, Schedule};
use chrono::{DateTime, TimeDelta, Utc};

/// The most slots counted one by one when working out how many were missed; beyond this (a
/// per-second crontab-like walk down for days) the count is capped.
const MAX_SLOTS_WALKED: u64 = 100_000;

/// The most recent slots sent for one entry in one decision; older recent slots count as
/// missed (only intervals far shorter than a tick reach it).
pub const MAX_REPLAYED: usize = 64;

/// What beat does about slots older than the replay window after downtime (`beat_catch_up`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Send the latest passed slot once.
    #[default]
    Once,
    /// Send nothing older than the replay window.
    Skip,
}

impl std::str::FromStr for CatchUp {
    type Err = String;

    fn from_str(text: &str) -> Result<CatchUp, String> {
        match text {
            "once" => Ok(CatchUp::Once),
            "skip" => Ok(CatchUp::Skip),
            other => Err(format!("{other:?} is not a catch-up policy (once, skip)")),
        }
    }
}

/// The decision for one entry at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The slots to send now, oldest first (at most [`MAX_REPLAYED`]).
    pub fire: Vec<DateTime<Utc>>,
    /// Slots that passed and will never be sent.
    pub missed: u64,
    /// The latest passed slot (fired or skipped): the new anchor.
    pub settled: Option<DateTime<Utc>>,
    /// The next slot after this decision, when beat should look again; `None` if never.
    pub next: Option<DateTime<Utc>>,
}

/// Decides for `entry` at `now`. `anchor` replaces `last_run_at` when it is later: it is when
/// the entry was resumed (re-enabled, rescheduled) or its last skipped slot, so slots before
/// it are not due. Slots at most `window` old are recent (module docs).
pub fn plan(
    entry: &PeriodicTask,
    anchor: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    policy: CatchUp,
    window: TimeDelta,
) -> Plan {
    let first = match anchor.filter(|anchor| entry.last_run_at.is_none_or(|last| *anchor > last)) {
        Some(anchor) if entry.enabled => {
            let mut anchored = entry.clone();
            anchored.last_run_at = Some(anchor);
            anchored.due_at(now)
        }
        _ => entry.due_at(now),
    };
    let Some(first) = first else {
        return Plan {
            fire: Vec::new(),
            missed: 0,
            settled: None,
            next: None,
        };
    };
    if first > now {
        return Plan {
            fire: Vec::new(),
            missed: 0,
            settled: None,
            next: Some(first),
        };
    }
    let passed = passed_slots(entry, first, now, now - window);
    let latest = passed.latest;
    let next = if entry.one_off {
        None
    } else {
        entry
            .schedule
            .next_after(latest)
            .filter(|next| entry.expires.is_none_or(|expires| *next < expires))
    };
    let mut fire = passed.recent;
    if entry.one_off && fire.len() > 1 {
        fire.drain(..fire.len() - 1);
    }
    if fire.is_empty() && policy == CatchUp::Once {
        fire.push(latest);
    }
    Plan {
        missed: passed.count - fire.len() as u64,
        fire,
        settled: Some(latest),
        next,
    }
}

/// The slots from `first` up to `now`.
struct Passed {
    /// The latest passed slot.
    latest: DateTime<Utc>,
    /// How many passed in all (at least 1, capped for long crontab walks).
    count: u64,
    /// The last [`MAX_REPLAYED`] passed slots at or after `recent_from`, oldest first.
    recent: Vec<DateTime<Utc>>,
}

/// Walks the passed slots from the passed slot `first` (stopping before `expires`).
fn passed_slots(
    entry: &PeriodicTask,
    first: DateTime<Utc>,
    now: DateTime<Utc>,
    recent_from: DateTime<Utc>,
) -> Passed {
    let end = entry
        .expires
        .map_or(now, |expires| now.min(expires - TimeDelta::milliseconds(1)));
    let end = end.max(first);
    if let Schedule::Interval(interval) = &entry.schedule {
        let every = interval
            .duration()
            .num_microseconds()
            .unwrap_or(i64::MAX)
            .max(1);
        let span = (end - first).num_microseconds().unwrap_or(i64::MAX);
        let steps = span / every;
        let at = |step: i64| first + TimeDelta::microseconds(step.saturating_mul(every));
        let recent_span = (recent_from - first).num_microseconds().unwrap_or(0);
        let first_recent = if recent_span <= 0 {
            0
        } else {
            (recent_span + every - 1) / every
        };
        let first_recent = first_recent.max(steps + 1 - MAX_REPLAYED as i64);
        return Passed {
            latest: at(steps),
            count: steps as u64 + 1,
            recent: (first_recent.max(0)..=steps).map(at).collect(),
        };
    }
    let mut latest = first;
    let mut count = 1;
    let mut recent = std::collections::VecDeque::new();
    if first >= recent_from {
        recent.push_back(first);
    }
    while count < MAX_SLOTS_WALKED {
        match entry.schedule.next_after(latest) {
            Some(next) if next <= end => {
                latest = next;
                count += 1;
                if next >= recent_from {
                    if recent.len() == MAX_REPLAYED {
                        recent.pop_front();
                    }
                    recent.push_back(next);
                }
            }
            _ => break,
        }
    }
    Passed {
        latest,
        count,
        recent: recent.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beat::{Crontab, PeriodicTask, Schedule};
    use chrono::TimeZone;

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, hour, minute, 0).unwrap()
    }

    fn every_15_minutes() -> PeriodicTask {
        let crontab = Crontab::parse_cron("*/15 * * * *", "UTC").unwrap();
        let mut task = PeriodicTask::new("report", "demo.add", Schedule::Crontab(crontab));
        task.last_run_at = Some(at(9, 0));
        task
    }

    const WINDOW: TimeDelta = TimeDelta::seconds(8);

    #[test]
    fn not_due_yet_says_when() {
        let decision = plan(&every_15_minutes(), None, at(9, 10), CatchUp::Once, WINDOW);
        assert!(decision.fire.is_empty());
        assert_eq!(decision.next, Some(at(9, 15)));
    }

    #[test]
    fn after_downtime_the_latest_slot_runs_once() {
        let decision = plan(&every_15_minutes(), None, at(10, 5), CatchUp::Once, WINDOW);
        assert_eq!(decision.fire, vec![at(10, 0)]);
        assert_eq!(decision.missed, 3, "09:15, 09:30 and 09:45 were missed");
        assert_eq!(decision.next, Some(at(10, 15)));
    }

    #[test]
    fn skip_policy_sends_only_recent_slots() {
        let late = plan(&every_15_minutes(), None, at(10, 5), CatchUp::Skip, WINDOW);
        assert!(late.fire.is_empty());
        assert_eq!(late.missed, 4);
        assert_eq!(late.settled, Some(at(10, 0)));
        let on_time = plan(
            &every_15_minutes(),
            None,
            at(9, 15) + TimeDelta::seconds(3),
            CatchUp::Skip,
            WINDOW,
        );
        assert_eq!(on_time.fire, vec![at(9, 15)]);
        assert_eq!(on_time.missed, 0);
    }

    #[test]
    fn recent_slots_are_all_sent_after_a_handover() {
        let mut task = PeriodicTask::new(
            "tick",
            "demo.noop",
            Schedule::Interval("1s".parse().unwrap()),
        );
        task.last_run_at = Some(at(9, 0));
        // The leader died at 09:00:00; its successor leads at 09:00:07.5.
        let now = at(9, 0) + TimeDelta::milliseconds(7_500);
        for policy in [CatchUp::Once, CatchUp::Skip] {
            let decision = plan(&task, None, now, policy, WINDOW);
            let expected: Vec<_> = (1..=7)
                .map(|second| at(9, 0) + TimeDelta::seconds(second))
                .collect();
            assert_eq!(decision.fire, expected, "{policy:?}");
            assert_eq!(decision.missed, 0);
            assert_eq!(decision.next, Some(at(9, 0) + TimeDelta::seconds(8)));
        }
    }

    #[test]
    fn older_slots_are_missed_when_recent_ones_are_sent() {
        let mut task = PeriodicTask::new(
            "tick",
            "demo.noop",
            Schedule::Interval("1s".parse().unwrap()),
        );
        task.last_run_at = Some(at(9, 0));
        let decision = plan(&task, None, at(9, 1), CatchUp::Once, WINDOW);
        assert_eq!(decision.fire.len(), 9, "09:00:52 to 09:01:00");
        assert_eq!(
            decision.fire.first(),
            Some(&(at(9, 0) + TimeDelta::seconds(52)))
        );
        assert_eq!(decision.missed, 51);
    }

    #[test]
    fn an_anchor_after_the_last_run_hides_older_slots() {
        // Re-enabled at 10:05 after being off since 09:00: nothing fires at once.
        let decision = plan(
            &every_15_minutes(),
            Some(at(10, 5)),
            at(10, 6),
            CatchUp::Once,
            WINDOW,
        );
        assert!(decision.fire.is_empty());
        assert_eq!(decision.next, Some(at(10, 15)));
    }

    #[test]
    fn intervals_count_missed_slots_without_walking() {
        let mut task = PeriodicTask::new(
            "tick",
            "demo.noop",
            Schedule::Interval("1h".parse().unwrap()),
        );
        task.last_run_at = Some(at(0, 0));
        let decision = plan(&task, None, at(23, 30), CatchUp::Once, WINDOW);
        assert_eq!(decision.fire, vec![at(23, 0)]);
        assert_eq!(decision.missed, 22);
    }

    #[test]
    fn replays_are_capped() {
        let mut task = PeriodicTask::new(
            "fast",
            "demo.noop",
            Schedule::Interval("1us".parse().unwrap()),
        );
        task.last_run_at = Some(at(9, 0));
        let decision = plan(
            &task,
            None,
            at(9, 0) + TimeDelta::seconds(1),
            CatchUp::Once,
            WINDOW,
        );
        assert_eq!(decision.fire.len(), MAX_REPLAYED);
        assert_eq!(decision.missed, 1_000_000 - MAX_REPLAYED as u64);
    }

    #[test]
    fn slots_from_expires_on_are_not_sent() {
        let mut task = every_15_minutes();
        task.expires = Some(at(9, 40));
        let decision = plan(&task, None, at(9, 35), CatchUp::Once, WINDOW);
        assert_eq!(decision.fire, vec![at(9, 30)]);
        assert_eq!(decision.missed, 1);
        assert_eq!(decision.next, None, "09:45 is after expires");
        let expired = plan(&task, None, at(10, 5), CatchUp::Once, WINDOW);
        assert!(expired.fire.is_empty() && expired.settled.is_none());
    }

    #[test]
    fn a_one_off_has_no_next_slot() {
        let mut task = PeriodicTask::new("once", "demo.noop", Schedule::Clocked { at: at(9, 30) });
        task.one_off = true;
        let decision = plan(&task, None, at(9, 31), CatchUp::Once, WINDOW);
        assert_eq!(decision.fire, vec![at(9, 30)]);
        assert_eq!(decision.next, None);
    }
}
