//! Two separate Celeriac setups (each with its own `database_url`) on one Redis and one
//! `global_keyprefix`: each elects its own beat leader and sends its own schedules, because
//! beat's keys live under a namespace derived from the database (`Config::beat_namespace`).
//! Before the namespace, the first beat took the only lease and the other setup sent nothing.

use crate::history::open_database;
use crate::support::config;
use celeriac::beat::{
    Beat, BeatOptions, BeatStats, Interval, PeriodicTask, Schedule, ScheduleStore,
};
use celeriac::producer::Producer;
use celeriac::testkit::{eventually, DatabaseKind, TestDatabase, TestEnv};
use std::time::Duration;

/// One setup: its own database, a producer configured with it, and a running beat.
struct Setup {
    producer: Producer,
    queue: String,
    node: String,
    stop: tokio::sync::oneshot::Sender<()>,
    beat: tokio::task::JoinHandle<BeatStats>,
    _test_database: TestDatabase,
}

async fn start_setup(env: &TestEnv, name: &str) -> Setup {
    let test_database = TestDatabase::new(DatabaseKind::Sqlite, &format!("beat_namespace_{name}"));
    let database = open_database(&test_database).await;
    let mut config = config(env);
    config.database_url = test_database.url.clone();
    let producer = Producer::connect(&config).await.expect("producer");
    let store = ScheduleStore::new(database);
    let queue = env.queue(&format!("beat-{name}"));
    let interval: Interval = "1s".parse().expect("interval");
    let mut task = PeriodicTask::new("tick", "demo.add", Schedule::Interval(interval));
    task.args = serde_json::json!([2, 3]);
    task.queue = Some(queue.clone());
    store.add(&task).await.expect("add schedule");
    let node = format!("beat-{name}@test");
    let options = BeatOptions {
        node_name: node.clone(),
        lease_timeout: Duration::from_secs(3),
        max_loop_interval: Duration::from_millis(500),
        ..BeatOptions::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let beat = tokio::spawn(Beat::new(store, producer.clone(), options).run(async move {
        let _ = stopped.await;
    }));
    Setup {
        producer,
        queue,
        node,
        stop,
        beat,
        _test_database: test_database,
    }
}

async fn queued(env: &TestEnv, queue: &str) -> usize {
    let mut redis = env.redis().await;
    redis::cmd("LLEN")
        .arg(format!("{}{}", env.key_prefix, queue))
        .query_async::<usize>(&mut redis)
        .await
        .expect("LLEN")
}

#[tokio::test]
async fn two_setups_on_one_redis_each_elect_a_leader() {
    let env = TestEnv::new("beat-namespace");
    let setups = [
        start_setup(&env, "shop").await,
        start_setup(&env, "blog").await,
    ];
    assert_ne!(
        setups[0].producer.broker().keys().beat_leader(),
        setups[1].producer.broker().keys().beat_leader(),
        "different databases, different lease keys"
    );
    for setup in &setups {
        eventually(
            Duration::from_secs(10),
            &format!("{} to lead its setup", setup.node),
            || async {
                let leader = setup.producer.broker().beat_leader().await.ok()??;
                (leader.owner == setup.node).then_some(())
            },
        )
        .await;
        eventually(
            Duration::from_secs(10),
            &format!("{} to send its schedule", setup.node),
            || async { (queued(&env, &setup.queue).await >= 2).then_some(()) },
        )
        .await;
    }
    for setup in setups {
        let _ = setup.stop.send(());
        let stats = setup.beat.await.expect("beat task");
        assert_eq!(stats.elections, 1, "{} led once, undisturbed", setup.node);
    }
}
