//! Opening a brand-new database from many places at once: eight `Database::connect` calls in
//! this process and several child processes, on a fresh SQLite file and on a fresh PostgreSQL
//! schema. Every one must succeed and find the whole schema, because that is what a first
//! start does (the history, beat and the accounts each open the database, and `serve` and two
//! `beat`s start together). The same holds for an upgrade: a database with pending migrations
//! opened by every process of a deployment restarted at once.
//!
//! The child processes are this test binary run again with `--exact` on
//! [`child_opens_the_database`], which opens the database named by [`CHILD_URL`] and exits;
//! without that variable it has nothing to do and passes at once.

use crate::db_prefix::open_before_the_prefix;
use crate::history::open_database;
use celeriac::db::{Database, DatabaseOptions};
use celeriac::error::chain;
use celeriac::testkit::{DatabaseKind, TestDatabase};
use std::process::{Command, Stdio};

/// Set in a child process: the database URL to open.
const CHILD_URL: &str = "CELERIAC_TEST_CHILD_DATABASE_URL";

/// Set in a child process: the PostgreSQL schema to open, if any.
const CHILD_SCHEMA: &str = "CELERIAC_TEST_CHILD_DATABASE_SCHEMA";

/// How many `connect` calls race in this process.
const TASKS: usize = 8;

/// How many child processes race with them.
const PROCESSES: usize = 4;

/// The child's side: opens the database the parent names, or does nothing in a normal run.
#[tokio::test]
async fn child_opens_the_database() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let mut options = DatabaseOptions::new(url);
    options.schema = std::env::var(CHILD_SCHEMA).ok();
    let database = Database::connect_with(&options)
        .await
        .unwrap_or_else(|error| panic!("child cannot open the database: {}", chain(&error)));
    database.close().await;
}

/// Starts `PROCESSES` children opening `test_database`, `TASKS` connects here at the same
/// moment, and asserts that all of them succeed.
async fn open_from_everywhere(test_database: &TestDatabase) {
    let executable = std::env::current_exe().expect("the test binary's path");
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            let mut command = Command::new(&executable);
            command
                .args(["db_migrate::child_opens_the_database", "--exact"])
                .env(CHILD_URL, &test_database.url)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            match &test_database.schema {
                Some(schema) => command.env(CHILD_SCHEMA, schema),
                None => command.env_remove(CHILD_SCHEMA),
            };
            command.spawn().expect("spawn a child test process")
        })
        .collect();
    let options = DatabaseOptions {
        schema: test_database.schema.clone(),
        ..DatabaseOptions::new(&test_database.url)
    };
    let opens: Vec<_> = (0..TASKS)
        .map(|_| {
            let options = options.clone();
            tokio::spawn(async move { Database::connect_with(&options).await })
        })
        .collect();
    let mut failures = Vec::new();
    for open in opens {
        match open.await.expect("connect task") {
            Ok(database) => database.close().await,
            Err(error) => failures.push(format!("in-process: {}", chain(&error))),
        }
    }
    for child in children {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .expect("wait task")
            .expect("child output");
        if !output.status.success() {
            failures.push(format!(
                "child {}: {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} opens failed:\n{}",
        failures.len(),
        TASKS + PROCESSES,
        failures.join("\n")
    );
    let database = open_database(test_database).await;
    let history = celeriac::history::TaskHistory::new(database.clone());
    let counts = history
        .state_counts()
        .await
        .expect("the history's tables exist");
    assert!(counts.is_empty(), "a new history is empty: {counts:?}");
    let store = celeriac::beat::ScheduleStore::new(database.clone());
    assert!(store.list().await.expect("beat's tables exist").is_empty());
    database.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_sqlite_file_opened_from_everywhere_at_once() {
    for _ in 0..3 {
        let test_database = TestDatabase::new(DatabaseKind::Sqlite, "db_migrate");
        open_from_everywhere(&test_database).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_postgres_schema_opened_from_everywhere_at_once() {
    for _ in 0..3 {
        let test_database = TestDatabase::new(DatabaseKind::Postgres, "db_migrate");
        open_from_everywhere(&test_database).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_old_sqlite_file_upgraded_from_everywhere_at_once() {
    let test_database = TestDatabase::new(DatabaseKind::Sqlite, "db_migrate_upgrade");
    open_before_the_prefix(&test_database).await.close().await;
    open_from_everywhere(&test_database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_old_postgres_schema_upgraded_from_everywhere_at_once() {
    let test_database = TestDatabase::new(DatabaseKind::Postgres, "db_migrate_upgrade");
    open_before_the_prefix(&test_database).await.close().await;
    open_from_everywhere(&test_database).await;
}
