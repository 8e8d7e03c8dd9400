//! Shared helpers: a config for a [`TestEnv`], and a worker running in this process.

use celeriac::config::Config;
use celeriac::producer::Producer;
use celeriac::task::Registry;
use celeriac::testkit::TestEnv;
use celeriac::worker::{Worker, WorkerCounters, WorkerOptions};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A config pointing at the env's Redis, prefix and visibility timeout, with results on.
pub fn config(env: &TestEnv) -> Config {
    let mut config = Config {
        broker_url: env.redis_url.clone(),
        result_backend: Some(env.backend_url.clone()),
        result_extended: env.result_extended,
        worker_soft_shutdown_timeout: 10.0,
        ..Config::default()
    };
    config.broker_transport_options.global_keyprefix = env.key_prefix.clone();
    config.broker_transport_options.visibility_timeout = env.visibility_timeout.as_secs_f64();
    config.broker_transport_options.polling_interval = 0.01;
    config
}

/// A worker running as a tokio task in this test process.
pub struct RunningWorker {
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), celeriac::Error>>,
    pub counters: Arc<WorkerCounters>,
}

impl RunningWorker {
    /// Starts a worker on `queues` with `registry` (defaults to the demo tasks).
    pub async fn start(
        config: Config,
        registry: Option<Registry>,
        queues: &[&str],
        concurrency: usize,
    ) -> RunningWorker {
        let registry = registry.unwrap_or_else(celeriac::demo::registry);
        let options = WorkerOptions {
            queues: queues.iter().map(|queue| queue.to_string()).collect(),
            concurrency,
            node_name: format!("rust-{}@test", queues.first().copied().unwrap_or("celery")),
            prefetch_multiplier: config.worker_prefetch_multiplier,
        };
        let worker = Worker::new(config, registry, options)
            .await
            .expect("worker starts");
        let counters = worker.counters();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(worker.run(async move {
            let _ = stopped.await;
        }));
        RunningWorker {
            stop: Some(stop),
            handle,
            counters,
        }
    }

    /// Whether the worker has stopped by itself.
    pub fn finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Warm shutdown; waits until the worker has stopped.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let handle = &mut self.handle;
        tokio::time::timeout(Duration::from_secs(30), handle)
            .await
            .expect("worker stops within 30 s")
            .expect("worker task did not panic")
            .expect("worker ran without error");
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        if self.stop.is_some() {
            self.handle.abort();
        }
    }
}

/// A producer for the env.
pub async fn producer(config: &Config) -> Producer {
    Producer::connect(config).await.expect("producer connects")
}

/// Waits until worker `node` answers a ping over remote control: its mailbox has subscribed
/// to the broadcast channel, which only then delivers commands to it.
pub async fn wait_for_mailbox(config: &Config, node: &str) {
    use celeriac::control::{BroadcastOptions, Control};
    let control = &Control::connect(config).await.expect("control connects");
    let options = &BroadcastOptions::default()
        .to([node])
        .timeout(Duration::from_millis(300));
    celeriac::testkit::eventually(
        Duration::from_secs(20),
        &format!("{node} to answer a ping"),
        move || async move {
            let replies = control.ping(options).await.ok()?;
            replies.contains_key(node).then_some(())
        },
    )
    .await;
}
