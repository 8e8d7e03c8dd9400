//! The worker runtime: consumes task messages, runs Rust tasks, retries, stores results and
//! acknowledges, sharing queues and in-flight bookkeeping with Python Celery workers.
//!
//! # How a message moves through a worker
//! 1. The `consumer` fetches messages while fewer than `prefetch_multiplier × concurrency`
//!    are reserved; one Redis script pops each message and records it in `unacked`.
//! 2. The `strategy` (one tokio task per message) decodes it; bad input goes to the dead-letter
//!    list with a FAILURE result, expired messages become REVOKED, ETA messages wait in memory
//!    (still in `unacked`, without using a prefetch slot, as Celery does), rate-limited tasks
//!    wait for a token.
//! 3. The `executor` takes a pool slot (`concurrency`), acks early unless `acks_late`, runs the
//!    body under its soft and hard time limits, and turns the [`crate::task::Outcome`] into a
//!    result, a `retry` message, a requeue or a dead letter, then acks.
//! 4. The `visibility` loop keeps our in-flight deliveries fresh in `unacked_index` and
//!    restores anyone's deliveries older than the visibility timeout.
//! 5. On shutdown the consumer stops, waiting messages are restored at once, running tasks get
//!    `worker_soft_shutdown_timeout` to finish, and the rest are stopped and restored.

pub mod backoff;
mod builtins;
mod canvas;
mod consumer;
mod control;
mod executor;
mod heartbeat;
pub mod node_name;
mod queues;
pub mod rate_limit;
mod request;
mod result_write;
mod retry;
mod revoke;
mod rusage;
mod settle;
pub mod shutdown;
mod slots;
mod state;
mod strategy;
mod task_events;
mod visibility;

use crate::backend::ResultBackend;
use crate::broker::RedisBroker;
use crate::config::Config;
use crate::events::EventDispatcher;
use crate::producer::{broker_options, Producer};
use crate::task::Registry;
use crate::Error;
use queues::ConsumedQueues;
use slots::Slots;
use state::{InFlight, PendingAcks};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The least time a shutdown step after the grace period gets: stopping aborted tasks, then
/// the farewell (events, `worker-offline`, restoring held messages).
const SHUTDOWN_STEP: Duration = Duration::from_secs(1);
use tokio::sync::watch;

/// How this worker consumes: Celery's `worker` command-line options.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOptions {
    /// Queues to consume (`-Q a,b`).
    pub queues: Vec<String>,
    /// Tasks run at once (`-c N`).
    pub concurrency: usize,
    /// Node name, already expanded (`-n name@%h`).
    pub node_name: String,
    /// `worker_prefetch_multiplier` (0 = no limit).
    pub prefetch_multiplier: u32,
}

impl WorkerOptions {
    /// The options `config` implies: default queue, `worker_concurrency`, `celery@<hostname>`.
    pub fn from_config(config: &Config) -> WorkerOptions {
        WorkerOptions {
            queues: vec![config.task_default_queue.clone()],
            concurrency: config.worker_concurrency().max(1),
            node_name: node_name::expand_node_name(None, &node_name::hostname()),
            prefetch_multiplier: config.worker_prefetch_multiplier,
        }
    }

    /// Messages reserved at once; 0 multiplier means "no limit", capped to stay bounded.
    pub fn prefetch_limit(&self) -> usize {
        self.prefetch_limit_for(self.concurrency)
    }

    /// The prefetch limit at `concurrency`, which `pool_grow`/`pool_shrink` change at run
    /// time (Celery's `_update_prefetch_count`).
    pub fn prefetch_limit_for(&self, concurrency: usize) -> usize {
        match self.prefetch_multiplier {
            0 => 10_000,
            multiplier => (multiplier as usize).saturating_mul(concurrency).max(1),
        }
    }
}

/// Counters a worker reports (and `inspect stats` will).
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Task runs started (Celery's `all_total_count`): each retried attempt counts again, and
    /// runs that end in a reject, a revoke or a time limit count too.
    pub processed: AtomicU64,
    /// Tasks that ended in FAILURE.
    pub failed: AtomicU64,
    /// Tasks retried.
    pub retried: AtomicU64,
    /// Messages moved to the dead-letter list.
    pub dead_lettered: AtomicU64,
    /// Messages revoked because they expired.
    pub expired: AtomicU64,
    /// Messages restored to their queue (shutdown, aborts).
    pub restored: AtomicU64,
    /// Messages acked before their result was stored because Redis was full (`maxmemory`
    /// with `noeviction`): acking frees the envelope so the result fits.
    pub acked_before_result: AtomicU64,
    /// Results of those still waiting for Redis to have room (written in the background).
    pub results_waiting: AtomicU64,
    /// Tasks started, by task name (Celery's `total` in `inspect stats`).
    started: Mutex<BTreeMap<String, u64>>,
}

impl WorkerCounters {
    /// Tasks started so far, by task name.
    pub fn totals(&self) -> BTreeMap<String, u64> {
        self.started
            .lock()
            .map(|started| started.clone())
            .unwrap_or_default()
    }

    /// Counts a task start, as Celery's `task_accepted` does.
    pub(crate) fn count_started(&self, task_name: &str) {
        if let Ok(mut started) = self.started.lock() {
            *started.entry(task_name.to_owned()).or_default() += 1;
        }
    }
}

/// (hard, soft) time limits of one task.
pub(crate) type TimeLimits = (Option<Duration>, Option<Duration>);

/// State shared by the consumer, strategy, executor and visibility loops.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) options: WorkerOptions,
    pub(crate) registry: Registry,
    pub(crate) broker: RedisBroker,
    pub(crate) backend: Option<ResultBackend>,
    pub(crate) producer: Producer,
    pub(crate) in_flight: InFlight,
    pub(crate) acks: PendingAcks,
    pub(crate) events: Arc<EventDispatcher>,
    pub(crate) revoked: revoke::Revoked,
    /// Pool slots: the live concurrency (`pool_grow`, `pool_shrink`).
    pub(crate) pool: Arc<Slots>,
    /// Prefetch slots: `prefetch_multiplier` × the live concurrency.
    pub(crate) prefetch: Arc<Slots>,
    /// The queues consumed now (`add_consumer`, `cancel_consumer`).
    pub(crate) queues: ConsumedQueues,
    /// Token buckets by task name; `None` = no limit (set by the `rate_limit` command).
    pub(crate) rate_limits: Mutex<HashMap<String, Option<rate_limit::TokenBucket>>>,
    /// (hard, soft) limits set by the `time_limit` command, by task name.
    pub(crate) time_limits: Mutex<HashMap<String, TimeLimits>>,
    /// Woken by the `shutdown` control command.
    pub(crate) shutdown_requested: tokio::sync::Notify,
    pub(crate) counters: Arc<WorkerCounters>,
    /// Flips to true when the worker stops fetching; waiting messages are restored.
    pub(crate) stopping: watch::Receiver<bool>,
    /// Flips to true when the grace period is over; running tasks are stopped and restored.
    pub(crate) aborting: watch::Receiver<bool>,
}

impl Shared {
    /// Resizes the pool and, with it, the prefetch limit (`pool_grow`, `pool_shrink`).
    pub(crate) fn set_concurrency(&self, concurrency: usize) {
        let concurrency = concurrency.max(1);
        self.pool.resize(concurrency);
        self.prefetch
            .resize(self.options.prefetch_limit_for(concurrency));
        tracing::info!(concurrency, "pool resized by remote control");
    }
}

/// A Celery-compatible worker.
pub struct Worker {
    shared: Arc<Shared>,
    stop_sender: watch::Sender<bool>,
    abort_sender: watch::Sender<bool>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Worker")
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Connects to the broker and result backend of `config`.
    pub async fn new(
        config: Config,
        registry: Registry,
        options: WorkerOptions,
    ) -> Result<Worker, Error> {
        config.validate()?;
        let broker = RedisBroker::connect(&config.broker_url, broker_options(&config)).await?;
        if let Some(policy) = broker.unsafe_eviction_policy().await {
            tracing::warn!(
                maxmemory_policy = %policy,
                "REDIS MAY DELETE QUEUED TASKS: maxmemory-policy is {policy:?}, not \"noeviction\"; \
                 under memory pressure Redis will evict messages silently. Set \
                 `maxmemory-policy noeviction` so a full Redis refuses new tasks instead"
            );
        }
        let backend = ResultBackend::from_config(&config).await?;
        let producer = Producer::from_parts(broker.clone(), backend.clone(), &config);
        let mut registry = registry;
        builtins::register(&mut registry, &producer);
        let events = EventDispatcher::new(
            broker.clone(),
            &options.node_name,
            config.worker_send_task_events,
        );
        let (stop_sender, stopping) = watch::channel(false);
        let (abort_sender, aborting) = watch::channel(false);
        let shared = Arc::new(Shared {
            pool: Slots::new(options.concurrency.max(1)),
            prefetch: Slots::new(options.prefetch_limit()),
            queues: ConsumedQueues::new(&options.queues),
            config,
            options,
            registry,
            broker,
            backend,
            producer,
            in_flight: InFlight::default(),
            acks: PendingAcks::default(),
            events,
            revoked: revoke::Revoked::default(),
            rate_limits: Mutex::default(),
            time_limits: Mutex::default(),
            shutdown_requested: tokio::sync::Notify::new(),
            counters: Arc::default(),
            stopping,
            aborting,
        });
        Ok(Worker {
            shared,
            stop_sender,
            abort_sender,
        })
    }

    /// The worker's counters, readable while it runs.
    pub fn counters(&self) -> Arc<WorkerCounters> {
        self.shared.counters.clone()
    }

    /// The worker's node name.
    pub fn node_name(&self) -> &str {
        &self.shared.options.node_name
    }

    /// Runs until `shutdown` resolves, then shuts down warmly (see the module docs).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let shared = self.shared.clone();
        tracing::info!(
            node = %shared.options.node_name,
            queues = ?shared.queues.names(),
            concurrency = shared.pool.size(),
            prefetch = shared.options.prefetch_limit(),
            tasks = ?shared.registry.names().filter(|name| !name.starts_with("celery.")).collect::<Vec<_>>(),
            "worker ready"
        );
        revoke::load(&shared).await;
        let visibility = tokio::spawn(visibility::run(shared.clone()));
        let flusher = tokio::spawn(shared.events.clone().run_flusher());
        let heartbeat = tokio::spawn(heartbeat::run(shared.clone()));
        let mailbox = tokio::spawn(control::run(shared.clone()));
        let revokes = tokio::spawn(revoke::sync(shared.clone()));
        let consumer = tokio::spawn(consumer::run(shared.clone()));
        tokio::select! {
            _ = shutdown => {}
            _ = shared.shutdown_requested.notified() => {
                tracing::warn!("shutdown requested by remote control");
            }
        }
        tracing::info!(node = %shared.options.node_name, "warm shutdown: no longer fetching");
        let _ = self.stop_sender.send(true);
        let grace = shared.config.worker_soft_shutdown_timeout();
        let deadline = tokio::time::Instant::now() + grace;
        let mut consumer = consumer;
        let finished = tokio::time::timeout(grace, &mut consumer).await.is_ok();
        if !finished {
            tracing::warn!(
                grace_seconds = grace.as_secs_f64(),
                "tasks still running after the grace period; stopping and restoring them"
            );
            let _ = self.abort_sender.send(true);
            let _ = tokio::time::timeout(SHUTDOWN_STEP, consumer).await;
        }
        visibility.abort();
        heartbeat.abort();
        mailbox.abort();
        revokes.abort();
        flusher.abort();
        // Saying goodbye needs the broker. When it is down, each step would wait out its own
        // reconnect attempts (an idle worker took 9.6 s); so the steps share what is left of
        // the grace period, and at least SHUTDOWN_STEP. A message not restored here stays in
        // `unacked`, and the visibility sweep restores it: nothing is lost.
        let farewell = async {
            shared.events.flush().await;
            shared
                .events
                .worker("worker-offline", heartbeat::fields(&shared))
                .await;
            for delivery in shared.in_flight.snapshot() {
                if let Err(error) = shared.broker.requeue(&delivery, true).await {
                    tracing::error!(delivery_tag = %delivery.delivery_tag, %error, "could not restore message at shutdown; it stays in unacked for the visibility sweep");
                }
            }
        };
        let until = deadline.max(tokio::time::Instant::now() + SHUTDOWN_STEP);
        // Results written in the background because Redis was full (their messages are
        // acked) get the same time; whatever is still unwritten then is reported.
        let results = async {
            while shared.counters.results_waiting.load(Ordering::Relaxed) > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        if tokio::time::timeout_at(until, results).await.is_err() {
            tracing::error!(
                lost = shared.counters.results_waiting.load(Ordering::Relaxed),
                "TASK RESULTS LOST: Redis stayed full until the worker stopped; those tasks ran and their messages were acked"
            );
        }
        if tokio::time::timeout_at(until, farewell).await.is_err() {
            tracing::warn!(
                "the broker did not answer at shutdown; messages not restored stay in unacked until the visibility timeout restores them"
            );
        }
        tracing::info!(node = %shared.options.node_name, processed = shared.counters.processed.load(Ordering::Relaxed), "worker stopped");
        Ok(())
    }
}
