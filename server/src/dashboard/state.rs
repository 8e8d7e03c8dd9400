//! [`AppState`]: what the dashboard's API, SSE and metrics handlers read through — the engine's
//! monitor, history, producer and control client — so no handler talks to Redis or SQL itself.
//!
//! The Leptos pages keep their own state ([`leptos::prelude::LeptosOptions`]); the API router
//! gets this one and is merged in already stated (see `routes`), so the two never need a
//! common type.

use std::sync::Arc;

use celeriac::control::Control;
use celeriac::events::Monitor;
use celeriac::history::TaskHistory;
use celeriac::producer::Producer;

use super::event_metrics::EventMetrics;
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
    /// Flower's Prometheus series, counted from the monitor's event batches.
    pub(crate) metrics: Arc<EventMetrics>,
    /// Turns true when the server starts its graceful shutdown, so endless responses (SSE)
    /// end and the shutdown is not held up by open tabs; [`super::serve`] sets the sender.
    pub(crate) closing: tokio::sync::watch::Receiver<bool>,
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
            control: Arc::new(Control::from_broker(monitoring.producer.broker().clone())),
            producer: monitoring.producer.clone(),
            queues: queues.into(),
            metrics,
            closing: tokio::sync::watch::channel(false).1,
        }
    }
}
