//! The Python side: `celery beat` (Celery 5.4, PersistentScheduler) with the same entries due
//! every minute, as a real process on the same Redis.

use crate::measure::{cpu_seconds, next_minute, rss_kib, sleep_until, Poller};
use celeriac::testkit::RedisServer;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// What Celery's beat did.
#[derive(Debug)]
pub struct CeleryFigures {
    pub entries: usize,
    pub rss_mib: f64,
    pub cpu_ms_per_idle_tick: f64,
    pub lateness: Vec<f64>,
}

fn python() -> Option<PathBuf> {
    let python = std::env::var_os("CELERIAC_TEST_PYTHON")
        .filter(|python| !python.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-interop/bin/python")
        });
    python.exists().then_some(python)
}

pub async fn run(redis: &RedisServer, entries: usize) -> Option<CeleryFigures> {
    let Some(python) = python() else {
        eprintln!("no .venv-interop (scripts/python-venv.sh): Celery's column stays empty");
        return None;
    };
    let directory =
        std::env::temp_dir().join(format!("celeriac-bench-celery-beat-{}", std::process::id()));
    std::fs::create_dir_all(&directory).ok()?;
    let source =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/beat_scheduler/celery_beat.py");
    std::fs::copy(source, directory.join("celery_beat.py")).ok()?;
    let queue = "pybeat";
    // Start just after a minute boundary: ten idle seconds, then the next boundary is its
    // first send (it sends at the first minute after its start).
    sleep_until(next_minute(0) + chrono::TimeDelta::seconds(1)).await;
    let mut child = Command::new(python)
        .args([
            "-m",
            "celery",
            "-A",
            "celery_beat",
            "beat",
            "-l",
            "warning",
            "-s",
        ])
        .arg(directory.join("schedule"))
        .env("BENCH_BROKER", redis.url(0))
        .env("BENCH_QUEUE", queue)
        .env("BENCH_ENTRIES", entries.to_string())
        .env("PYTHONPATH", &directory)
        .current_dir(&directory)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let pid = child.id();
    // Let it start and write its schedule file, then measure ten idle seconds.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let before = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let cpu_ms_per_idle_tick = (cpu_seconds(pid) - before) * 100.0;
    let boundary = next_minute(0);
    sleep_until(boundary - chrono::TimeDelta::seconds(1)).await;
    let poller = Poller::start(redis.url(0), queue.to_owned());
    sleep_until(boundary).await;
    let arrivals = poller.wait_for(entries, Duration::from_secs(55)).await;
    let rss_mib = rss_kib(pid) as f64 / 1024.0;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&directory);
    Some(CeleryFigures {
        entries,
        rss_mib,
        cpu_ms_per_idle_tick,
        lateness: arrivals
            .iter()
            .map(|arrival| (*arrival - boundary).num_microseconds().unwrap_or(0) as f64 / 1000.0)
            .collect(),
    })
}
