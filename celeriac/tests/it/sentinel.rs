//! Redis Sentinel: a master, a replica and three sentinels (`testkit::SentinelRedis`), our
//! broker and result backend on kombu's `sentinel://` URLs with `master_name`.
//!
//! A drain of `SENTINEL_DRAIN` tasks (default 2,000; the figure is 20,000) with
//! `acks_late`, the master killed with SIGKILL a third of the way through and the replica
//! promoted: every task runs and has its result, without restarting anything; beat keeps
//! sending its one-second entry after the failover; a producer connected before the failover
//! sends to the new master. How long the drain stalled and how many tasks ran twice are
//! printed.

use crate::support::{config, RunningWorker};
use celeriac::beat::{Beat, BeatOptions, PeriodicTask, Schedule, ScheduleStore};
use celeriac::config::Config;
use celeriac::db::Database;
use celeriac::producer::{Producer, SendOptions};
use celeriac::task::{Registry, Task, TaskError};
use celeriac::testkit::{
    eventually, DatabaseKind, SentinelRedis, TestDatabase, TestEnv, MASTER_NAME,
};
use celeriac::TaskState;
use serde_json::{json, Map};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn drain_size() -> usize {
    std::env::var("SENTINEL_DRAIN")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(2_000)
}

fn sentinel_config(env: &TestEnv) -> Config {
    let mut config = config(env);
    config.broker_transport_options.master_name = Some(MASTER_NAME.to_owned());
    config.broker_transport_options.visibility_timeout = 10.0;
    config.result_backend_transport_options.master_name = Some(MASTER_NAME.to_owned());
    config.task_acks_late = true;
    config.worker_prefetch_multiplier = 1;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_survives_the_master_being_killed_and_replaced() {
    let mut redis = tokio::task::block_in_place(SentinelRedis::start);
    let env = TestEnv::new("sentinel").on(redis.url(0), redis.url(1), None);
    let queue = env.queue("q");
    let config = sentinel_config(&env);

    // `sentinel.count`: records every run, so runs twice are counted.
    let runs: Arc<Mutex<BTreeMap<i64, u32>>> = Arc::default();
    let mut registry = Registry::new();
    let recorded = runs.clone();
    registry.register(Task::new("sentinel.count", move |n: i64| {
        let recorded = recorded.clone();
        async move {
            if let Ok(mut runs) = recorded.lock() {
                *runs.entry(n).or_default() += 1;
            }
            Ok::<i64, TaskError>(n)
        }
    }));
    let producer = Producer::connect(&config)
        .await
        .expect("producer via sentinel");

    // Beat on the same Redis, a one-second entry.
    let database = TestDatabase::new(DatabaseKind::Sqlite, "sentinel_beat");
    let store = ScheduleStore::new(Database::connect(&database.url).await.expect("database"));
    let mut entry = PeriodicTask::new(
        "sentinel-tick",
        "sentinel.count",
        Schedule::Interval("1s".parse().expect("an interval")),
    );
    entry.args = json!([-1]);
    entry.queue = Some(queue.clone());
    store.add(&entry).await.expect("schedule");
    let beat = Beat::new(
        store.clone(),
        producer.clone(),
        BeatOptions {
            node_name: "beat-sentinel@test".to_owned(),
            max_loop_interval: Duration::from_millis(500),
            lease_timeout: Duration::from_secs(3),
            ..BeatOptions::default()
        },
    );
    let (stop_beat, beat_stopped) = tokio::sync::oneshot::channel::<()>();
    let beat = tokio::spawn(beat.run(async move {
        let _ = beat_stopped.await;
    }));

    let total = drain_size();
    let mut results = Vec::with_capacity(total);
    for n in 0..total {
        let result = producer
            .send_task(
                "sentinel.count",
                vec![json!(n)],
                Map::new(),
                SendOptions::new().queue(&queue),
            )
            .await
            .expect("send before the failover");
        results.push(result);
    }
    // Everything sent is on the replica before the master dies (replication is asynchronous:
    // a write the master took but did not pass on is lost with it, by Redis's design).
    let connection = redis::Client::open(format!("redis://127.0.0.1:{}/0", redis.replica_port()))
        .expect("replica url")
        .get_multiplexed_async_connection()
        .await
        .expect("replica connection");
    eventually(
        Duration::from_secs(10),
        "the replica to hold the queue",
        || {
            let mut connection = connection.clone();
            let key = env.key(&queue);
            async move {
                let length: usize = redis::cmd("LLEN")
                    .arg(&key)
                    .query_async(&mut connection)
                    .await
                    .ok()?;
                (length >= total).then_some(())
            }
        },
    )
    .await;
    drop(connection);

    let worker = RunningWorker::start(config.clone(), Some(registry), &[&queue], 8).await;
    eventually(Duration::from_secs(60), "a third of the drain", || {
        let runs = runs.clone();
        async move {
            let done = runs.lock().ok()?.keys().filter(|n| **n >= 0).count();
            (done >= total / 3).then_some(())
        }
    })
    .await;
    let killed_at = Instant::now();
    let done_at_kill = runs.lock().map(|runs| runs.len()).unwrap_or(0);
    tokio::task::block_in_place(|| redis.kill_master());
    tokio::task::block_in_place(|| redis.wait_for_failover(Duration::from_secs(30)));
    let promoted_after = killed_at.elapsed();
    // The first task run after the kill tells when the drain resumed.
    let resumed = eventually(Duration::from_secs(60), "the drain to resume", || {
        let runs = runs.clone();
        async move {
            let now = runs.lock().ok()?.len();
            (now > done_at_kill + 10).then_some(Instant::now())
        }
    })
    .await;

    // A task sent now, by the producer connected before, goes to the new master.
    let late = producer
        .send_task(
            "sentinel.count",
            vec![json!(total)],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await;
    let late = match late {
        Ok(late) => late,
        // The first send may still hit the dead connection; the next goes to the new master.
        Err(_) => producer
            .send_task(
                "sentinel.count",
                vec![json!(total)],
                Map::new(),
                SendOptions::new().queue(&queue),
            )
            .await
            .expect("send after the failover"),
    };
    results.push(late);

    let mut missing = Vec::new();
    for (n, result) in results.iter().enumerate() {
        match result.get(Duration::from_secs(90)).await {
            Ok(meta) if meta.status == TaskState::Success && meta.result == json!(n) => {}
            other => missing.push(format!("{n}: {other:?}")),
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} tasks have no result: {:?}\n{}",
        missing.len(),
        results.len(),
        &missing[..missing.len().min(5)],
        redis.log_tail()
    );

    // Beat sends again after the failover.
    let ticks_then = runs
        .lock()
        .map(|runs| runs.get(&-1).copied().unwrap_or(0))
        .unwrap_or(0);
    eventually(
        Duration::from_secs(20),
        "beat to send after the failover",
        || {
            let runs = runs.clone();
            async move {
                let ticks = runs.lock().ok()?.get(&-1).copied().unwrap_or(0);
                (ticks >= ticks_then + 2).then_some(())
            }
        },
    )
    .await;
    let _ = stop_beat.send(());
    beat.await.expect("beat task");
    worker.stop().await;

    let twice = runs
        .lock()
        .map(|runs| {
            runs.iter()
                .filter(|(n, count)| **n >= 0 && **count > 1)
                .count()
        })
        .unwrap_or(0);
    eprintln!(
        "sentinel drain of {total}: master killed after {done_at_kill} runs, replica promoted \
         {:.1} s later, drain resumed {:.1} s after the kill, {twice} task(s) ran twice",
        promoted_after.as_secs_f64(),
        resumed.duration_since(killed_at).as_secs_f64()
    );
}
