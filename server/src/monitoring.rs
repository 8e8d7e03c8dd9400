//! The monitoring plane `celeriac serve` hosts: a [`Monitor`] (live cluster state from Celery
//! events, for the dashboard) and the durable task history it feeds (SQL at `database_url`,
//! caught up from the result backend at start, pruned by the retention settings).

use anyhow::Context;
use celeriac::config::Config;
use celeriac::db::Database;
use celeriac::events::{Monitor, MonitorOptions};
use celeriac::history::{
    prune_periodically, record_from_monitor, RecorderOptions, Retention, TaskHistory,
};
use celeriac::producer::Producer;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often the retention settings are applied.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// What [`start`] started: the handles the dashboard reads through, and the background tasks to
/// await at shutdown.
#[derive(Debug)]
pub struct Monitoring {
    /// The live cluster state.
    pub monitor: Arc<Monitor>,
    /// The SQL history the recorder keeps current.
    pub history: TaskHistory,
    /// The monitoring plane's own broker (and result backend) connection.
    pub producer: Producer,
    /// The recorder and the pruning loop, named; they end after `shutdown`, and ending before
    /// it is a failure `serve` reports.
    pub tasks: Vec<(&'static str, JoinHandle<()>)>,
}

/// Starts the monitor, the history recorder and the pruning loop on `database` (the process's
/// one pool); they stop with `shutdown`.
pub async fn start<S>(
    config: &Config,
    database: Database,
    shutdown: impl Fn() -> S,
) -> anyhow::Result<Monitoring>
where
    S: Future<Output = ()> + Send + 'static,
{
    let producer = Producer::connect(config)
        .await
        .context("connecting to the broker for monitoring")?;
    let history = TaskHistory::new(database);
    let monitor = Arc::new(
        Monitor::start(producer.broker(), MonitorOptions::default())
            .await
            .context("subscribing to Celery events")?,
    );
    let recorder = {
        let history = history.clone();
        let monitor = monitor.clone();
        let backend = producer.backend().cloned();
        let stop = shutdown();
        tokio::spawn(async move {
            let stats =
                record_from_monitor(history, &monitor, backend, RecorderOptions::default(), stop)
                    .await;
            tracing::info!(?stats, "task history recorder stopped");
        })
    };
    let pruning = tokio::spawn(prune_periodically(
        history.clone(),
        Retention::from_config(config),
        PRUNE_EVERY,
        shutdown(),
    ));
    Ok(Monitoring {
        monitor,
        history,
        producer,
        tasks: vec![
            ("the task history recorder", recorder),
            ("the task history pruning", pruning),
        ],
    })
}
