//! Redis down in the middle of a drain (issue 13): 20,000 tasks with results, `acks_late`, and
//! Redis killed (SIGKILL; append-only file, fsync on every write) for 30, 120 and 300 seconds
//! while a worker drains them. A benchmark, not a test: it asserts nothing and prints a
//! Markdown table of what was lost and what ran twice.
//!
//! ```sh
//! cargo bench -p shop --bench outage                 # outages of 30, 120 and 300 s (~10 min)
//! cargo bench -p shop --bench outage -- --quick      # one outage of 10 s, 5,000 tasks
//! ```
//! `BENCH_OUTAGES` (seconds, comma-separated) and `BENCH_OUTAGE_TASKS` change the runs.
//!
//! Each run uses the chaos suite's harness (`tests/it/chaos_support.rs`): a private
//! `redis-server`, a `shop worker -c 8` process, and `chaos.record(token, 10 ms)`, which
//! appends a line per run to a file outside Redis: the ground truth of what ran. Redis is
//! killed once a quarter of the tasks ran, restarted after the outage, and the drain goes on.
//! *Not run* tasks did not run within 300 s of the restart; *held in unacked* counts the
//! deliveries still recorded in `unacked` then (a fetch whose reply died with Redis: restored
//! after the visibility timeout, an hour here, and run then), *waiting* the messages still in
//! the queue and *dead letters* the dead-letter list's length, so that a task that did not run
//! can be found; *ran twice* ran more than once (at most the eight in flight at the crash may,
//! by at-least-once delivery); *results missing* are tasks whose result is not in the backend
//! at the end.

#[path = "../../tests/it/chaos_support.rs"]
#[allow(
    dead_code,
    reason = "shared with the chaos suite, which uses all of it"
)]
mod chaos_support;

use celeriac::producer::{SendOptions, TaskCall};
use celeriac::testkit::eventually;
use celeriac::TaskState;
use chaos_support::{tally, Cluster};
use serde_json::{json, Map};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Tasks in flight at once in the worker.
const CONCURRENCY: u32 = 8;

struct Row {
    outage: u64,
    tasks: usize,
    lost: usize,
    ran_twice: usize,
    results_missing: usize,
    /// Deliveries still in `unacked` when the wait ended: fetched as Redis died, the reply
    /// lost, restored only after the visibility timeout.
    held: u64,
    /// Messages still in the queue when the wait ended.
    waiting: u64,
    /// The dead-letter list's length then.
    dead_letters: usize,
    drain_after_restart: f64,
}

/// How long a count read after the restart may keep failing while the connection recovers; a
/// read still failing then ends the run (a failed read must not print as 0).
const READ_RECOVERY: Duration = Duration::from_secs(10);

async fn run(outage: u64, tasks: usize) -> anyhow::Result<Row> {
    let mut cluster = Cluster::persistent(&format!("outage{outage}"), 3_600.0);
    let producer = cluster.producer().await;
    let mut tokens = BTreeSet::new();
    let mut ids = Vec::with_capacity(tasks);
    for chunk in (0..tasks).collect::<Vec<_>>().chunks(1_000) {
        let calls: Vec<TaskCall> = chunk
            .iter()
            .map(|index| TaskCall {
                name: "chaos.record".to_owned(),
                args: vec![json!(format!("t{index}")), json!(10)],
                kwargs: Map::new(),
                options: SendOptions::new(),
            })
            .collect();
        for (index, sent) in chunk.iter().zip(producer.send_batch(calls).await?) {
            tokens.insert(format!("t{index}"));
            ids.push(sent.id.to_string());
        }
    }
    let _worker = cluster.worker(CONCURRENCY, "", &[]);
    while cluster.runs().len() < tasks / 4 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.redis.kill();
    tokio::time::sleep(Duration::from_secs(outage)).await;
    cluster.redis = cluster.redis.restarted().await;
    let restarted = Instant::now();
    let runs = cluster
        .wait_for_all(&tokens, Duration::from_secs(300))
        .await;
    let drain_after_restart = restarted.elapsed().as_secs_f64();
    let counts = tally(&tokens, &runs);
    // The last results are written just after their runs are recorded.
    let backend = producer
        .backend()
        .ok_or_else(|| anyhow::anyhow!("no result backend"))?
        .clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let results_missing = loop {
        // The producer's connection died with Redis: its first commands after the restart
        // fail while it reconnects, so a failed read counts nothing and is tried again.
        let mut stored = 0;
        for chunk in ids.chunks(1_000) {
            stored += backend.get_many(chunk).await.map_or(0, |metas| {
                metas
                    .iter()
                    .filter(|meta| meta.status == TaskState::Success)
                    .count()
            });
        }
        if stored == ids.len() || Instant::now() > deadline {
            break ids.len() - stored;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let broker = producer.broker();
    let held = eventually(READ_RECOVERY, "the unacked count", || async {
        broker.unacked_count().await.ok()
    })
    .await;
    let waiting = eventually(READ_RECOVERY, "the queue's length", || async {
        broker.queue_length("celery").await.ok()
    })
    .await;
    let dead_letters = eventually(READ_RECOVERY, "the dead letters", || async {
        broker.dead_letters().await.ok()
    })
    .await
    .len();
    Ok(Row {
        outage,
        tasks,
        lost: counts.lost.len(),
        ran_twice: counts.duplicated.len(),
        results_missing,
        held,
        waiting,
        dead_letters,
        drain_after_restart,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|argument| argument == "--quick")
        || std::env::var_os("BENCH_QUICK").is_some();
    let outages: Vec<u64> = std::env::var("BENCH_OUTAGES")
        .unwrap_or_else(|_| if quick { "10" } else { "30,120,300" }.to_owned())
        .split(',')
        .filter_map(|text| text.trim().parse().ok())
        .collect();
    let tasks = std::env::var("BENCH_OUTAGE_TASKS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(if quick { 5_000 } else { 20_000 });
    println!("### Redis down during a drain: `acks_late`, results on, {CONCURRENCY} in flight\n");
    println!(
        "| outage | tasks | not run | ran twice | results missing | held in unacked | waiting | dead letters | drain after restart |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    // Each row as soon as its run ends: a run is minutes long.
    for outage in outages {
        let row = run(outage, tasks).await?;
        println!(
            "| {} s | {} | {} | {} | {} | {} | {} | {} | {:.1} s |",
            row.outage,
            row.tasks,
            row.lost,
            row.ran_twice,
            row.results_missing,
            row.held,
            row.waiting,
            row.dead_letters,
            row.drain_after_restart
        );
    }
    Ok(())
}
