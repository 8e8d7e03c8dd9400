//! `celeriac schedule` end to end: entries added, listed, described, edited, disabled and
//! deleted in a SQLite file; invalid input names the field and exits non-zero; `run-now`
//! publishes the periodic task's message at once.

use crate::cli::{celeriac, lines, run};
use celeriac::testkit::TestEnv;
use std::process::Command;

fn schedule(env: &TestEnv, database_url: &str, args: &[&str]) -> std::process::Output {
    let mut command: Command = celeriac(env);
    command
        .env("CELERIAC_DATABASE_URL", database_url)
        .arg("schedule")
        .args(args);
    run(&mut command)
}

#[test]
fn schedule_commands_edit_the_database() {
    let env = TestEnv::new("schedule-cli");
    let directory = std::env::temp_dir().join(format!(
        "celeriac-schedule-cli-{}",
        env.key_prefix.trim_end_matches(':')
    ));
    std::fs::create_dir_all(&directory).unwrap();
    let database_url = format!("sqlite://{}", directory.join("celeriac.db").display());
    let queue = env.queue("periodic");

    let refused = schedule(
        &env,
        &database_url,
        &[
            "add",
            "bad",
            "--task",
            "demo.add",
            "--crontab",
            "0 24 * * *",
        ],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("hour: 24 is out of range 0-23"), "{stderr}");
    let refused = schedule(
        &env,
        &database_url,
        &[
            "add", "bad", "--task", "demo.add", "--every", "5m", "--kwargs", "[1]",
        ],
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("kwargs: must be a JSON object"));

    let added = schedule(
        &env,
        &database_url,
        &[
            "add",
            "berlin",
            "--task",
            "demo.add",
            "--args",
            "[2, 3]",
            "--queue",
            &queue,
            "--crontab",
            "30 2 * * *",
            "--timezone",
            "Europe/Berlin",
        ],
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert_eq!(lines(&added), ["added berlin: At 02:30 (Europe/Berlin)"]);
    assert!(schedule(
        &env,
        &database_url,
        &["add", "every", "--task", "demo.noop", "--every", "5m"]
    )
    .status
    .success());

    let next = lines(&schedule(
        &env,
        &database_url,
        &["next", "berlin", "-n", "3"],
    ));
    assert_eq!(next.len(), 3);
    assert!(
        next.iter().all(|line| line.contains("02:30:00 CE")),
        "{next:?}"
    );

    assert!(
        schedule(&env, &database_url, &["edit", "every", "--every", "10m"])
            .status
            .success()
    );
    assert!(schedule(&env, &database_url, &["disable", "every"])
        .status
        .success());
    let list = lines(&schedule(&env, &database_url, &["list", "--json"]));
    let entries: Vec<serde_json::Value> = list
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["description"], "Every 10 minutes");
    assert_eq!(entries[1]["enabled"], false);
    assert!(entries[0]["next_run_at"].is_string());

    let sent = schedule(&env, &database_url, &["run-now", "berlin"]);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert_eq!(lines(&sent).len(), 1, "prints the task id");

    assert!(schedule(&env, &database_url, &["delete", "every"])
        .status
        .success());
    assert!(!schedule(&env, &database_url, &["delete", "every"])
        .status
        .success());
    let _ = std::fs::remove_dir_all(directory);
}
