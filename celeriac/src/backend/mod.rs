//! The result backend: where workers store task states and results, and where producers wait
//! for them. [`ResultBackend`] is the one a configuration names (`result_backend`):
//!
//! - Celery's Redis backend (`redis://…`): `celery-task-meta-<id>` JSON with a TTL of
//!   `result_expires`, and a PUBLISH of the same document on the channel of the same name at
//!   every write, which is what `AsyncResult.get()` in Python (and here) waits on.
//! - django-celery-results' `django-db`: rows of `django_celery_results_taskresult` in the
//!   database of `database_url` ([`DjangoBackend`]).
//! - Celery's SQLAlchemy backend (`db+postgresql://…`, `db+sqlite:///…`): `celery_taskmeta`
//!   rows with pickled results ([`SqlAlchemyBackend`]).
//!
//! Chords join on Redis natively (`celery-taskset-meta-<gid>.*`) and on `django-db` through
//! django-celery-results' chord counter table; not on the SQLAlchemy backend (Celery polls
//! there with `celery.chord_unlock`, which Celeriac does not run).

mod async_result;
mod django;
mod redis;
mod sql;
mod sqlalchemy;

pub use self::django::{ChordJoin, DjangoBackend};
pub use self::redis::{ChordPart, RedisBackend};
pub use self::sqlalchemy::SqlAlchemyBackend;
pub use async_result::{AsyncResult, ResultError};

use crate::protocol::ResultMeta;
use std::time::Duration;

/// The `result_backend` value that selects django-celery-results' tables.
pub const DJANGO_DB: &str = "django-db";

/// A configured result backend.
// One per process (cloned into a few tasks), so the Redis variant's size (its client carries
// the TLS settings) costs nothing worth a box at every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ResultBackend {
    /// Celery's Redis backend.
    Redis(RedisBackend),
    /// django-celery-results' tables.
    Django(DjangoBackend),
    /// Celery's SQLAlchemy tables.
    SqlAlchemy(SqlAlchemyBackend),
}

impl From<RedisBackend> for ResultBackend {
    fn from(backend: RedisBackend) -> Self {
        ResultBackend::Redis(backend)
    }
}

impl ResultBackend {
    /// Opens the backend `config` names, if any, retrying a Redis backend at start-up as the
    /// broker does.
    pub async fn from_config(
        config: &crate::config::Config,
    ) -> Result<Option<ResultBackend>, BackendError> {
        let Some(url) = config.result_backend.as_deref() else {
            return Ok(None);
        };
        let backend = if url == DJANGO_DB {
            ResultBackend::Django(
                DjangoBackend::connect(&config.database_url, config.result_expires()).await?,
            )
        } else if url.starts_with("db+") {
            ResultBackend::SqlAlchemy(
                SqlAlchemyBackend::connect(url, config.result_expires()).await?,
            )
        } else {
            // The broker's start-up policy, the backend's own TLS options and password.
            let options = crate::broker::BrokerOptions {
                ssl: config.redis_backend_use_ssl.clone(),
                password_file: config.redis_backend_password_file.clone(),
                sentinel: config.result_backend_transport_options.clone(),
                ..crate::producer::broker_options(config)
            };
            ResultBackend::Redis(
                RedisBackend::connect_at_startup(url, config.result_expires(), &options).await?,
            )
        };
        Ok(Some(backend))
    }

    /// The Redis backend, for what only it can do (chords).
    pub fn as_redis(&self) -> Option<&RedisBackend> {
        match self {
            ResultBackend::Redis(backend) => Some(backend),
            ResultBackend::Django(_) | ResultBackend::SqlAlchemy(_) => None,
        }
    }

    /// The backend's name as Celery's settings spell it, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ResultBackend::Redis(_) => "redis",
            ResultBackend::Django(_) => DJANGO_DB,
            ResultBackend::SqlAlchemy(_) => "database (db+)",
        }
    }

    /// Stores a task's state; false when the write was skipped because the task had already
    /// succeeded.
    pub async fn store(&self, meta: &ResultMeta) -> Result<bool, BackendError> {
        match self {
            ResultBackend::Redis(backend) => backend.store(meta).await,
            ResultBackend::Django(backend) => backend.store(meta).await,
            ResultBackend::SqlAlchemy(backend) => backend.store(meta).await,
        }
    }

    /// The stored state of a task; None means PENDING (unknown or not yet stored).
    pub async fn get(&self, task_id: &str) -> Result<Option<ResultMeta>, BackendError> {
        match self {
            ResultBackend::Redis(backend) => backend.get(task_id).await,
            ResultBackend::Django(backend) => backend.get(task_id).await,
            ResultBackend::SqlAlchemy(backend) => backend.get(task_id).await,
        }
    }

    /// The stored results of `task_ids`, skipping the ones not stored or unreadable (warned).
    pub async fn get_many(&self, task_ids: &[String]) -> Result<Vec<ResultMeta>, BackendError> {
        match self {
            ResultBackend::Redis(backend) => backend.get_many(task_ids).await,
            ResultBackend::Django(backend) => backend.get_many(task_ids).await,
            ResultBackend::SqlAlchemy(backend) => backend.get_many(task_ids).await,
        }
    }

    /// One page of a walk over the stored results: the cursor to go on from (0 when the walk
    /// is complete) and the results found; memory stays bounded by a page.
    pub async fn scan_results(
        &self,
        cursor: u64,
        count: usize,
    ) -> Result<(u64, Vec<ResultMeta>), BackendError> {
        match self {
            ResultBackend::Redis(backend) => backend.scan_results(cursor, count).await,
            ResultBackend::Django(backend) => backend.scan_results(cursor, count).await,
            ResultBackend::SqlAlchemy(backend) => backend.scan_results(cursor, count).await,
        }
    }

    /// Deletes a stored result (`AsyncResult.forget()`).
    pub async fn forget(&self, task_id: &str) -> Result<(), BackendError> {
        match self {
            ResultBackend::Redis(backend) => backend.forget(task_id).await,
            ResultBackend::Django(backend) => backend.forget(task_id).await,
            ResultBackend::SqlAlchemy(backend) => backend.forget(task_id).await,
        }
    }

    /// Waits until the task reaches a ready state or `timeout` passes.
    pub async fn wait_ready(
        &self,
        task_id: &str,
        timeout: Duration,
    ) -> Result<ResultMeta, BackendError> {
        match self {
            ResultBackend::Redis(backend) => backend.wait_ready(task_id, timeout).await,
            ResultBackend::Django(backend) => backend.wait_ready(task_id, timeout).await,
            ResultBackend::SqlAlchemy(backend) => backend.wait_ready(task_id, timeout).await,
        }
    }

    /// Deletes expired results where they do not expire by themselves (Celery's
    /// `celery.backend_cleanup`); the results deleted. Redis expires its keys itself.
    pub async fn cleanup(&self) -> Result<u64, BackendError> {
        match self {
            ResultBackend::Redis(_) => Ok(0),
            ResultBackend::Django(backend) => backend.cleanup().await,
            ResultBackend::SqlAlchemy(backend) => backend.cleanup().await,
        }
    }
}

/// Why a result-backend operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend URL does not parse, or its TLS options are wrong.
    #[error("invalid result backend connection settings")]
    Client(#[from] crate::broker::ClientError),
    /// The backend could not be reached at start-up within the attempts the configuration
    /// allows (the broker's `broker_connection_retry_on_startup`, `_max_retries`).
    #[error("cannot reach the result backend at {address} after {attempts} attempt(s){hint}")]
    Unreachable {
        /// `host:port` (never the password).
        address: String,
        /// Attempts made.
        attempts: u32,
        /// What to change, when the failure says (a TLS certificate problem); else empty.
        hint: String,
        /// The last attempt's failure.
        #[source]
        source: ::redis::RedisError,
    },
    /// Redis refused a command or the connection failed.
    #[error("redis command {command} failed")]
    Redis {
        /// Which operation.
        command: &'static str,
        /// What Redis said.
        #[source]
        source: ::redis::RedisError,
    },
    /// The stored document is not Celery's result JSON.
    #[error("result of task {task_id} is not a valid result document")]
    InvalidDocument {
        /// The task.
        task_id: String,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// The SQL database of a database backend failed.
    #[error("result backend database error")]
    Database {
        /// What the database said.
        #[source]
        source: crate::db::DatabaseError,
    },
    /// The tables a database backend writes are not in its database.
    #[error("table {table} is missing in {database}: {advice}")]
    TablesMissing {
        /// The table looked for.
        table: &'static str,
        /// The database, password hidden.
        database: String,
        /// What to do about it.
        advice: &'static str,
        /// The database's answer.
        #[source]
        source: sqlx::Error,
    },
    /// A stored result is not JSON (another serializer wrote it), so it cannot be read.
    #[error("result of task {task_id} is stored as {content_type:?}, not application/json")]
    NotJson {
        /// The task.
        task_id: String,
        /// The row's `content_type`.
        content_type: String,
    },
    /// A chord this backend cannot join: any chord on the SQLAlchemy backend, and on
    /// `django-db` one whose header members are not plain tasks.
    #[error("chord {group_id} cannot be joined on the {backend} result backend: {reason}")]
    ChordUnsupported {
        /// The backend's name.
        backend: &'static str,
        /// The chord's group.
        group_id: String,
        /// Why, and what would work.
        reason: &'static str,
    },
    /// A result backend URL of a kind Celeriac does not speak.
    #[error("unsupported result backend {url:?}: expected redis://…, django-db, db+postgresql://… or db+sqlite:///…")]
    UnsupportedUrl {
        /// The URL, password hidden.
        url: String,
    },
    /// No `result_backend` is configured, so results cannot be read.
    #[error("no result backend is configured (set result_backend)")]
    NotConfigured,
    /// No ready state arrived within the timeout.
    #[error("task {task_id} did not finish within {seconds} s")]
    Timeout {
        /// The task.
        task_id: String,
        /// How long we waited.
        seconds: f64,
    },
}

impl BackendError {
    /// True when Redis refused the write because it is full (`maxmemory` with
    /// `noeviction`): "OOM command not allowed when used memory > 'maxmemory'". Worth
    /// retrying once something frees memory.
    pub fn is_out_of_memory(&self) -> bool {
        match self {
            BackendError::Redis { source, .. } => {
                // A script's error may come wrapped (redis-rs retries a script as a pipeline),
                // with the code then displayed apart from the text: match Redis's wording too.
                source.code() == Some("OOM")
                    || source
                        .to_string()
                        .contains("command not allowed when used memory")
            }
            _ => false,
        }
    }

    /// True when Redis could not be reached (refused, dropped, timed out) or answered that it
    /// cannot serve yet: `LOADING` while a restarted server reads its append-only file (after
    /// a long outage the first answer a held result write gets), `MASTERDOWN`, `TRYAGAIN`,
    /// `CLUSTERDOWN`, and `READONLY` from a master demoted in a failover. Worth retrying for
    /// as long as it takes, unlike most errors Redis answers with (wrong type), which waiting
    /// does not cure.
    pub fn is_unreachable(&self) -> bool {
        match self {
            BackendError::Redis { source, .. } => crate::broker::is_unreachable(source),
            BackendError::Database {
                source: crate::db::DatabaseError::Query { source, .. },
            } => matches!(
                source,
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
            ),
            _ => false,
        }
    }
}
