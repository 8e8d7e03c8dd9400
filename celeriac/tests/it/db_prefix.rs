//! Celeriac's schema can share a database with another application: every table, index,
//! trigger, sequence, constraint and function it creates carries the `celeriac_` prefix, and a
//! database migrated before the prefix existed keeps its rows, its full-text search and its
//! triggers through the rename. Both on SQLite and on PostgreSQL.

use crate::history::open_database;
use celeriac::auth::audit::AuditLog;
use celeriac::auth::users::UserStore;
use celeriac::beat::ScheduleStore;
use celeriac::db::Database;
use celeriac::history::{TaskEvent, TaskEventKind, TaskFilter, TaskHistory};
use celeriac::testkit::{DatabaseKind, TestDatabase};
use chrono::{TimeZone, Utc};
use sqlx::migrate::Migrator;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The migration that renamed everything; the ones before it made the unprefixed schema.
const PREFIX_MIGRATION: i64 = 20261201000000;

/// The one object allowed without the prefix (with its primary key): sqlx's bookkeeping
/// table, whose name sqlx 0.8 fixes.
const SQLX_BOOKKEEPING: &str = "_sqlx_migrations";

/// Every name of a Celeriac object in the test's database (the backend's internal names left
/// out: SQLite's `sqlite_*`).
async fn object_names(database: &Database) -> Vec<String> {
    let queries: &[&str] = match database {
        Database::Sqlite(_) => &["SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite%'"],
        Database::Postgres(_) => &[
            "SELECT relname::text FROM pg_class \
             WHERE relnamespace = current_schema()::regnamespace",
            "SELECT conname::text FROM pg_constraint \
             WHERE connamespace = current_schema()::regnamespace",
            "SELECT proname::text FROM pg_proc WHERE pronamespace = current_schema()::regnamespace",
            "SELECT tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
             WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal",
        ],
    };
    let mut names = Vec::new();
    for query in queries {
        let rows: Vec<String> = match database {
            Database::Sqlite(pool) => sqlx::query_scalar(query).fetch_all(pool).await,
            Database::Postgres(pool) => sqlx::query_scalar(query).fetch_all(pool).await,
        }
        .expect("list the schema's objects");
        names.extend(rows);
    }
    names
}

async fn every_object_carries_the_prefix(kind: DatabaseKind) {
    let test_database = TestDatabase::new(kind, "db_prefix");
    let database = open_database(&test_database).await;
    let names = object_names(&database).await;
    assert!(
        names.iter().any(|name| name == "celeriac_task_history"),
        "the listing sees the schema: {names:?}"
    );
    let unprefixed: Vec<_> = names
        .iter()
        .filter(|name| !name.starts_with("celeriac_") && !name.starts_with(SQLX_BOOKKEEPING))
        .collect();
    assert!(
        unprefixed.is_empty(),
        "objects without the prefix: {unprefixed:?}"
    );
    if let Database::Sqlite(pool) = &database {
        let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .expect("journal mode");
        assert_eq!(journal_mode, "wal");
    }
    database.close().await;
}

#[tokio::test]
async fn every_sqlite_object_carries_the_prefix() {
    every_object_carries_the_prefix(DatabaseKind::Sqlite).await;
}

#[tokio::test]
async fn every_postgres_object_carries_the_prefix() {
    every_object_carries_the_prefix(DatabaseKind::Postgres).await;
}

/// A copy of the migrations before [`PREFIX_MIGRATION`] in a fresh directory (the caller
/// removes it): the schema a database had before the rename.
fn old_migrations(kind: DatabaseKind) -> PathBuf {
    let backend = match kind {
        DatabaseKind::Sqlite => "sqlite",
        DatabaseKind::Postgres => "postgres",
    };
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let target = std::env::temp_dir().join(format!(
        "celeriac-old-migrations-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&target).expect("create the migrations copy");
    for entry in std::fs::read_dir(&source).expect("read the migrations") {
        let path = entry.expect("migration entry").path();
        let file_name = path.file_name().expect("a file name").to_string_lossy();
        let version: i64 = file_name
            .split('_')
            .next()
            .and_then(|version| version.parse().ok())
            .expect("a versioned migration file");
        if version < PREFIX_MIGRATION {
            std::fs::copy(&path, target.join(&*file_name)).expect("copy a migration");
        }
    }
    target
}

/// The test's database migrated only up to the schema without the prefix.
pub async fn open_before_the_prefix(test_database: &TestDatabase) -> Database {
    let directory = old_migrations(test_database.kind);
    let migrator = Migrator::new(directory.as_path())
        .await
        .expect("read the old migrations");
    let database = match test_database.kind {
        DatabaseKind::Sqlite => {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&test_database.url)
                .expect("sqlite url")
                .create_if_missing(true)
                .foreign_keys(true);
            let pool = sqlx::SqlitePool::connect_with(options)
                .await
                .expect("open sqlite");
            migrator.run(&pool).await.expect("old migrations");
            Database::Sqlite(pool)
        }
        DatabaseKind::Postgres => {
            let schema = test_database.schema.clone().expect("a test schema");
            let options = sqlx::postgres::PgConnectOptions::from_str(&test_database.url)
                .expect("postgres url")
                .options([("search_path", format!("{schema},public"))]);
            let pool = sqlx::PgPool::connect_with(options)
                .await
                .expect("open postgres");
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&pool)
                .await
                .expect("create schema");
            migrator.run(&pool).await.expect("old migrations");
            Database::Postgres(pool)
        }
    };
    let _removed = std::fs::remove_dir_all(&directory);
    database
}

async fn raw(database: &Database, sql: &str) {
    match database {
        Database::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        Database::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
    }
    .unwrap_or_else(|error| panic!("{sql}: {error}"));
}

async fn a_database_from_before_the_prefix_keeps_its_rows(kind: DatabaseKind) {
    let test_database = TestDatabase::new(kind, "db_prefix_upgrade");
    let old = open_before_the_prefix(&test_database).await;
    let statements = [
        "INSERT INTO task_history (task_id, name, state, state_at, seen_at, args_repr) \
         VALUES ('old-task', 'demo.add', 'SUCCESS', 2000, 1000, '(''needle-in-args'', 2)')",
        "INSERT INTO task_history_events (task_id, event_type, occurred_at, hostname) \
         VALUES ('old-task', 'task-succeeded', 2000, 'w1@host')",
        "INSERT INTO task_history_counts (state, tasks) VALUES ('SUCCESS', 1)",
        "INSERT INTO beat_periodic_task (name, task, schedule) VALUES ('old-schedule', \
         'demo.add', '{\"kind\": \"interval\", \"every\": 30, \"period\": \"seconds\"}')",
        "INSERT INTO beat_run (name, slot_index, slot, sent_at, outcome) \
         VALUES ('old-schedule', 0, 1000, 1001, 'sent')",
        "INSERT INTO dashboard_user (name, role, password_hash, created_at) \
         VALUES ('ada', 'admin', 'not-a-real-hash', 1000)",
        "INSERT INTO dashboard_audit (at, actor, action) VALUES (1000, 'ada', 'login')",
    ];
    for statement in statements {
        raw(&old, statement).await;
    }
    old.close().await;

    let database = open_database(&test_database).await;
    let history = TaskHistory::new(database.clone());
    let detail = history
        .task("old-task")
        .await
        .expect("read the history")
        .expect("the old task is kept");
    assert_eq!(detail.timeline.len(), 1, "its timeline is kept");
    let search = TaskFilter {
        args_contains: Some("needle-in".to_owned()),
        ..TaskFilter::default()
    };
    let page = history.list(&search, None, 10).await.expect("search");
    let found: Vec<_> = page
        .tasks
        .iter()
        .map(|task| task.task_id.as_str())
        .collect();
    assert_eq!(found, ["old-task"], "the argument search covers old rows");
    let mut event = TaskEvent::new(
        TaskEventKind::Sent,
        "new-task",
        "producer@host",
        Utc.timestamp_opt(3, 0).single().expect("a valid time"),
    );
    event.name = Some("demo.add".to_owned());
    event.args = Some("('needle-in-args', 3)".to_owned());
    history.record_events(&[event]).await.expect("record");
    let page = history.list(&search, None, 10).await.expect("search");
    assert_eq!(page.tasks.len(), 2, "new rows are indexed too");

    let store = ScheduleStore::new(database.clone());
    let stored = store
        .get("old-schedule")
        .await
        .expect("the schedule is kept");
    assert_eq!(stored.task.task, "demo.add");
    assert_eq!(store.runs("old-schedule").await.expect("runs").len(), 1);
    let before = store.changes_since(0).await.expect("changes").version;
    store
        .set_enabled("old-schedule", false)
        .await
        .expect("disable");
    let after = store.changes_since(before).await.expect("changes");
    assert_eq!(after.upserted.len(), 1, "the change stamps still fire");
    store.delete("old-schedule").await.expect("delete");
    let deleted = store.changes_since(after.version).await.expect("changes");
    assert_eq!(deleted.deleted, ["old-schedule"], "deletions are recorded");

    let users = UserStore::new(database.clone())
        .list()
        .await
        .expect("users");
    assert_eq!(users.len(), 1, "accounts are kept");
    let audit = AuditLog::new(database.clone());
    audit
        .append("ada", "logout", "", "127.0.0.1")
        .await
        .expect("the audit log continues its ids");
    assert_eq!(audit.recent(10).await.expect("audit").len(), 2);
    let names = object_names(&database).await;
    assert!(
        !names.iter().any(|name| name.starts_with("task_history")),
        "the old names are gone: {names:?}"
    );
    database.close().await;
}

#[tokio::test]
async fn a_sqlite_database_from_before_the_prefix_keeps_its_rows() {
    a_database_from_before_the_prefix_keeps_its_rows(DatabaseKind::Sqlite).await;
}

#[tokio::test]
async fn a_postgres_database_from_before_the_prefix_keeps_its_rows() {
    a_database_from_before_the_prefix_keeps_its_rows(DatabaseKind::Postgres).await;
}
