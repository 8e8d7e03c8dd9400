//! Issue 13, findings F9 and F10 of the security review: events are not authenticated, so
//! anyone who can publish on the broker can send them. A flood of made-up hostnames and types
//! grew `/metrics` without end, and events with 1 MiB names, hostnames and reprs were kept
//! whole by the monitor, the history and every snapshot. Real events on a real Redis, read back
//! over real HTTP.

use axum::http::StatusCode;
use celeriac::broker::Keys;
use celeriac::testkit::eventually;
use serde_json::{json, Value};

use super::tests::{spawn_app, TestApp, WAIT};
use crate::dashboard::event_metrics::MAX_SERIES;

/// Publishes `events` as one `task.multi` message, as a worker's event buffer does.
async fn publish(app: &TestApp, redis: &mut redis::aio::MultiplexedConnection, events: Value) {
    let envelope =
        celeriac::protocol::event::envelope(&events, "flood@test", "task.multi", "tag".into());
    let channel = Keys::new(
        app.config.broker_transport_options.global_keyprefix.clone(),
        vec![0],
    )
    .fanout_channel("celeryev", "task.multi");
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(envelope.to_json())
        .query_async::<i64>(redis)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_flood_neither_grows_the_metrics_nor_the_snapshots() {
    let app = spawn_app("dash-flood").await;
    let client = redis::Client::open(app.config.broker_url.as_str()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    // A 2 MB PUBLISH to a busy subscriber may take longer than the default half second.
    redis.set_response_timeout(std::time::Duration::from_secs(20));
    // F9: every event a new (task, type, worker) triple, past the family's cap.
    let flood = MAX_SERIES + 2_000;
    for chunk in 0..flood / 500 {
        let events: Vec<Value> = (chunk * 500..(chunk + 1) * 500)
            .map(|index| {
                json!({"type": format!("task-made-up-{index}"), "uuid": format!("flood-{index}"),
                       "name": format!("flood.task{index}"), "hostname": format!("w{index}@flood"),
                       "timestamp": 1.0, "clock": index})
            })
            .collect();
        publish(&app, &mut redis, Value::Array(events)).await;
    }
    // F10: a few events with 256 KiB in every text (the review sent 1 MiB; a quarter is far
    // past every limit and stays under Redis's 32 MB output buffer for a subscriber).
    let mib = "m".repeat(256 << 10);
    for index in 0..5 {
        publish(
            &app,
            &mut redis,
            json!([{"type": "task-received", "uuid": format!("heavy-{index}"), "name": mib,
                    "hostname": mib, "args": mib, "kwargs": mib, "timestamp": 2.0, "clock": 1},
                   {"type": "task-failed", "uuid": format!("heavy-{index}"), "hostname": mib,
                    "exception": mib, "traceback": mib, "timestamp": 3.0, "clock": 2}]),
        )
        .await;
    }
    eventually(WAIT, "the monitor has read every event", || async {
        let stats = app.monitoring.monitor.receiver_stats();
        (stats.events + stats.refused >= (flood + 10) as u64).then_some(())
    })
    .await;

    let metrics = app.text("/metrics").await;
    let series = metrics
        .lines()
        .filter(|line| line.starts_with("flower_events_total{"))
        .count();
    assert!(series <= MAX_SERIES + 1, "{series} series");
    // Made-up types never become labels (on a loaded machine the collector may skip batches,
    // so whether the family overflowed is not asserted; that it stays bounded is).
    assert!(
        !metrics.contains("type=\"task-made-up-"),
        "made-up event types became labels"
    );
    if series > MAX_SERIES {
        assert!(
            metrics
                .contains(r#"flower_events_total{task="(other)",type="(other)",worker="(other)"}"#),
            "the overflow series collapses every label"
        );
    }
    assert!(
        metrics.len() < 4 << 20,
        "/metrics is {} bytes",
        metrics.len()
    );

    let snapshot = app.text("/api/snapshot").await;
    // Bounded by the state's own caps: 5,000 workers and 1,000 names with labels of at most
    // 256 bytes, 100 tasks with reprs cut to 1 KiB (4 KiB tracebacks): a few megabytes at
    // worst, where it was 400 MB.
    assert!(
        snapshot.len() < 8 << 20,
        "/api/snapshot is {} bytes",
        snapshot.len()
    );
    let (status, history) = app.json("GET", "/api/history?limit=50").await;
    assert_eq!(status, StatusCode::OK);
    let history_bytes = history.to_string().len();
    assert!(
        history_bytes < 2 << 20,
        "/api/history is {history_bytes} bytes"
    );
    let (status, heavy) = app.json("GET", "/api/task/info/heavy-0").await;
    assert_eq!(status, StatusCode::OK);
    let name = heavy["name"].as_str().unwrap_or_default();
    assert!(name.len() <= 256 && name.ends_with('…'), "{}", name.len());
}
