//! Our beat and a real Python Celery 5.4 worker: the periodic message (with Celery beat's
//! `periodic_task_name` header and our slot header) is a task Python runs as it runs one
//! from `celery beat`, and we read its result.

use crate::beat_support::BeatWorld;
use celeriac::testkit::{eventually, CeleryPeer, DatabaseKind};
use celeriac::TaskState;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_worker_runs_what_our_beat_sends() {
    let world = BeatWorld::new(DatabaseKind::Sqlite, "beat_interop").await;
    let peer = CeleryPeer::worker(&world.env, &[&world.queue], "py-beat@%h");
    world.add(&world.every("py-add", "1s")).await;
    let beat = world.start(world.options("beat-a@test"));
    let task_id = eventually(Duration::from_secs(20), "a recorded run", || async {
        let runs = world.store.runs("py-add").await.ok()?;
        runs.last()?.task_id.clone()
    })
    .await;
    let meta = world
        .producer
        .async_result(task_id.as_str())
        .get(Duration::from_secs(30))
        .await
        .expect("the Python worker stores a result");
    beat.stop().await;
    assert_eq!(meta.status, TaskState::Success, "{}", peer.log());
    assert_eq!(meta.result, json!(5));
}
