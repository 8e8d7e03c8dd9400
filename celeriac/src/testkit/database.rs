//! One test's private SQL database: a SQLite file in a fresh directory, or a fresh schema in
//! the PostgreSQL database `test`.
//!
//! PostgreSQL comes from `TEST_DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432/test`
//! (trust authentication, as `scripts/setup.sh --test` configures it). Each test gets schema
//! `t_<name>_<8 hex>`; the engine creates it and puts it first on the `search_path` (see
//! `celeriac::db::DatabaseOptions::schema`), so tests share the server but never a table.
//!
//! This is plain data plus clean-up: dropping a [`TestDatabase`] deletes the SQLite directory,
//! or drops the schema (on a helper thread with its own runtime, since `Drop` cannot await),
//! unless the thread is panicking, in which case the data is kept to look at and its location
//! printed.

use std::path::PathBuf;

/// The PostgreSQL URL used when `TEST_DATABASE_URL` is not set.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Which backend a [`TestDatabase`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A schema in the PostgreSQL database `test`.
    Postgres,
}

/// A test's private database (module docs).
#[derive(Debug)]
pub struct TestDatabase {
    /// Which backend.
    pub kind: DatabaseKind,
    /// The URL to open.
    pub url: String,
    /// PostgreSQL: the schema to use (pass it to `DatabaseOptions::schema`).
    pub schema: Option<String>,
    /// SQLite: the directory holding the file.
    directory: Option<PathBuf>,
}

impl TestDatabase {
    /// A fresh database of `kind` for the test `name`.
    ///
    /// # Panics
    /// If the temporary directory cannot be created.
    pub fn new(kind: DatabaseKind, name: &str) -> TestDatabase {
        let unique = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        let clean_name: String = name
            .chars()
            .map(|character| {
                if character.is_ascii_alphanumeric() {
                    character.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        match kind {
            DatabaseKind::Sqlite => {
                let directory =
                    std::env::temp_dir().join(format!("celeriac-db-{clean_name}-{unique}"));
                std::fs::create_dir_all(&directory).unwrap_or_else(|error| {
                    panic!("cannot create {}: {error}", directory.display())
                });
                TestDatabase {
                    kind,
                    url: format!("sqlite://{}", directory.join("celeriac.db").display()),
                    schema: None,
                    directory: Some(directory),
                }
            }
            DatabaseKind::Postgres => TestDatabase {
                kind,
                url: postgres_url(),
                schema: Some(format!("t_{clean_name}_{unique}")),
                directory: None,
            },
        }
    }
}

/// `TEST_DATABASE_URL`, else the local trust-auth server.
pub fn postgres_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned())
}

impl Drop for TestDatabase {
    #[allow(
        clippy::print_stderr,
        reason = "the test harness shows a failing test's stderr; it says where the data is"
    )]
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- test database kept: {} {:?} ---",
                self.url,
                self.schema.as_deref().unwrap_or("")
            );
            return;
        }
        if let Some(directory) = &self.directory {
            // Best effort: a leftover directory in the temp dir is harmless.
            let _removed = std::fs::remove_dir_all(directory);
        }
        if let Some(schema) = self.schema.clone() {
            let url = self.url.clone();
            let dropper = std::thread::spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(async move {
                    use sqlx::Connection;
                    if let Ok(mut connection) = sqlx::PgConnection::connect(&url).await {
                        let statement = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                        let _dropped = sqlx::query(&statement).execute(&mut connection).await;
                        let _closed = connection.close().await;
                    }
                });
            });
            let _joined = dropper.join();
        }
    }
}
