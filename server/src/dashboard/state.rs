//! [`AppState`]: what the dashboard's API, SSE and metrics handlers read through — the engine's
//! monitor, history, schedule store, producer and control client — so no handler talks to Redis or SQL itself.
//!
//! The Leptos pages keep their own state ([`leptos::prelude::LeptosOptions`]); the API router
//! gets this one and is merged in already stated (see `routes`), so the two never need a
//! common type.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use celeriac::auth::audit::AuditLog;
use celeriac::beat::ScheduleStore;
use celeriac::control::Control;
use celeriac::events::Monitor;
use celeriac::history::TaskHistory;
use celeriac::producer::Producer;
use celeriac::worker::rate_limit::RateLimit;

use super::auth::AuthUser;
use super::consumers::Consumers;
use super::event_metrics::EventMetrics;
use super::security::ClientContext;
use crate::monitoring::Monitoring;

/// Shared by every API request; cheap to clone (handles and `Arc`s).
#[derive(Debug, Clone)]
pub struct AppState {
    /// The live cluster state from Celery events.
    pub(crate) monitor: Arc<Monitor>,
    /// The SQL task history.
    pub(crate) history: TaskHistory,
    /// Publishes retries; its broker reads queue depths.
    pub(crate) producer: Producer,
    /// Remote control: inspect and revoke.
    pub(crate) control: Arc<Control>,
    /// Queues whose depth is shown and exported.
    pub(crate) queues: Arc<[String]>,
    /// Who did what: every state-changing API call appends here (the login audit's table).
    pub(crate) audit: AuditLog,
    /// Which workers consume which queue (asked, then cached a few seconds).
    pub(crate) consumers: Arc<Consumers>,
    /// Beat's periodic tasks (the history's database), read and edited by `api/schedules`.
    pub(crate) schedules: ScheduleStore,
    /// Flower's Prometheus series, counted from the monitor's event batches.
    pub(crate) metrics: Arc<EventMetrics>,
    /// Turns true when the server starts its graceful shutdown, so endless responses (SSE)
    /// end and the shutdown is not held up by open tabs; [`super::serve`] sets the sender.
    pub(crate) closing: tokio::sync::watch::Receiver<bool>,
    /// How fast a bulk retry sends (`dashboard_bulk_retry_rate`); `None`: no limit.
    pub(crate) bulk_retry_rate: Option<RateLimit>,
    /// True while a bulk retry runs; the handler that sets it hands a guard to the background
    /// tokio task, which clears it when the run ends (or panics), so one runs at a time.
    pub(crate) bulk_retry_running: Arc<AtomicBool>,
    /// Recent `/api/stats/tasks` answers (see `api/stats.rs`).
    pub(crate) task_stats: Arc<super::api::StatsCache>,
    /// Writes Celery's `ABORTED` state (`api/aborted.rs`); `None` without a Redis result
    /// backend, and then Flower's abort answers 503.
    pub(crate) abort_store: Option<super::api::AbortStore>,
}

impl AppState {
    /// The state over a started monitoring plane, watching `queues`.
    ///
    /// Starts the metrics collector (a tokio task that ends when the monitor is dropped), so it
    /// must be called inside the runtime.
    pub fn new(monitoring: &Monitoring, queues: Vec<String>) -> AppState {
        let metrics = EventMetrics::spawn(&monitoring.monitor);
        AppState {
            monitor: monitoring.monitor.clone(),
            history: monitoring.history.clone(),
            consumers: Arc::default(),
            audit: AuditLog::new(monitoring.history.database().clone()),
            schedules: ScheduleStore::new(monitoring.history.database().clone()),
            control: Arc::new(Control::from_broker(monitoring.producer.broker().clone())),
            producer: monitoring.producer.clone(),
            queues: queues.into(),
            metrics,
            closing: tokio::sync::watch::channel(false).1,
            bulk_retry_rate: celeriac::config::Config::default().dashboard_bulk_retry_rate(),
            bulk_retry_running: Arc::new(AtomicBool::new(false)),
            task_stats: Arc::default(),
            abort_store: None,
        }
    }

    /// Lets Flower's `abort` write to `config`'s result backend (a Redis one).
    pub fn with_result_backend(mut self, config: &celeriac::config::Config) -> AppState {
        self.abort_store = super::api::AbortStore::from_config(config);
        self
    }

    /// Sets the bulk retry throttle (the `dashboard_bulk_retry_rate` setting).
    pub fn with_bulk_retry_rate(mut self, rate: Option<RateLimit>) -> AppState {
        self.bulk_retry_rate = rate;
        self
    }
}

impl AppState {
    /// Appends `action` on `target` by `user` to the audit log.
    ///
    /// A failure to write is logged, not returned: the action itself already happened, and
    /// refusing to report it would hide that from the user who did it.
    pub(crate) async fn record_action(
        &self,
        user: &AuthUser,
        client: Option<&ClientContext>,
        action: &str,
        target: &str,
    ) {
        let address = client.map(|client| client.address.as_str()).unwrap_or("");
        if let Err(error) = self.audit.append(&user.name, action, target, address).await {
            tracing::error!(%error, action, target, "cannot write the audit log");
        }
    }
}
