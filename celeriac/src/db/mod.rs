//! The SQL database shared by the durable task history and beat: SQLite by default, PostgreSQL
//! by URL (`database_url`).
//!
//! [`Database::connect`] opens a pool and brings the schema up to date with the migrations in
//! `celeriac/migrations/<sqlite|postgres>/` (one directory per backend, because the two
//! dialects differ in types and indexes; a module adds its tables as new files in both), once,
//! under a lock that holds across processes (see `db/migrate.rs`). Every table, index, trigger,
//! sequence and function carries the `celeriac_` prefix, so the schema can live in a database
//! that another application (a Django project) owns without a name colliding. Queries
//! are built at run time (no `DATABASE_URL` at build time); [`with_pool!`](crate::with_pool)
//! runs one body against whichever pool is open, with [`Dialect`] spelling the differences.
//!
//! SQLite runs in WAL mode, so readers (the dashboard) never wait for the writer (event
//! ingest), with `synchronous = NORMAL` (a crash may lose the last transactions but never
//! corrupts the file) and a busy timeout long enough for a writer to finish a batch.
//!
//! For tests, [`DatabaseOptions::schema`] confines a PostgreSQL connection to one schema
//! (created if missing and put first on the `search_path`), so each test owns its tables in a
//! shared database.

mod migrate;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// How long a SQLite connection waits for the writer's lock before it gives up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `$body` with `$pool` bound to the open pool, whichever backend it is; the body is
/// compiled once per backend, so it may use backend-specific types through inference.
#[macro_export]
#[doc(hidden)]
macro_rules! with_pool {
    ($database:expr, |$pool:ident| $body:expr) => {
        match $database {
            $crate::db::Database::Sqlite($pool) => $body,
            $crate::db::Database::Postgres($pool) => $body,
        }
    };
}

/// An open database with an up-to-date schema. Cloning shares the pool.
#[derive(Debug, Clone)]
pub enum Database {
    /// A SQLite file.
    Sqlite(SqlitePool),
    /// A PostgreSQL database.
    Postgres(PgPool),
}

/// The SQL spellings that differ between the backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: `?` placeholders.
    Sqlite,
    /// PostgreSQL: `$1` placeholders.
    Postgres,
}

impl Dialect {
    /// The placeholder of the `index`-th bound value (1-based).
    pub fn placeholder(self, index: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{index}"),
            Dialect::Postgres => format!("${index}"),
        }
    }
}

/// How to open a database.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseOptions {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    pub url: String,
    /// PostgreSQL only: the schema to create and use (tests isolate themselves this way).
    pub schema: Option<String>,
    /// The most connections the pool opens.
    pub max_connections: u32,
}

impl DatabaseOptions {
    /// Options for `url` with the default pool size.
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseOptions {
            url: url.into(),
            schema: None,
            max_connections: 8,
        }
    }

    /// Uses (and creates) PostgreSQL schema `schema`.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }
}

/// Why the database could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The URL names neither SQLite nor PostgreSQL.
    #[error("unsupported database url {url:?} (expected sqlite://… or postgres://…)")]
    UnsupportedUrl {
        /// The URL, password hidden.
        url: String,
    },
    /// The URL could not be parsed.
    #[error("invalid database url {url:?}")]
    InvalidUrl {
        /// The URL, password hidden.
        url: String,
        /// The parser's complaint.
        #[source]
        source: sqlx::Error,
    },
    /// A schema name that is not a plain lowercase identifier.
    #[error("invalid schema name {schema:?} (expected lowercase letters, digits and _)")]
    InvalidSchema {
        /// The name given.
        schema: String,
    },
    /// The database could not be reached or opened.
    #[error("cannot open database {url:?}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate database {url:?}")]
    Migrate {
        /// The URL, password hidden.
        url: String,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// Another process kept the database locked (migrating it, presumably) for longer than
    /// this process was willing to wait for its own turn to migrate.
    #[error("gave up waiting {}s for the lock to migrate database {url:?}", waited.as_secs())]
    MigrationLock {
        /// The URL, password hidden.
        url: String,
        /// How long this process waited.
        waited: Duration,
        /// The last busy answer.
        #[source]
        source: sqlx::Error,
    },
    /// A statement failed.
    #[error("database {operation} failed")]
    Query {
        /// What we were doing.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}

impl DatabaseError {
    /// A [`DatabaseError::Query`] maker for `map_err`.
    pub fn query(operation: &'static str) -> impl FnOnce(sqlx::Error) -> DatabaseError {
        move |source| DatabaseError::Query { operation, source }
    }
}

impl Database {
    /// Opens `url` with default options and migrates it.
    pub async fn connect(url: &str) -> Result<Database, DatabaseError> {
        Database::connect_with(&DatabaseOptions::new(url)).await
    }

    /// Opens the database `options` describe and migrates it.
    pub async fn connect_with(options: &DatabaseOptions) -> Result<Database, DatabaseError> {
        Database::open(options, Schema::Migrate).await
    }

    /// Opens a database another application owns (Django's, for its result tables) as it is:
    /// no migrations, and a SQLite file that does not exist is an error, not a new file.
    pub async fn connect_existing(options: &DatabaseOptions) -> Result<Database, DatabaseError> {
        Database::open(options, Schema::AsItIs).await
    }

    /// Opens a database for tables another program defines (Celery's result tables), with no
    /// migrations of Celeriac's own; unlike [`Database::connect_existing`], a SQLite file that
    /// does not exist is created, as SQLAlchemy creates it.
    pub async fn connect_new_file(options: &DatabaseOptions) -> Result<Database, DatabaseError> {
        Database::open(options, Schema::NewFile).await
    }

    async fn open(options: &DatabaseOptions, schema: Schema) -> Result<Database, DatabaseError> {
        let shown_url = hide_password(&options.url);
        let scheme = options.url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => open_sqlite(options, &shown_url, schema).await,
            "postgres" | "postgresql" => open_postgres(options, &shown_url, schema).await,
            _ => Err(DatabaseError::UnsupportedUrl { url: shown_url }),
        }
    }

    /// Which SQL dialect to write.
    pub fn dialect(&self) -> Dialect {
        match self {
            Database::Sqlite(_) => Dialect::Sqlite,
            Database::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Closes every connection; later queries fail.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

/// Whether opening a database brings Celeriac's own tables up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    Migrate,
    AsItIs,
    NewFile,
}

async fn open_sqlite(
    options: &DatabaseOptions,
    shown_url: &str,
    schema: Schema,
) -> Result<Database, DatabaseError> {
    let connect_options = SqliteConnectOptions::from_str(&options.url)
        .map_err(|source| DatabaseError::InvalidUrl {
            url: shown_url.to_owned(),
            source,
        })?
        .create_if_missing(schema != Schema::AsItIs)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        // 8 MiB of page cache per connection, 64 MiB for a pool of 8: the indexes a page
        // reads stay warm and the dashboard's memory has a ceiling (64 MiB each took it past
        // 370 MB in issue 13's soak run, and 16 MiB each still held 79 MB after four minutes;
        // the kernel's page cache keeps the rest of the file close anyway).
        .pragma("cache_size", "-8192")
        .pragma("temp_store", "memory")
        // Keeps the planner's statistics fresh cheaply (SQLite's advice for long-lived
        // connections).
        .optimize_on_close(true, 400);
    // Another application's file keeps the journal mode it chose.
    let connect_options = match schema {
        Schema::Migrate => connect_options.journal_mode(SqliteJournalMode::Wal),
        Schema::AsItIs | Schema::NewFile => connect_options,
    };
    // Before the pool, so that its connections find the file in WAL mode and migrated.
    if schema == Schema::Migrate {
        migrate::migrate_sqlite(&connect_options, shown_url).await?;
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .connect_with(connect_options)
        .await
        .map_err(|source| DatabaseError::Connect {
            url: shown_url.to_owned(),
            source,
        })?;
    Ok(Database::Sqlite(pool))
}

async fn open_postgres(
    options: &DatabaseOptions,
    shown_url: &str,
    schema: Schema,
) -> Result<Database, DatabaseError> {
    let mut connect_options =
        PgConnectOptions::from_str(&options.url).map_err(|source| DatabaseError::InvalidUrl {
            url: shown_url.to_owned(),
            source,
        })?;
    if let Some(schema) = &options.schema {
        if !is_plain_identifier(schema) {
            return Err(DatabaseError::InvalidSchema {
                schema: schema.clone(),
            });
        }
        // `public` stays on the path for the extension's operator classes.
        connect_options = connect_options.options([("search_path", format!("{schema},public"))]);
    }
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .connect_with(connect_options)
        .await
        .map_err(|source| DatabaseError::Connect {
            url: shown_url.to_owned(),
            source,
        })?;
    if schema == Schema::Migrate {
        migrate::migrate_postgres(&pool, options.schema.as_deref(), shown_url).await?;
    }
    Ok(Database::Postgres(pool))
}

/// Lowercase ASCII letters, digits and `_`, not starting with a digit: safe to splice into SQL.
fn is_plain_identifier(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first == '_')
        && characters.all(|character| {
            character.is_ascii_lowercase() || character.is_ascii_digit() || character == '_'
        })
        && name.len() <= 63
}

/// The URL with any password replaced by `***`, for error messages and logs.
pub fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            hide_password("postgres://app:secret@db:5432/celeriac"),
            "postgres://app:***@db:5432/celeriac"
        );
        assert_eq!(
            hide_password("postgres://app@db/celeriac"),
            "postgres://app@db/celeriac"
        );
        assert_eq!(
            hide_password("sqlite://celeriac.db"),
            "sqlite://celeriac.db"
        );
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(is_plain_identifier("celeriac_test_1a2b"));
        assert!(!is_plain_identifier("x; DROP TABLE y"));
        assert!(!is_plain_identifier("Upper"));
        assert!(!is_plain_identifier("1abc"));
        assert!(!is_plain_identifier(""));
    }

    #[test]
    fn placeholders_follow_the_dialect() {
        assert_eq!(Dialect::Sqlite.placeholder(3), "?3");
        assert_eq!(Dialect::Postgres.placeholder(3), "$3");
    }
}
