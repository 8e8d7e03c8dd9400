//! Which slot of a periodic task to send now, and how many were missed: the downtime policy.
//!
//! A slot is an instant the schedule names (a crontab time, `every` after the previous run, the
//! clocked moment). When beat was down, or the entry was disabled, several slots may have passed
//! since the entry's anchor (its last run, or when it was last resumed). Sending each of them
//! would stampede the workers with stale work (a daily report run five times), sending none
//! would silently miss work. The policy, per beat (`beat_catch_up`):
//!
//! - [`CatchUp::Once`] (default): send the latest passed slot once; the earlier ones count as
//!   missed.
//! - [`CatchUp::Skip`]: send the latest slot only if it passed within the grace period (a
//!   normal tick's lateness); otherwise count all as missed and wait for the next one.
//!
//! Either way the count of missed slots is returned, so the store can record it and the
//! dashboard can show it. No IO: the scheduler feeds it the clock.

use super::{PeriodicTask, Schedule};
use chrono::{DateTime, TimeDelta, Utc};

/// The most slots counted one by one when working out how many were missed; beyond this (a
/// per-second interval down for days) the count is computed for intervals and capped otherwise.
const MAX_SLOTS_WALKED: u64 = 100_000;

/// What beat does about passed slots after downtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CatchUp {
    /// Send the latest passed slot once.
    #[default]
    Once,
    /// Send nothing that is later than the grace period.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The slot to send now, if any.
    pub fire: Option<DateTime<Utc>>,
    /// Slots that passed and will never be sent.
    pub missed: u64,
    /// The latest passed slot (fired or skipped): the new anchor.
    pub settled: Option<DateTime<Utc>>,
    /// The next slot after this decision, when beat should look again; `None` if never.
    pub next: Option<DateTime<Utc>>,
}

/// Decides for `entry` at `now`. `anchor` replaces `last_run_at` when it is later: it is when
/// the entry was resumed (re-enabled, rescheduled) or its last skipped slot, so slots before
/// it are not due.
pub fn plan(
    entry: &PeriodicTask,
    anchor: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    policy: CatchUp,
    grace: TimeDelta,
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
            fire: None,
            missed: 0,
            settled: None,
            next: None,
        };
    };
    if first > now {
        return Plan {
            fire: None,
            missed: 0,
            settled: None,
            next: Some(first),
        };
    }
    let (latest, passed) = latest_passed(&entry.schedule, first, now);
    let latest = match entry.expires {
        Some(expires) if latest >= expires => first,
        _ => latest,
    };
    let next = if entry.one_off {
        None
    } else {
        entry
            .schedule
            .next_after(latest)
            .filter(|next| entry.expires.is_none_or(|expires| *next < expires))
    };
    let on_time = now - latest <= grace;
    match policy {
        CatchUp::Once => Plan {
            fire: Some(latest),
            missed: passed - 1,
            settled: Some(latest),
            next,
        },
        CatchUp::Skip if on_time => Plan {
            fire: Some(latest),
            missed: passed - 1,
            settled: Some(latest),
            next,
        },
        CatchUp::Skip => Plan {
            fire: None,
            missed: passed,
            settled: Some(latest),
            next,
        },
    }
}

/// The latest slot at or before `now`, starting from the passed slot `first`, and how many
/// slots passed in all (at least 1).
fn latest_passed(
    schedule: &Schedule,
    first: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, u64) {
    if let Schedule::Interval(interval) = schedule {
        let every = interval.duration().num_milliseconds().max(1);
        let steps = (now - first).num_milliseconds() / every;
        let latest = first + TimeDelta::milliseconds(steps * every);
        return (latest, steps as u64 + 1);
    }
    let mut latest = first;
    let mut passed = 1;
    while passed < MAX_SLOTS_WALKED {
        match schedule.next_after(latest) {
            Some(next) if next <= now => {
                latest = next;
                passed += 1;
            }
            _ => break,
        }
    }
    (latest, passed)
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

    #[test]
    fn not_due_yet_says_when() {
        let decision = plan(
            &every_15_minutes(),
            None,
            at(9, 10),
            CatchUp::Once,
            TimeDelta::seconds(2),
        );
        assert_eq!(decision.fire, None);
        assert_eq!(decision.next, Some(at(9, 15)));
    }

    #[test]
    fn after_downtime_the_latest_slot_runs_once() {
        let decision = plan(
            &every_15_minutes(),
            None,
            at(10, 5),
            CatchUp::Once,
            TimeDelta::seconds(2),
        );
        assert_eq!(decision.fire, Some(at(10, 0)));
        assert_eq!(decision.missed, 3, "09:15, 09:30 and 09:45 were missed");
        assert_eq!(decision.next, Some(at(10, 15)));
    }

    #[test]
    fn skip_policy_sends_only_what_is_on_time() {
        let late = plan(
            &every_15_minutes(),
            None,
            at(10, 5),
            CatchUp::Skip,
            TimeDelta::seconds(2),
        );
        assert_eq!(late.fire, None);
        assert_eq!(late.missed, 4);
        assert_eq!(late.settled, Some(at(10, 0)));
        let on_time = plan(
            &every_15_minutes(),
            None,
            at(9, 15),
            CatchUp::Skip,
            TimeDelta::seconds(2),
        );
        assert_eq!(on_time.fire, Some(at(9, 15)));
        assert_eq!(on_time.missed, 0);
    }

    #[test]
    fn an_anchor_after_the_last_run_hides_older_slots() {
        // Re-enabled at 10:05 after being off since 09:00: nothing fires at once.
        let decision = plan(
            &every_15_minutes(),
            Some(at(10, 5)),
            at(10, 6),
            CatchUp::Once,
            TimeDelta::seconds(2),
        );
        assert_eq!(decision.fire, None);
        assert_eq!(decision.next, Some(at(10, 15)));
    }

    #[test]
    fn intervals_count_missed_slots_without_walking() {
        let mut task = PeriodicTask::new(
            "tick",
            "demo.noop",
            Schedule::Interval("1s".parse().unwrap()),
        );
        task.last_run_at = Some(at(0, 0));
        let decision = plan(&task, None, at(23, 0), CatchUp::Once, TimeDelta::seconds(2));
        assert_eq!(decision.fire, Some(at(23, 0)));
        assert_eq!(decision.missed, 23 * 3600 - 1);
    }

    #[test]
    fn a_one_off_has_no_next_slot() {
        let mut task = PeriodicTask::new("once", "demo.noop", Schedule::Clocked { at: at(9, 30) });
        task.one_off = true;
        let decision = plan(&task, None, at(9, 31), CatchUp::Once, TimeDelta::seconds(2));
        assert_eq!(decision.fire, Some(at(9, 30)));
        assert_eq!(decision.next, None);
    }
}
