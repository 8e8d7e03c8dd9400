//! What each subcommand does, on top of the engine's API.

use crate::cli::{CallArgs, ResultArgs, WorkerArgs};
use crate::schedule;
use crate::serve::Supervisor;
use crate::App;
use anyhow::{bail, Context};
use celeriac::beat::ScheduleStore;
use celeriac::config::Config;
use celeriac::producer::{Producer, SendOptions};
use celeriac::task::Registry;
use celeriac::worker::node_name::{check_node_name_template, expand_node_name, hostname};
use celeriac::worker::{shutdown, Worker, WorkerOptions};
use celeriac::TaskState;
use serde_json::{Map, Value};
use std::future::Future;
use std::time::Duration;

/// Worker options from the configuration, overridden by the command line; without `-Q`, the
/// queues `app`'s tasks are routed to.
pub fn worker_options(
    app: &App,
    config: &Config,
    args: &WorkerArgs,
) -> anyhow::Result<WorkerOptions> {
    let mut options = WorkerOptions::from_config(config);
    let queues: Vec<String> = args
        .queues
        .iter()
        .map(|queue| queue.trim().to_owned())
        .filter(|queue| !queue.is_empty())
        .collect();
    if !queues.is_empty() {
        options.queues = queues;
    } else {
        let task_queues = app.task_queues(config);
        if !task_queues.is_empty() {
            options.queues = task_queues;
        }
    }
    if let Some(concurrency) = args.concurrency {
        if concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        options.concurrency = concurrency;
    }
    if let Some(template) = &args.hostname {
        check_node_name_template(template)?;
        options.node_name = expand_node_name(Some(template), &hostname());
    }
    if let Some(multiplier) = args.prefetch_multiplier {
        options.prefetch_multiplier = multiplier;
    }
    Ok(options)
}

/// `worker`: runs until SIGTERM/SIGINT; with `-B`, a beat in the same process, stopped by the
/// same signal (a failure of either stops both).
pub async fn worker(app: &App, mut config: Config, args: &WorkerArgs) -> anyhow::Result<()> {
    if !app.has_tasks() {
        bail!(
            "`{} worker` has no tasks to run: this binary registers none. Build a binary with \
             your tasks on celeriac_server::main(App::new(..).task(..)) (see examples/shop), \
             or run Python Celery workers",
            app.name()
        );
    }
    config.worker_send_task_events |= args.task_events;
    let options = worker_options(app, &config, args)?;
    if !args.beat {
        return run_worker(
            app.registry().clone(),
            config,
            options,
            shutdown::termination_signal(),
        )
        .await;
    }
    let mut components = Supervisor::new();
    let store = ScheduleStore::new(crate::open_database(&config).await?);
    let stop = components.stop_signal();
    let beat_config = config.clone();
    components.spawn("the embedded beat", async move {
        schedule::run_beat(beat_config, store, schedule::embedded_beat_name(), stop).await
    });
    let stop = components.stop_signal();
    let registry = app.registry().clone();
    components.spawn("the worker", async move {
        run_worker(registry, config, options, stop).await
    });
    components.run_until_signal().await
}

/// Runs a worker over `registry` until `stop` resolves.
pub async fn run_worker(
    registry: Registry,
    config: Config,
    options: WorkerOptions,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let worker = Worker::new(config, registry, options)
        .await
        .context("starting the worker")?;
    worker.run(stop).await.context("running the worker")?;
    Ok(())
}

/// `celeriac call`: prints the task id; with --wait the result document on the last line, and
/// fails unless the task succeeded.
pub async fn call(config: Config, args: &CallArgs) -> anyhow::Result<bool> {
    let positional: Value = serde_json::from_str(&args.args).context("--args is not valid JSON")?;
    let Value::Array(positional) = positional else {
        bail!("--args must be a JSON array, e.g. [2, 3]")
    };
    let keywords: Value =
        serde_json::from_str(&args.kwargs).context("--kwargs is not valid JSON")?;
    let Value::Object(keywords) = keywords else {
        bail!("--kwargs must be a JSON object, e.g. {{\"x\": 1}}")
    };
    let mut options = SendOptions::new();
    options.queue = args.queue.clone();
    options.priority = args.priority;
    options.task_id = args.task_id.clone();
    if let Some(countdown) = args.countdown {
        options.countdown = Some(seconds("--countdown", countdown)?);
    }
    if let Some(eta) = &args.eta {
        let eta = chrono::DateTime::parse_from_rfc3339(eta)
            .with_context(|| format!("--eta {eta:?} is not an RFC 3339 time"))?;
        options.eta = Some(eta.with_timezone(&chrono::Utc));
    }
    if let Some(expires) = args.expires {
        options = options.expires_in(seconds("--expires", expires)?);
    }
    let producer = Producer::connect(&config)
        .await
        .context("connecting to the broker")?;
    let result = producer
        .send_task(&args.name, positional, keywords, options)
        .await?;
    println!("{}", result.id);
    if !args.wait {
        return Ok(true);
    }
    let meta = result.get(seconds("--timeout", args.timeout)?).await?;
    println!("{}", meta.to_json());
    Ok(meta.status == TaskState::Success)
}

/// `celeriac result`: prints the stored document (PENDING when there is none); refused
/// without a result backend.
pub async fn result(config: Config, args: &ResultArgs) -> anyhow::Result<bool> {
    let producer = Producer::connect(&config).await.context("connecting")?;
    if producer.backend().is_none() {
        // Without a backend every task would print as PENDING, whatever became of it.
        return Err(celeriac::backend::BackendError::NotConfigured.into());
    }
    let handle = producer.async_result(args.id.as_str());
    let meta = if args.wait {
        Some(handle.get(seconds("--timeout", args.timeout)?).await?)
    } else {
        handle.meta().await?
    };
    match meta {
        Some(meta) => {
            println!("{}", meta.to_json());
            Ok(meta.status != TaskState::Failure)
        }
        None => {
            let mut pending = Map::new();
            pending.insert("status".into(), Value::String("PENDING".into()));
            pending.insert("task_id".into(), Value::String(args.id.clone()));
            println!("{}", Value::Object(pending));
            Ok(true)
        }
    }
}

/// `celeriac dead-letters`: one JSON line per dead letter, newest first.
pub async fn dead_letters(config: Config) -> anyhow::Result<()> {
    let producer = Producer::connect(&config).await.context("connecting")?;
    for entry in producer.broker().dead_letters().await? {
        let line = serde_json::json!({"reason": entry.reason, "queue": entry.queue, "task_id": entry.task_id, "message": entry.message});
        println!("{line}");
    }
    Ok(())
}

fn seconds(option: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("{option} must be a non-negative number of seconds"))
}
