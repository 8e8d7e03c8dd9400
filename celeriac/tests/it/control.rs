//! Remote control of our worker by real Celery 5.4: `celery inspect` and `celery control`
//! reach it through the pidbox broadcast and get their replies through the binding table.

use crate::support::{config, RunningWorker};
use celeriac::testkit::{CeleryPeer, TestEnv};
use serde_json::{json, Value};

/// Runs `python -m celery -A peer <args> --json`-style commands and parses the JSON they print.
pub(crate) async fn celery(env: &TestEnv, args: &[&str]) -> Value {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn celery_revokes_reach_our_worker_and_outlive_it() {
    use crate::support::producer;
    use celeriac::producer::SendOptions;
    use celeriac::TaskState;
    use serde_json::Map;
    use std::time::Duration;

    let env = TestEnv::new("revoke");
    let queue = env.queue("q");
    let config = config(&env);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 2).await;
    let node = format!("rust-{queue}@test");
    let producer = producer(&config).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A running task, terminated.
    let running = producer
        .send_task(
            "demo.sleep",
            vec![json!(30)],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    let mut active = Value::Null;
    for _ in 0..50 {
        active = celery(&env, &["inspect", "active", "--json", "-d", &node]).await;
        if active[&node]
            .as_array()
            .is_some_and(|tasks| !tasks.is_empty())
        {
            break;
        }
    }
    assert_eq!(
        active[&node][0]["id"],
        json!(running.id.0),
        "inspect active lists the running task: {active}"
    );
    let terminated = celery(
        &env,
        &[
            "control",
            "terminate",
            "--json",
            "-d",
            &node,
            "SIGTERM",
            &running.id.0,
        ],
    )
    .await;
    assert!(
        terminated[&node]["ok"]
            .as_str()
            .unwrap()
            .starts_with("terminate:"),
        "{terminated}"
    );
    let meta = running.get(Duration::from_secs(10)).await.unwrap();
    assert_eq!(meta.status, TaskState::Revoked);
    assert_eq!(meta.result["exc_message"], json!(["terminated"]));

    // A scheduled task, revoked while held, then a new worker that must still honour it.
    let later = producer
        .send_task(
            "demo.add",
            vec![json!(1), json!(2)],
            Map::new(),
            // Long enough that it is still held after three `celery` commands (a Python
            // start each, slow on a loaded machine) and the stop below.
            SendOptions::new()
                .queue(&queue)
                .countdown(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    let mut scheduled = Value::Null;
    for _ in 0..50 {
        scheduled = celery(&env, &["inspect", "scheduled", "--json", "-d", &node]).await;
        if scheduled[&node]
            .as_array()
            .is_some_and(|tasks| !tasks.is_empty())
        {
            break;
        }
    }
    assert_eq!(
        scheduled[&node][0]["request"]["id"],
        json!(later.id.0),
        "{scheduled}"
    );
    let revoked = celery(
        &env,
        &["control", "revoke", "--json", "-d", &node, &later.id.0],
    )
    .await;
    assert!(
        revoked[&node]["ok"]
            .as_str()
            .unwrap()
            .contains("flagged as revoked"),
        "{revoked}"
    );
    let listed = celery(&env, &["inspect", "revoked", "--json", "-d", &node]).await;
    assert!(
        listed[&node]
            .as_array()
            .unwrap()
            .contains(&json!(later.id.0)),
        "{listed}"
    );
    worker.stop().await;
    assert_eq!(
        producer.broker().queue_length(&queue).await.unwrap(),
        1,
        "the held task went back to the queue"
    );

    let next = RunningWorker::start(config.clone(), None, &[&queue], 2).await;
    let meta = later.get(Duration::from_secs(25)).await.unwrap();
    assert_eq!(
        meta.status,
        TaskState::Revoked,
        "a worker started after the revoke honours it"
    );
    assert_eq!(meta.result["exc_message"], json!(["revoked"]));
    next.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn celery_sets_rate_and_time_limits_and_shuts_our_worker_down() {
    use crate::support::producer;
    use celeriac::producer::SendOptions;
    use serde_json::Map;
    use std::time::Duration;

    let env = TestEnv::new("limits-control");
    let queue = env.queue("q");
    let config = config(&env);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 2).await;
    let node = format!("rust-{queue}@test");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let rate = celery(
        &env,
        &[
            "control",
            "rate_limit",
            "--json",
            "-d",
            &node,
            "demo.add",
            "10/s",
        ],
    )
    .await;
    assert_eq!(
        rate[&node],
        json!({"ok": "new rate limit set successfully"}),
        "{rate}"
    );
    let unknown = celery(
        &env,
        &[
            "control",
            "rate_limit",
            "--json",
            "-d",
            &node,
            "no.such_task",
            "10/s",
        ],
    )
    .await;
    assert!(unknown[&node]["error"].is_string(), "{unknown}");

    let limits = celery(
        &env,
        &[
            "control",
            "time_limit",
            "--json",
            "-d",
            &node,
            "demo.sleep",
            "0.2",
            "5",
        ],
    )
    .await;
    assert_eq!(
        limits[&node],
        json!({"ok": "time limits set successfully"}),
        "{limits}"
    );
    let producer = producer(&config).await;
    let sleeper = producer
        .send_task(
            "demo.sleep",
            vec![json!(30)],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    let meta = sleeper.get(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        meta.result["exc_type"],
        json!("SoftTimeLimitExceeded"),
        "the soft limit set remotely applies"
    );

    let _ = celery(&env, &["control", "shutdown", "-d", &node]).await;
    let mut stopped = false;
    for _ in 0..100 {
        if worker.finished() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stopped, "`celery control shutdown` stops our worker");
    worker.stop().await;
}
