//! Brings a database's schema up to date exactly once, however many processes open it at the
//! same moment.
//!
//! A first start opens a brand-new database from several places at once: `serve` and two
//! `beat`s started together, and inside one process the history, beat and the accounts. So
//! migrating must be safe under concurrency, across processes:
//!
//! - **SQLite.** sqlx's migrator takes no lock on SQLite (its `lock` is a no-op), so two
//!   openers both saw migration 1 as pending and the second failed with `table … already
//!   exists`, `duplicate column name` or `database is locked`. Here the migrator runs inside
//!   one `BEGIN IMMEDIATE` transaction on a dedicated connection: SQLite's write lock, which
//!   holds across processes, is taken *before* `_sqlx_migrations` is read, and the migrator's
//!   own per-migration transactions become savepoints inside it (sqlx counts the depth). A
//!   second opener's `BEGIN IMMEDIATE` waits in the busy handler, then finds everything applied.
//!   A failed migration rolls the whole run back, so no half-migrated schema is ever committed.
//!   Consequence: a SQLite migration must not contain statements SQLite refuses inside a
//!   transaction (`VACUUM`, `PRAGMA journal_mode`, `PRAGMA foreign_keys`).
//! - **PostgreSQL.** sqlx's migrator already holds a session advisory lock (keyed by the
//!   database name) around the whole run, so only creating a test's schema needs care:
//!   `CREATE SCHEMA IF NOT EXISTS` is not atomic and a concurrent twin fails with a unique
//!   violation on `pg_namespace`, which here means "it exists now", the goal.
//!
//! The wait for another process's migration outlasts one busy timeout (a large history's
//! migration may run longer than 30 s): the lock is retried until [`MIGRATION_PATIENCE`] has
//! passed, with a log line each time, so a stuck holder is visible.
//!
//! The bookkeeping table keeps sqlx's fixed name `_sqlx_migrations` (sqlx 0.8 cannot rename
//! it), so it is the one table without the `celeriac_` prefix.

use super::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::time::Duration;

/// The SQLite schema, embedded at build time.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The PostgreSQL schema, embedded at build time.
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long an opener waits in total for another process's migration before giving up.
const MIGRATION_PATIENCE: Duration = Duration::from_secs(600);

/// The pause between two attempts at SQLite's write lock, after the busy timeout ran out or
/// the file was mid-way through its switch to WAL.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// SQLite's primary result codes that mean "another connection holds a lock; try again".
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;

/// PostgreSQL's SQLSTATEs for "the schema was created concurrently": `unique_violation` on
/// `pg_namespace_nspname_index`, and `duplicate_schema`.
const SCHEMA_EXISTS_CODES: [&str; 2] = ["23505", "42P06"];

/// Why one attempt at migrating SQLite did not finish.
enum Attempt {
    /// Another connection holds the lock; worth trying again.
    Busy(sqlx::Error),
    /// Anything else; final.
    Failed(DatabaseError),
}

/// Migrates the SQLite file `connect_options` opens, under SQLite's write lock (module docs).
pub(super) async fn migrate_sqlite(
    connect_options: &SqliteConnectOptions,
    shown_url: &str,
) -> Result<(), DatabaseError> {
    // `PRAGMA optimize` on close may write statistics, which would queue this short-lived
    // connection behind the next migrator for nothing.
    let connect_options = connect_options.clone().optimize_on_close(false, None);
    let started = tokio::time::Instant::now();
    loop {
        match migrate_sqlite_once(&connect_options, shown_url).await {
            Ok(()) => return Ok(()),
            Err(Attempt::Failed(error)) => return Err(error),
            Err(Attempt::Busy(source)) => {
                let waited = started.elapsed();
                if waited >= MIGRATION_PATIENCE {
                    return Err(DatabaseError::MigrationLock {
                        url: shown_url.to_owned(),
                        waited,
                        source,
                    });
                }
                // A busy answer after the 30 s busy timeout is worth a line; one from the
                // switch to WAL, which does not wait, is routine.
                if waited >= Duration::from_secs(1) {
                    tracing::info!(
                        url = shown_url,
                        waited_seconds = waited.as_secs(),
                        "waiting for another process to finish migrating the database"
                    );
                } else {
                    tracing::debug!(url = shown_url, error = %source, "database busy, retrying");
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

/// One attempt: a fresh connection, `BEGIN IMMEDIATE`, the migrator, `COMMIT`.
async fn migrate_sqlite_once(
    connect_options: &SqliteConnectOptions,
    shown_url: &str,
) -> Result<(), Attempt> {
    // Opening runs the connection's pragmas, among them the switch of a new file to WAL,
    // which needs an exclusive lock and may find another opener mid-way through the same
    // switch: that is a busy answer like any other.
    let mut connection = connect_options.connect().await.map_err(|source| {
        if is_sqlite_busy(&source) {
            Attempt::Busy(source)
        } else {
            Attempt::Failed(DatabaseError::Connect {
                url: shown_url.to_owned(),
                source,
            })
        }
    })?;
    let outcome = async {
        let mut transaction = connection
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|source| {
                if is_sqlite_busy(&source) {
                    Attempt::Busy(source)
                } else {
                    Attempt::Failed(DatabaseError::query("lock the database for migrations")(
                        source,
                    ))
                }
            })?;
        run_sqlite_migrations(&mut transaction)
            .await
            .map_err(|source| {
                Attempt::Failed(DatabaseError::Migrate {
                    url: shown_url.to_owned(),
                    source,
                })
            })?;
        transaction.commit().await.map_err(|source| {
            Attempt::Failed(DatabaseError::query("commit the migrations")(source))
        })
    }
    .await;
    // Closing is best effort: the outcome is already decided, and a connection that fails to
    // close is dropped (closed) anyway.
    let _closed = connection.close().await;
    outcome
}

/// The migrator on `connection`. Through the public `Migrator::run`, the compiler cannot prove
/// the future `Send` for every lifetime of its `Acquire` bound on a `&mut` connection (sqlx's
/// own note on `run_direct`), and `Database::connect` could no longer be spawned; `run_direct`
/// is the same run without that bound, which sqlx keeps public for this case.
fn run_sqlite_migrations(
    connection: &mut sqlx::SqliteConnection,
) -> impl std::future::Future<Output = Result<(), sqlx::migrate::MigrateError>> + Send + '_ {
    SQLITE_MIGRATIONS.run_direct(connection)
}

/// True for SQLite's "database is busy/locked" answers (any extended code of them).
fn is_sqlite_busy(error: &sqlx::Error) -> bool {
    let Some(code) = error
        .as_database_error()
        .and_then(|database_error| database_error.code())
        .and_then(|code| code.parse::<i64>().ok())
    else {
        return false;
    };
    matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED)
}

/// Creates `schema` unless it exists (race-safe), then migrates under sqlx's advisory lock.
pub(super) async fn migrate_postgres(
    pool: &PgPool,
    schema: Option<&str>,
    shown_url: &str,
) -> Result<(), DatabaseError> {
    if let Some(schema) = schema {
        // `schema` was checked to be a plain identifier, so splicing it is safe.
        let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .execute(pool)
            .await;
        if let Err(source) = created {
            let created_concurrently = source
                .as_database_error()
                .and_then(|database_error| database_error.code())
                .is_some_and(|code| SCHEMA_EXISTS_CODES.contains(&code.as_ref()));
            if !created_concurrently {
                return Err(DatabaseError::query("create schema")(source));
            }
        }
    }
    POSTGRES_MIGRATIONS
        .run(pool)
        .await
        .map_err(|source| DatabaseError::Migrate {
            url: shown_url.to_owned(),
            source,
        })
}
