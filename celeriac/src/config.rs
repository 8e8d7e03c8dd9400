//! Configuration: Celery's setting names and defaults, read from a TOML file and `CELERIAC_*`
//! environment variables.
//!
//! Sources, later ones winning:
//!
//! 1. Celery's defaults ([`Config::default`]).
//! 2. One TOML file: the path given to [`Config::load`], else the file named by
//!    `CELERIAC_CONFIG`, else `celeriac.toml` in the working directory if it exists. Every
//!    top-level key must be a known setting, so a typo is an error rather than a silently ignored
//!    line.
//! 3. `CELERIAC_<SETTING NAME IN UPPERCASE>` variables, one per top-level setting. Text settings
//!    take the value as is; booleans accept `true/false/yes/no/on/off/1/0`; numbers and tables are
//!    JSON, and a JSON object is merged key by key into the file's table, so
//!    `CELERIAC_BROKER_TRANSPORT_OPTIONS='{"visibility_timeout": 10}'` keeps the file's
//!    `global_keyprefix`. Other `CELERIAC_*` variables are ignored because they belong to other
//!    tools (`CELERIAC_CONFIG`, `CELERIAC_LOG`) or to tests.
//!
//! Invariant: a [`Config`] returned by [`Config::load`] or [`Config::from_sources`] has passed
//! [`Config::validate`]. Settings stay in Celery's units (seconds as `f64`); the accessor methods
//! turn them into [`Duration`]s so the rest of the engine never handles bare seconds.

mod source;

use crate::beat::CatchUp;
pub use crate::broker::RedisSsl;
use crate::routing::TaskRoutes;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file read when neither a path nor `CELERIAC_CONFIG` is given.
const DEFAULT_FILE_NAME: &str = "celeriac.toml";

/// The variable naming the configuration file; it is not a setting.
const CONFIG_FILE_VARIABLE: &str = "CELERIAC_CONFIG";

/// Where a `from_sources` file text came from, for error messages.
const INLINE_ORIGIN: &str = "<config text>";

/// Celeriac's settings, named and defaulted as Celery's (`celery/app/defaults.py`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where tasks are sent and fetched: a Redis URL, as kombu spells it.
    pub broker_url: String,
    /// Where task states and results are stored; `None` disables results.
    pub result_backend: Option<String>,
    /// TLS options for a `rediss://` broker URL, kombu's `ssl_cert_reqs`, `ssl_ca_certs`,
    /// `ssl_certfile`, `ssl_keyfile` (and redis-py's `ssl_check_hostname`); the URL's query
    /// may set them too. See `celeriac::broker::RedisSsl`.
    pub broker_use_ssl: Option<RedisSsl>,
    /// The same for a `rediss://` result backend (Celery's `redis_backend_use_ssl`).
    pub redis_backend_use_ssl: Option<RedisSsl>,
    /// A file whose first line is the broker's password (a Docker or Kubernetes secret), so
    /// it need not sit in `broker_url`, which then names only the user. Not a Celery setting.
    pub broker_password_file: Option<PathBuf>,
    /// The same for a Redis result backend.
    pub redis_backend_password_file: Option<PathBuf>,
    /// Celery's transport options of the result backend; for a `sentinel://` backend URL,
    /// `master_name` and `sentinel_kwargs` as in `broker_transport_options`.
    pub result_backend_transport_options: crate::broker::SentinelOptions,
    /// The queue for tasks that no `task_routes` entry matches.
    pub task_default_queue: String,
    /// Ack after the task ran instead of before, so a crash redelivers the message.
    pub task_acks_late: bool,
    /// With `task_acks_late`, also ack tasks that failed or timed out (else they are rejected).
    pub task_acks_on_failure_or_timeout: bool,
    /// With `task_acks_late`, requeue a task whose worker process died instead of acking it.
    pub task_reject_on_worker_lost: bool,
    /// Do not store results of successful tasks.
    pub task_ignore_result: bool,
    /// Store a `STARTED` state when a worker starts a task.
    pub task_track_started: bool,
    /// Priority of messages that give none; `None` sends no priority (the highest on Redis).
    pub task_default_priority: Option<u8>,
    /// Hard time limit in seconds: the task is stopped when it is exceeded.
    pub task_time_limit: Option<f64>,
    /// Soft time limit in seconds: the task is told to finish when it is exceeded.
    pub task_soft_time_limit: Option<f64>,
    /// Rate limit for tasks without their own, in Celery's syntax (`"10/s"`).
    pub task_default_rate_limit: Option<String>,
    /// Task name or glob pattern to queue.
    pub task_routes: TaskRoutes,
    /// Seconds results are kept; `0` or `None` keeps them forever.
    pub result_expires: Option<f64>,
    /// Store the task's name, args, kwargs, worker, retries and queue with its result.
    pub result_extended: bool,
    /// A chord body gets its header's results in header order (`true`, Celery's default) or
    /// in the order they finished.
    pub result_chord_ordered: bool,
    /// Time zone for beat schedules and displayed times.
    pub timezone: String,
    /// Use UTC for message dates, as Celery does by default.
    pub enable_utc: bool,
    /// Messages a worker reserves per concurrency slot; `0` means no limit.
    pub worker_prefetch_multiplier: u32,
    /// How many tasks a worker runs at once; `None` (or `0`) means the number of CPUs.
    pub worker_concurrency: Option<u32>,
    /// Seconds running tasks get to finish on warm shutdown before they are stopped.
    ///
    /// Celery's default is `0.0`, where the setting is the grace period of its soft shutdown
    /// (Celery 5.5); Celeriac defaults to 30 seconds for its warm shutdown.
    pub worker_soft_shutdown_timeout: f64,
    /// Deliveries a message may have without being acknowledged before it is dead-lettered as
    /// a poison message (one whose worker dies every time it runs); `0` = no limit.
    ///
    /// Not a Celery setting: Celery redelivers such a message forever.
    pub worker_max_deliveries: u32,
    /// The largest task message a worker decodes, in bytes; a larger one is moved to the
    /// dead-letter list with the reason, undecoded (`0` = no limit). Default 16 MiB.
    ///
    /// Not a Celery setting. A message is decoded into several copies at once (the raw text,
    /// the parsed body, the arguments), and a 10 MB message of garbage took a worker from 14 to
    /// 154 MB that it kept; task arguments that large belong in storage, passed by reference.
    pub worker_max_message_size: u64,
    /// Send task events (`-E`), for monitors such as Flower. Worker heartbeats are always sent.
    pub worker_send_task_events: bool,
    /// Producers send a `task-sent` event for every task they publish.
    pub task_send_sent_event: bool,
    /// Options of the kombu Redis transport.
    pub broker_transport_options: BrokerTransportOptions,
    /// Whether a process started while the broker is unreachable keeps trying to connect
    /// (logging each attempt) rather than exiting, as Celery's worker does.
    pub broker_connection_retry_on_startup: bool,
    /// Connection attempts at start-up before giving up; 0 tries forever (Celery's `None`).
    pub broker_connection_max_retries: u32,
    /// Seconds one connection attempt may take.
    pub broker_connection_timeout: f64,
    /// The SQL database for beat schedules and the task history.
    pub database_url: String,
    /// Seconds the task history keeps a task (counted from when it was first seen); `0` or
    /// `None` keeps tasks forever. Not a Celery setting (Celery keeps no history); named like
    /// `result_expires`.
    pub history_retention: Option<f64>,
    /// The most tasks the task history keeps (the oldest go first); `0` or `None` means no
    /// limit.
    pub history_max_rows: Option<u64>,
    /// Periodic tasks defined in the configuration, by entry name; beat writes them into the
    /// database at start (see `celeriac::beat::static_schedule`).
    pub beat_schedule: BTreeMap<String, BeatScheduleEntry>,
    /// Seconds beat sleeps at most between ticks. Celery's default is 5; ours is 1, so that
    /// edits apply and handovers finish within a second more.
    pub beat_max_loop_interval: f64,
    /// Seconds the beat leader's lease lasts without renewal (not a Celery setting: Celery
    /// runs one beat). A follower takes over at most this plus one tick after the leader died.
    pub beat_lease_timeout: f64,
    /// What beat sends for slots older than the replay window after downtime: `"once"` (the
    /// latest, once) or `"skip"` (none). Not a Celery setting.
    pub beat_catch_up: CatchUp,
    /// The namespace of beat's Redis keys (the leader lease, its fencing counter, the slot
    /// claims and the schedule-change channel), so that separate Celeriac setups sharing one
    /// Redis (and `global_keyprefix`) each elect their own leader and never see each other's
    /// claims: without it, a beat of setup B could hold the only lease and setup A would send
    /// nothing. Not a Celery setting (Celery runs one beat and has no lease).
    ///
    /// Unset (or empty), it is derived from `database_url`, the database that holds the
    /// schedules: `db-` and 12 hex digits of a UUID5 of the URL without its password and query
    /// string, so the processes of one setup agree on it as long as they spell `database_url`
    /// the same way (a password change does not move it, and no hash of the password reaches
    /// Redis). Set it explicitly (letters, digits, `-`, `_`, `.` and `:`, at most 64) when the
    /// processes of one setup reach the database by different URLs, or to keep a namespace
    /// when the database moves.
    pub beat_namespace: Option<String>,
    /// Seconds between beat's full comparisons of every schedule with the database, the bound
    /// for picking up raw SQL edits that the change stamps miss. Not a Celery setting (Celery's
    /// `beat_sync_every` counts tasks between writes of its shelve file).
    pub beat_sync_every: f64,
    /// Where beat's schedules live: unset (or `"celeriac"`) for Celeriac's own tables, or
    /// Celery's `"django_celery_beat.schedulers:DatabaseScheduler"` (also `"django"`) for
    /// django-celery-beat's tables in the `database_url` database, which then stay the source
    /// of truth (see `celeriac::beat::django`).
    pub beat_scheduler: Option<String>,
    /// How fast the dashboard's bulk retry sends tasks again, in Celery's rate limit syntax
    /// (`"50/s"`, `"600/m"`; `"0"` or `""` means no limit). Not a Celery setting (Flower has
    /// no bulk retry); the throttle keeps a recovered dependency from being stampeded.
    pub dashboard_bulk_retry_rate: String,
}

/// One `beat_schedule` entry, in Celery's shape (`{"task", "schedule", "args", "kwargs",
/// "options"}`), with the schedule as text or seconds since TOML has no Python objects.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeatScheduleEntry {
    /// The task name.
    pub task: String,
    /// A crontab in cron's field order (`"*/5 * * * *"`), an interval (`"30s"`, `"5m"`,
    /// `"2h"`, `"1d"`), a number of seconds, or Celery's `solar` as a table (`{ solar =
    /// "sunset", latitude = 48.8566, longitude = 2.3522 }`).
    pub schedule: Value,
    /// Positional arguments.
    #[serde(default)]
    pub args: Vec<Value>,
    /// Keyword arguments.
    #[serde(default)]
    pub kwargs: serde_json::Map<String, Value>,
    /// Send options.
    #[serde(default)]
    pub options: BeatScheduleOptions,
    /// The crontab's zone (default: the `timezone` setting).
    #[serde(default)]
    pub timezone: Option<String>,
}

/// The send options a `beat_schedule` entry may set, as Celery's `options`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeatScheduleOptions {
    /// Queue.
    pub queue: Option<String>,
    /// Priority 0-255.
    pub priority: Option<u32>,
    /// Seconds after the slot at which the message expires.
    pub expires: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            broker_url: "redis://127.0.0.1:6379/0".to_owned(),
            result_backend: None,
            broker_use_ssl: None,
            redis_backend_use_ssl: None,
            broker_password_file: None,
            redis_backend_password_file: None,
            result_backend_transport_options: crate::broker::SentinelOptions::default(),
            task_default_queue: "celery".to_owned(),
            task_acks_late: false,
            task_acks_on_failure_or_timeout: true,
            task_reject_on_worker_lost: false,
            task_ignore_result: false,
            task_track_started: false,
            task_default_priority: None,
            task_time_limit: None,
            task_soft_time_limit: None,
            task_default_rate_limit: None,
            task_routes: TaskRoutes::default(),
            result_expires: Some(86400.0),
            result_extended: false,
            result_chord_ordered: true,
            timezone: "UTC".to_owned(),
            enable_utc: true,
            worker_prefetch_multiplier: 4,
            worker_concurrency: None,
            worker_soft_shutdown_timeout: 30.0,
            worker_max_deliveries: 3,
            worker_max_message_size: 16 * 1024 * 1024,
            worker_send_task_events: false,
            task_send_sent_event: false,
            broker_transport_options: BrokerTransportOptions::default(),
            broker_connection_retry_on_startup: true,
            broker_connection_max_retries: 100,
            broker_connection_timeout: 4.0,
            database_url: "sqlite://celeriac.db".to_owned(),
            history_retention: Some(7.0 * 86400.0),
            history_max_rows: Some(1_000_000),
            beat_schedule: BTreeMap::new(),
            beat_max_loop_interval: 1.0,
            beat_lease_timeout: 6.0,
            beat_catch_up: CatchUp::Once,
            beat_namespace: None,
            beat_scheduler: None,
            beat_sync_every: 5.0,
            dashboard_bulk_retry_rate: "50/s".to_owned(),
        }
    }
}

/// The kombu Redis transport options Celeriac implements, with kombu's defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerTransportOptions {
    /// Seconds before an unacked delivery is restored to its queue.
    pub visibility_timeout: f64,
    /// Prefix for every Redis key and channel, shared with Python peers.
    pub global_keyprefix: String,
    /// Priority buckets: each has its own Redis list.
    pub priority_steps: Vec<u8>,
    /// Seconds the `unacked_mutex` lock lives, so a crashed restorer cannot hold it forever.
    pub unacked_mutex_expire: f64,
    /// Seconds to wait at most between fetches when the queues are empty.
    pub polling_interval: f64,
    /// For a `sentinel://` broker URL: the name the sentinels monitor the master under.
    pub master_name: Option<String>,
    /// For a `sentinel://` broker URL: how to connect to the sentinels (`password`).
    pub sentinel_kwargs: crate::broker::SentinelKwargs,
}

impl Default for BrokerTransportOptions {
    fn default() -> Self {
        BrokerTransportOptions {
            visibility_timeout: 3600.0,
            global_keyprefix: String::new(),
            priority_steps: vec![0, 3, 6, 9],
            unacked_mutex_expire: 300.0,
            polling_interval: 0.05,
            master_name: None,
            sentinel_kwargs: crate::broker::SentinelKwargs::default(),
        }
    }
}

impl BrokerTransportOptions {
    /// How long a delivery may stay unacked before it is restored.
    pub fn visibility_timeout(&self) -> Duration {
        duration_from_seconds(self.visibility_timeout)
    }

    /// How long the `unacked_mutex` lock lives.
    pub fn unacked_mutex_expire(&self) -> Duration {
        duration_from_seconds(self.unacked_mutex_expire)
    }

    /// The Sentinel options, for a `sentinel://` broker URL.
    pub fn sentinel(&self) -> crate::broker::SentinelOptions {
        crate::broker::SentinelOptions {
            master_name: self.master_name.clone(),
            sentinel_kwargs: self.sentinel_kwargs.clone(),
        }
    }

    /// The longest idle wait between fetches.
    pub fn polling_interval(&self) -> Duration {
        duration_from_seconds(self.polling_interval)
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error("cannot parse config file {}", path.display())]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The TOML error, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// The configuration file has a key that is not a setting (probably a typo).
    #[error("unknown setting {name} in config file {}", path.display())]
    UnknownSetting {
        /// The key as written.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// A setting has a value of the wrong type or out of range.
    #[error("{name}: invalid value {value}: {reason}")]
    InvalidValue {
        /// The setting (`broker_transport_options.visibility_timeout` for nested ones).
        name: String,
        /// The value as given, JSON-quoted if it is text.
        value: String,
        /// What is expected instead.
        reason: String,
    },
}

impl Config {
    /// Reads the configuration file (see the module docs for which one) and the process's
    /// `CELERIAC_*` variables, and validates the result.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        // Non-UTF-8 variables cannot be settings; skipping them avoids `env::vars` panicking.
        let env: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
            .collect();
        Self::load_from(path, env, Path::new("."))
    }

    /// [`Config::load`] with the environment and working directory passed in, for tests.
    fn load_from(
        path: Option<&Path>,
        env: Vec<(String, String)>,
        working_directory: &Path,
    ) -> Result<Config, ConfigError> {
        let from_env = env
            .iter()
            .rev()
            .find(|(key, _)| key == CONFIG_FILE_VARIABLE)
            .filter(|(_, value)| !value.is_empty())
            .map(|(_, value)| PathBuf::from(value));
        let file_path = match (path, from_env) {
            (Some(path), _) => Some(path.to_path_buf()),
            (None, Some(path)) => Some(path),
            (None, None) => {
                Some(working_directory.join(DEFAULT_FILE_NAME)).filter(|path| path.is_file())
            }
        };
        let file_text = match &file_path {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let origin = file_path.unwrap_or_default();
        Self::build(
            file_text.as_deref().map(|text| (origin.as_path(), text)),
            env,
        )
    }

    /// Builds a validated configuration from a TOML text and environment pairs, without IO.
    ///
    /// ```
    /// use celeriac::config::Config;
    /// let env = [("CELERIAC_TASK_ACKS_LATE".to_owned(), "yes".to_owned())];
    /// let config = Config::from_sources(Some("worker_prefetch_multiplier = 1"), env).unwrap();
    /// assert!(config.task_acks_late);
    /// assert_eq!(config.worker_prefetch_multiplier, 1);
    /// ```
    pub fn from_sources(
        file_text: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Self::build(file_text.map(|text| (Path::new(INLINE_ORIGIN), text)), env)
    }

    /// Merges the sources, deserializes the result and validates it.
    fn build(
        file: Option<(&Path, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let settings = source::merge(file, env)?;
        let config = source::deserialize_settings(settings)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that have the right type but cannot work (the ranges Celery and kombu assume).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let options = &self.broker_transport_options;
        positive(
            "broker_transport_options.visibility_timeout",
            options.visibility_timeout,
        )?;
        positive(
            "broker_transport_options.unacked_mutex_expire",
            options.unacked_mutex_expire,
        )?;
        positive(
            "broker_transport_options.polling_interval",
            options.polling_interval,
        )?;
        let steps = &options.priority_steps;
        let increasing = steps.windows(2).all(|pair| pair[0] < pair[1]);
        if steps.first() != Some(&0) || !increasing || steps.iter().any(|step| *step > 9) {
            return Err(invalid(
                "broker_transport_options.priority_steps",
                &format!("{steps:?}"),
                "expected increasing priorities from 0 to 9, starting at 0",
            ));
        }
        positive("broker_connection_timeout", self.broker_connection_timeout)?;
        if let Some(seconds) = self.task_time_limit {
            positive("task_time_limit", seconds)?;
        }
        if let Some(seconds) = self.task_soft_time_limit {
            positive("task_soft_time_limit", seconds)?;
        }
        if let Some(seconds) = self.result_expires {
            not_negative("result_expires", seconds)?;
        }
        if let Some(seconds) = self.history_retention {
            not_negative("history_retention", seconds)?;
        }
        not_negative(
            "worker_soft_shutdown_timeout",
            self.worker_soft_shutdown_timeout,
        )?;
        positive("beat_max_loop_interval", self.beat_max_loop_interval)?;
        positive("beat_lease_timeout", self.beat_lease_timeout)?;
        positive("beat_sync_every", self.beat_sync_every)?;
        if self.beat_lease_timeout < 2.0 * self.beat_max_loop_interval {
            return Err(invalid(
                "beat_lease_timeout",
                &self.beat_lease_timeout.to_string(),
                "expected at least twice beat_max_loop_interval, or the leader cannot renew in time",
            ));
        }
        if let Some(scheduler) = self.beat_scheduler.as_deref() {
            let known = scheduler.is_empty()
                || scheduler == "celeriac"
                || crate::beat::django::DJANGO_SCHEDULERS.contains(&scheduler);
            if !known {
                return Err(invalid(
                    "beat_scheduler",
                    scheduler,
                    "expected \"celeriac\" or \"django_celery_beat.schedulers:DatabaseScheduler\" \
                     (or \"django\")",
                ));
            }
        }
        if let Some(namespace) = self.beat_namespace.as_deref() {
            let plain = namespace.chars().all(|character| {
                character.is_ascii_alphanumeric() || matches!(character, '-' | '_' | '.' | ':')
            });
            if !plain || namespace.len() > 64 {
                return Err(invalid(
                    "beat_namespace",
                    &quoted(namespace),
                    "expected at most 64 letters, digits, '-', '_', '.' or ':'",
                ));
            }
        }
        crate::beat::static_schedule::periodic_tasks(self)?;
        if let Some(text) = &self.task_default_rate_limit {
            crate::worker::rate_limit::RateLimit::parse(text).map_err(|error| {
                invalid("task_default_rate_limit", &quoted(text), &error.to_string())
            })?;
        }
        crate::worker::rate_limit::RateLimit::parse(&self.dashboard_bulk_retry_rate).map_err(
            |error| {
                invalid(
                    "dashboard_bulk_retry_rate",
                    &quoted(&self.dashboard_bulk_retry_rate),
                    &error.to_string(),
                )
            },
        )?;
        Ok(())
    }

    /// The hard time limit, if any.
    pub fn task_time_limit(&self) -> Option<Duration> {
        self.task_time_limit.map(duration_from_seconds)
    }

    /// The soft time limit, if any.
    pub fn task_soft_time_limit(&self) -> Option<Duration> {
        self.task_soft_time_limit.map(duration_from_seconds)
    }

    /// How long results are kept; `None` means forever (the setting is `None` or `0`).
    pub fn result_expires(&self) -> Option<Duration> {
        self.result_expires
            .map(duration_from_seconds)
            .filter(|duration| !duration.is_zero())
    }

    /// How long the task history keeps a task; `None` means forever (the setting is `None`
    /// or `0`).
    pub fn history_retention(&self) -> Option<Duration> {
        self.history_retention
            .map(duration_from_seconds)
            .filter(|duration| !duration.is_zero())
    }

    /// How many tasks run at once: the setting, or the number of CPUs when it is unset or `0`
    /// (Celery falls back to `cpu_count()` for both).
    pub fn worker_concurrency(&self) -> usize {
        match self.worker_concurrency {
            Some(concurrency) if concurrency > 0 => concurrency as usize,
            _ => std::thread::available_parallelism().map_or(1, |count| count.get()),
        }
    }

    /// The longest sleep between beat ticks.
    pub fn beat_max_loop_interval(&self) -> Duration {
        duration_from_seconds(self.beat_max_loop_interval)
    }

    /// How long the beat lease lasts without renewal.
    pub fn beat_lease_timeout(&self) -> Duration {
        duration_from_seconds(self.beat_lease_timeout)
    }

    /// Whether beat's schedules are django-celery-beat's tables (`beat_scheduler`).
    pub fn uses_django_beat(&self) -> bool {
        self.beat_scheduler
            .as_deref()
            .is_some_and(|scheduler| crate::beat::django::DJANGO_SCHEDULERS.contains(&scheduler))
    }

    /// The namespace of beat's Redis keys: `beat_namespace` when set, else derived from
    /// `database_url` (see the setting).
    ///
    /// ```
    /// use celeriac::config::Config;
    /// let database = |url: &str| Config {
    ///     database_url: url.to_owned(),
    ///     ..Config::default()
    /// };
    /// let one = database("postgres://app:secret@db/shop").beat_namespace();
    /// assert_eq!(one, database("postgres://app:rotated@db/shop").beat_namespace());
    /// assert_ne!(one, database("postgres://app:secret@db/blog").beat_namespace());
    /// assert!(one.starts_with("db-") && !one.contains("secret"));
    /// ```
    pub fn beat_namespace(&self) -> String {
        if let Some(namespace) = self
            .beat_namespace
            .as_deref()
            .filter(|text| !text.is_empty())
        {
            return namespace.to_owned();
        }
        let without_password = crate::db::hide_password(&self.database_url);
        let without_query = without_password
            .split_once('?')
            .map_or(without_password.as_str(), |(before, _query)| before);
        let digest = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, without_query.as_bytes());
        format!("db-{}", &digest.simple().to_string()[..12])
    }

    /// How often beat compares every schedule with the database.
    pub fn beat_sync_every(&self) -> Duration {
        duration_from_seconds(self.beat_sync_every)
    }

    /// The dashboard's bulk retry throttle; `None` means no limit (also for a text that
    /// [`Config::validate`] would refuse).
    pub fn dashboard_bulk_retry_rate(&self) -> Option<crate::worker::rate_limit::RateLimit> {
        crate::worker::rate_limit::RateLimit::parse(&self.dashboard_bulk_retry_rate)
            .ok()
            .flatten()
    }

    /// How long running tasks get to finish on warm shutdown.
    pub fn worker_soft_shutdown_timeout(&self) -> Duration {
        duration_from_seconds(self.worker_soft_shutdown_timeout)
    }
}

/// Text as it appears in error messages: JSON-quoted.
fn quoted(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// An [`ConfigError::InvalidValue`].
pub(crate) fn invalid(name: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::InvalidValue {
        name: name.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Requires a finite number of seconds above zero.
fn positive(name: &str, seconds: f64) -> Result<(), ConfigError> {
    if seconds.is_finite() && seconds > 0.0 {
        Ok(())
    } else {
        Err(invalid(
            name,
            &seconds.to_string(),
            "expected a number of seconds above 0",
        ))
    }
}

/// Requires a finite number of seconds, zero included.
fn not_negative(name: &str, seconds: f64) -> Result<(), ConfigError> {
    if seconds.is_finite() && seconds >= 0.0 {
        Ok(())
    } else {
        Err(invalid(
            name,
            &seconds.to_string(),
            "expected a number of seconds, 0 or more",
        ))
    }
}

/// Seconds as a [`Duration`]: negative or NaN becomes zero and huge values saturate, because
/// [`Duration::from_secs_f64`] would panic (validated configurations never hit either case).
fn duration_from_seconds(seconds: f64) -> Duration {
    if seconds.is_nan() || seconds <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
    }
}

#[cfg(test)]
mod deploy_tests;
#[cfg(test)]
mod tests;
