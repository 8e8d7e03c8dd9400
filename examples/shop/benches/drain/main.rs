//! Drain and enqueue speed, our worker and producer against Python Celery 5.4 in one run on
//! the same fresh `redis-server` (issue 3). A benchmark, not a test: it asserts nothing and
//! prints Markdown tables with the ratios.
//!
//! ```sh
//! scripts/python-venv.sh                          # Celery 5.4 in .venv-interop
//! cargo bench -p shop --bench drain             # full run, a few minutes
//! cargo bench -p shop --bench drain -- --quick  # small N (or BENCH_QUICK=1)
//! ```
//!
//! Drain: `demo.noop` with `task_acks_late` and prefetch multiplier 1, results off and on,
//! events off; our `celeriac worker` against `celery worker -P prefork -c 2` and
//! `-P threads -c 8`, each as a real process, measured from `/proc` and Redis's own counters
//! (see [`drain`]). Enqueue: see [`enqueue`]. `BENCH_DRAIN_OURS`, `BENCH_DRAIN_CELERY` and
//! `BENCH_ENQUEUE` override the message counts; `BENCH_VERBOSE=1` shows the workers' output;
//! `BENCH_WORKER_BIN` runs another build's worker binary (one answering `worker -Q -c`).
//!
//! Layout: `redis_server` (the private server and its counters), `process` (CPU and RSS from
//! `/proc`, stopping a worker tree), `drain`, `enqueue`, `report` (the tables).

mod drain;
mod enqueue;
mod numbers;
mod process;
mod redis_server;
mod report;

use celeriac::config::Config;
use celeriac::producer::Producer;
use drain::{Programs, WorkerKind};
use enqueue::OurMode;
use std::path::PathBuf;

/// Message counts of one benchmark run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    /// Pre-filled messages for our worker.
    pub(crate) drain_ours: u64,
    /// Pre-filled messages for Celery workers.
    pub(crate) drain_celery: u64,
    /// Tasks per enqueue loop of ours (sequential and concurrent; batched sends 10×).
    pub(crate) enqueue_ours: u64,
    /// Tasks per Python enqueue loop.
    pub(crate) enqueue_celery: u64,
}

fn count_from_env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn sizes(quick: bool) -> Sizes {
    let (drain_ours, drain_celery, enqueue_ours, enqueue_celery) = if quick {
        (5_000, 1_000, 5_000, 2_000)
    } else {
        (60_000, 5_000, 50_000, 10_000)
    };
    Sizes {
        drain_ours: count_from_env("BENCH_DRAIN_OURS", drain_ours),
        drain_celery: count_from_env("BENCH_DRAIN_CELERY", drain_celery),
        enqueue_ours: count_from_env("BENCH_ENQUEUE", enqueue_ours),
        enqueue_celery: count_from_env("BENCH_ENQUEUE_CELERY", enqueue_celery),
    }
}

fn programs() -> anyhow::Result<Programs> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let python = std::env::var_os("CELERIAC_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv-interop/bin/python"));
    anyhow::ensure!(
        python.exists(),
        "no Python with Celery at {}: run scripts/python-venv.sh",
        python.display()
    );
    Ok(Programs {
        // Another build's binary (e.g. an older commit's) for an A/B run on the same machine.
        celeriac: std::env::var_os("BENCH_WORKER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_shop"))),
        python,
        peer_directory: root.join("celeriac/tests/python"),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|argument| argument == "--quick")
        || std::env::var("BENCH_QUICK").is_ok_and(|value| value == "1");
    let sizes = sizes(quick);
    let programs = programs()?;
    let redis = redis_server::BenchRedis::start().await?;
    let config = Config {
        broker_url: redis.broker_url(),
        result_backend: None,
        ..Config::default()
    };
    let producer = Producer::connect(&config).await?;
    eprintln!(
        "drain: redis-server pid {} at {}",
        redis.pid(),
        redis.broker_url()
    );

    let pairs = [
        (
            WorkerKind::Celeriac { concurrency: 2 },
            WorkerKind::CeleryPrefork { concurrency: 2 },
        ),
        (
            WorkerKind::Celeriac { concurrency: 8 },
            WorkerKind::CeleryThreads { concurrency: 8 },
        ),
        // Async tasks make a slot nearly free, so our worker can hold many more in flight;
        // Celery's threads pool is measured at the same setting for the comparison.
        (
            WorkerKind::Celeriac { concurrency: 64 },
            WorkerKind::CeleryThreads { concurrency: 64 },
        ),
    ];
    let mut drains = Vec::new();
    for results in [false, true] {
        for (ours, theirs) in pairs {
            for kind in [ours, theirs] {
                let messages = if kind.is_celery() {
                    sizes.drain_celery
                } else {
                    sizes.drain_ours
                };
                let state = if results { "on" } else { "off" };
                eprintln!(
                    "drain: {} results {state}, {messages} messages",
                    kind.label()
                );
                let measurement =
                    drain::run(&redis, &producer, &programs, kind, results, messages).await?;
                eprintln!("  {:.0} tasks/s", measurement.rate());
                drains.push(report::DrainRow {
                    kind,
                    results,
                    measurement,
                });
            }
        }
    }

    let mut enqueues = Vec::new();
    for (label, mode, tasks) in [
        ("celeriac send_task, sequential", OurMode::Sequential, 1),
        ("celeriac send_task, 16 in flight", OurMode::Concurrent, 1),
        ("celeriac send_batch of 1,000", OurMode::Batched, 10),
    ] {
        eprintln!("enqueue: {label}");
        let measurement =
            enqueue::ours(&redis, &producer, mode, sizes.enqueue_ours * tasks).await?;
        enqueues.push((label.to_owned(), measurement));
    }
    for (label, call) in [
        ("Celery apply_async loop", "apply_async"),
        ("Celery send_task loop", "send_task"),
    ] {
        eprintln!("enqueue: {label}");
        let measurement = enqueue::celery(&redis, &programs, call, sizes.enqueue_celery).await?;
        enqueues.push((label.to_owned(), measurement));
    }

    println!("{}", report::render(quick, &drains, &enqueues));
    Ok(())
}
