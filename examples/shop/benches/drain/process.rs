//! Worker processes under measurement: CPU time and peak RSS of a process and its descendants
//! from `/proc`, and a child handle that stops the whole tree.
//!
//! A prefork Celery worker is a parent plus pool processes, so its cost is summed over the
//! tree. Peak RSS is `VmHWM` of each process, summed; forked children share pages with their
//! parent, so for prefork the sum overstates the memory actually in use (it is what `ps` and a
//! container limit would add up, though).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, usually 100).
fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// The fields after the `(comm)` of `/proc/<pid>/stat` (the name may hold spaces).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &text[text.rfind(')')? + 1..];
    Some(after_name.split_whitespace().map(str::to_owned).collect())
}

/// User + system CPU time of one process (0 once it is gone).
pub(crate) fn cpu_time(pid: u32) -> Duration {
    // After the name: state(0) ppid(1) … utime(11) stime(12).
    let ticks = stat_fields(pid)
        .map(|fields| {
            let field = |index: usize| {
                fields
                    .get(index)
                    .and_then(|value| value.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            field(11) + field(12)
        })
        .unwrap_or(0);
    Duration::from_micros(ticks * 1_000_000 / clock_ticks())
}

/// `root` and all its descendants alive now.
pub(crate) fn tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse().ok())
            else {
                continue;
            };
            if let Some(ppid) = stat_fields(pid)
                .and_then(|fields| fields.get(1).and_then(|value| value.parse().ok()))
            {
                parents.push((pid, ppid));
            }
        }
    }
    let mut members = vec![root];
    let mut index = 0;
    while index < members.len() {
        let parent = members[index];
        members.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    members
}

/// CPU time of each process of `root`'s tree.
pub(crate) fn tree_cpu(root: u32) -> BTreeMap<u32, Duration> {
    tree(root)
        .into_iter()
        .map(|pid| (pid, cpu_time(pid)))
        .collect()
}

/// The CPU the tree used between two [`tree_cpu`] samples (processes new since count whole).
pub(crate) fn cpu_between(
    earlier: &BTreeMap<u32, Duration>,
    later: &BTreeMap<u32, Duration>,
) -> Duration {
    later
        .iter()
        .map(|(pid, time)| time.saturating_sub(earlier.get(pid).copied().unwrap_or_default()))
        .sum()
}

/// Peak resident set (`VmHWM`) of one process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmHWM:")
                    .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// Peak resident set summed over `root`'s tree, in KiB.
pub(crate) fn tree_peak_rss_kib(root: u32) -> u64 {
    tree(root).into_iter().map(peak_rss_kib).sum()
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A worker process this benchmark started. Dropping it SIGKILLs it and the descendants it
/// was last seen with.
pub(crate) struct Worker {
    child: Child,
    known_tree: Vec<u32>,
}

impl Worker {
    /// Spawns `command` (stdout and stderr discarded unless `BENCH_VERBOSE` is set).
    pub(crate) fn spawn(mut command: Command) -> anyhow::Result<Worker> {
        if std::env::var_os("BENCH_VERBOSE").is_none() {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        let child = command.stdin(Stdio::null()).spawn()?;
        let known_tree = vec![child.id()];
        Ok(Worker { child, known_tree })
    }

    /// The worker's (parent) process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Remembers the current process tree so [`Worker::stop`] and drop reach the children.
    pub(crate) fn remember_tree(&mut self) {
        self.known_tree = tree(self.pid());
    }

    /// Warm shutdown (SIGTERM) with up to `grace` to exit, then SIGKILL for whatever is left.
    pub(crate) async fn stop(mut self, grace: Duration) {
        self.remember_tree();
        signal(self.pid(), "TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Drop kills the parent if it is still there and any pool process it left behind.
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in self.known_tree.iter().skip(1) {
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                signal(*pid, "KILL");
            }
        }
    }
}
