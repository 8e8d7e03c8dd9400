//! The same load against Flower 2.2 on the same Redis, for the side-by-side table: Flower
//! ingests the same stream, and its 50 viewers stay current the way Flower's own pages and
//! scripts do, by polling: each asks `/api/tasks?taskname=bench.marker` every 250 ms (our
//! coalescing interval) and notes when a marker first appears.

use crate::consumer::{flower_program, Consumer, Kind};
use crate::http::Connection;
use crate::{percentile, process, publish_markers, repo_root, stream, MarkerTimes};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a Flower viewer polls.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// What Flower did under the load.
pub(crate) struct FlowerFigures {
    pub(crate) cpu_load: f64,
    pub(crate) rss_idle_kib: u64,
    pub(crate) rss_peak_kib: u64,
    pub(crate) markers_expected: u64,
    pub(crate) markers_seen: u64,
    pub(crate) latency_p50: f64,
    pub(crate) latency_p99: f64,
    pub(crate) polls: u64,
    pub(crate) poll_failures: u64,
    pub(crate) poll_p50: f64,
    pub(crate) poll_p99: f64,
    pub(crate) pages: Vec<crate::report::PageRow>,
}

#[derive(Default)]
struct PollLog {
    seen: std::collections::HashSet<u64>,
    latencies: Vec<f64>,
    poll_times: Vec<f64>,
    failures: u64,
}

/// Starts Flower on `broker_url`, runs the load, loads its pages; Flower is stopped after.
pub(crate) async fn run(
    broker_url: &str,
    stream: &stream::Stream,
    rate: f64,
    clients: usize,
) -> anyhow::Result<FlowerFigures> {
    let program = flower_program(&repo_root())?;
    let flower = Consumer::start(Kind::Flower, broker_url, 10_000, &program).await?;
    let addr = flower.addr();
    let rss_idle_kib = flower.rss_kib();

    let markers: MarkerTimes = Arc::default();
    let logs: Vec<Arc<Mutex<PollLog>>> = (0..clients).map(|_| Arc::default()).collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let pollers: Vec<_> = logs
        .iter()
        .map(|log| {
            let log = log.clone();
            let markers = markers.clone();
            let stopped = stopped.clone();
            tokio::spawn(async move { poll(addr, markers, log, stopped).await })
        })
        .collect();
    let marker_publisher = tokio::spawn(publish_markers(
        redis::Client::open(broker_url)?
            .get_multiplexed_async_connection()
            .await?,
        markers.clone(),
        stopped.clone(),
    ));
    let mut publisher = redis::Client::open(broker_url)?
        .get_multiplexed_async_connection()
        .await?;
    let (peak, sampler) = crate::sample_peak_rss(flower.pid(), rss_idle_kib);
    let cpu_before = process::cpu_time(flower.pid());
    let publish_time = stream::publish(&mut publisher, stream, rate).await?;
    let cpu = process::cpu_time(flower.pid()).saturating_sub(cpu_before);
    stop.send_replace(true);
    let markers_sent = marker_publisher.await??;
    // A poll that was under way finishes; Flower may also still be catching up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for poller in pollers {
        poller.abort();
    }
    sampler.abort();

    let (mut latencies, mut poll_times) = (Vec::new(), Vec::new());
    let (mut seen, mut failures) = (0u64, 0u64);
    for log in &logs {
        let log = log
            .lock()
            .map_err(|_| anyhow::anyhow!("a poller panicked"))?;
        latencies.extend_from_slice(&log.latencies);
        poll_times.extend_from_slice(&log.poll_times);
        seen += log.seen.len() as u64;
        failures += log.failures;
    }
    latencies.sort_by(f64::total_cmp);
    poll_times.sort_by(f64::total_cmp);
    // The newest marker a viewer saw (Flower keeps the latest 10,000 tasks only, and may not
    // have taken in the very last marker yet).
    let newest_seen = logs
        .iter()
        .filter_map(|log| log.lock().ok()?.seen.iter().max().copied())
        .max();
    let mut paths = vec![
        "/".to_owned(),
        "/tasks".to_owned(),
        "/api/tasks?limit=100".to_owned(),
    ];
    if let Some(number) = newest_seen {
        paths.push(format!("/task/{}{number}", crate::MARKER));
    }
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let pages = crate::measure_pages(addr, "", &paths, 50).await?;
    let figures = FlowerFigures {
        cpu_load: cpu.as_secs_f64() / publish_time.as_secs_f64(),
        rss_idle_kib,
        rss_peak_kib: peak.lock().map(|peak| *peak).unwrap_or(0),
        markers_expected: markers_sent * clients as u64,
        markers_seen: seen,
        latency_p50: percentile(&latencies, 0.5),
        latency_p99: percentile(&latencies, 0.99),
        polls: poll_times.len() as u64,
        poll_failures: failures,
        poll_p50: percentile(&poll_times, 0.5),
        poll_p99: percentile(&poll_times, 0.99),
        pages,
    };
    flower.stop().await;
    Ok(figures)
}

/// One viewer: polls until `stopped`, on one keep-alive connection (reopened after an error).
async fn poll(
    addr: std::net::SocketAddr,
    markers: MarkerTimes,
    log: Arc<Mutex<PollLog>>,
    stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut connection: Option<Connection> = None;
    let mut ticks = tokio::time::interval(POLL_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*stopped.borrow() {
        ticks.tick().await;
        if connection.is_none() {
            connection = Connection::open(addr).await.ok();
        }
        let Some(open) = connection.as_mut() else {
            if let Ok(mut log) = log.lock() {
                log.failures += 1;
            }
            continue;
        };
        let started = Instant::now();
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            open.get("/api/tasks?taskname=bench.marker&limit=50", ""),
        )
        .await;
        let now = Instant::now();
        let Ok(mut log) = log.lock() else { return };
        match answer {
            Ok(Ok((status, body, _))) if status.is_success() => {
                log.poll_times
                    .push(now.duration_since(started).as_secs_f64());
                let text = String::from_utf8_lossy(&body);
                for number in crate::marker_numbers(&text) {
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
            }
            _ => {
                log.failures += 1;
                connection = None;
            }
        }
    }
}
