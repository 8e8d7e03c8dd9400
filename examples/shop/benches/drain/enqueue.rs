//! Enqueue throughput: our `Producer` (one `send_task` at a time, 16 in flight, and
//! `send_batch` of 1,000) against Celery 5.4's `apply_async` and `send_task` in a loop.
//!
//! Both publish `demo.noop` to a queue nobody consumes, results off (with a Redis result
//! backend, Celery's `apply_async` also subscribes to each task's result channel, which would
//! measure the backend rather than the publish). Our producer runs in this process, so its CPU
//! is this process's CPU; the Python loop measures its own with `time.process_time`.

use crate::drain::{clean_command, Programs};
use crate::process;
use crate::redis_server::BenchRedis;
use anyhow::Context;
use celeriac::producer::{Producer, SendOptions, TaskCall};
use serde_json::Map;
use std::collections::BTreeMap;
use std::time::Instant;

const QUEUE: &str = "bench.enqueue";

/// Tasks in flight in the concurrent mode.
pub(crate) const IN_FLIGHT: u64 = 16;
/// Tasks per `send_batch` call.
pub(crate) const BATCH: u64 = 1_000;

/// How our producer sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum OurMode {
    /// `send_task` awaited one after another.
    Sequential,
    /// [`IN_FLIGHT`] tokio tasks, each awaiting its own `send_task` calls.
    Concurrent,
    /// `send_batch` of [`BATCH`] calls.
    Batched,
}

/// What one enqueue run measured.
#[derive(Debug, Clone)]
pub(crate) struct EnqueueMeasurement {
    /// Tasks sent in the measured loop.
    pub(crate) tasks: u64,
    /// Tasks per second.
    pub(crate) rate: f64,
    /// Producer CPU per task, microseconds.
    pub(crate) cpu_micros_per_task: f64,
    /// Redis commands per task.
    pub(crate) commands_per_task: f64,
    /// redis-server CPU per task, microseconds.
    pub(crate) redis_micros_per_task: f64,
}

fn noop_call() -> TaskCall {
    TaskCall {
        name: "demo.noop".to_owned(),
        args: Vec::new(),
        kwargs: Map::new(),
        options: SendOptions::new().queue(QUEUE),
    }
}

async fn send(producer: &Producer, tasks: u64, mode: OurMode) -> anyhow::Result<()> {
    match mode {
        OurMode::Sequential => {
            for _ in 0..tasks {
                let call = noop_call();
                producer
                    .send_task(&call.name, call.args, call.kwargs, call.options)
                    .await?;
            }
        }
        OurMode::Concurrent => {
            let mut senders = tokio::task::JoinSet::new();
            for sender in 0..IN_FLIGHT {
                let producer = producer.clone();
                let share = tasks / IN_FLIGHT + u64::from(sender < tasks % IN_FLIGHT);
                senders.spawn(async move {
                    for _ in 0..share {
                        let call = noop_call();
                        producer
                            .send_task(&call.name, call.args, call.kwargs, call.options)
                            .await?;
                    }
                    Ok::<(), celeriac::Error>(())
                });
            }
            while let Some(joined) = senders.join_next().await {
                joined??;
            }
        }
        OurMode::Batched => {
            let mut remaining = tasks;
            while remaining > 0 {
                let batch = remaining.min(BATCH);
                producer
                    .send_batch((0..batch).map(|_| noop_call()).collect())
                    .await?;
                remaining -= batch;
            }
        }
    }
    Ok(())
}

/// Sends `tasks` with our producer in `mode` (after a small warm-up) and measures it.
pub(crate) async fn ours(
    redis: &BenchRedis,
    producer: &Producer,
    mode: OurMode,
    tasks: u64,
) -> anyhow::Result<EnqueueMeasurement> {
    redis.flush_all().await?;
    send(producer, 100, mode).await?;
    let own_pid = std::process::id();
    let cpu_before = process::cpu_time(own_pid);
    let redis_cpu_before = process::cpu_time(redis.pid());
    let counters_before = redis.counters().await?;
    let started = Instant::now();
    send(producer, tasks, mode).await?;
    let elapsed = started.elapsed();
    let cpu = process::cpu_time(own_pid).saturating_sub(cpu_before);
    let redis_cpu = process::cpu_time(redis.pid()).saturating_sub(redis_cpu_before);
    let commands = redis
        .counters()
        .await?
        .commands_since(&counters_before)
        .values()
        .sum::<u64>();
    redis.flush_all().await?;
    Ok(EnqueueMeasurement {
        tasks,
        rate: tasks as f64 / elapsed.as_secs_f64(),
        cpu_micros_per_task: cpu.as_secs_f64() * 1e6 / tasks as f64,
        commands_per_task: commands as f64 / tasks as f64,
        redis_micros_per_task: redis_cpu.as_secs_f64() * 1e6 / tasks as f64,
    })
}

const PYTHON_LOOP: &str = r#"
import json, sys, time
from peer import app, noop
tasks, queue, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if mode == "apply_async":
    send = lambda: noop.apply_async(queue=queue)
else:
    send = lambda: app.send_task("demo.noop", queue=queue)
for _ in range(100):
    send()
client = app.broker_connection().default_channel.client
def calls():
    return sum(stat["calls"] for stat in client.info("commandstats").values())
commands_before = calls()
cpu_before, started = time.process_time(), time.perf_counter()
for _ in range(tasks):
    send()
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_before
commands = calls() - commands_before - 1
print(json.dumps({"rate": tasks / elapsed, "cpu": cpu * 1e6 / tasks, "commands": commands / tasks}))
"#;

/// Sends `tasks` with Celery's `apply_async` (or `send_task`) in a Python loop.
pub(crate) async fn celery(
    redis: &BenchRedis,
    programs: &Programs,
    python_call: &str,
    tasks: u64,
) -> anyhow::Result<EnqueueMeasurement> {
    redis.flush_all().await?;
    let redis_cpu_before = process::cpu_time(redis.pid());
    let output = clean_command(&programs.python)
        .args(["-c", PYTHON_LOOP, &tasks.to_string(), QUEUE, python_call])
        .current_dir(&programs.peer_directory)
        .env("PEER_BROKER_URL", redis.broker_url())
        .env("PEER_RESULT_BACKEND", "")
        .env("PEER_KEYPREFIX", "")
        .output()
        .context("running the Python enqueue loop")?;
    // Around the whole process, so its 100 warm-up sends and connection set-up are included.
    let redis_cpu = process::cpu_time(redis.pid()).saturating_sub(redis_cpu_before);
    anyhow::ensure!(
        output.status.success(),
        "Python enqueue loop failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures: BTreeMap<String, f64> = serde_json::from_slice(
        output
            .stdout
            .rsplit(|byte| *byte == b'\n')
            .find(|line| !line.is_empty())
            .unwrap_or_default(),
    )
    .context("reading the Python enqueue loop's figures")?;
    redis.flush_all().await?;
    let figure = |name: &str| figures.get(name).copied().unwrap_or(f64::NAN);
    Ok(EnqueueMeasurement {
        tasks,
        rate: figure("rate"),
        cpu_micros_per_task: figure("cpu"),
        commands_per_task: figure("commands"),
        redis_micros_per_task: redis_cpu.as_secs_f64() * 1e6 / (tasks + 100) as f64,
    })
}
