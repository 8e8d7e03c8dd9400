//! The command line end to end: `celeriac call` to a Python worker, `celeriac worker` serving a
//! Python producer, configuration from `CELERIAC_*` variables and from a file, exit codes, and
//! warm shutdown on SIGTERM.

use celeriac::testkit::{eventually_blocking, CeleryPeer, TestEnv};
use serde_json::{json, Value};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub(crate) fn celeriac(env: &TestEnv) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shop"));
    command
        .env_remove("CELERIAC_CONFIG")
        .env("CELERIAC_BROKER_URL", &env.redis_url)
        .env("CELERIAC_RESULT_BACKEND", &env.backend_url)
        .env(
            "CELERIAC_BROKER_TRANSPORT_OPTIONS",
            json!({"global_keyprefix": env.key_prefix, "polling_interval": 0.01}).to_string(),
        )
        .current_dir(std::env::temp_dir());
    command
}

pub(crate) fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .expect("celeriac runs")
}

pub(crate) fn lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

pub(crate) struct WorkerProcess(pub(crate) Child);

impl WorkerProcess {
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        eventually_blocking(
            Duration::from_secs(20),
            "worker exits after SIGTERM",
            || self.0.try_wait().ok().flatten(),
            || "worker still running".to_owned(),
        )
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn call_sends_to_a_python_worker_and_waits_for_the_result() {
    let env = TestEnv::new("cli-call");
    let queue = env.queue("q");
    let _python = CeleryPeer::worker(&env, &[&queue], "py-cli@%h");
    let output = run(celeriac(&env).args([
        "call",
        "demo.add",
        "--args",
        "[2, 3]",
        "--queue",
        &queue,
        "--wait",
        "--timeout",
        "30",
    ]));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = lines(&output);
    assert_eq!(printed.len(), 2, "task id, then the result: {printed:?}");
    let result: Value = serde_json::from_str(&printed[1]).unwrap();
    assert_eq!(result["status"], json!("SUCCESS"));
    assert_eq!(result["result"], json!(5));
    assert_eq!(result["task_id"], json!(printed[0]));

    let failed = run(celeriac(&env).args([
        "call",
        "demo.fail",
        "--args",
        "[\"nope\"]",
        "--queue",
        &queue,
        "--wait",
    ]));
    assert_eq!(
        failed.status.code(),
        Some(1),
        "a failed task is a non-zero exit"
    );
    let result: Value = serde_json::from_str(lines(&failed).last().unwrap()).unwrap();
    assert_eq!(result["status"], json!("FAILURE"));
    assert_eq!(result["result"]["exc_type"], json!("ValueError"));

    let shown = run(celeriac(&env).args(["result", &printed[0]]));
    let shown: Value = serde_json::from_str(lines(&shown).last().unwrap()).unwrap();
    assert_eq!(shown["result"], json!(5));
    let unknown = run(celeriac(&env).args(["result", "no-such-task"]));
    assert!(lines(&unknown)[0].contains("PENDING"));
}

#[test]
fn worker_serves_a_python_producer_and_stops_warmly_on_sigterm() {
    let env = TestEnv::new("cli-worker");
    let queue = env.queue("q");
    let log =
        std::fs::File::create(std::env::temp_dir().join(format!("{}.log", env.queue("worker"))))
            .unwrap();
    let child = celeriac(&env)
        .args([
            "worker",
            "-Q",
            &queue,
            "-c",
            "2",
            "-n",
            "cli@%h",
            "--prefetch-multiplier",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut worker = WorkerProcess(child);
    let sent = CeleryPeer::cli(
        &env,
        &["send", "demo.add", "--args", "[40, 2]", "--queue", &queue],
    );
    let task_id = sent["task_id"].as_str().unwrap();
    let result = CeleryPeer::cli(&env, &["result", task_id, "--timeout", "30"]);
    assert_eq!(result["status"], json!("SUCCESS"));
    assert_eq!(result["result"], json!(42));
    let status = worker.terminate();
    assert!(status.success(), "warm shutdown exits 0, got {status}");
}

#[test]
fn configuration_comes_from_a_file_and_the_environment_overrides_it() {
    let env = TestEnv::new("cli-config");
    let queue = env.queue("q");
    let file_queue = env.queue("from-file");
    let directory = std::env::temp_dir().join(env.queue("config"));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("celeriac.toml");
    std::fs::write(
        &path,
        format!(
            "broker_url = \"redis://127.0.0.1:1/0\"\ntask_default_queue = \"{file_queue}\"\n[broker_transport_options]\nglobal_keyprefix = \"{}\"\n",
            env.key_prefix
        ),
    )
    .unwrap();
    // The file's broker_url is unreachable; CELERIAC_BROKER_URL overrides it.
    let output = run(celeriac(&env)
        .env_remove("CELERIAC_BROKER_TRANSPORT_OPTIONS")
        .args([
            "--config",
            path.to_str().unwrap(),
            "call",
            "demo.add",
            "--args",
            "[1, 1]",
        ]));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _python = CeleryPeer::worker(&env, &[&file_queue], "py-config@%h");
    let task_id = lines(&output)[0].clone();
    let result = CeleryPeer::cli(&env, &["result", &task_id, "--timeout", "30"]);
    assert_eq!(
        result["result"],
        json!(2),
        "sent to the file's task_default_queue under its key prefix"
    );

    std::fs::write(&path, "no_such_setting = 1\n").unwrap();
    let refused = run(celeriac(&env).args([
        "--config",
        path.to_str().unwrap(),
        "call",
        "demo.add",
        "--queue",
        &queue,
    ]));
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no_such_setting"),
        "the error names the setting"
    );
}
