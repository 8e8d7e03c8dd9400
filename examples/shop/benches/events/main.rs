//! Event ingest, our [`celeriac::events::Monitor`] against Flower 2.2, side by side in one run
//! on the same fresh `redis-server` (issue 4). A benchmark, not a test: it asserts nothing and
//! prints Markdown tables with the ratios.
//!
//! ```sh
//! cargo bench -p shop --bench events             # full run, about 5 minutes
//! cargo bench -p shop --bench events -- --quick  # small N (or BENCH_QUICK=1)
//! ```
//!
//! Flower runs from `.venv-flower` (Flower 2.2 with the peer's Celery 5.4), which
//! `scripts/flower-venv.sh` creates when missing (`BENCH_FLOWER_PYTHON` overrides it).
//!
//! For each offered rate, each monitor in turn is started fresh as its own process, subscribed
//! (a probe event must come through first), then the same pre-built stream (see [`stream`]) is
//! published at that rate, and the monitor is polled until it has counted every task event or
//! stops making progress. *Ingest* is the task events it applied over the time from the first
//! publish to the last event applied; it equals the offered rate while the monitor keeps up.
//! Memory is measured separately: a stream of N tasks with `max_tasks` ≥ N, so every task is
//! retained, and the growth of the monitor's resident set over its idle size divided by N.
//!
//! Layout: `stream` (the synthetic events and the paced publisher), `consumer` (the two
//! monitors as processes and how each is read), `report` (the tables); `redis_server` is the
//! drain benchmark's private server.

mod consumer;
#[path = "../drain/numbers.rs"]
mod numbers;
#[path = "../drain/redis_server.rs"]
#[allow(
    dead_code,
    reason = "shared with the drain benchmark, which uses all of it"
)]
mod redis_server;
mod report;
mod stream;

use anyhow::Context;
use consumer::{Consumer, FlowerProgram, Kind};
use redis::aio::MultiplexedConnection;
use report::{MemoryRow, StepRow};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Task events per task in the stream (3 per task, 0.2 `task-sent`, 3 % retried with 4 more).
const TASK_EVENTS_PER_TASK: f64 = 3.29;

fn epoch_now() -> f64 {
    celeriac::clock::epoch_now()
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Publishes probe task events until the monitor has counted one; returns its count then.
async fn wait_ready(
    consumer: &mut Consumer,
    publisher: &mut MultiplexedConnection,
) -> anyhow::Result<u64> {
    let channel = celeriac::broker::Keys::new("", vec![0]).fanout_channel("celeryev", "task.multi");
    for attempt in 0..300 {
        let body = serde_json::json!([{"hostname": "probe@bench", "utcoffset": 0, "pid": 1,
            "clock": attempt, "uuid": format!("probe-{attempt}"), "timestamp": epoch_now(),
            "type": "task-started"}]);
        let envelope =
            celeriac::protocol::event::envelope(&body, "probe@bench", "task.multi", "probe".into());
        redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(envelope.to_json())
            .query_async::<i64>(publisher)
            .await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if consumer.task_events_seen().await? > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return consumer.task_events_seen().await;
        }
    }
    anyhow::bail!("{} never heard a probe", consumer.kind.label())
}

/// What one monitor did with one stream.
pub(crate) struct Run {
    pub(crate) expected: u64,
    pub(crate) seen: u64,
    pub(crate) publish_time: Duration,
    /// From the first publish to the last progress.
    pub(crate) ingest_time: Duration,
    /// From the end of publishing to the last progress.
    pub(crate) catch_up: Duration,
    pub(crate) rss_idle_kib: u64,
    pub(crate) rss_after_kib: u64,
    pub(crate) ours: serde_json::Value,
}

impl Run {
    pub(crate) fn ingest_rate(&self) -> f64 {
        self.seen as f64 / self.ingest_time.as_secs_f64().max(1e-9)
    }

    pub(crate) fn lossless(&self) -> bool {
        self.seen >= self.expected && self.catch_up < Duration::from_secs(1)
    }
}

/// What every run shares: the Redis to publish to and Flower's program.
struct Bench {
    broker_url: String,
    publisher: MultiplexedConnection,
    flower: FlowerProgram,
}

async fn run(
    bench: &mut Bench,
    kind: Kind,
    stream: &stream::Stream,
    rate: f64,
    max_tasks: u64,
    catch_up_limit: Duration,
) -> anyhow::Result<Run> {
    let publisher = &mut bench.publisher;
    let mut consumer = Consumer::start(kind, &bench.broker_url, max_tasks, &bench.flower).await?;
    let baseline = wait_ready(&mut consumer, publisher).await?;
    let rss_idle_kib = consumer.rss_kib();
    let started = Instant::now();
    let publish_time = stream::publish(publisher, stream, rate).await?;
    let mut seen = consumer.task_events_seen().await? - baseline;
    let mut last_progress = Instant::now();
    while seen < stream.task_events {
        let idle = last_progress.elapsed();
        if idle > Duration::from_secs(3) || started.elapsed() > publish_time + catch_up_limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = consumer.task_events_seen().await? - baseline;
        if now > seen {
            seen = now;
            last_progress = Instant::now();
        }
    }
    let ingest_time = last_progress.duration_since(started);
    let catch_up = last_progress
        .duration_since(started)
        .saturating_sub(publish_time);
    let rss_after_kib = consumer.rss_kib();
    let ours = consumer.ours_report().await.unwrap_or_default();
    consumer.stop().await;
    Ok(Run {
        expected: stream.task_events,
        seen,
        publish_time,
        ingest_time,
        catch_up,
        rss_idle_kib,
        rss_after_kib,
        ours,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().collect();
    if let Some(position) = arguments
        .iter()
        .position(|argument| argument == "--ours-child")
    {
        let url = arguments.get(position + 1).context("broker url")?;
        let max_tasks = arguments
            .get(position + 2)
            .and_then(|value| value.parse().ok())
            .unwrap_or(10_000);
        return consumer::run_child(url, max_tasks).await;
    }
    let quick = arguments.iter().any(|argument| argument == "--quick")
        || std::env::var("BENCH_QUICK").is_ok_and(|value| value == "1");
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let flower = consumer::flower_program(&root)?;
    let redis = redis_server::BenchRedis::start().await?;
    let publisher = redis::Client::open(redis.broker_url())?
        .get_multiplexed_async_connection()
        .await?;
    let mut bench = Bench {
        broker_url: redis.broker_url(),
        publisher,
        flower,
    };
    eprintln!(
        "events: redis-server pid {} at {}",
        redis.pid(),
        redis.broker_url()
    );

    let rates: Vec<u64> = if quick {
        vec![10_000, 50_000]
    } else {
        vec![5_000, 10_000, 25_000, 50_000, 100_000, 200_000]
    };
    let seconds = env_number("BENCH_EVENTS_SECONDS", if quick { 2 } else { 5 });
    let catch_up_limit = Duration::from_secs(env_number(
        "BENCH_EVENTS_CATCH_UP",
        if quick { 20 } else { 60 },
    ));
    let mut steps = Vec::new();
    for rate in rates {
        let tasks = (rate as f64 * seconds as f64 / TASK_EVENTS_PER_TASK) as u64;
        let stream = stream::build(tasks, epoch_now());
        eprintln!(
            "events: {rate} events/s offered, {tasks} tasks, {} task events in {} messages",
            stream.task_events,
            stream.messages.len()
        );
        let mut runs = Vec::new();
        for kind in [Kind::Ours, Kind::Flower] {
            let run = run(
                &mut bench,
                kind,
                &stream,
                rate as f64,
                10_000,
                catch_up_limit,
            )
            .await?;
            eprintln!(
                "  {}: {}/{} task events, {:.0}/s, caught up {:.1} s after publishing ({:.1} s)",
                kind.label(),
                run.seen,
                run.expected,
                run.ingest_rate(),
                run.catch_up.as_secs_f64(),
                run.publish_time.as_secs_f64()
            );
            runs.push(run);
        }
        let flower_run = runs.pop().context("two runs")?;
        let ours_run = runs.pop().context("two runs")?;
        steps.push(StepRow {
            offered: rate,
            ours: ours_run,
            flower: flower_run,
        });
    }

    let retained = env_number("BENCH_EVENTS_RETAINED", if quick { 5_000 } else { 20_000 });
    let stream = stream::build(retained, epoch_now());
    let mut memory = Vec::new();
    for kind in [Kind::Ours, Kind::Flower] {
        eprintln!(
            "events: memory, {} with {retained} tasks retained",
            kind.label()
        );
        let run = run(
            &mut bench,
            kind,
            &stream,
            5_000.0,
            retained + 1_000,
            Duration::from_secs(600),
        )
        .await?;
        memory.push(MemoryRow {
            kind,
            tasks: retained,
            run,
        });
    }
    println!("{}", report::render(quick, seconds, &steps, &memory));
    Ok(())
}
