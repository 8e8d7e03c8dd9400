//! Real Flower 2.2 against a real `celeriac worker -E`: the Celery monitor must see our worker
//! online with Celery's processed count, answer its inspect broadcasts, and follow each task to
//! the right state, only from the events and pidbox replies our worker sends.

use celeriac::testkit::{eventually_blocking, Flower, RedisServer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Generous: Flower's first inspect round, heartbeats every 2 s and a retry countdown.
const WAIT: Duration = Duration::from_secs(60);

/// The worker's `-n`; Flower knows it by its expansion (`%h` = this host's name).
const NODE_PREFIX: &str = "flower-it@";

/// `celeriac worker`, killed (and reaped) when dropped.
struct WorkerProcess(Child);

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn celeriac(redis: &RedisServer) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shop"));
    command
        .env_remove("CELERIAC_CONFIG")
        .env("CELERIAC_BROKER_URL", redis.url(0))
        .env("CELERIAC_RESULT_BACKEND", redis.url(1))
        .env(
            "CELERIAC_BROKER_TRANSPORT_OPTIONS",
            json!({"polling_interval": 0.01}).to_string(),
        )
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null());
    command
}

/// `celeriac call <task> --args <json>`: the task id it prints.
fn call(redis: &RedisServer, task: &str, args: &str) -> String {
    let output = celeriac(redis)
        .args(["call", task, "--args", args])
        .output()
        .expect("celeriac call runs");
    assert!(
        output.status.success(),
        "celeriac call {task}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .expect("call prints the task id")
        .trim()
        .to_owned()
}

/// Our worker's entry in a Flower answer keyed by node name, with its full name.
fn our_worker(answer: &Value) -> Option<(String, Value)> {
    answer
        .as_object()?
        .iter()
        .find(|(name, _)| name.starts_with(NODE_PREFIX))
        .map(|(name, value)| (name.clone(), value.clone()))
}

#[test]
fn flower_sees_our_worker_and_follows_our_tasks() {
    let redis = RedisServer::start_private();
    let log_path = std::env::temp_dir().join(format!(
        "celeriac-flower-worker-{}.log",
        redis.port().unwrap_or_default()
    ));
    let flower = Flower::start(&redis.url(0), &redis.url(1));
    let worker_log = std::fs::File::create(&log_path).unwrap();
    let _worker = WorkerProcess(
        celeriac(&redis)
            .args(["worker", "-E", "-c", "2", "-n", &format!("{NODE_PREFIX}%h")])
            .stdout(Stdio::null())
            .stderr(worker_log)
            .spawn()
            .expect("celeriac worker starts"),
    );
    let worker_tail = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // Online from its heartbeats: Flower's event receiver is listening from here on.
    let node = eventually_blocking(
        WAIT,
        "Flower to see our worker online",
        || {
            let (node, alive) = our_worker(&flower.get_json("/api/workers?status=1")?)?;
            (alive == json!(true)).then_some(node)
        },
        || {
            format!(
                "worker log:\n{}\nFlower log:\n{}",
                worker_tail(),
                flower.log_tail(30)
            )
        },
    );

    let add = [
        call(&redis, "demo.add", "[2, 3]"),
        call(&redis, "demo.add", "[40, 2]"),
    ];
    let failed = call(&redis, "demo.fail", "[\"boom\"]");
    let flaky = call(&redis, "demo.flaky", "[2]");
    let expected: BTreeMap<&str, (&str, &str)> = BTreeMap::from([
        (add[0].as_str(), ("demo.add", "SUCCESS")),
        (add[1].as_str(), ("demo.add", "SUCCESS")),
        (failed.as_str(), ("demo.fail", "FAILURE")),
        (flaky.as_str(), ("demo.flaky", "SUCCESS")),
    ]);

    // Every task in /api/tasks with its name, final state and worker.
    let tasks = eventually_blocking(
        WAIT,
        "Flower's /api/tasks to show every task in its final state",
        || {
            let tasks = flower.get_json("/api/tasks")?;
            expected
                .iter()
                .all(|(id, (name, state))| {
                    let task = &tasks[*id];
                    task["name"] == json!(name)
                        && task["state"] == json!(state)
                        && task["worker"] == json!(node)
                })
                .then_some(tasks)
        },
        || {
            format!(
                "/api/tasks: {:?}\nFlower log:\n{}",
                flower.get("/api/tasks").map(|response| response.body),
                flower.log_tail(30)
            )
        },
    );
    assert_eq!(
        tasks.as_object().map(|tasks| tasks.len()),
        Some(expected.len()),
        "only our tasks on this private Redis: {tasks}"
    );
    assert_eq!(tasks[&add[0]]["result"], json!("5"), "results are reprs");
    assert_eq!(tasks[&add[0]]["args"], json!("(2, 3)"));
    assert_eq!(tasks[&failed]["exception"], json!("ValueError('boom')"));

    // The retried task: Flower saw the retries before the success.
    let info = flower
        .get_json(&format!("/api/task/info/{flaky}"))
        .expect("task info for the retried task");
    assert_eq!(info["state"], json!("SUCCESS"), "{info}");
    assert_eq!(info["retries"], json!(2), "{info}");
    assert_eq!(info["result"], json!("3"), "{info}");
    assert!(
        info["retried"].is_number(),
        "a task-retried was seen: {info}"
    );
    assert_eq!(
        info["exception"],
        json!("RuntimeError('flaky attempt 2 of 3')"),
        "the last retry's reason: {info}"
    );

    // The processed count Flower's workers page shows comes from our heartbeats; Celery counts
    // every run, so the flaky task counts three times: 2 + 1 + 3.
    let seen = eventually_blocking(
        WAIT,
        "a heartbeat with processed = 6",
        || {
            let workers = flower.get_json("/workers?json=1")?;
            let seen = workers["data"]
                .as_array()?
                .iter()
                .find(|worker| worker["hostname"] == json!(node))?
                .clone();
            (seen["processed"] == json!(6)).then_some(seen)
        },
        || {
            format!(
                "/workers?json=1: {:?}",
                flower.get("/workers?json=1").map(|r| r.body)
            )
        },
    );
    assert_eq!(seen["status"], json!(true), "{seen}");
    assert_eq!(seen["active"], json!(0), "{seen}");
    assert_eq!(seen["task-succeeded"], json!(3), "{seen}");
    assert_eq!(seen["task-failed"], json!(1), "{seen}");
    assert_eq!(seen["task-retried"], json!(2), "{seen}");

    // Flower's inspect round (stats, registered, active_queues, conf) is answered.
    let inspected = eventually_blocking(
        WAIT,
        "Flower's inspect round to reach our worker",
        || {
            let (_, inspected) = our_worker(&flower.get_json("/api/workers?refresh=1")?)?;
            ["stats", "registered", "active_queues", "conf"]
                .iter()
                .all(|method| inspected.get(method).is_some())
                .then_some(inspected)
        },
        || flower.log_tail(30),
    );
    let registered = inspected["registered"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for name in ["demo.add", "demo.fail", "demo.flaky"] {
        assert!(
            registered.contains(&json!(name)),
            "{name} registered: {registered:?}"
        );
    }
    assert_eq!(inspected["active_queues"][0]["name"], json!("celery"));
    assert_eq!(inspected["stats"]["pool"]["max-concurrency"], json!(2));
    assert_eq!(inspected["conf"]["worker_send_task_events"], json!(true));

    // The HTML pages render: the worker page reads stats["total"] and the broker table.
    let page = flower
        .get(&format!("/worker/{node}"))
        .expect("Flower answers the worker page");
    assert_eq!(page.status, 200, "worker page: {}", flower.log_tail(30));
    let page = flower
        .get(&format!("/task/{flaky}"))
        .expect("Flower answers the task page");
    assert_eq!(page.status, 200, "task page: {}", flower.log_tail(30));

    let log = flower.log();
    assert!(
        !log.contains("Traceback") && !log.contains("[E "),
        "Flower logged no error about our worker:\n{log}"
    );
    let _ = std::fs::remove_file(&log_path);
}
