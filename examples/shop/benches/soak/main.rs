//! The soak run of issue 13: ten minutes at 2,000 tasks a second with results, events and the
//! dashboard open, and eight readers asking for `/api/stats/tasks` all the time. A benchmark,
//! not a test: it asserts nothing and prints Markdown tables of what the processes held.
//!
//! ```sh
//! cargo bench -p shop --bench soak                  # 600 s at 2,000 tasks/s
//! cargo bench -p shop --bench soak -- --quick       # 60 s (or BENCH_QUICK=1)
//! ```
//! `BENCH_SOAK_SECONDS` and `BENCH_SOAK_RATE` change the load.
//!
//! One run: a private `redis-server`; a worker process (`shop worker -c 8`, events on, results
//! on, `acks_late`); the dashboard (`shop serve --no-worker --no-beat`) on a fresh SQLite file,
//! whose history records every event; this process sending `demo.noop` in batches every 50 ms
//! at the offered rate; one live tab (`/api/events`, read as `EventSource` does) and eight
//! clients calling `/api/stats/tasks?since=1h` back to back, each on its own connection.
//! Resident sets are read from `/proc` every second. At the end the sending stops, the queue
//! drains, and the results and history rows are counted.

#[path = "../events/consumer.rs"]
#[allow(
    dead_code,
    reason = "shared with the events benchmark, which uses all of it"
)]
mod consumer;
#[path = "../dashboard/http.rs"]
#[allow(
    dead_code,
    reason = "shared with the dashboard benchmark, which uses all of it"
)]
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

use anyhow::Context;
use celeriac::config::Config;
use celeriac::producer::{Producer, SendOptions, TaskCall};
use serde_json::Map;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const QUEUE: &str = "bench.soak";
const USER: &str = "bench";
const PASSWORD: &str = "bench-password-1234";
/// Stats readers, as acceptance 2 of issue 13 asks.
const STATS_READERS: usize = 8;
/// Time between two batches of sends.
const SEND_EVERY: Duration = Duration::from_millis(50);

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn shop(redis: &redis_server::BenchRedis, database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shop"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CELERIAC_") {
            command.env_remove(&name);
        }
    }
    command
        .current_dir(std::env::temp_dir())
        .env("CELERIAC_BROKER_URL", redis.broker_url())
        .env("CELERIAC_RESULT_BACKEND", redis.backend_url())
        .env("CELERIAC_DATABASE_URL", database_url)
        .env("CELERIAC_TASK_ACKS_LATE", "true")
        .env("CELERIAC_WORKER_SEND_TASK_EVENTS", "true")
        .env("CELERIAC_LOG", "warn");
    command
}

/// Resident-set samples of one process, in KiB.
#[derive(Default)]
struct Rss {
    peak: u64,
    by_minute: Vec<u64>,
    last: u64,
}

fn mib(kib: u64) -> String {
    format!("{:.0}", kib as f64 / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|argument| argument == "--quick")
        || std::env::var_os("BENCH_QUICK").is_some();
    let seconds = env_number("BENCH_SOAK_SECONDS", if quick { 60 } else { 600 });
    let rate = env_number("BENCH_SOAK_RATE", 2_000);

    let redis = redis_server::BenchRedis::start().await?;
    let directory =
        std::env::temp_dir().join(format!("celeriac-bench-soak-{}", std::process::id()));
    std::fs::create_dir_all(&directory)?;
    let database_url = format!("sqlite://{}", directory.join("soak.db").display());

    let mut add_user = shop(&redis, &database_url);
    add_user
        .args(["user", "add", USER, "--role", "viewer", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = add_user.spawn().context("running shop user add")?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write as _;
        writeln!(stdin, "{PASSWORD}")?;
    }
    anyhow::ensure!(child.wait()?.success(), "shop user add failed");

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut serve = shop(&redis, &database_url);
    serve.args([
        "serve",
        "--no-worker",
        "--no-beat",
        "--addr",
        &addr.to_string(),
    ]);
    let server = process::Worker::spawn(serve)?;
    let mut ready = false;
    for _ in 0..400 {
        if let Ok(mut connection) = http::Connection::open(addr).await {
            if matches!(connection.get("/healthz", "").await, Ok((status, _, _)) if status.is_success())
            {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::ensure!(ready, "shop serve did not answer /healthz on {addr}");
    let cookie = http::Connection::open(addr)
        .await?
        .login(USER, PASSWORD)
        .await?;

    let mut work = shop(&redis, &database_url);
    work.args(["worker", "-Q", QUEUE, "-c", "8", "-n", "soak@%h"]);
    let worker = process::Worker::spawn(work)?;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sse_events = Arc::new(AtomicU64::new(0));
    let tab = {
        let (cookie, stop, sse_events) = (cookie.clone(), stop.clone(), sse_events.clone());
        tokio::spawn(async move {
            http::read_events(addr, &cookie, |_| {
                sse_events.fetch_add(1, Ordering::Relaxed);
                !stop.load(Ordering::Relaxed)
            })
            .await
        })
    };
    let stats_times: Arc<Mutex<Vec<f64>>> = Arc::default();
    let readers: Vec<_> = (0..STATS_READERS)
        .map(|_| {
            let (cookie, stop, times) = (cookie.clone(), stop.clone(), stats_times.clone());
            tokio::spawn(async move {
                let mut connection = http::Connection::open(addr).await?;
                while !stop.load(Ordering::Relaxed) {
                    let (status, _, elapsed) =
                        connection.get("/api/stats/tasks?since=1h", &cookie).await?;
                    anyhow::ensure!(status.is_success(), "/api/stats/tasks answered {status}");
                    if let Ok(mut times) = times.lock() {
                        times.push(elapsed.as_secs_f64());
                    }
                }
                anyhow::Ok(())
            })
        })
        .collect();

    let rss: Arc<Mutex<(Rss, Rss)>> = Arc::default();
    let sampler = {
        let rss = rss.clone();
        let (server_pid, worker_pid) = (server.pid(), worker.pid());
        tokio::spawn(async move {
            let started = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let minute = started.elapsed().as_secs() / 60;
                let Ok(mut rss) = rss.lock() else { return };
                let (server, worker) = &mut *rss;
                for (process, pid) in [(server, server_pid), (worker, worker_pid)] {
                    let now = consumer::rss_kib_of(pid);
                    process.peak = process.peak.max(now);
                    process.last = now;
                    if process.by_minute.len() as u64 <= minute {
                        process.by_minute.push(now);
                    }
                }
            }
        })
    };

    let config = Config {
        broker_url: redis.broker_url(),
        result_backend: Some(redis.backend_url()),
        ..Config::default()
    };
    let producer = Producer::connect(&config).await?;
    let per_batch = (rate as f64 * SEND_EVERY.as_secs_f64()).round().max(1.0) as usize;
    let batches = seconds * 1_000 / SEND_EVERY.as_millis() as u64;
    let mut ticks = tokio::time::interval(SEND_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut sent = 0u64;
    for _ in 0..batches {
        ticks.tick().await;
        let calls: Vec<TaskCall> = (0..per_batch)
            .map(|_| TaskCall {
                name: "demo.noop".to_owned(),
                args: Vec::new(),
                kwargs: Map::new(),
                options: SendOptions::new().queue(QUEUE),
            })
            .collect();
        producer.send_batch(calls).await?;
        sent += per_batch as u64;
    }
    let send_seconds = started.elapsed().as_secs_f64();
    let waiting_at_end = redis.list_length(QUEUE).await?;
    let drain_started = Instant::now();
    while redis.list_length(QUEUE).await? > 0 || redis.hash_length("unacked").await? > 0 {
        anyhow::ensure!(
            drain_started.elapsed() < Duration::from_secs(600),
            "the queue did not drain"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drain_seconds = drain_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await??;
    }
    tab.abort();
    sampler.abort();
    let results = redis.result_count().await?;
    let mut connection = http::Connection::open(addr).await?;
    let (_, history, _) = connection.get("/api/history?limit=1", &cookie).await?;
    let history: serde_json::Value = serde_json::from_slice(&history).unwrap_or_default();
    let (server_rss, worker_rss) = {
        let rss = rss
            .lock()
            .map_err(|_| anyhow::anyhow!("the sampler panicked"))?;
        let copy = |process: &Rss| Rss {
            peak: process.peak,
            by_minute: process.by_minute.clone(),
            last: process.last,
        };
        (copy(&rss.0), copy(&rss.1))
    };
    let mut stats = stats_times
        .lock()
        .map_err(|_| anyhow::anyhow!("a reader panicked"))?
        .clone();
    stats.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        stats
            .get(((stats.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    worker.stop(Duration::from_secs(10)).await;
    server.stop(Duration::from_secs(10)).await;

    println!("### Soak: {seconds} s at {rate} tasks/s, results, events, dashboard open, {STATS_READERS} stats readers\n");
    println!("| figure | value |");
    println!("|---|---:|");
    println!("| tasks sent | {sent} |");
    println!(
        "| send rate achieved | {:.0} tasks/s |",
        sent as f64 / send_seconds
    );
    println!("| waiting when sending stopped | {waiting_at_end} |");
    println!("| drain after sending stopped | {drain_seconds:.1} s |");
    println!("| results stored | {results} |");
    println!(
        "| history rows (`/api/history` count) | {} |",
        history["count"]["tasks"]
    );
    println!(
        "| SSE events read by the open tab | {} |",
        sse_events.load(Ordering::Relaxed)
    );
    println!(
        "| `/api/stats/tasks` calls | {} (p50 {:.0} ms, p99 {:.0} ms) |",
        stats.len(),
        quantile(0.5) * 1e3,
        quantile(0.99) * 1e3
    );
    println!(
        "| dashboard RSS peak / at the end | {} / {} MiB |",
        mib(server_rss.peak),
        mib(server_rss.last)
    );
    println!(
        "| worker RSS peak / at the end | {} / {} MiB |",
        mib(worker_rss.peak),
        mib(worker_rss.last)
    );
    println!();
    println!("| minute | dashboard RSS (MiB) | worker RSS (MiB) |");
    println!("|---:|---:|---:|");
    for (minute, (server, worker)) in server_rss
        .by_minute
        .iter()
        .zip(&worker_rss.by_minute)
        .enumerate()
    {
        println!("| {minute} | {} | {} |", mib(*server), mib(*worker));
    }
    Ok(())
}
