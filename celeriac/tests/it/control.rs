//! Remote control of our worker by real Celery 5.4: `celery inspect` and `celery control`
//! reach it through the pidbox broadcast and get their replies through the binding table.

use crate::support::{config, RunningWorker};
use celeriac::testkit::{CeleryPeer, TestEnv};
use serde_json::{json, Value};

/// Runs `python -m celery -A peer <args> --json`-style commands and parses the JSON they print.
async fn celery(env: &TestEnv, args: &[&str]) -> Value {
    let mut command = tokio::process::Command::new(CeleryPeer::python());
    command
        .args(["-m", "celery", "-A", "peer"])
        .args(args)
        .current_dir(CeleryPeer::python_dir());
    for (key, value) in env.peer_env() {
        command.env(key, value);
    }
    let output = command.output().await.expect("celery CLI runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // `inspect` prints one object of replies, `control` a list of one-node objects; with no
    // reply at all Celery prints an error and no JSON.
    let Some(line) = stdout.lines().rev().find(|line| {
        let line = line.trim_start();
        line.starts_with('{') || line.starts_with('[')
    }) else {
        return Value::Null;
    };
    match serde_json::from_str(line).expect("celery printed JSON") {
        Value::Array(replies) => {
            let mut merged = serde_json::Map::new();
            for reply in replies {
                if let Value::Object(reply) = reply {
                    merged.extend(reply);
                }
            }
            Value::Object(merged)
        }
        other => other,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn celery_inspect_reaches_our_worker() {
    let env = TestEnv::new("inspect");
    let queue = env.queue("q");
    let worker = RunningWorker::start(config(&env), None, &[&queue], 3).await;
    let node = format!("rust-{queue}@test");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let ping = celery(&env, &["inspect", "ping", "--json", "-d", &node]).await;
    assert_eq!(ping[&node], json!({"ok": "pong"}), "{ping}");

    let registered = celery(&env, &["inspect", "registered", "--json", "-d", &node]).await;
    assert!(
        registered[&node]
            .as_array()
            .unwrap()
            .contains(&json!("demo.add")),
        "{registered}"
    );

    let stats = celery(&env, &["inspect", "stats", "--json", "-d", &node]).await;
    assert_eq!(stats[&node]["pool"]["max-concurrency"], json!(3), "{stats}");
    assert_eq!(stats[&node]["pid"], json!(std::process::id()));

    let queues = celery(&env, &["inspect", "active_queues", "--json", "-d", &node]).await;
    assert_eq!(queues[&node][0]["name"], json!(queue), "{queues}");

    let enabled = celery(&env, &["control", "enable_events", "--json", "-d", &node]).await;
    assert_eq!(
        enabled[&node],
        json!({"ok": "task events enabled"}),
        "{enabled}"
    );

    let other = celery(&env, &["inspect", "ping", "--json", "-d", "nobody@nowhere"]).await;
    assert!(
        other.get(&node).is_none(),
        "a command for another node gets no reply from ours: {other}"
    );

    let unknown = celery(&env, &["inspect", "no_such_thing", "--json", "-d", &node]).await;
    assert!(
        unknown.is_null() || unknown[&node]["error"].is_string(),
        "{unknown}"
    );
    worker.stop().await;
}
