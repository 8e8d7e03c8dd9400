//! Beat's schedule store on SQLite and PostgreSQL: edits through the API and through raw SQL
//! are seen as changes, re-enabling moves the anchor, runs land in the bounded ring.

use crate::history::open_database;
use celeriac::beat::store::{RunOutcome, RunRecord};
use celeriac::beat::{Crontab, PeriodicTask, Schedule, ScheduleStore, StoreError};
use celeriac::db::Database;
use celeriac::testkit::{DatabaseKind, TestDatabase};
use chrono::{TimeDelta, TimeZone, Utc};

fn every_minute(name: &str) -> PeriodicTask {
    let crontab = Crontab::parse_cron("* * * * *", "UTC").expect("crontab");
    PeriodicTask::new(name, "demo.add", Schedule::Crontab(crontab))
}

async fn raw(database: &Database, sql: &str) {
    match database {
        Database::Sqlite(pool) => {
            sqlx::query(sql).execute(pool).await.expect("raw sql");
        }
        Database::Postgres(pool) => {
            sqlx::query(sql).execute(pool).await.expect("raw sql");
        }
    }
}

async fn store_scenario(kind: DatabaseKind) {
    let test_database = TestDatabase::new(kind, "beat_store");
    let database = open_database(&test_database).await;
    let store = ScheduleStore::new(database.clone());

    let mut report = every_minute("report");
    report.args = serde_json::json!([2, 3]);
    store.add(&report).await.expect("add");
    assert!(matches!(
        store.add(&report).await,
        Err(StoreError::Exists { .. })
    ));
    let mut invalid = every_minute("bad");
    invalid.kwargs = serde_json::json!([1]);
    let error = store.add(&invalid).await.expect_err("invalid kwargs");
    assert!(error.to_string().contains("kwargs"), "{error}");

    let stored = store.get("report").await.expect("get");
    assert_eq!(stored.task.args, serde_json::json!([2, 3]));
    assert!(
        stored.anchor_at.is_some(),
        "a new entry is anchored at its creation"
    );
    let first = store.changes_since(0).await.expect("changes");
    assert_eq!(first.upserted.len(), 1);
    let watermark = first.version;
    assert!(store
        .changes_since(watermark)
        .await
        .expect("changes")
        .upserted
        .is_empty());

    // The scheduler's bookkeeping is not an edit.
    let slot = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
    store
        .record_runs(&[RunRecord {
            name: "report".into(),
            slot,
            sent_at: slot + TimeDelta::milliseconds(40),
            task_id: Some("t-1".into()),
            outcome: RunOutcome::Sent,
            missed: 2,
            late: false,
            disable: false,
        }])
        .await
        .expect("record");
    assert!(store
        .changes_since(watermark)
        .await
        .expect("changes")
        .upserted
        .is_empty());
    let stored = store.get("report").await.expect("get");
    assert_eq!(stored.task.last_run_at, Some(slot));
    assert_eq!(stored.task.total_run_count, 1);
    assert_eq!(stored.missed_count, 2);
    let runs = store.runs("report").await.expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].lateness_ms, 40);

    // An edit through raw SQL is a change, and re-enabling moves the anchor forward.
    raw(
        &database,
        "UPDATE celeriac_beat_periodic_task SET enabled = 0 WHERE name = 'report'",
    )
    .await;
    let changes = store.changes_since(watermark).await.expect("changes");
    assert_eq!(changes.upserted.len(), 1);
    assert!(!changes.upserted[0].task.enabled);
    let anchor_before = changes.upserted[0].anchor_at;
    store.set_enabled("report", true).await.expect("enable");
    let changes = store.changes_since(changes.version).await.expect("changes");
    assert_eq!(changes.upserted.len(), 1);
    assert!(changes.upserted[0].anchor_at >= anchor_before);
    assert!(changes.upserted[0].anchor_at.unwrap() > slot);

    // The ring keeps the last runs only.
    let runs: Vec<RunRecord> = (1..=30)
        .map(|minute| RunRecord {
            name: "report".into(),
            slot: slot + TimeDelta::minutes(minute),
            // Each sent `minute` milliseconds after its slot.
            sent_at: slot + TimeDelta::minutes(minute) + TimeDelta::milliseconds(minute),
            task_id: None,
            outcome: RunOutcome::Sent,
            missed: 0,
            late: false,
            disable: false,
        })
        .collect();
    store.record_runs(&runs).await.expect("record");
    let kept = store.runs("report").await.expect("runs");
    assert_eq!(kept.len() as i64, celeriac::beat::store::RUNS_KEPT);
    assert_eq!(kept[0].slot, slot + TimeDelta::minutes(30));
    // `/metrics` reads the latest slot's lateness of every entry in one query.
    assert_eq!(
        store.latest_lateness().await.expect("latest lateness"),
        vec![("report".to_owned(), 30)]
    );

    store.delete("report").await.expect("delete");
    let changes = store.changes_since(changes.version).await.expect("changes");
    assert_eq!(changes.deleted, vec!["report".to_owned()]);
    assert!(store.runs("report").await.expect("runs").is_empty());
    assert!(matches!(
        store.delete("report").await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn store_on_sqlite() {
    store_scenario(DatabaseKind::Sqlite).await;
}

#[tokio::test]
async fn store_on_postgres() {
    store_scenario(DatabaseKind::Postgres).await;
}

/// Beats starting together on a new database each write the configured `beat_schedule`: all
/// of them must succeed, and a concurrent `add` of one name is refused as `Exists` rather
/// than failing on the primary key.
async fn concurrent_first_writes(kind: DatabaseKind) {
    let test_database = TestDatabase::new(kind, "beat_store_concurrent");
    let database = open_database(&test_database).await;
    let store = ScheduleStore::new(database.clone());
    let config = celeriac::config::Config::from_sources(
        Some("[beat_schedule.cleanup]\ntask = \"demo.add\"\nschedule = \"*/5 * * * *\"\n"),
        [],
    )
    .expect("config");
    let syncs: Vec<_> = (0..8)
        .map(|_| {
            let (store, config) = (store.clone(), config.clone());
            tokio::spawn(
                async move { celeriac::beat::static_schedule::sync(&store, &config).await },
            )
        })
        .collect();
    let mut written = 0;
    for sync in syncs {
        written += sync
            .await
            .expect("sync task")
            .expect("every beat's sync succeeds");
    }
    assert!(written >= 1, "someone wrote the entry");
    assert_eq!(store.list().await.expect("list").len(), 1);

    let adds: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.add(&every_minute("report")).await })
        })
        .collect();
    let mut added = 0;
    for add in adds {
        match add.await.expect("add task") {
            Ok(()) => added += 1,
            Err(StoreError::Exists { .. }) => {}
            Err(error) => panic!("a concurrent add failed otherwise: {error}"),
        }
    }
    assert_eq!(added, 1, "exactly one add wins");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_writes_on_sqlite() {
    concurrent_first_writes(DatabaseKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_writes_on_postgres() {
    concurrent_first_writes(DatabaseKind::Postgres).await;
}
