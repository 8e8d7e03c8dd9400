//! The durable task history on real databases: every scenario runs on a SQLite file and on a
//! PostgreSQL schema (`on_both!`). Events out of order and twice, filters and keyset pages,
//! counts, retention, and a reopen. Sources (catch-up, retry) are in `history_sources.rs`.

use celeriac::db::{Database, DatabaseOptions};
use celeriac::history::{
    Cursor, Retention, SearchTuning, TaskEvent, TaskEventKind, TaskFilter, TaskHistory, TimeField,
};
use celeriac::testkit::{DatabaseKind, TestDatabase};
use celeriac::TaskState;
use chrono::{DateTime, Duration as TimeDelta, TimeZone, Utc};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

/// Opens (and migrates) the test's database.
pub async fn open_database(test_database: &TestDatabase) -> Database {
    let options = DatabaseOptions {
        schema: test_database.schema.clone(),
        ..DatabaseOptions::new(&test_database.url)
    };
    Database::connect_with(&options)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "cannot open test database {} ({error}; source: {:?}); \
             run scripts/setup.sh --test to start PostgreSQL",
                test_database.url,
                std::error::Error::source(&error).map(ToString::to_string)
            )
        })
}

/// A history on a fresh database of `kind`.
pub async fn fresh_history(kind: DatabaseKind, name: &str) -> (TestDatabase, TaskHistory) {
    let test_database = TestDatabase::new(kind, name);
    let history = TaskHistory::new(open_database(&test_database).await);
    (test_database, history)
}

/// Defines `mod <scenario> { sqlite, postgres }` tests that run `<scenario>(kind)`.
macro_rules! on_both {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario(celeriac::testkit::DatabaseKind::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario(celeriac::testkit::DatabaseKind::Postgres).await
                }
            }
        )*
    };
}
pub(crate) use on_both;

on_both!(
    out_of_order_and_duplicate_events_merge_by_precedence,
    filters_pages_and_counts,
    retention_prunes_by_age_and_by_rows,
    the_history_survives_a_reopen,
);

fn base_time() -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).unwrap()
}

fn at(seconds: f64) -> f64 {
    base_time().timestamp() as f64 + seconds
}

/// A task event as Celery sends it, decoded by `TaskEvent::from_fields`.
fn event(kind: &str, task_id: &str, timestamp: f64, extra: Value) -> TaskEvent {
    let mut fields = json!({"type": kind, "uuid": task_id, "hostname": "w1@h",
        "timestamp": timestamp, "utcoffset": 0, "pid": 1, "clock": 1});
    let fields = fields.as_object_mut().unwrap();
    if kind == "task-sent" {
        fields.insert("hostname".into(), json!("gen1@h"));
    }
    if let Value::Object(extra) = extra {
        fields.extend(extra);
    }
    TaskEvent::from_fields(fields).expect("a task event")
}

fn received(task_id: &str, timestamp: f64) -> TaskEvent {
    event(
        "task-received",
        task_id,
        timestamp,
        json!({"name": "demo.add", "args": "(2, 3)", "kwargs": "{}", "retries": 0}),
    )
}

async fn out_of_order_and_duplicate_events_merge_by_precedence(kind: DatabaseKind) {
    let (_database, history) = fresh_history(kind, "order").await;
    let a = "aaaaaaaa-0000-4000-8000-000000000001";
    let b = "bbbbbbbb-0000-4000-8000-000000000002";
    let c = "cccccccc-0000-4000-8000-000000000003";
    let succeeded_a = event(
        "task-succeeded",
        a,
        at(3.0),
        json!({"result": "5", "runtime": 0.5}),
    );
    // A: the end first, then the beginning, then everything again.
    history
        .record_events(&[
            succeeded_a.clone(),
            event("task-started", a, at(2.0), json!({})),
        ])
        .await
        .unwrap();
    history
        .record_events(&[
            received(a, at(1.0)),
            event(
                "task-sent",
                a,
                at(0.0),
                json!({"name": "demo.add", "queue": "q1"}),
            ),
            succeeded_a.clone(),
        ])
        .await
        .unwrap();
    let unchanged = history
        .record_events(&[received(a, at(1.0)), succeeded_a])
        .await
        .unwrap();
    assert_eq!(unchanged, 0, "duplicates change no row");
    // B: a retry and a second attempt that fails, all in reverse order in one batch.
    let mut second_received = received(b, at(4.0));
    second_received.retries = Some(1);
    let mut b_events = vec![
        received(b, at(1.0)),
        event("task-started", b, at(2.0), json!({})),
        event(
            "task-retried",
            b,
            at(3.0),
            json!({"exception": "RuntimeError('again')"}),
        ),
        second_received,
        event("task-started", b, at(5.0), json!({})),
        event(
            "task-failed",
            b,
            at(6.0),
            json!({"exception": "ValueError('boom')", "traceback": "Traceback …"}),
        ),
    ];
    b_events.reverse();
    history.record_events(&b_events).await.unwrap();
    // C: a received that arrives after the started.
    history
        .record_events(&[event("task-started", c, at(2.0), json!({}))])
        .await
        .unwrap();
    history
        .record_events(&[received(c, at(1.0))])
        .await
        .unwrap();

    let a_detail = history.task(a).await.unwrap().expect("task a is known");
    let task = &a_detail.task;
    assert_eq!(task.state, TaskState::Success);
    assert_eq!(task.name.as_deref(), Some("demo.add"));
    assert_eq!(task.args_repr.as_deref(), Some("(2, 3)"));
    assert_eq!(task.result.as_deref(), Some("5"));
    assert_eq!(task.runtime, Some(0.5));
    assert_eq!(task.worker.as_deref(), Some("w1@h"));
    assert_eq!(task.queue.as_deref(), Some("q1"));
    assert_eq!(task.seen_at.timestamp(), base_time().timestamp());
    let kinds: Vec<TaskEventKind> = a_detail.timeline.iter().map(|entry| entry.kind).collect();
    assert_eq!(
        kinds,
        [
            TaskEventKind::Sent,
            TaskEventKind::Received,
            TaskEventKind::Started,
            TaskEventKind::Succeeded
        ],
        "one timeline entry per event, duplicates dropped"
    );
    assert_eq!(a_detail.timeline[0].hostname.as_deref(), Some("gen1@h"));

    let b_detail = history.task(b).await.unwrap().unwrap();
    assert_eq!(b_detail.task.state, TaskState::Failure);
    assert_eq!(b_detail.task.retries, Some(1));
    assert_eq!(
        b_detail.task.exception.as_deref(),
        Some("ValueError('boom')")
    );
    assert_eq!(b_detail.timeline.len(), 6);
    let c_task = history.task(c).await.unwrap().unwrap().task;
    assert_eq!(
        c_task.state,
        TaskState::Started,
        "a late received does not win"
    );
    assert_eq!(
        c_task.name.as_deref(),
        Some("demo.add"),
        "but adds its fields"
    );

    let mut counts = history.state_counts().await.unwrap();
    counts.sort_by_key(|(state, _)| state.as_str());
    assert_eq!(
        counts,
        [
            (TaskState::Failure, 1),
            (TaskState::Started, 1),
            (TaskState::Success, 1)
        ]
    );
    assert!(history.task("no-such-task").await.unwrap().is_none());
}

/// 60 tasks: names by i % 3, workers by i % 2, queues by i % 4, FAILURE when i % 5 == 0,
/// first seen at base + i seconds. Returns the task ids by i.
async fn sixty_tasks(history: &TaskHistory) -> Vec<String> {
    let names = ["demo.add", "demo.fail", "demo.echo"];
    let mut task_ids = Vec::new();
    let mut events = Vec::new();
    for i in 0..60_usize {
        let task_id = uuid::Uuid::new_v4().to_string();
        let start = i as f64;
        let mut sent = event(
            "task-sent",
            &task_id,
            at(start),
            json!({"name": names[i % 3], "queue": format!("q{}", i % 4),
                   "args": format!("({i}, 'order-{i:03}')"),
                   "kwargs": format!("{{'customer_id': {}}}", 1000 + i)}),
        );
        sent.hostname = "gen1@h".into();
        let worker = format!("w{}@h", i % 2);
        let mut on_worker = vec![
            event("task-received", &task_id, at(start + 0.1), json!({})),
            event("task-started", &task_id, at(start + 0.2), json!({})),
            if i % 5 == 0 {
                event(
                    "task-failed",
                    &task_id,
                    at(start + 0.3),
                    json!({"exception": "E()"}),
                )
            } else {
                event(
                    "task-succeeded",
                    &task_id,
                    at(start + 0.3),
                    json!({"result": "1"}),
                )
            },
        ];
        for worker_event in &mut on_worker {
            worker_event.hostname = worker.clone();
        }
        events.push(sent);
        events.extend(on_worker);
        task_ids.push(task_id);
    }
    // Two batches, the second first.
    let (first, second) = events.split_at(events.len() / 2);
    history.record_events(second).await.unwrap();
    history.record_events(first).await.unwrap();
    task_ids
}

/// Every task `filter` matches, following the cursors with pages of `limit`.
async fn all_pages(history: &TaskHistory, filter: &TaskFilter, limit: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = history.list(filter, cursor, limit).await.unwrap();
        assert!(page.tasks.len() <= limit as usize);
        ids.extend(page.tasks.iter().map(|task| task.task_id.clone()));
        match page.next {
            // The cursor survives a round trip through text (a URL).
            Some(next) => cursor = Some(Cursor::from_token(&next.to_token()).unwrap()),
            None => return ids,
        }
    }
}

fn indexes(task_ids: &[String], found: &[String]) -> Vec<usize> {
    found
        .iter()
        .map(|id| task_ids.iter().position(|known| known == id).unwrap())
        .collect()
}

async fn filters_pages_and_counts(kind: DatabaseKind) {
    let (_database, history) = fresh_history(kind, "filters").await;
    let task_ids = sixty_tasks(&history).await;

    let everything = all_pages(&history, &TaskFilter::default(), 7).await;
    let newest_first: Vec<usize> = (0..60).rev().collect();
    assert_eq!(indexes(&task_ids, &everything), newest_first);

    let failures = TaskFilter {
        states: vec![TaskState::Failure],
        ..TaskFilter::default()
    };
    let found = all_pages(&history, &failures, 5).await;
    assert_eq!(
        indexes(&task_ids, &found),
        [55, 50, 45, 40, 35, 30, 25, 20, 15, 10, 5, 0]
    );

    let failed_adds = TaskFilter {
        name: Some("demo.add".into()),
        ..failures.clone()
    };
    let found = all_pages(&history, &failed_adds, 50).await;
    assert_eq!(indexes(&task_ids, &found), [45, 30, 15, 0]);

    let worker_in_window = TaskFilter {
        worker: Some("w1@h".into()),
        since: Some(base_time() + TimeDelta::seconds(10)),
        until: Some(base_time() + TimeDelta::seconds(20)),
        ..TaskFilter::default()
    };
    let found = all_pages(&history, &worker_in_window, 2).await;
    assert_eq!(indexes(&task_ids, &found), [19, 17, 15, 13, 11]);
    let done_in_window = TaskFilter {
        time_field: TimeField::Done,
        since: Some(base_time() + TimeDelta::milliseconds(10_300)),
        until: Some(base_time() + TimeDelta::milliseconds(12_300)),
        ..TaskFilter::default()
    };
    // Sorted by the time the range is on; pages of one follow the cursor on that time.
    let found = all_pages(&history, &done_in_window, 1).await;
    assert_eq!(indexes(&task_ids, &found), [11, 10]);

    let queue = TaskFilter {
        queue: Some("q3".into()),
        ..TaskFilter::default()
    };
    let found = all_pages(&history, &queue, 50).await;
    assert_eq!(found.len(), 15);
    assert!(indexes(&task_ids, &found).iter().all(|i| i % 4 == 3));

    let prefix = task_ids[42][..6].to_owned();
    let by_prefix = TaskFilter {
        task_id_prefix: Some(prefix.clone()),
        ..TaskFilter::default()
    };
    let found = all_pages(&history, &by_prefix, 50).await;
    assert!(found.contains(&task_ids[42]));
    assert!(found.iter().all(|id| id.starts_with(&prefix)));

    let search = |term: &str| TaskFilter {
        args_contains: Some(term.to_owned()),
        ..TaskFilter::default()
    };
    // Every path of a SQLite search: a rare part looked up (the default here), a walk of all
    // candidates, a short walk and then the whole phrase.
    let tunings = [
        SearchTuning::default(),
        SearchTuning {
            rare_below: 1,
            walk_window: 1000,
        },
        SearchTuning {
            rare_below: 1,
            walk_window: 5,
        },
    ];
    for tuning in tunings {
        let history = history.clone().with_search_tuning(tuning);
        let found = all_pages(&history, &search("ORDER-042"), 50).await;
        assert_eq!(
            indexes(&task_ids, &found),
            [42],
            "case-insensitive substring"
        );
        let found = all_pages(&history, &search("'order-01"), 3).await;
        assert_eq!(found.len(), 10, "pages of a search");
        let found = all_pages(&history, &search("4,"), 50).await;
        assert_eq!(
            indexes(&task_ids, &found),
            [54, 44, 34, 24, 14, 4],
            "short terms work too"
        );
        assert!(all_pages(&history, &search("100%"), 50).await.is_empty());
        // Several tokens: SQLite looks up one and checks the whole term.
        let found = all_pages(&history, &search("42, 'order-"), 50).await;
        assert_eq!(indexes(&task_ids, &found), [42]);
        // PostgreSQL looks the digits up and checks the whole term (in the kwargs here).
        let found = all_pages(&history, &search("'CUSTOMER_ID': 1042"), 50).await;
        assert_eq!(indexes(&task_ids, &found), [42]);
        assert!(all_pages(&history, &search("'customer_id': 10420"), 50)
            .await
            .is_empty());
        let failed_search = TaskFilter {
            states: vec![TaskState::Failure],
            ..search("order-01")
        };
        let found = all_pages(&history, &failed_search, 50).await;
        assert_eq!(indexes(&task_ids, &found), [15, 10]);
        let count = history.count(&search("'order-01"), 4).await.unwrap();
        assert_eq!((count.tasks, count.capped), (4, true));
        let count = history.count(&search("'order-01"), 100).await.unwrap();
        assert_eq!((count.tasks, count.capped), (10, false));
    }

    let count = history.count(&failures, 1000).await.unwrap();
    assert_eq!((count.tasks, count.capped), (12, false));
    let adds = TaskFilter {
        name: Some("demo.add".into()),
        ..TaskFilter::default()
    };
    let count = history.count(&adds, 5).await.unwrap();
    assert_eq!((count.tasks, count.capped), (5, true));
    let count = history.count(&adds, 100).await.unwrap();
    assert_eq!((count.tasks, count.capped), (20, false));
    let count = history.count(&TaskFilter::default(), 10).await.unwrap();
    assert_eq!(count.tasks, 60, "whole totals come from the kept counts");

    let detail = history.task(&task_ids[7]).await.unwrap().unwrap();
    assert_eq!(detail.timeline.len(), 4);
    assert_eq!(detail.task.worker.as_deref(), Some("w1@h"));
    assert_eq!(detail.task.args_repr.as_deref(), Some("(7, 'order-007')"));
}

/// How many timeline rows the database holds (to see them go with their task).
async fn timeline_rows(database: &Database) -> i64 {
    let statement = "SELECT count(*) FROM celeriac_task_history_events";
    match database {
        Database::Sqlite(pool) => sqlx::query_scalar(statement).fetch_one(pool).await,
        Database::Postgres(pool) => sqlx::query_scalar(statement).fetch_one(pool).await,
    }
    .unwrap()
}

async fn retention_prunes_by_age_and_by_rows(kind: DatabaseKind) {
    let (_database, history) = fresh_history(kind, "retention").await;
    let now = celeriac::clock::now();
    let mut events = Vec::new();
    let mut task_ids = Vec::new();
    // Ten tasks seen 10, 9, … 1 days ago.
    for days in (1..=10).rev() {
        let task_id = uuid::Uuid::new_v4().to_string();
        let seen = (now - TimeDelta::days(days)).timestamp_micros() as f64 / 1e6;
        events.push(received(&task_id, seen));
        events.push(event("task-succeeded", &task_id, seen + 1.0, json!({})));
        task_ids.push(task_id);
    }
    history.record_events(&events).await.unwrap();
    assert_eq!(timeline_rows(history.database()).await, 20);

    let deleted = history
        .prune(Some(now - TimeDelta::days(3) - TimeDelta::hours(1)), None)
        .await
        .unwrap();
    assert_eq!(deleted, 7, "the tasks seen 10 … 4 days ago go");
    assert!(history.task(&task_ids[0]).await.unwrap().is_none());
    assert!(history.task(&task_ids[7]).await.unwrap().is_some());
    assert_eq!(
        timeline_rows(history.database()).await,
        6,
        "timelines go too"
    );
    assert_eq!(
        history.state_counts().await.unwrap(),
        [(TaskState::Success, 3)]
    );

    let deleted = history.prune(None, Some(2)).await.unwrap();
    assert_eq!(deleted, 1, "the oldest goes beyond max_rows");
    assert!(history.task(&task_ids[7]).await.unwrap().is_none());
    assert!(history.task(&task_ids[8]).await.unwrap().is_some());

    let retention = Retention {
        max_age: Some(Duration::from_secs(36 * 3600)),
        max_rows: Some(1000),
    };
    assert_eq!(history.apply_retention(&retention).await.unwrap(), 1);
    let left = all_pages(&history, &TaskFilter::default(), 10).await;
    assert_eq!(left, [task_ids[9].clone()]);
    assert_eq!(
        history
            .count(&TaskFilter::default(), 10)
            .await
            .unwrap()
            .tasks,
        1
    );
}

async fn the_history_survives_a_reopen(kind: DatabaseKind) {
    let test_database = TestDatabase::new(kind, "reopen");
    let task_ids: HashSet<String>;
    {
        let history = TaskHistory::new(open_database(&test_database).await);
        task_ids = sixty_tasks(&history).await.into_iter().collect();
        history.database().close().await;
    }
    // Opening again runs the migrations again: a no-op on an up-to-date schema.
    let history = TaskHistory::new(open_database(&test_database).await);
    let found: HashSet<String> = all_pages(&history, &TaskFilter::default(), 100)
        .await
        .into_iter()
        .collect();
    assert_eq!(found, task_ids);
    let total: u64 = history
        .state_counts()
        .await
        .unwrap()
        .iter()
        .map(|(_, tasks)| tasks)
        .sum();
    assert_eq!(total, 60);
}
