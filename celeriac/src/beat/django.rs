//! django-celery-beat's tables as the source of truth for beat's schedules
//! (`beat_scheduler = "django_celery_beat.schedulers:DatabaseScheduler"`, or `"django"`).
//!
//! A Django team edits schedules in the Django admin; those rows must stay authoritative.
//! [`DjangoSync`] keeps Celeriac's own store (which carries the scheduler's bookkeeping, the
//! run ring and the change stamps the HA scheduler relies on) a mirror of
//! `django_celery_beat_periodictask` and its schedule tables, in both directions, once per beat
//! tick on the leader:
//!
//! - **Pull.** django-celery-beat bumps `django_celery_beat_periodictasks.last_update` on
//!   every admin or ORM `save()` of a task or schedule (its `PeriodicTasks.changed` signal) and
//!   every task row carries `date_changed`. When either moved, every row is read and entries
//!   whose definition differs are written into Celeriac's store; entries gone from Django are
//!   deleted. An ORM `QuerySet.update()` bypasses both stamps, so, as for django-celery-beat's
//!   own scheduler, such an edit is seen only at the next full comparison (every
//!   [`FULL_PULL_EVERY`]).
//! - **Push.** Edits made through Celeriac (dashboard, CLI) are written to Django's rows —
//!   finding or creating the `crontabschedule`/`intervalschedule`/`clockedschedule` row as
//!   the admin does — and the change marker bumped, so the admin shows them.
//! - **Progress.** `last_run_at`, `total_run_count` and a one-off's `enabled = false` are
//!   copied to Django's rows without touching `date_changed` or the marker, as
//!   django-celery-beat's scheduler saves them.
//!
//! Definitions are compared parsed (a crontab by the times it matches), so a round trip never
//! reads back as an edit. The Django tables are never created or altered; missing tables are
//! refused at start with what to run. Solar schedules are not supported: such an entry is
//! reported once and left alone.

mod tables;

use super::{Crontab, CrontabSpec, PeriodicTask, Schedule};
use super::{ScheduleStore, StoreError};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// The `beat_scheduler` values that select django-celery-beat's tables.
pub const DJANGO_SCHEDULERS: [&str; 2] =
    ["django_celery_beat.schedulers:DatabaseScheduler", "django"];

/// How often every row is compared even when no stamp moved (edits by `QuerySet.update()`).
pub const FULL_PULL_EVERY: Duration = Duration::from_secs(30);

/// How often run progress is copied to Django's rows.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

pub use tables::DjangoBeatTables;
use tables::Stamp;

/// The fields an edit changes (not the run bookkeeping).
pub fn same_definition(left: &PeriodicTask, right: &PeriodicTask) -> bool {
    let definition = |task: &PeriodicTask| {
        let mut task = task.clone();
        // A one-off that ran is disabled by beat, which is progress, not an edit.
        task.enabled = task.enabled || (task.one_off && task.total_run_count > 0);
        task.last_run_at = None;
        task.total_run_count = 0;
        task.date_changed = None;
        task
    };
    definition(left) == definition(right)
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Entries written into Celeriac's store from Django's rows.
    pub pulled: usize,
    /// Entries deleted from Celeriac's store because Django's rows are gone.
    pub pulled_deletes: usize,
    /// Entries written to Django's rows from Celeriac's edits.
    pub pushed: usize,
    /// Run progress copied to Django's rows.
    pub progress: usize,
}

/// Keeps Celeriac's store and django-celery-beat's tables in step (module docs).
#[derive(Debug)]
pub struct DjangoSync {
    tables: DjangoBeatTables,
    seen: Option<Stamp>,
    /// Celeriac's change stamp up to which its edits were pushed.
    pushed_up_to: Option<i64>,
    last_full_pull: Option<Instant>,
    last_progress: Option<Instant>,
    /// Entries already reported as unusable, so each is reported once.
    reported: HashSet<String>,
}

impl DjangoSync {
    /// A sync over `tables`.
    pub fn new(tables: DjangoBeatTables) -> DjangoSync {
        DjangoSync {
            tables,
            seen: None,
            pushed_up_to: None,
            last_full_pull: None,
            last_progress: None,
            reported: HashSet::new(),
        }
    }

    /// The tables.
    pub fn tables(&self) -> &DjangoBeatTables {
        &self.tables
    }

    /// One round: push Celeriac's edits, pull Django's, copy progress (module docs).
    pub async fn sync(&mut self, store: &ScheduleStore) -> Result<SyncReport, StoreError> {
        let mut report = SyncReport::default();
        // Edits made through Celeriac before the first pull belong to Celeriac's own past (an
        // earlier run of this process, or the same definitions): Django is the truth at start.
        if let Some(watermark) = self.pushed_up_to {
            self.push(store, watermark, &mut report).await?;
        }
        let stamp = self.tables.stamp().await?;
        let full_due = self
            .last_full_pull
            .is_none_or(|at| at.elapsed() >= FULL_PULL_EVERY);
        if self.seen.as_ref() != Some(&stamp) || full_due {
            self.pull(store, &mut report).await?;
            self.seen = Some(stamp);
            self.last_full_pull = Some(Instant::now());
        }
        if self
            .last_progress
            .is_none_or(|at| at.elapsed() >= PROGRESS_EVERY)
        {
            self.copy_progress(store, &mut report).await?;
            self.last_progress = Some(Instant::now());
        }
        if report != SyncReport::default() {
            tracing::info!(
                pulled = report.pulled,
                deleted = report.pulled_deletes,
                pushed = report.pushed,
                "beat schedules synced with django-celery-beat's tables"
            );
        }
        Ok(report)
    }

    async fn pull(
        &mut self,
        store: &ScheduleStore,
        report: &mut SyncReport,
    ) -> Result<(), StoreError> {
        // Stamps above this are the pull's own writes (or edits racing it): the next push
        // compares them with Django's rows, so nothing is lost and nothing echoes.
        let before = store.latest_version().await?;
        let (django, refused) = self.tables.list().await?;
        for (name, reason) in refused {
            if self.reported.insert(name.clone()) {
                tracing::error!(schedule = %name, %reason, "django-celery-beat entry not run");
            }
        }
        let ours: HashMap<String, PeriodicTask> = store
            .list()
            .await?
            .into_iter()
            .map(|stored| (stored.task.name.clone(), stored.task))
            .collect();
        let wanted: HashSet<&str> = django.iter().map(|task| task.name.as_str()).collect();
        for task in &django {
            let changed = ours
                .get(&task.name)
                .is_none_or(|known| !same_definition(known, task));
            if changed {
                if let Err(error) = store.upsert(task).await {
                    if self.reported.insert(task.name.clone()) {
                        tracing::error!(schedule = %task.name, %error, "django-celery-beat entry not run");
                    }
                    continue;
                }
                report.pulled += 1;
            }
        }
        for name in ours.keys() {
            if !wanted.contains(name.as_str()) {
                store.delete(name).await?;
                report.pulled_deletes += 1;
            }
        }
        self.pushed_up_to = Some(self.pushed_up_to.unwrap_or(before).max(before));
        Ok(())
    }

    async fn push(
        &mut self,
        store: &ScheduleStore,
        watermark: i64,
        report: &mut SyncReport,
    ) -> Result<(), StoreError> {
        let changes = store.changes_since(watermark).await?;
        if changes.upserted.is_empty() && changes.deleted.is_empty() {
            return Ok(());
        }
        let (django, _) = self.tables.list().await?;
        let theirs: HashMap<&str, &PeriodicTask> = django
            .iter()
            .map(|task| (task.name.as_str(), task))
            .collect();
        for stored in &changes.upserted {
            let differs = theirs
                .get(stored.task.name.as_str())
                .is_none_or(|known| !same_definition(known, &stored.task));
            if differs {
                self.tables.write(&stored.task).await?;
                report.pushed += 1;
            }
        }
        for name in &changes.deleted {
            if theirs.contains_key(name.as_str()) {
                self.tables.delete(name).await?;
                report.pushed += 1;
            }
        }
        self.pushed_up_to = Some(changes.version);
        // Our own writes moved Django's stamps; they are not edits to pull back.
        self.seen = Some(self.tables.stamp().await?);
        Ok(())
    }

    async fn copy_progress(
        &mut self,
        store: &ScheduleStore,
        report: &mut SyncReport,
    ) -> Result<(), StoreError> {
        let (django, _) = self.tables.list().await?;
        let theirs: HashMap<&str, &PeriodicTask> = django
            .iter()
            .map(|task| (task.name.as_str(), task))
            .collect();
        for stored in store.list().await? {
            let ours = &stored.task;
            let Some(known) = theirs.get(ours.name.as_str()) else {
                continue;
            };
            let moved = ours.last_run_at != known.last_run_at
                || ours.total_run_count != known.total_run_count
                || (ours.one_off && !ours.enabled && known.enabled);
            if moved && ours.last_run_at.is_some() {
                self.tables.record_progress(ours).await?;
                report.progress += 1;
            }
        }
        Ok(())
    }
}

/// Celery's default entry that prunes expired results from database backends: created when
/// missing, as Celery's beat does when `result_expires` is set (`0 4 * * *` in UTC, messages
/// expiring after 12 hours). An existing entry is left as the admin last saved it.
pub fn backend_cleanup_entry() -> PeriodicTask {
    let crontab = Crontab::new(&CrontabSpec {
        minute: "0".into(),
        hour: "4".into(),
        ..CrontabSpec::default()
    })
    .expect("0 4 * * * is a valid crontab");
    let mut task = PeriodicTask::new(
        "celery.backend_cleanup",
        "celery.backend_cleanup",
        Schedule::Crontab(crontab),
    );
    task.expire_seconds = Some(12 * 3600);
    task
}
