//! [`Monitor`]: an [`EventReceiver`] folded into a [`ClusterState`], for readers that want
//! the cluster's current picture (the dashboard, `celeriac events --state`) and for consumers
//! that want every event (the SQL history).
//!
//! One tokio task owns the loop: it takes a batch from the [`EventStream`], applies it to the
//! state under a `std` mutex (held only for the batch, never across an await), publishes the
//! new version on a `watch` channel, and hands the batch (as `Arc`, no copy) to broadcast
//! subscribers if there are any. Every second it also notices expired heartbeats, which no
//! event announces. Readers lock the same mutex briefly through [`Monitor::read`]. Dropping
//! the `Monitor` stops the task and the receiver.

use super::receiver::{EventReceiver, ReceiverError, ReceiverStats, ReceiverStatsSnapshot};
use super::state::{ClusterSnapshot, ClusterState, StateOptions};
use crate::broker::RedisBroker;
use crate::clock;
use crate::config::Config;
use crate::producer::Producer;
use crate::protocol::event::Event;
use crate::Error;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// How often expired heartbeats are looked for.
const EXPIRY_CHECK: Duration = Duration::from_secs(1);

/// Settings of a [`Monitor`].
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// Bounds of the state.
    pub state: StateOptions,
    /// Batches the receiver may buffer ahead of the state before it drops. A batch stops
    /// taking messages at [`MAX_BATCH_EVENTS`](super::MAX_BATCH_EVENTS) events (a kilobyte or
    /// so each), so this bounds memory.
    pub buffer_batches: usize,
    /// Batches a slow broadcast subscriber may fall behind before it misses some (it is told
    /// how many, as `broadcast::error::RecvError::Lagged`). Each slot keeps its batch until
    /// every subscriber has read it, so this too is a bound in memory, not only in time.
    pub subscriber_capacity: usize,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            state: StateOptions::default(),
            buffer_batches: 64,
            subscriber_capacity: 64,
        }
    }
}

/// The cluster state kept current from events. See the module docs.
#[derive(Debug)]
pub struct Monitor {
    state: Arc<Mutex<ClusterState>>,
    versions: watch::Receiver<u64>,
    batches: broadcast::Sender<Arc<Vec<Event>>>,
    stats: Arc<ReceiverStats>,
    task: JoinHandle<()>,
}

impl Monitor {
    /// Subscribes to the events of `config`'s broker and starts folding them into a state:
    /// what Flower and the dashboard show, for a program of your own.
    pub async fn connect(config: &Config, options: MonitorOptions) -> Result<Monitor, Error> {
        let producer = Producer::connect(config).await?;
        Monitor::start(producer.broker(), options)
            .await
            .map_err(|ReceiverError::Subscribe(error)| Error::Broker(error))
    }

    /// Subscribes to `broker`'s events and starts folding them into a state.
    #[doc(hidden)] // takes the internal transport; `Monitor::connect` from a configuration
    pub async fn start(
        broker: &RedisBroker,
        options: MonitorOptions,
    ) -> Result<Monitor, ReceiverError> {
        let receiver = EventReceiver::connect(broker).await?;
        let mut stream = receiver.spawn(options.buffer_batches);
        let stats = stream.stats();
        let state = Arc::new(Mutex::new(ClusterState::new(options.state.clone())));
        let (version_sender, versions) = watch::channel(0);
        let (batches, _) = broadcast::channel(options.subscriber_capacity.max(1));
        let task = {
            let state = state.clone();
            let batches = batches.clone();
            tokio::spawn(async move {
                let mut expiry = tokio::time::interval(EXPIRY_CHECK);
                expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        batch = stream.recv() => {
                            let Some(batch) = batch else { return };
                            let version = lock(&state).apply_batch(&batch, clock::epoch_now());
                            version_sender.send_replace(version);
                            if batches.receiver_count() > 0 {
                                let _ = batches.send(Arc::new(batch));
                            }
                        }
                        _ = expiry.tick() => {
                            let mut state = lock(&state);
                            if state.expire_workers(clock::epoch_now()) {
                                version_sender.send_replace(state.version());
                            }
                        }
                    }
                }
            })
        };
        Ok(Monitor {
            state,
            versions,
            batches,
            stats,
            task,
        })
    }

    /// Runs `read` on the state under its lock; keep it short (copy out, do not await).
    pub fn read<R>(&self, read: impl FnOnce(&ClusterState) -> R) -> R {
        read(&lock(&self.state))
    }

    /// Workers, task names and counters now.
    pub fn snapshot(&self) -> ClusterSnapshot {
        self.read(|state| state.snapshot(clock::epoch_now()))
    }

    /// The state's version, updated after every applied batch: wait on `changed()`, then ask
    /// for [`ClusterState::changes_since`] the version you last saw.
    pub fn versions(&self) -> watch::Receiver<u64> {
        self.versions.clone()
    }

    /// Every batch of events as it is applied, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Vec<Event>>> {
        self.batches.subscribe()
    }

    /// The receiver's counters (messages, events, garbage, drops, reconnects).
    pub fn receiver_stats(&self) -> ReceiverStatsSnapshot {
        self.stats.snapshot()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(state: &Mutex<ClusterState>) -> std::sync::MutexGuard<'_, ClusterState> {
    // A panic while applying a batch leaves a state that is still consistent record by record
    // (each field is replaced whole), so keep serving it.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}
