//! Real Python Celery, driven from Rust tests.
//!
//! Wire compatibility is proven against the real thing, not against our reading of it: a
//! [`CeleryPeer`] is a `celery worker` process running `tests/python/peer.py`, and
//! [`CeleryPeer::cli`] runs `tests/python/peer_cli.py` to send tasks, read results and run
//! kombu's own visibility-timeout restore. Both are configured only by the `PEER_*` variables
//! of a [`TestEnv`], so they share the test's Redis server and key prefix.
//!
//! Python comes from `CELERIAC_TEST_PYTHON` or the workspace's `.venv-interop/` (made by
//! `scripts/python-venv.sh`, with the Celery and kombu versions pinned in
//! `tests/python/requirements.txt`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::env::{CeleryVersion, TestEnv};
use super::eventually::eventually_blocking;
use super::watchdog::{Watchdog, STOP_GRACE};

/// How long a Celery worker may take to log that it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What Celery logs (as `<node> ready.`) once the worker consumes.
const READY_MARKER: &str = " ready.";

/// A Python `celery worker` (solo pool) child process.
///
/// Owns the process: dropping the `CeleryPeer` stops it (SIGTERM, which is Celery's warm
/// shutdown, then SIGKILL after 5 s) and deletes its log file, unless the thread is panicking,
/// in which case the log's path and tail are printed to help explain the failure. The process
/// also dies with the test process (see the watchdog in the module docs of `testkit`).
#[derive(Debug)]
pub struct CeleryPeer {
    node_name: String,
    watchdog: Watchdog,
}

impl CeleryPeer {
    /// The Python interpreter with the pinned Celery: `CELERIAC_TEST_PYTHON` if set, else
    /// `<workspace root>/.venv-interop/bin/python`.
    ///
    /// # Panics
    /// If that file does not exist; the message says to run `scripts/python-venv.sh`.
    pub fn python() -> PathBuf {
        let python = match std::env::var_os("CELERIAC_TEST_PYTHON") {
            Some(python) if !python.is_empty() => PathBuf::from(python),
            _ => workspace_root().join(".venv-interop/bin/python"),
        };
        assert!(
            python.exists(),
            "no Python for the Celery peer at {}: run scripts/python-venv.sh \
             (or set CELERIAC_TEST_PYTHON)",
            python.display()
        );
        python
    }

    /// The interpreter with Celery 5.7: `CELERIAC_TEST_PYTHON_57` if set, else
    /// `<workspace root>/.venv-celery57/bin/python`.
    ///
    /// # Panics
    /// If that file does not exist; the message says to run `scripts/python-venv.sh 5.7`.
    pub fn python_5_7() -> PathBuf {
        let python = match std::env::var_os("CELERIAC_TEST_PYTHON_57") {
            Some(python) if !python.is_empty() => PathBuf::from(python),
            _ => workspace_root().join(".venv-celery57/bin/python"),
        };
        assert!(
            python.exists(),
            "no Python with Celery 5.7 at {}: run scripts/python-venv.sh 5.7 \
             (or set CELERIAC_TEST_PYTHON_57)",
            python.display()
        );
        python
    }

    /// The directory holding `peer.py`, `peer_cli.py` and `requirements.txt`.
    pub fn python_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
    }

    /// Runs `script` (in [`CeleryPeer::python_dir`]) with `python`, `request` as JSON on its
    /// stdin, and returns the JSON it prints: how the tests ask Celery's own code (its crontab,
    /// its solar schedule) for answers to compare with ours.
    ///
    /// # Panics
    /// If the script cannot start, fails, or prints something other than JSON.
    pub fn ask(python: &Path, script: &str, request: &serde_json::Value) -> serde_json::Value {
        use std::io::Write;
        let mut child = Command::new(python)
            .arg(Self::python_dir().join(script))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("start {script}: {error}"));
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(request.to_string().as_bytes())
            .unwrap_or_else(|error| panic!("write to {script}: {error}"));
        let output = child
            .wait_with_output()
            .unwrap_or_else(|error| panic!("wait for {script}: {error}"));
        assert!(
            output.status.success(),
            "{script} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("{script} printed no JSON ({error})"))
    }

    /// Starts `celery -A peer worker --pool=solo` consuming `queues` as node `node_name`
    /// (Celery expands `%h` to the host name), and waits until it logs that it is ready.
    ///
    /// Mingle and gossip are off so that workers of other tests cannot slow start-up down.
    ///
    /// # Panics
    /// If Python is missing or the worker is not ready within 30 s (the message includes the
    /// end of its log).
    pub fn worker(env: &TestEnv, queues: &[&str], node_name: &str) -> CeleryPeer {
        CeleryPeer::worker_with_pool(env, queues, node_name, "solo", 1)
    }

    /// [`CeleryPeer::worker`] with another pool (`prefork`, `threads`) of `concurrency` slots.
    /// A solo worker runs tasks in its main loop and cannot answer remote control while one
    /// runs; `prefork` can, and can terminate a running task.
    ///
    /// # Panics
    /// As [`CeleryPeer::worker`].
    pub fn worker_with_pool(
        env: &TestEnv,
        queues: &[&str],
        node_name: &str,
        pool: &str,
        concurrency: usize,
    ) -> CeleryPeer {
        spawn_worker(env, queues, node_name, pool, concurrency, false, &[])
    }

    /// [`CeleryPeer::worker`] with extra `celery worker` options, e.g. `["-E"]` for task
    /// events.
    ///
    /// # Panics
    /// As [`CeleryPeer::worker`].
    pub fn worker_with_args(
        env: &TestEnv,
        queues: &[&str],
        node_name: &str,
        extra_args: &[&str],
    ) -> CeleryPeer {
        spawn_worker(env, queues, node_name, "solo", 1, false, extra_args)
    }

    /// [`CeleryPeer::worker`] with mingle on: at start-up the worker broadcasts `hello`, waits
    /// a second for the other workers' revokes and clocks, and merges them.
    ///
    /// # Panics
    /// As [`CeleryPeer::worker`].
    pub fn worker_with_mingle(env: &TestEnv, queues: &[&str], node_name: &str) -> CeleryPeer {
        spawn_worker(env, queues, node_name, "solo", 1, true, &[])
    }

    /// The node name the worker was started with (`-n`).
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// The worker process's pid (for signals a test wants to send itself).
    pub fn pid(&self) -> u32 {
        self.watchdog.service_pid()
    }

    /// Everything the worker has logged so far.
    pub fn log(&self) -> String {
        self.watchdog.log()
    }

    /// Where the worker logs to (deleted on drop unless the thread is panicking).
    pub fn log_path(&self) -> &Path {
        self.watchdog.log_path()
    }

    /// Stops the worker with Celery's warm shutdown (SIGTERM: finish the running task, restore
    /// prefetched messages), escalating to SIGKILL after 5 s, and waits until it has exited.
    pub fn stop(self) {
        drop(self);
    }

    /// Kills the worker with SIGKILL, like a crash: no acks, nothing restored, messages it
    /// holds stay in `unacked`. Waits until the process is gone.
    pub fn kill(&mut self) {
        self.watchdog.signal("KILL");
        eventually_blocking(
            STOP_GRACE,
            &format!("the killed Celery worker {} to exit", self.node_name),
            || (!self.watchdog.is_running()).then_some(()),
            || self.watchdog.log_tail(20),
        );
    }

    /// Runs `peer_cli.py <args>` and returns the JSON line it prints.
    ///
    /// Blocks the thread until the command finishes; inside a single-threaded tokio test that
    /// also runs a Celeriac worker, use [`CeleryPeer::cli_async`] so the worker keeps running.
    ///
    /// # Panics
    /// If the command fails or prints no JSON (the message includes its stderr).
    pub fn cli(env: &TestEnv, args: &[&str]) -> serde_json::Value {
        let mut command = peer_cli_command(env, args);
        let output = command
            .output()
            .unwrap_or_else(|error| panic!("cannot run peer_cli.py {args:?}: {error}"));
        parse_cli_output(args, &output)
    }

    /// [`CeleryPeer::cli`] without blocking the async runtime.
    ///
    /// # Panics
    /// As [`CeleryPeer::cli`].
    pub async fn cli_async(env: &TestEnv, args: &[&str]) -> serde_json::Value {
        let mut command = tokio::process::Command::from(peer_cli_command(env, args));
        let output = command
            .output()
            .await
            .unwrap_or_else(|error| panic!("cannot run peer_cli.py {args:?}: {error}"));
        parse_cli_output(args, &output)
    }
}

impl Drop for CeleryPeer {
    #[allow(
        clippy::print_stderr,
        reason = "the test harness shows a failing test's stderr; the peer's log explains it"
    )]
    fn drop(&mut self) {
        self.watchdog.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- Celery worker {} log ({}), last lines ---\n{}",
                self.node_name,
                self.watchdog.log_path().display(),
                self.watchdog.log_tail(60)
            );
        } else {
            // Best effort: a leftover log in the temp directory is harmless.
            let _removed = std::fs::remove_file(self.watchdog.log_path());
        }
    }
}

/// Starts `celery worker` as described by the constructors of [`CeleryPeer`].
fn spawn_worker(
    env: &TestEnv,
    queues: &[&str],
    node_name: &str,
    pool: &str,
    concurrency: usize,
    mingle: bool,
    extra_args: &[&str],
) -> CeleryPeer {
    let mut command = peer_command(env);
    command
        .args(["-m", "celery", "-A", "peer", "worker"])
        .arg(format!("--pool={pool}"))
        .args(["-c", &concurrency.to_string()])
        .args(["-Q", &queues.join(","), "-n", node_name])
        .args(["--without-gossip", "-l", "info"]);
    if !mingle {
        command.arg("--without-mingle");
    }
    command.args(extra_args);
    spawn_worker_command(command, node_name, &env.key_prefix)
}

/// Starts the `celery worker` `command` as node `node_name` (logging under a name made of
/// `key_prefix`) and waits until it is ready.
pub(super) fn spawn_worker_command(
    command: Command,
    node_name: &str,
    key_prefix: &str,
) -> CeleryPeer {
    let log_path = std::env::temp_dir().join(format!(
        "celeriac-peer-{}-{}.log",
        key_prefix
            .trim_end_matches(':')
            .replace(|character: char| !character.is_ascii_alphanumeric(), "-"),
        uuid::Uuid::new_v4().simple()
    ));
    let watchdog = Watchdog::spawn(&command, &log_path, None);
    let ready = eventually_blocking(
        READY_TIMEOUT,
        &format!("Celery worker {node_name} to log that it is ready"),
        || {
            if watchdog.log().contains(READY_MARKER) {
                Some(true)
            } else if !watchdog.is_running() {
                Some(false)
            } else {
                None
            }
        },
        || format!("log {}:\n{}", log_path.display(), watchdog.log_tail(40)),
    );
    assert!(
        ready,
        "Celery worker {node_name} exited during start-up; log {}:\n{}",
        log_path.display(),
        watchdog.log_tail(40)
    );
    CeleryPeer {
        node_name: node_name.to_string(),
        watchdog,
    }
}

/// `<workspace root>` = the parent of this crate's directory.
pub(super) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the celeriac crate lives inside the workspace")
        .to_path_buf()
}

/// The Python interpreter, run from `tests/python` with the test's `PEER_*` variables.
fn peer_command(env: &TestEnv) -> Command {
    let python = match env.celery {
        CeleryVersion::V5_4 => CeleryPeer::python(),
        CeleryVersion::V5_7 => CeleryPeer::python_5_7(),
    };
    let mut command = Command::new(python);
    command
        .current_dir(CeleryPeer::python_dir())
        .envs(env.peer_env())
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    command
}

fn peer_cli_command(env: &TestEnv, args: &[&str]) -> Command {
    let mut command = peer_command(env);
    command.arg("peer_cli.py").args(args);
    command
}

/// The last non-empty stdout line, parsed as JSON.
fn parse_cli_output(args: &[&str], output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "peer_cli.py {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let line = stdout.lines().rev().find(|line| !line.trim().is_empty());
    line.and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            panic!(
                "peer_cli.py {args:?} printed no JSON line:\nstdout:\n{stdout}\nstderr:\n{stderr}"
            )
        })
}
