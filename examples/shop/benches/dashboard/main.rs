//! The dashboard under load (issue 6): 50 live tabs while 10,000 Celery events per second flow,
//! and the time to serve each page. A benchmark, not a test: it asserts nothing and prints
//! Markdown tables.
//!
//! ```sh
//! cargo bench -p shop --bench dashboard             # 50 clients, 10,000 events/s, 30 s
//! cargo bench -p shop --bench dashboard -- --quick  # 8 s (or BENCH_QUICK=1)
//! ```
//! `BENCH_SSE_CLIENTS` and `BENCH_EVENTS_PER_SECOND` change the load; `BENCH_SKIP_FLOWER`
//! leaves Flower out (it runs from `.venv-flower`, which `scripts/flower-venv.sh` makes).
//!
//! One run: a private `redis-server`, a SQLite file, and the real `celeriac serve --no-worker
//! --no-beat` (this build's binary). The clients log in with the form and open
//! `/api/events` as `EventSource` does, each on its own connection. The event stream is the
//! events benchmark's synthetic cluster (`../events/stream.rs`: four workers with `-E`, 3.3
//! task events per task, batched as Celery's `task.multi`), published at the offered rate.
//! Alongside it, every 100 ms, a *marker*: a `task-received` for a task id of its own. Each
//! client notes when a marker's id first appears in what it reads; *event to browser* is that
//! moment minus the marker's `PUBLISH`, so it holds the monitor's ingest, the 250 ms
//! coalescing, rendering the delta and the socket, all on one clock.
//!
//! The clients read with hyper rather than in Chromium: 50 browsers do not fit on this
//! machine next to the server, and what the server does per tab is the same. They share the
//! machine's two cores with the server, Redis and the publisher, so the figures include that
//! contention.
//!
//! Then, with the history the stream left behind, each page is loaded 50 times one after
//! another (time to last byte on localhost, which bounds the server's own time from above).
//! Then the same load against Flower 2.2 on the same Redis, emptied (see `flower`), and the
//! same pages of Flower's. Last, the size of the WASM bundle in `target/site/pkg` (built by `scripts/build-site.sh
//! --release` for the release figure), raw and gzipped.

#[path = "../events/consumer.rs"]
#[allow(
    dead_code,
    reason = "shared with the events benchmark, which uses all of it"
)]
mod consumer;
mod flower;
mod http;
#[path = "../drain/process.rs"]
#[allow(
    dead_code,
    reason = "shared with the drain benchmark, which uses all of it"
)]
mod process;
#[path = "../drain/redis_server.rs"]
#[allow(
    dead_code,
    reason = "shared with the drain benchmark, which uses all of it"
)]
mod redis_server;
mod report;
#[path = "../events/stream.rs"]
mod stream;

use anyhow::Context;
use redis::aio::MultiplexedConnection;
use report::{LoadFigures, PageRow};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Task events per task in the synthetic stream (see `stream.rs`).
const TASK_EVENTS_PER_TASK: f64 = 3.29;
/// Time between two markers.
const MARKER_EVERY: Duration = Duration::from_millis(100);
/// The marker task ids' prefix, searched for in what the clients read.
pub(crate) const MARKER: &str = "bench-marker-";
const USER: &str = "bench";
const PASSWORD: &str = "bench-password-1234";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The `celeriac serve` child and where it listens.
pub(crate) struct Server {
    child: tokio::process::Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts the server; its log (warnings and up) goes to `log_path`.
    async fn start(
        broker_url: &str,
        backend_url: &str,
        database_url: &str,
        log_path: &Path,
    ) -> anyhow::Result<Server> {
        let binary = env!("CARGO_BIN_EXE_shop");
        let environment = [
            ("CELERIAC_BROKER_URL", broker_url),
            ("CELERIAC_RESULT_BACKEND", backend_url),
            ("CELERIAC_DATABASE_URL", database_url),
            ("CELERIAC_LOG", "warn"),
        ];
        let mut add_user = tokio::process::Command::new(binary);
        add_user
            .args(["user", "add", USER, "--role", "viewer", "--password-stdin"])
            .envs(environment)
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        let mut child = add_user.spawn().context("running celeriac user add")?;
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt as _;
            stdin.write_all(format!("{PASSWORD}\n").as_bytes()).await?;
        }
        anyhow::ensure!(child.wait().await?.success(), "celeriac user add failed");

        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = std::fs::File::create(log_path)?;
        let child = tokio::process::Command::new(binary)
            .stderr(log)
            .args([
                "serve",
                "--no-worker",
                "--no-beat",
                "--addr",
                &addr.to_string(),
            ])
            .envs(environment)
            .env("LEPTOS_SITE_ROOT", repo_root().join("target/site"))
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting celeriac serve")?;
        for _ in 0..400 {
            if let Ok(mut connection) = http::Connection::open(addr).await {
                if let Ok((status, _, _)) = connection.get("/healthz", "").await {
                    if status.is_success() {
                        return Ok(Server { child, addr });
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("celeriac serve did not answer /healthz on {addr}")
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    fn rss_kib(&self) -> u64 {
        Server::rss_of(self.pid())
    }

    /// The resident set of process `pid` in KiB (0 once it is gone).
    pub(crate) fn rss_of(pid: u32) -> u64 {
        consumer::rss_kib_of(pid)
    }
}

/// What one client saw.
#[derive(Default)]
struct ClientLog {
    events: u64,
    bytes: u64,
    /// Seconds from a marker's publish to its first sight, per marker seen.
    latencies: Vec<f64>,
    seen: std::collections::HashSet<u64>,
}

/// The markers' publish times, by number.
pub(crate) type MarkerTimes = Arc<Mutex<Vec<Instant>>>;

pub(crate) fn marker_numbers(event: &str) -> impl Iterator<Item = u64> + '_ {
    event.match_indices(MARKER).filter_map(|(at, _)| {
        let digits: String = event[at + MARKER.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

fn spawn_client(
    addr: SocketAddr,
    cookie: String,
    markers: MarkerTimes,
    log: Arc<Mutex<ClientLog>>,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    tokio::spawn(async move {
        http::read_events(addr, &cookie, |event| {
            let now = Instant::now();
            let Ok(mut log) = log.lock() else {
                return false;
            };
            log.events += 1;
            log.bytes += event.len() as u64;
            for number in marker_numbers(event) {
                if log.seen.insert(number) {
                    let published = markers
                        .lock()
                        .ok()
                        .and_then(|times| times.get(number as usize).copied());
                    if let Some(published) = published {
                        log.latencies
                            .push(now.duration_since(published).as_secs_f64());
                    }
                }
            }
            true
        })
        .await
    })
}

/// Publishes a marker every [`MARKER_EVERY`] until `stop` turns true.
pub(crate) async fn publish_markers(
    mut connection: MultiplexedConnection,
    markers: MarkerTimes,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let channel = celeriac::broker::Keys::new("", vec![0]).fanout_channel("celeryev", "task.multi");
    let mut ticks = tokio::time::interval(MARKER_EVERY);
    let mut number = 0u64;
    while !*stop.borrow() {
        ticks.tick().await;
        let body = serde_json::json!([{"hostname": "marker@bench", "utcoffset": 0, "pid": 1,
            "clock": number, "uuid": format!("{MARKER}{number}"), "name": "bench.marker",
            "timestamp": celeriac::clock::epoch_now(), "type": "task-received"}]);
        let envelope = celeriac::protocol::event::envelope(
            &body,
            "marker@bench",
            "task.multi",
            format!("marker-{number}"),
        );
        if let Ok(mut times) = markers.lock() {
            times.push(Instant::now());
        }
        redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(envelope.to_json())
            .query_async::<i64>(&mut connection)
            .await?;
        number += 1;
    }
    Ok(number)
}

/// Samples the resident set of `pid` every 250 ms and keeps the highest (from `idle_kib`),
/// until the returned task is aborted.
pub(crate) fn sample_peak_rss(
    pid: u32,
    idle_kib: u64,
) -> (Arc<Mutex<u64>>, tokio::task::JoinHandle<()>) {
    let peak = Arc::new(Mutex::new(idle_kib));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let rss = Server::rss_of(pid);
                if let Ok(mut peak) = peak.lock() {
                    *peak = (*peak).max(rss);
                }
            }
        })
    };
    (peak, sampler)
}

pub(crate) fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * quantile).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Loads each of `paths` at `addr` 5 times to warm up, then `runs` times one after another.
pub(crate) async fn measure_pages(
    addr: SocketAddr,
    cookie: &str,
    paths: &[&str],
    runs: usize,
) -> anyhow::Result<Vec<PageRow>> {
    let mut connection = http::Connection::open(addr).await?;
    let mut rows = Vec::new();
    for path in paths {
        for _ in 0..5 {
            connection.get(path, cookie).await?;
        }
        let mut times = Vec::with_capacity(runs);
        let mut bytes = 0;
        for _ in 0..runs {
            let (status, body, elapsed) = connection.get(path, cookie).await?;
            anyhow::ensure!(status.is_success(), "{path} answered {status}");
            bytes = body.len();
            times.push(elapsed.as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        rows.push(PageRow {
            path: (*path).to_owned(),
            bytes,
            p50: percentile(&times, 0.5),
            p99: percentile(&times, 0.99),
        });
    }
    Ok(rows)
}

fn bundle_sizes() -> Option<(u64, u64)> {
    let wasm = repo_root().join("target/site/pkg/celeriac_bg.wasm");
    let raw = std::fs::metadata(&wasm).ok()?.len();
    let output = std::process::Command::new("gzip")
        .args(["-9", "-c"])
        .arg(&wasm)
        .output()
        .ok()?;
    Some((raw, output.stdout.len() as u64))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|argument| argument == "--quick")
        || std::env::var_os("BENCH_QUICK").is_some();
    let clients = env_number("BENCH_SSE_CLIENTS", 50) as usize;
    let rate = env_number("BENCH_EVENTS_PER_SECOND", 10_000) as f64;
    let seconds = if quick { 8 } else { 30 };

    let redis = redis_server::BenchRedis::start().await?;
    let directory =
        std::env::temp_dir().join(format!("celeriac-bench-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&directory)?;
    let database_url = format!("sqlite://{}", directory.join("dashboard.db").display());
    let mut server = Server::start(
        &redis.broker_url(),
        &redis.backend_url(),
        &database_url,
        &directory.join("server.log"),
    )
    .await?;
    let cookie = http::Connection::open(server.addr)
        .await?
        .login(USER, PASSWORD)
        .await?;

    let markers: MarkerTimes = Arc::default();
    let logs: Vec<Arc<Mutex<ClientLog>>> = (0..clients).map(|_| Arc::default()).collect();
    let readers: Vec<_> = logs
        .iter()
        .map(|log| spawn_client(server.addr, cookie.clone(), markers.clone(), log.clone()))
        .collect();
    // Every client has its snapshot before the load starts.
    let deadline = Instant::now() + Duration::from_secs(30);
    while logs
        .iter()
        .any(|log| log.lock().map(|log| log.events == 0).unwrap_or(true))
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "not every client got its snapshot"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let idle_cpu_before = process::cpu_time(server.pid());
    let idle_window = Duration::from_secs(3);
    tokio::time::sleep(idle_window).await;
    let idle_cpu = process::cpu_time(server.pid()).saturating_sub(idle_cpu_before);
    let idle_rss = server.rss_kib();

    let tasks = (rate * seconds as f64 / TASK_EVENTS_PER_TASK) as u64;
    let stream = stream::build(tasks, celeriac::clock::epoch_now());
    let (stop_markers, markers_stop) = tokio::sync::watch::channel(false);
    let marker_publisher = tokio::spawn(publish_markers(
        redis::Client::open(redis.broker_url())?
            .get_multiplexed_async_connection()
            .await?,
        markers.clone(),
        markers_stop,
    ));
    let mut publisher = redis::Client::open(redis.broker_url())?
        .get_multiplexed_async_connection()
        .await?;
    let (peak_rss, sampler) = sample_peak_rss(server.pid(), idle_rss);
    let load_cpu_before = process::cpu_time(server.pid());
    let redis_cpu_before = process::cpu_time(redis.pid());
    let publish_time = stream::publish(&mut publisher, &stream, rate).await?;
    let load_cpu = process::cpu_time(server.pid()).saturating_sub(load_cpu_before);
    let redis_cpu = process::cpu_time(redis.pid()).saturating_sub(redis_cpu_before);
    // The last markers still get their delta before the clients stop reading.
    stop_markers.send_replace(true);
    let markers_sent = marker_publisher.await??;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sampler.abort();
    for reader in &readers {
        reader.abort();
    }

    let mut latencies = Vec::new();
    let (mut events, mut bytes, mut markers_seen) = (0u64, 0u64, 0u64);
    for log in &logs {
        let log = log
            .lock()
            .map_err(|_| anyhow::anyhow!("a client panicked"))?;
        latencies.extend_from_slice(&log.latencies);
        events += log.events;
        bytes += log.bytes;
        markers_seen += log.seen.len() as u64;
    }
    latencies.sort_by(f64::total_cmp);
    let load = LoadFigures {
        clients,
        offered_rate: rate,
        published_events: stream.events,
        publish_seconds: publish_time.as_secs_f64(),
        server_cpu_idle: idle_cpu.as_secs_f64() / idle_window.as_secs_f64(),
        server_cpu_load: load_cpu.as_secs_f64() / publish_time.as_secs_f64(),
        redis_cpu_load: redis_cpu.as_secs_f64() / publish_time.as_secs_f64(),
        rss_idle_kib: idle_rss,
        rss_peak_kib: peak_rss.lock().map(|peak| *peak).unwrap_or(0),
        sse_events_per_client: events as f64 / clients as f64,
        sse_bytes_per_client_per_second: bytes as f64 / clients as f64 / publish_time.as_secs_f64(),
        markers_expected: markers_sent * clients as u64,
        markers_seen,
        latency_p50: percentile(&latencies, 0.5),
        latency_p95: percentile(&latencies, 0.95),
        latency_p99: percentile(&latencies, 0.99),
        latency_max: latencies.last().copied().unwrap_or(f64::NAN),
    };
    let pages = measure_pages(
        server.addr,
        &cookie,
        &[
            "/",
            "/workers",
            "/tasks",
            "/failed",
            "/queues",
            "/periodic",
            &format!("/tasks/{MARKER}{}", markers_sent.saturating_sub(1)),
            "/api/tasks?limit=100",
        ],
        50,
    )
    .await?;
    let _ = server.child.kill().await;
    let server_log = std::fs::read_to_string(directory.join("server.log")).unwrap_or_default();
    let history_fell_behind = server_log
        .lines()
        .filter(|line| line.contains("task history fell behind"))
        .count();
    let slow_statements = server_log
        .lines()
        .filter(|line| line.contains("slow statement"))
        .count();

    // Flower on the same Redis, emptied, with the same stream.
    redis.flush_all().await?;
    let flower = if std::env::var_os("BENCH_SKIP_FLOWER").is_some() {
        None
    } else {
        Some(flower::run(&redis.broker_url(), &stream, rate, clients).await?)
    };
    let bundle = bundle_sizes();
    print!(
        "{}",
        report::render(
            quick,
            &load,
            &pages,
            flower.as_ref(),
            bundle,
            (history_fell_behind, slow_statements)
        )
    );
    drop(redis);
    let _ = std::fs::remove_dir_all(&directory);
    Ok(())
}
