//! `celeriac history retry`: a failed task is sent again from what the result backend kept
//! (`result_extended`), runs again on a `celeriac worker`, and an unknown task is refused.

use crate::cli::{celeriac, lines, run, WorkerProcess};
use celeriac::testkit::TestEnv;
use serde_json::{json, Value};
use std::process::{Command, Stdio};

fn with_history<'c>(command: &'c mut Command, database: &std::path::Path) -> &'c mut Command {
    command.env("CELERIAC_RESULT_EXTENDED", "true").env(
        "CELERIAC_DATABASE_URL",
        format!("sqlite://{}", database.display()),
    )
}

#[test]
fn a_failed_task_is_retried_from_the_command_line() {
    let env = TestEnv::new("cli-history");
    let queue = env.queue("q");
    let directory = std::env::temp_dir().join(env.queue("history"));
    std::fs::create_dir_all(&directory).unwrap();
    let database = directory.join("celeriac.db");
    let child = with_history(&mut celeriac(&env), &database)
        .args(["worker", "-Q", &queue, "-n", "history@%h"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _worker = WorkerProcess(child);

    let failed = run(with_history(&mut celeriac(&env), &database).args([
        "call",
        "demo.fail",
        "--args",
        "[\"first\"]",
        "--queue",
        &queue,
        "--wait",
        "--timeout",
        "30",
    ]));
    let original = lines(&failed)[0].clone();

    let retried =
        run(with_history(&mut celeriac(&env), &database).args(["history", "retry", &original]));
    assert!(
        retried.status.success(),
        "{}",
        String::from_utf8_lossy(&retried.stderr)
    );
    let new_id = lines(&retried)[0].clone();
    assert_ne!(new_id, original);
    let result = run(celeriac(&env).args(["result", &new_id, "--wait", "--timeout", "30"]));
    let result: Value = serde_json::from_str(lines(&result).last().unwrap()).unwrap();
    assert_eq!(result["status"], json!("FAILURE"));
    assert_eq!(
        result["args"],
        json!(["first"]),
        "the same arguments ran again"
    );

    let refused = run(with_history(&mut celeriac(&env), &database).args([
        "history",
        "retry",
        "no-such-task",
    ]));
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no-such-task"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let _ = std::fs::remove_dir_all(directory);
}
