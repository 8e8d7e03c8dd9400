//! A child process that cannot outlive the test process.
//!
//! Test services (`redis-server`, Python Celery workers) are started through a small `bash`
//! watchdog instead of directly:
//!
//! ```text
//! bash -c '"$@" & echo $!; read; kill -TERM $!; …; kill -KILL $!; rm -rf <cleanup dir>'
//! ```
//!
//! The [`Watchdog`] owns the write end of the watchdog's stdin pipe. The `read` returns when
//! that pipe closes, which happens when the [`Watchdog`] is dropped *or* when the test process
//! exits for any reason (the kernel closes its descriptors). So a service held in a `static`
//! that is never dropped, or a test binary that is aborted, still leaves no stray process
//! behind. This needs no `unsafe` (`unsafe_code = "forbid"`), unlike `prctl(PR_SET_PDEATHSIG)`.
//!
//! On stop the service gets SIGTERM, then SIGKILL after [`STOP_GRACE`]. Its stdout and stderr
//! go to a log file chosen by the caller. The pipe is created close-on-exec by `std`, so other
//! children never inherit it and cannot keep a watchdog waiting.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// How long a stopped service may take to exit after SIGTERM before it gets SIGKILL.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(5);

/// The watchdog script. Arguments: `$1` = directory to delete afterwards (may be empty), the
/// rest = the service's program and arguments. It prints the service's pid on stdout.
const WATCHDOG_SCRIPT: &str = r#"
cleanup_dir="$1"; shift
"$@" </dev/null 1>&2 &
service_pid=$!
echo "$service_pid"
read -r _
kill -TERM "$service_pid" 2>/dev/null
for _ in $(seq 50); do
    kill -0 "$service_pid" 2>/dev/null || break
    sleep 0.1
done
kill -KILL "$service_pid" 2>/dev/null
if [ -n "$cleanup_dir" ]; then rm -rf -- "$cleanup_dir"; fi
exit 0
"#;

/// A service process started under the `bash` watchdog described in the module docs.
///
/// Owns the watchdog's stdin pipe: dropping the `Watchdog` closes it, which makes the watchdog
/// stop the service (SIGTERM, then SIGKILL) and delete the cleanup directory; `drop` waits for
/// that to finish, so the port and files are free afterwards.
#[derive(Debug)]
pub(crate) struct Watchdog {
    /// The watchdog `bash` process (the service's parent).
    bash: Child,
    /// Write end of the watchdog's stdin; `None` once stopping has begun.
    stdin: Option<ChildStdin>,
    /// Pid of the service itself (not of `bash`), used for signals.
    service_pid: u32,
    /// Where the service's stdout and stderr go.
    log_path: PathBuf,
}

impl Watchdog {
    /// Starts `command` (program, arguments, environment and working directory are taken from
    /// it) under a watchdog, appending its output to `log_path`. `cleanup_dir`, if given, is
    /// deleted by the watchdog after the service has exited.
    pub(crate) fn spawn(command: &Command, log_path: &Path, cleanup_dir: Option<&Path>) -> Self {
        let log_file = File::options()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap_or_else(|error| panic!("cannot open log file {}: {error}", log_path.display()));
        let mut bash = Command::new("bash");
        bash.arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("celeriac-watchdog")
            .arg(cleanup_dir.map(Path::as_os_str).unwrap_or_default())
            .arg(command.get_program())
            .args(command.get_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file);
        if let Some(current_dir) = command.get_current_dir() {
            bash.current_dir(current_dir);
        }
        for (name, value) in command.get_envs() {
            match value {
                Some(value) => bash.env(name, value),
                None => bash.env_remove(name),
            };
        }
        let mut child = bash
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start bash for {command:?}: {error}"));
        let stdout = child
            .stdout
            .take()
            .expect("stdout was configured as a pipe");
        let mut pid_line = String::new();
        BufReader::new(stdout)
            .read_line(&mut pid_line)
            .expect("the watchdog prints the service pid first");
        let service_pid = pid_line.trim().parse().unwrap_or_else(|error| {
            panic!("watchdog for {command:?} printed {pid_line:?} instead of a pid: {error}")
        });
        Watchdog {
            stdin: child.stdin.take(),
            bash: child,
            service_pid,
            log_path: log_path.to_path_buf(),
        }
    }

    /// The service's pid.
    pub(crate) fn service_pid(&self) -> u32 {
        self.service_pid
    }

    /// Sends `signal` (a name such as `TERM` or `KILL`) to the service with the `kill` command.
    /// A service that already exited is not an error.
    pub(crate) fn signal(&self, signal: &str) {
        // The status is ignored on purpose: "no such process" just means it is already gone.
        let _status = Command::new("kill")
            .args(["-s", signal, &self.service_pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .expect("the `kill` command is available");
    }

    /// Whether the service process still exists. The watchdog reaps it as soon as it exits,
    /// so an exited service does not linger as a zombie.
    pub(crate) fn is_running(&self) -> bool {
        Command::new("kill")
            .args(["-0", &self.service_pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .map(|status| status.success())
            .unwrap_or(false)
    }

    /// The whole log so far (lossy UTF-8; empty if it cannot be read).
    pub(crate) fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of the log, for panic messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all_lines: Vec<&str> = log.lines().collect();
        all_lines[all_lines.len().saturating_sub(lines)..].join("\n")
    }

    /// Where the service's output goes.
    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Stops the service (SIGTERM, SIGKILL after [`STOP_GRACE`]) and waits until the watchdog
    /// has exited, which includes deleting the cleanup directory.
    pub(crate) fn stop(&mut self) {
        // Closing the pipe is what the watchdog's `read` waits for.
        drop(self.stdin.take());
        // An error here means the watchdog is already gone, which is what we want.
        let _exit_status = self.bash.wait();
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop();
    }
}
