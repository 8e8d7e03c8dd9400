//! `serve`: the dashboard, the monitor and task history, beat and (when the app has tasks) the
//! embedded worker pools, composed in one process over one database pool and supervised
//! together.
//!
//! Supervision is fail-fast: a component that stops on its own (an error, or an end nobody
//! asked for) stops the others, and the process exits non-zero naming it. A dashboard that
//! keeps serving while its beat is dead would show schedules that never fire, which is worse
//! than a restart by the process manager.

use crate::app::EMBEDDED_NODE_NAME;
use crate::cli::{ServeArgs, WorkerArgs};
use crate::{commands, dashboard, monitoring, schedule, App};
use anyhow::{anyhow, bail, Context};
use celeriac::beat::ScheduleStore;
use celeriac::config::Config;
use std::future::Future;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Components started together and stopped together; the first to end unasked ends them all.
#[derive(Debug)]
pub(crate) struct Supervisor {
    stop: watch::Sender<bool>,
    running: JoinSet<(String, anyhow::Result<()>)>,
}

impl Supervisor {
    pub(crate) fn new() -> Supervisor {
        Supervisor {
            stop: watch::channel(false).0,
            running: JoinSet::new(),
        }
    }

    /// Resolves when the supervisor stops its components.
    pub(crate) fn stop_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        crate::stopped(self.stop.subscribe())
    }

    /// Runs `component` under `name` (said in the log and the error when it fails).
    pub(crate) fn spawn(
        &mut self,
        name: impl Into<String>,
        component: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        let name = name.into();
        self.running.spawn(async move { (name, component.await) });
    }

    /// Runs until SIGTERM/SIGINT, or until a component ends by itself; then stops every
    /// component and waits for them. The error names the first component that failed.
    pub(crate) async fn run_until_signal(self) -> anyhow::Result<()> {
        self.run_until(celeriac::worker::shutdown::termination_signal())
            .await
    }

    async fn run_until(mut self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        let mut failure: Option<anyhow::Error> = None;
        tokio::select! {
            () = signal => {}
            ended = self.running.join_next() => {
                if let Some(error) = ended.and_then(|ended| ending_failure(ended, false)) {
                    tracing::error!("{error:#}; stopping everything else");
                    failure = Some(error);
                }
            }
        }
        self.stop.send_replace(true);
        while let Some(ended) = self.running.join_next().await {
            if let Some(error) = ending_failure(ended, true) {
                tracing::error!("{error:#}");
                failure.get_or_insert(error);
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

/// What a component's end means: an error, a panic, or (when nobody `asked` it to stop) a
/// clean return are failures naming it.
fn ending_failure(
    ended: Result<(String, anyhow::Result<()>), tokio::task::JoinError>,
    asked: bool,
) -> Option<anyhow::Error> {
    match ended {
        Ok((_, Ok(()))) if asked => None,
        Ok((name, Ok(()))) => Some(anyhow!("{name} stopped unexpectedly")),
        Ok((name, Err(error))) => Some(error.context(format!("{name} failed"))),
        Err(join_error) => Some(anyhow!("a component panicked: {join_error}")),
    }
}

/// `serve`: see the module docs.
pub async fn serve(app: &App, config: Config, args: ServeArgs) -> anyhow::Result<()> {
    let database = crate::open_database(&config).await?;
    let mut components = Supervisor::new();

    let pools = if args.no_worker || !app.has_tasks() {
        if !args.no_worker {
            tracing::info!("no embedded worker: this binary has no tasks");
        }
        Vec::new()
    } else {
        embedded_pools(app, &config, &args)?
    };
    let mut served_queues: Vec<String> = Vec::new();
    for (options, queues) in pools {
        for queue in queues {
            if !served_queues.contains(&queue) {
                served_queues.push(queue);
            }
        }
        // The dashboard's monitor reads the embedded workers' task events.
        let mut config = config.clone();
        config.worker_send_task_events = true;
        let registry = app.registry().clone();
        let stop = components.stop_signal();
        let name = format!("the embedded worker {}", options.node_name);
        components.spawn(name, async move {
            commands::run_worker(registry, config, options, stop).await
        });
    }
    // With no embedded worker, the Queues page shows `-Q`'s queues (a dashboard for Python
    // workers), else the ones the app's tasks are routed to, else the default queue.
    if served_queues.is_empty() {
        served_queues = args.queues.clone();
    }
    if served_queues.is_empty() {
        served_queues = app.task_queues(&config);
    }
    if served_queues.is_empty() {
        served_queues.push(config.task_default_queue.clone());
    }

    if !args.no_beat {
        let config = config.clone();
        let store = ScheduleStore::new(database.clone());
        let stop = components.stop_signal();
        components.spawn("the embedded beat", async move {
            schedule::run_beat(config, store, schedule::embedded_beat_name(), stop).await
        });
    }

    let monitoring = {
        let stop = components.stop.subscribe();
        monitoring::start(&config, database.clone(), move || {
            crate::stopped(stop.clone())
        })
        .await?
    };
    let dashboard_state = dashboard::AppState::new(&monitoring, served_queues)
        .with_bulk_retry_rate(config.dashboard_bulk_retry_rate())
        .with_result_backend(&config);
    for (name, task) in monitoring.tasks {
        components.spawn(name, async move {
            task.await.map_err(|error| anyhow!("it panicked: {error}"))
        });
    }
    let mut dashboard_options = dashboard::DashboardOptions::from_env(Some(args.addr));
    dashboard_options.url_prefix = dashboard::normalize_url_prefix(&args.url_prefix);
    dashboard_options.trusted_proxies = args.trusted_proxy.clone();
    if let Some(header) = args.proxy_auth_header.clone() {
        if args.trusted_proxy.is_empty() {
            bail!(
                "--proxy-auth-header needs --trusted-proxy: the user header is believed only \
                 from the proxy that authenticated the request"
            );
        }
        let role = args
            .proxy_auth_role
            .parse()
            .with_context(|| format!("--proxy-auth-role {:?}", args.proxy_auth_role))?;
        tracing::info!(%header, %role, proxies = ?args.trusted_proxy, "proxy authentication on");
        dashboard_options.proxy_auth = Some(dashboard::ProxyAuth { header, role });
    }
    let stop = components.stop_signal();
    components.spawn(
        "the dashboard",
        dashboard::serve(dashboard_options, dashboard_state, database, stop),
    );
    components.run_until_signal().await
}

/// The worker options and queues of each embedded pool: `-Q`/`-c` make one pool; else the
/// app's pools; else one pool on the queues its tasks are routed to.
fn embedded_pools(
    app: &App,
    config: &Config,
    args: &ServeArgs,
) -> anyhow::Result<Vec<(celeriac::worker::WorkerOptions, Vec<String>)>> {
    let one_pool = |queues: Vec<String>, concurrency, node_name: &str| WorkerArgs {
        queues,
        concurrency,
        hostname: Some(node_name.to_owned()),
        prefetch_multiplier: None,
        task_events: true,
        beat: false,
    };
    let pools: Vec<WorkerArgs> = if !args.queues.is_empty() || app.pools().is_empty() {
        vec![one_pool(
            args.queues.clone(),
            args.concurrency,
            EMBEDDED_NODE_NAME,
        )]
    } else {
        app.pools()
            .iter()
            .map(|pool| {
                one_pool(
                    pool.queues.clone(),
                    args.concurrency.or(pool.concurrency),
                    &pool.node_name,
                )
            })
            .collect()
    };
    pools
        .iter()
        .map(|pool| {
            let options = commands::worker_options(app, config, pool)?;
            let queues = options.queues.clone();
            Ok((options, queues))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_component_that_fails_stops_the_others_and_is_named() {
        let mut components = Supervisor::new();
        let stop = components.stop_signal();
        components.spawn("the patient one", async move {
            stop.await;
            Ok(())
        });
        components.spawn("the embedded beat", async {
            Err(anyhow!("database is locked"))
        });
        let outcome = tokio::time::timeout(
            Duration::from_secs(10),
            components.run_until(std::future::pending()),
        )
        .await
        .expect("the supervisor stops everything at once");
        let message = format!("{:#}", outcome.expect_err("a failure is an error"));
        assert_eq!(message, "the embedded beat failed: database is locked");
    }

    #[tokio::test]
    async fn an_unasked_clean_end_is_a_failure_too() {
        let mut components = Supervisor::new();
        components.spawn("the dashboard", async { Ok(()) });
        let outcome = components.run_until(std::future::pending()).await;
        let message = format!("{:#}", outcome.expect_err("nobody asked it to stop"));
        assert_eq!(message, "the dashboard stopped unexpectedly");
    }

    #[tokio::test]
    async fn a_signal_stops_everything_cleanly() {
        let mut components = Supervisor::new();
        for name in ["one", "two"] {
            let stop = components.stop_signal();
            components.spawn(name, async move {
                stop.await;
                Ok(())
            });
        }
        components.run_until(async {}).await.expect("a clean stop");
    }
}
