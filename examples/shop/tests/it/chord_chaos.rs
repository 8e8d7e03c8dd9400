//! A chord survives a worker killed during its header (issue 14): 200 header members over two
//! worker processes, one killed with SIGKILL while the header runs. The body must fire exactly
//! once, with every header result in header order. The pair test turns the chord members'
//! late ack off (failpoint `ignore_acks_late`), as a worker acking early would: the killed
//! worker's running members are then lost and the body never fires, which the same check sees.

use crate::chaos_support::Cluster;
use celeriac::canvas::{chord, Signature};
use serde_json::{json, Value};
use std::time::Duration;

const MEMBERS: usize = 200;

/// Runs the chord with one kill; returns the `chaos.tally` lines (one per body run).
async fn chord_with_a_kill(failpoints: &str) -> Vec<Value> {
    let mut cluster = Cluster::new("chord", 2.0);
    let producer = cluster.producer().await;
    // Celery's default early ack: the chord members alone are acked late.
    let early = [("CELERIAC_TASK_ACKS_LATE", "false")];
    let mut workers = [
        cluster.worker(4, failpoints, &early),
        cluster.worker(4, failpoints, &early),
    ];
    let header: Vec<Signature> = (0..MEMBERS)
        .map(|index| {
            Signature::new("chaos.record").args(vec![json!(format!("h-{index}")), json!(40)])
        })
        .collect();
    producer
        .apply_signature(chord(header, Signature::new("chaos.tally")))
        .await
        .expect("the chord is sent");
    // Let the header start, then kill one worker mid-task.
    tokio::time::sleep(Duration::from_millis(700)).await;
    workers[0].kill();
    let tallies = |cluster: &Cluster| -> Vec<Value> {
        cluster
            .runs()
            .remove("tally")
            .unwrap_or_default()
            .into_iter()
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while tallies(&cluster).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Time for a second firing to show up, if there were one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let found = tallies(&cluster);
    if found.len() != 1 && failpoints.is_empty() {
        eprintln!("{}", cluster.log_tail());
    }
    drop(workers);
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chord_fires_once_when_a_worker_dies_during_its_header() {
    let tallies = chord_with_a_kill("").await;
    assert_eq!(tallies.len(), 1, "the body fired {} times", tallies.len());
    let expected: Vec<Value> = (0..MEMBERS)
        .map(|index| json!(format!("h-{index}")))
        .collect();
    assert_eq!(
        tallies[0]["results"],
        Value::Array(expected),
        "every header result, in header order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chord_kill_check_catches_an_early_ack() {
    let tallies = chord_with_a_kill("ignore_acks_late").await;
    assert!(
        tallies.is_empty(),
        "with early acks the killed worker's members are lost and the body must not fire: {tallies:?}"
    );
}
