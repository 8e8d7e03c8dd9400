//! `celeriac events` end to end: the binary subscribes to the env's events channel and prints
//! what a publisher sends, as summary lines or as Celery's JSON (`--json`).

use celeriac::broker::Keys;
use celeriac::protocol::event;
use celeriac::testkit::{eventually_blocking, TestEnv};
use serde_json::{json, Value};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `celeriac events <args> --limit <limit>` and publishes a `task-sent` event every poll
/// until it exits (it may subscribe after the first ones); returns its stdout lines.
fn tail(env: &TestEnv, args: &[&str], limit: usize) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shop"))
        .env_remove("CELERIAC_CONFIG")
        .env("CELERIAC_BROKER_URL", &env.redis_url)
        .env(
            "CELERIAC_BROKER_TRANSPORT_OPTIONS",
            json!({"global_keyprefix": env.key_prefix}).to_string(),
        )
        .arg("events")
        .args(args)
        .args(["--limit", &limit.to_string()])
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("celeriac runs");
    let channel =
        Keys::new(env.key_prefix.clone(), vec![0]).fanout_channel("celeryev", "task.sent");
    let mut redis = redis::Client::open(env.redis_url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let mut sent = 0u32;
    let status = eventually_blocking(
        Duration::from_secs(20),
        "celeriac events to print its limit and exit",
        || {
            sent += 1;
            let body = json!({"hostname": "gen1@host", "utcoffset": 0, "pid": 1, "clock": sent,
                "uuid": format!("id-{sent}"), "name": "demo.add", "args": "(2, 3)", "kwargs": "{}",
                "retries": 0, "timestamp": 1795487515.36, "type": "task-sent"});
            let envelope = event::envelope(&body, "gen1@host", "task.sent", "tag".into());
            let _: i64 = redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(envelope.to_json())
                .query(&mut redis)
                .unwrap();
            child.try_wait().ok().flatten()
        },
        || "still running".to_owned(),
    );
    assert!(status.success(), "{status}");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    stdout.lines().map(str::to_owned).collect()
}

#[test]
fn events_prints_one_line_per_event() {
    let env = TestEnv::new("cli-events");
    let lines = tail(&env, &[], 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("2026-11-24T02:31:55.360Z task-sent        gen1@host id-"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].ends_with(" demo.add PENDING args=(2, 3) kwargs={}"),
        "{}",
        lines[0]
    );
    let json_lines = tail(&env, &["--json"], 3);
    assert_eq!(json_lines.len(), 3);
    for line in json_lines {
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["type"], json!("task-sent"));
        assert_eq!(parsed["name"], json!("demo.add"));
        assert!(line.starts_with(r#"{"hostname":"gen1@host","utcoffset":0,"pid":1,"clock":"#));
    }
}
