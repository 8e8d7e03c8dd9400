//! `celeriac inspect` and `celeriac control` end to end against a `celeriac worker` process:
//! Celery-style human output, `--json`, revoke and revoke with terminate, and the exit code
//! when no worker answers.

use crate::cli::{celeriac, lines, run, WorkerProcess};
use celeriac::testkit::{eventually_blocking, TestEnv};
use serde_json::{json, Value};
use std::process::{Output, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn stdout_json(output: &Output) -> Value {
    let printed = lines(output);
    let last = printed.last().map(String::as_str).unwrap_or_default();
    serde_json::from_str(last).unwrap_or(Value::Null)
}

#[test]
fn inspect_and_control_revoke_reach_a_worker() {
    let env = TestEnv::new("cli-control");
    let queue = env.queue("q");
    let node = "cli-ctl@test";
    let log =
        std::fs::File::create(std::env::temp_dir().join(format!("{}.log", env.queue("worker"))))
            .unwrap();
    let child = celeriac(&env)
        .args(["worker", "-Q", &queue, "-c", "2", "-n", node])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut worker = WorkerProcess(child);

    let ping = eventually_blocking(
        WAIT,
        "the worker to answer `celeriac inspect ping`",
        || {
            let output = run(celeriac(&env).args(["inspect", "ping", "-d", node, "-t", "0.5"]));
            output.status.success().then_some(output)
        },
        || "no reply".to_owned(),
    );
    assert_eq!(
        lines(&ping),
        vec![
            format!("->  {node}: OK"),
            "        pong".to_owned(),
            String::new(),
            "1 node online.".to_owned(),
        ]
    );
    let ping = run(celeriac(&env).args(["inspect", "ping", "--json", "-d", node]));
    assert_eq!(stdout_json(&ping), json!({node: {"ok": "pong"}}));

    // A countdown task, revoked before it runs.
    let sent = run(celeriac(&env).args([
        "call",
        "demo.add",
        "--args",
        "[1, 2]",
        "--queue",
        &queue,
        "--countdown",
        "3",
    ]));
    let later = lines(&sent)[0].clone();
    let revoked = run(celeriac(&env).args(["control", "revoke", &later, "-d", node]));
    assert!(revoked.status.success());
    assert_eq!(
        lines(&revoked),
        vec![
            format!("->  {node}: OK"),
            format!("        tasks {{'{later}'}} flagged as revoked"),
        ]
    );
    let result = run(celeriac(&env).args(["result", &later, "--wait", "--timeout", "30"]));
    assert_eq!(stdout_json(&result)["status"], json!("REVOKED"));
    let listed = run(celeriac(&env).args(["inspect", "revoked", "--json", "-d", node]));
    assert!(
        stdout_json(&listed)[node]
            .as_array()
            .unwrap()
            .contains(&json!(later)),
        "{:?}",
        lines(&listed)
    );

    // A running task, terminated.
    let sent =
        run(celeriac(&env).args(["call", "demo.sleep", "--args", "[60]", "--queue", &queue]));
    let running = lines(&sent)[0].clone();
    eventually_blocking(
        WAIT,
        "`celeriac inspect active` to list the sleeping task",
        || {
            let active = run(celeriac(&env).args(["inspect", "active", "--json", "-d", node]));
            (stdout_json(&active)[node][0]["id"] == json!(running)).then_some(())
        },
        || "not listed".to_owned(),
    );
    let terminated = run(celeriac(&env).args([
        "control",
        "revoke",
        &running,
        "--terminate",
        "--json",
        "-d",
        node,
    ]));
    assert_eq!(
        stdout_json(&terminated),
        json!({node: {"ok": format!("terminate: {running}")}})
    );
    let result = run(celeriac(&env).args(["result", &running, "--wait", "--timeout", "30"]));
    let result = stdout_json(&result);
    assert_eq!(result["status"], json!("REVOKED"));
    assert_eq!(result["result"]["exc_message"], json!(["terminated"]));

    let status = worker.terminate();
    assert!(status.success(), "warm shutdown exits 0, got {status}");
}

#[test]
fn inspect_with_no_worker_fails_like_celery() {
    let env = TestEnv::new("cli-control-nobody");
    let output = run(celeriac(&env).args(["inspect", "ping", "-t", "0.3"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("Error: No nodes replied within time constraint"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty());
}
