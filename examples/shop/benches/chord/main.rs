//! A chord of 10,000 no-op header tasks (issue 14): time from sending it to its body's result,
//! our worker against Python Celery 5.4's on the same fresh `redis-server`, in one run. A
//! benchmark, not a test: it asserts nothing and prints a Markdown table with the ratios.
//!
//! ```sh
//! scripts/python-venv.sh
//! cargo bench -p shop --bench chord                 # 10,000 header tasks
//! BENCH_CHORD_SIZE=1000 cargo bench -p shop --bench chord
//! ```
//!
//! Each run: flush Redis, start the worker (results on, Celery's default early ack), wait until
//! it answers a probe task, then send `chord([demo.noop] × N, demo.echo)` with our producer
//! (Python workers join a chord our producer sent exactly as one Python sent) and wait for the
//! body's result, which must hold N header results. Our worker acks chord members only after
//! they joined (see README, "Canvas"); Celery acks them before they run.

#[allow(
    dead_code,
    reason = "shared with the drain benchmark, which uses all of it"
)]
#[path = "../drain/drain.rs"]
mod drain;
#[allow(
    dead_code,
    reason = "shared with the drain benchmark, which uses all of it"
)]
#[path = "../drain/process.rs"]
mod process;
#[allow(
    dead_code,
    reason = "shared with the drain benchmark, which uses all of it"
)]
#[path = "../drain/redis_server.rs"]
mod redis_server;

use anyhow::Context;
use celeriac::canvas::{chord, Signature};
use celeriac::config::Config;
use celeriac::producer::{Producer, SendOptions};
use drain::WorkerKind as Kind;
use process::Worker;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const QUEUE: &str = "bench.chord";

fn worker_command(kind: Kind, redis: &redis_server::BenchRedis, root: &std::path::Path) -> Command {
    match kind {
        Kind::Celeriac { concurrency } => {
            let mut command =
                drain::clean_command(std::path::Path::new(env!("CARGO_BIN_EXE_shop")));
            command
                .args(["worker", "-Q", QUEUE, "-c", &concurrency.to_string()])
                .args(["-n", "bench@%h", "--loglevel", "warning"])
                .current_dir(std::env::temp_dir())
                .env("CELERIAC_BROKER_URL", redis.broker_url())
                .env("CELERIAC_RESULT_BACKEND", redis.backend_url());
            command
        }
        Kind::CeleryPrefork { concurrency } | Kind::CeleryThreads { concurrency } => {
            let pool = if matches!(kind, Kind::CeleryPrefork { .. }) {
                "prefork"
            } else {
                "threads"
            };
            let python = std::env::var_os("CELERIAC_TEST_PYTHON")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join(".venv-interop/bin/python"));
            let mut command = drain::clean_command(&python);
            command
                .args(["-m", "celery", "-A", "peer", "worker", "-P", pool])
                .args(["-c", &concurrency.to_string()])
                .args([
                    "--without-mingle",
                    "--without-gossip",
                    "--without-heartbeat",
                ])
                .args(["-Q", QUEUE, "-n", "bench@%h", "-l", "warning"])
                .current_dir(root.join("celeriac/tests/python"))
                .env("PEER_BROKER_URL", redis.broker_url())
                .env("PEER_KEYPREFIX", "")
                .env("PEER_RESULT_BACKEND", redis.backend_url());
            command
        }
    }
}

struct Row {
    kind: Kind,
    elapsed: Duration,
    worker_cpu: Duration,
}

async fn run(
    kind: Kind,
    size: usize,
    redis: &redis_server::BenchRedis,
    producer: &Producer,
    root: &std::path::Path,
) -> anyhow::Result<Row> {
    redis.flush_all().await?;
    let mut worker = Worker::spawn(worker_command(kind, redis, root))
        .with_context(|| format!("starting {}", kind.label()))?;
    let probe = producer
        .send_task(
            "demo.noop",
            Vec::new(),
            Default::default(),
            SendOptions::new().queue(QUEUE),
        )
        .await?;
    probe
        .get(Duration::from_secs(60))
        .await
        .with_context(|| format!("{} did not answer the probe task", kind.label()))?;
    worker.remember_tree();
    let cpu_before = process::tree_cpu(worker.pid());
    let header: Vec<Signature> = (0..size)
        .map(|_| Signature::new("demo.noop").option("queue", serde_json::json!(QUEUE)))
        .collect();
    let body = Signature::new("demo.echo").option("queue", serde_json::json!(QUEUE));
    let started = Instant::now();
    let sent = producer.apply_signature(chord(header, body)).await?;
    let metas = sent.result(producer).get(Duration::from_secs(900)).await?;
    let elapsed = started.elapsed();
    let cpu_after = process::tree_cpu(worker.pid());
    let results = metas
        .first()
        .and_then(|meta| meta.result["args"][0].as_array())
        .map_or(0, Vec::len);
    anyhow::ensure!(
        results == size,
        "{}: the body got {results} header results, not {size}: {:?}",
        kind.label(),
        metas.first().map(|meta| meta.status)
    );
    worker.stop(Duration::from_secs(15)).await;
    Ok(Row {
        kind,
        elapsed,
        worker_cpu: process::cpu_between(&cpu_before, &cpu_after),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let size: usize = std::env::var("BENCH_CHORD_SIZE")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10_000);
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let redis = redis_server::BenchRedis::start().await?;
    let config = Config {
        broker_url: redis.broker_url(),
        result_backend: Some(redis.backend_url()),
        ..Config::default()
    };
    let producer = Producer::connect(&config).await?;
    let kinds = [
        Kind::Celeriac { concurrency: 2 },
        Kind::CeleryPrefork { concurrency: 2 },
        Kind::Celeriac { concurrency: 8 },
        Kind::CeleryThreads { concurrency: 8 },
    ];
    let mut rows = Vec::new();
    for kind in kinds {
        eprintln!("chord: {} with {size} header tasks", kind.label());
        let row = run(kind, size, &redis, &producer, &root).await?;
        eprintln!("  {:.2} s", row.elapsed.as_secs_f64());
        rows.push(row);
    }
    println!("| worker | send → body result | header tasks/s | worker CPU | vs Celery |");
    println!("|---|---:|---:|---:|---:|");
    for pair in rows.chunks(2) {
        let theirs = pair.get(1).map(|row| row.elapsed.as_secs_f64());
        for row in pair {
            let seconds = row.elapsed.as_secs_f64();
            let ratio = theirs.map_or(String::new(), |theirs| format!("{:.1}×", theirs / seconds));
            println!(
                "| {} | {seconds:.2} s | {:.0} | {:.2} s | {} |",
                row.kind.label(),
                size as f64 / seconds,
                row.worker_cpu.as_secs_f64(),
                if !row.kind.is_celery() {
                    ratio
                } else {
                    "1.0×".into()
                }
            );
        }
    }
    Ok(())
}
