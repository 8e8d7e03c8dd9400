//! Interoperability with real Python Celery 5.4 (from PyPI, in `.venv-interop`): Python
//! producers and our worker, our producer and Python workers, both ways for countdown, eta,
//! priority, queue and expires, retries and failures read across, and each side restoring the
//! other's orphaned deliveries.

use crate::support::{config, producer, RunningWorker};
use celeriac::producer::SendOptions;
use celeriac::protocol::time::parse_iso;
use celeriac::testkit::{eventually, CeleryPeer, TestEnv};
use celeriac::TaskState;
use redis::AsyncCommands;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// How long an ack may trail its task's result (acks ride along with the next fetch).
const WAIT_ACK: std::time::Duration = std::time::Duration::from_secs(10);

const WAIT: Duration = Duration::from_secs(30);

async fn python(env: &TestEnv, args: &[&str]) -> Value {
    CeleryPeer::cli_async(env, args).await
}

async fn python_send(env: &TestEnv, args: &[&str]) -> String {
    let mut command = vec!["send"];
    command.extend_from_slice(args);
    let sent = python(env, &command).await;
    sent["task_id"]
        .as_str()
        .expect("peer_cli prints the task id")
        .to_owned()
}

async fn python_result(env: &TestEnv, task_id: &str) -> Value {
    python(env, &["result", task_id, "--timeout", "30"]).await
}

fn done_at(meta: &Value) -> chrono::DateTime<chrono::Utc> {
    parse_iso(meta["date_done"].as_str().expect("date_done")).expect("ISO date_done")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_producer_to_our_worker_and_python_reads_the_result() {
    let env = TestEnv::new("py-to-rs").with_result_extended(true);
    let queue = env.queue("q");
    let worker = RunningWorker::start(config(&env), None, &[&queue], 2).await;
    let add = python_send(&env, &["demo.add", "--args", "[2, 3]", "--queue", &queue]).await;
    let echo = python_send(
        &env,
        &[
            "demo.echo",
            "--args",
            "[1, \"two\"]",
            "--kwargs",
            "{\"k\": [3]}",
            "--queue",
            &queue,
        ],
    )
    .await;
    let result = python_result(&env, &add).await;
    assert_eq!(result["status"], json!("SUCCESS"));
    assert_eq!(result["result"], json!(5));
    let result = python_result(&env, &echo).await;
    assert_eq!(
        result["result"],
        json!({"args": [1, "two"], "kwargs": {"k": [3]}})
    );
    let meta = python(&env, &["meta", &add]).await;
    assert_eq!(
        meta["name"],
        json!("demo.add"),
        "Python reads result_extended fields: {meta}"
    );
    assert_eq!(meta["queue"], json!(queue));
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_producer_to_python_worker_and_we_read_the_result() {
    let env = TestEnv::new("rs-to-py");
    let queue = env.queue("q");
    let _python_worker = CeleryPeer::worker(&env, &[&queue], "py-rs-to-py@%h");
    let config = config(&env);
    let producer = producer(&config).await;
    let add = producer
        .send_task(
            "demo.add",
            vec![json!(20), json!(22)],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    let mut kwargs = Map::new();
    kwargs.insert("flag".into(), json!(true));
    let echo = producer
        .send_task(
            "demo.echo",
            vec![json!("x")],
            kwargs,
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    let fail = producer
        .send_task(
            "demo.fail",
            vec![json!("from python")],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    let flaky = producer
        .send_task(
            "demo.flaky",
            vec![json!(1)],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    assert_eq!(add.get(WAIT).await.unwrap().result, json!(42));
    assert_eq!(
        echo.get(WAIT).await.unwrap().result,
        json!({"args": ["x"], "kwargs": {"flag": true}})
    );
    let failure = fail.get(WAIT).await.unwrap();
    assert_eq!(failure.status, TaskState::Failure);
    assert_eq!(
        failure.exception().unwrap().repr(),
        "ValueError('from python')"
    );
    let retried = flaky.get(WAIT).await.unwrap();
    assert_eq!(
        retried.status,
        TaskState::Success,
        "a Python retry is read as Celery stores it"
    );
    assert_eq!(retried.result, json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_countdown_eta_priority_queue_and_expires_are_honoured_by_our_worker() {
    let env = TestEnv::new("py-options");
    let queue = env.queue("q");
    let sent = celeriac::clock::now();
    let countdown = python_send(
        &env,
        &[
            "demo.add",
            "--args",
            "[1, 1]",
            "--queue",
            &queue,
            "--countdown",
            "1",
        ],
    )
    .await;
    let eta_time = (sent + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let eta = python_send(
        &env,
        &[
            "demo.add", "--args", "[2, 2]", "--queue", &queue, "--eta", &eta_time,
        ],
    )
    .await;
    let expired = python_send(
        &env,
        &[
            "demo.add",
            "--args",
            "[3, 3]",
            "--queue",
            &queue,
            "--countdown",
            "2",
            "--expires",
            "1",
        ],
    )
    .await;
    let priority = python_send(
        &env,
        &[
            "demo.add",
            "--args",
            "[4, 4]",
            "--queue",
            &queue,
            "--priority",
            "9",
        ],
    )
    .await;
    let mut redis = env.redis().await;
    let in_bucket: i64 = redis
        .llen(format!("{}{}\x06\x169", env.key_prefix, queue))
        .await
        .unwrap();
    assert_eq!(
        in_bucket, 1,
        "Python's priority-9 message sits in the Q\\x06\\x169 list"
    );
    let worker = RunningWorker::start(config(&env), None, &[&queue], 4).await;
    let result = python_result(&env, &priority).await;
    assert_eq!(result["result"], json!(8));
    for (task_id, delay) in [(countdown, 1000), (eta, 1500)] {
        let result = python_result(&env, &task_id).await;
        assert_eq!(result["status"], json!("SUCCESS"));
        let waited = (done_at(&result) - sent).num_milliseconds();
        assert!(
            waited >= delay - 50,
            "ran {waited} ms after sending, eta was {delay} ms"
        );
    }
    let result = python_result(&env, &expired).await;
    assert_eq!(
        result["status"],
        json!("REVOKED"),
        "expired before its countdown: {result}"
    );
    assert_eq!(result["result"]["exc_type"], json!("TaskRevokedError"));
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_countdown_eta_priority_queue_and_expires_are_honoured_by_python() {
    let env = TestEnv::new("rs-options");
    let queue = env.queue("q");
    let config = config(&env);
    let producer = producer(&config).await;
    let sent = celeriac::clock::now();
    let countdown = producer
        .send_task(
            "demo.add",
            vec![json!(1), json!(1)],
            Map::new(),
            SendOptions::new()
                .queue(&queue)
                .countdown(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    let eta = producer
        .send_task(
            "demo.add",
            vec![json!(2), json!(2)],
            Map::new(),
            SendOptions::new()
                .queue(&queue)
                .eta(sent + chrono::Duration::milliseconds(1500)),
        )
        .await
        .unwrap();
    let expired = producer
        .send_task(
            "demo.add",
            vec![json!(3), json!(3)],
            Map::new(),
            SendOptions::new()
                .queue(&queue)
                .countdown(Duration::from_secs(2))
                .expires_in(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    let priority = producer
        .send_task(
            "demo.add",
            vec![json!(4), json!(4)],
            Map::new(),
            SendOptions::new().queue(&queue).priority(5),
        )
        .await
        .unwrap();
    let mut redis = env.redis().await;
    let in_bucket: i64 = redis
        .llen(format!("{}{}\x06\x163", env.key_prefix, queue))
        .await
        .unwrap();
    assert_eq!(
        in_bucket, 1,
        "our priority-5 message sits in the Q\\x06\\x163 list"
    );
    let _python_worker = CeleryPeer::worker(&env, &[&queue], "py-options@%h");
    assert_eq!(priority.get(WAIT).await.unwrap().result, json!(8));
    for (result, delay) in [(countdown, 1000), (eta, 1500)] {
        let meta = result.get(WAIT).await.unwrap();
        assert_eq!(meta.status, TaskState::Success);
        let done = parse_iso(meta.date_done.as_deref().unwrap()).unwrap();
        let waited = (done - sent).num_milliseconds();
        assert!(
            waited >= delay - 50,
            "Python ran it {waited} ms after sending, eta was {delay} ms"
        );
    }
    let meta = expired.get(WAIT).await.unwrap();
    assert_eq!(
        meta.status,
        TaskState::Revoked,
        "Python honours our expires"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_retries_and_failures_read_correctly_by_python() {
    let env = TestEnv::new("rs-retry").with_result_extended(true);
    let queue = env.queue("q");
    let worker = RunningWorker::start(config(&env), None, &[&queue], 2).await;
    let flaky = python_send(&env, &["demo.flaky", "--args", "[2]", "--queue", &queue]).await;
    let fail = python_send(
        &env,
        &["demo.fail", "--args", "[\"kaput\"]", "--queue", &queue],
    )
    .await;
    let result = python_result(&env, &flaky).await;
    assert_eq!(result["status"], json!("SUCCESS"));
    assert_eq!(result["result"], json!(3));
    assert_eq!(result["retries"], json!(2));
    let result = python_result(&env, &fail).await;
    assert_eq!(result["status"], json!("FAILURE"));
    assert_eq!(
        result["result"]["exc_type"],
        json!("ValueError"),
        "Python rebuilt the exception: {result}"
    );
    assert_eq!(result["result"]["message"], json!("kaput"));
    assert!(result["traceback"].as_str().unwrap().contains("kaput"));
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_worker_restores_a_python_orphan() {
    let env = TestEnv::new("py-orphan").with_visibility_timeout(Duration::from_secs(1));
    let queue = env.queue("q");
    let task_id = python_send(&env, &["demo.add", "--args", "[5, 6]", "--queue", &queue]).await;
    let orphan = python(&env, &["fetch_unacked", &queue]).await;
    assert_eq!(orphan["task_id"], json!(task_id));
    let producer = producer(&config(&env)).await;
    assert_eq!(
        producer.broker().unacked_count().await.unwrap(),
        1,
        "kombu left it in unacked"
    );
    let worker = RunningWorker::start(config(&env), None, &[&queue], 1).await;
    let meta = producer
        .async_result(task_id.as_str())
        .get(WAIT)
        .await
        .unwrap();
    assert_eq!(meta.result, json!(11));
    let broker = producer.broker().clone();
    eventually(WAIT_ACK, "the ack follows the result", || {
        let broker = broker.clone();
        async move { (broker.unacked_count().await.unwrap() == 0).then_some(()) }
    })
    .await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_restores_our_orphan() {
    let env = TestEnv::new("rs-orphan").with_visibility_timeout(Duration::from_secs(1));
    let queue = env.queue("q");
    let config = config(&env);
    let producer = producer(&config).await;
    let result = producer
        .send_task(
            "demo.add",
            vec![json!(7), json!(8)],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    // Our consumer takes it and dies without acking.
    assert_eq!(
        producer
            .broker()
            .fetch(std::slice::from_ref(&queue), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(producer.broker().queue_length(&queue).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let restored = python(&env, &["restore"]).await;
    assert_eq!(restored["restored"], json!(true));
    let broker = producer.broker().clone();
    eventually(WAIT, "kombu put our orphan back", || {
        let broker = broker.clone();
        let queue = queue.clone();
        async move { (broker.queue_length(&queue).await.unwrap() == 1).then_some(()) }
    })
    .await;
    let mut redis = env.redis().await;
    let raw: Vec<String> = redis
        .lrange(format!("{}{}", env.key_prefix, queue), 0, -1)
        .await
        .unwrap();
    assert!(
        raw[0].contains("\"redelivered\": true"),
        "kombu flags it redelivered: {}",
        raw[0]
    );
    let _python_worker = CeleryPeer::worker(&env, &[&queue], "py-restore@%h");
    assert_eq!(result.get(WAIT).await.unwrap().result, json!(15));
}
