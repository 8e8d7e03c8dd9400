//! One drain run: pre-fill a queue with `demo.noop` messages, start a worker on it, and
//! measure until every message is consumed, acked and (with results on) its result stored.
//!
//! 1. Flush Redis and pre-fill the queue with `send_batch` (1,000 per `MULTI`), so Rust and
//!    Python workers drain the same messages, built by our producer.
//! 2. Start the worker process and poll every 2 ms until the queue gets shorter: that is the
//!    start of the measured window (worker start-up, Python's imports above all, is left out).
//!    Sample the worker tree's CPU, Redis's CPU and Redis's command counters there.
//! 3. Poll every 10 ms until the queue is empty, `unacked` is empty and, with results on, the
//!    results database holds one key per message. Sample again; read peak RSS.
//! 4. Stop the worker (SIGTERM, then SIGKILL) before the next run flushes Redis.
//!
//! Rates and per-task costs are over the window: the messages still queued at its start.

use crate::process::{self, Worker};
use crate::redis_server::BenchRedis;
use anyhow::Context;
use celeriac::broker::Keys;
use celeriac::producer::{Producer, SendOptions, TaskCall};
use serde_json::Map;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The queue every run uses (Redis is flushed between runs).
const QUEUE: &str = "bench.drain";

/// Which worker drains the queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum WorkerKind {
    /// Our `celeriac worker -c N`.
    Celeriac { concurrency: u32 },
    /// `celery worker -P prefork -c N`.
    CeleryPrefork { concurrency: u32 },
    /// `celery worker -P threads -c N`.
    CeleryThreads { concurrency: u32 },
}

impl WorkerKind {
    /// The column header.
    pub(crate) fn label(&self) -> String {
        match self {
            WorkerKind::Celeriac { concurrency } => format!("celeriac -c {concurrency}"),
            WorkerKind::CeleryPrefork { concurrency } => {
                format!("Celery prefork -c {concurrency}")
            }
            WorkerKind::CeleryThreads { concurrency } => {
                format!("Celery threads -c {concurrency}")
            }
        }
    }

    /// Whether this is a Python worker.
    pub(crate) fn is_celery(&self) -> bool {
        !matches!(self, WorkerKind::Celeriac { .. })
    }
}

/// Where the programs are.
#[derive(Debug, Clone)]
pub(crate) struct Programs {
    /// Our binary (`CARGO_BIN_EXE_shop`).
    pub(crate) celeriac: PathBuf,
    /// The venv's Python with Celery 5.4.
    pub(crate) python: PathBuf,
    /// `celeriac/tests/python`, where `peer.py` lives.
    pub(crate) peer_directory: PathBuf,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub(crate) struct DrainMeasurement {
    /// Messages pre-filled.
    pub(crate) messages: u64,
    /// Messages drained inside the measured window.
    pub(crate) window_tasks: u64,
    /// Length of the window.
    pub(crate) elapsed: Duration,
    /// Worker CPU (user + system, whole process tree) in the window.
    pub(crate) worker_cpu: Duration,
    /// redis-server CPU in the window.
    pub(crate) redis_cpu: Duration,
    /// Peak RSS of the worker tree over its whole life, KiB.
    pub(crate) peak_rss_kib: u64,
    /// Redis commands the worker caused in the window, by name (script-internal ones too).
    pub(crate) commands: BTreeMap<String, u64>,
}

impl DrainMeasurement {
    /// Tasks per second.
    pub(crate) fn rate(&self) -> f64 {
        self.window_tasks as f64 / self.elapsed.as_secs_f64()
    }

    /// Microseconds of `total` per task in the window.
    pub(crate) fn per_task_micros(&self, total: Duration) -> f64 {
        total.as_secs_f64() * 1e6 / self.window_tasks as f64
    }

    /// All Redis commands per task.
    pub(crate) fn commands_per_task(&self) -> f64 {
        self.commands.values().sum::<u64>() as f64 / self.window_tasks as f64
    }
}

/// Pre-fills `messages` no-op tasks, in batches of 1,000.
pub(crate) async fn prefill(producer: &Producer, messages: u64) -> anyhow::Result<()> {
    let mut remaining = messages;
    while remaining > 0 {
        let batch = remaining.min(1_000);
        let calls = (0..batch)
            .map(|_| TaskCall {
                name: "demo.noop".to_owned(),
                args: Vec::new(),
                kwargs: Map::new(),
                options: SendOptions::new().queue(QUEUE),
            })
            .collect();
        producer.send_batch(calls).await?;
        remaining -= batch;
    }
    Ok(())
}

/// `program` without any `CELERIAC_*` or `PEER_*` variable of ours leaking into it.
pub(crate) fn clean_command(program: &std::path::Path) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("CELERIAC_") || text.starts_with("PEER_") {
            command.env_remove(&name);
        }
    }
    command
}

fn worker_command(
    programs: &Programs,
    redis: &BenchRedis,
    kind: WorkerKind,
    results: bool,
) -> Command {
    let mut command;
    match kind {
        WorkerKind::Celeriac { concurrency } => {
            command = clean_command(&programs.celeriac);
            command
                .args(["worker", "-Q", QUEUE, "-c", &concurrency.to_string()])
                .args(["-n", "bench@%h", "--prefetch-multiplier", "1"])
                .args(["--loglevel", "warning"])
                // No celeriac.toml may leak in from the working directory.
                .current_dir(std::env::temp_dir())
                .env("CELERIAC_BROKER_URL", redis.broker_url())
                .env("CELERIAC_TASK_ACKS_LATE", "true");
            if results {
                command.env("CELERIAC_RESULT_BACKEND", redis.backend_url());
            }
        }
        WorkerKind::CeleryPrefork { concurrency } | WorkerKind::CeleryThreads { concurrency } => {
            let pool = if matches!(kind, WorkerKind::CeleryPrefork { .. }) {
                "prefork"
            } else {
                "threads"
            };
            command = clean_command(&programs.python);
            command
                .args(["-m", "celery", "-A", "peer", "worker", "-P", pool])
                .args(["-c", &concurrency.to_string(), "--prefetch-multiplier", "1"])
                .args([
                    "--without-mingle",
                    "--without-gossip",
                    "--without-heartbeat",
                ])
                .args(["-Q", QUEUE, "-n", "bench@%h", "-l", "warning"])
                .current_dir(&programs.peer_directory)
                .env("PEER_BROKER_URL", redis.broker_url())
                .env("PEER_KEYPREFIX", "")
                .env("PEER_ACKS_LATE", "1")
                .env(
                    "PEER_RESULT_BACKEND",
                    if results {
                        redis.backend_url()
                    } else {
                        String::new()
                    },
                );
        }
    }
    command
}

/// Runs one drain of `messages` tasks with `kind`, results on or off.
pub(crate) async fn run(
    redis: &BenchRedis,
    producer: &Producer,
    programs: &Programs,
    kind: WorkerKind,
    results: bool,
    messages: u64,
) -> anyhow::Result<DrainMeasurement> {
    let keys = Keys::new("", vec![0, 3, 6, 9]);
    let queue_key = keys.queue_for_priority(QUEUE, 0);
    let unacked_key = keys.unacked();
    redis.flush_all().await?;
    prefill(producer, messages).await?;
    anyhow::ensure!(redis.list_length(&queue_key).await? == messages, "pre-fill");

    let mut worker = Worker::spawn(worker_command(programs, redis, kind, results))
        .with_context(|| format!("starting {}", kind.label()))?;
    let start_deadline = Instant::now() + Duration::from_secs(60);
    let queued_at_start = loop {
        let length = redis.list_length(&queue_key).await?;
        if length < messages {
            break length;
        }
        anyhow::ensure!(
            Instant::now() < start_deadline,
            "{} consumed nothing within 60 s (BENCH_VERBOSE=1 shows its output)",
            kind.label()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let started = Instant::now();
    worker.remember_tree();
    let cpu_before = process::tree_cpu(worker.pid());
    let redis_cpu_before = process::cpu_time(redis.pid());
    let counters_before = redis.counters().await?;

    let drain_deadline = Instant::now() + Duration::from_secs(600);
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        anyhow::ensure!(
            Instant::now() < drain_deadline,
            "{} did not drain within 600 s",
            kind.label()
        );
        if redis.list_length(&queue_key).await? > 0 || redis.hash_length(&unacked_key).await? > 0 {
            continue;
        }
        if results && redis.result_count().await? < messages {
            continue;
        }
        break;
    }
    let elapsed = started.elapsed();
    let cpu_after = process::tree_cpu(worker.pid());
    let redis_cpu_after = process::cpu_time(redis.pid());
    let counters_after = redis.counters().await?;
    let peak_rss_kib = process::tree_peak_rss_kib(worker.pid());
    worker.stop(Duration::from_secs(15)).await;

    Ok(DrainMeasurement {
        messages,
        window_tasks: queued_at_start,
        elapsed,
        worker_cpu: process::cpu_between(&cpu_before, &cpu_after),
        redis_cpu: redis_cpu_after.saturating_sub(redis_cpu_before),
        peak_rss_kib,
        commands: counters_after.commands_since(&counters_before),
    })
}
