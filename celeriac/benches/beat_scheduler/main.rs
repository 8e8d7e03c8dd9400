//! Beat at scale, ours against Celery 5.4's beat in one run (`cargo bench -p celeriac --bench
//! beat_scheduler`). A benchmark, not a test: it asserts nothing and prints a Markdown table.
//!
//! Ours: 100,000 crontab entries in SQLite and in PostgreSQL, 10,000 of them `* * * * *` (due
//! every minute) and 90,000 daily. Measured: the leader's load (first tick: lease, read every
//! row, repair from claims, plan every entry), the RSS it adds, CPU per idle tick (averaged
//! over 10 ticks, including the periodic full version comparison), and the lateness of the
//! 10,000 messages due at one minute boundary, seen by a poller of the queue length every 2 ms
//! (the time the message is in Redis minus its slot). Then edit latency: a clocked entry due
//! 50 ms after its write, added with and without the change announcement, from the write to
//! the message in Redis.
//!
//! Celery: `celery beat` with its default PersistentScheduler and the same 10,000 entries due
//! every minute (`crontab()`), `beat_max_loop_interval = 1` like ours, on the same Redis, its
//! lateness seen by the same poller; CPU and RSS from `/proc`. django-celery-beat is not run:
//! it needs a Django project and database, which the benchmark does not set up.

mod celery;
mod measure;

use celeriac::beat::{Beat, BeatOptions, PeriodicTask, Schedule, ScheduleStore};
use celeriac::clock;
use celeriac::config::Config;
use celeriac::db::{Database, DatabaseOptions};
use celeriac::producer::Producer;
use celeriac::testkit::{DatabaseKind, RedisServer, TestDatabase};
use chrono::TimeDelta;
use measure::{cpu_seconds, next_minute, percentile, rss_kib, sleep_until, Poller};
use std::time::{Duration, Instant};

const ENTRIES: usize = 100_000;
const DUE_EVERY_MINUTE: usize = 10_000;

#[derive(Debug, Default)]
struct OurFigures {
    insert_seconds: f64,
    load_seconds: f64,
    rss_mib: f64,
    cpu_ms_per_tick: f64,
    lateness: Vec<f64>,
    edit_announced: Vec<f64>,
    edit_unannounced: Vec<f64>,
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let redis = RedisServer::start_private();
    let mut ours = Vec::new();
    for (kind, backend) in [
        (DatabaseKind::Sqlite, "SQLite"),
        (DatabaseKind::Postgres, "PostgreSQL"),
    ] {
        let figures = ours_on(&redis, kind, backend).await?;
        eprintln!(
            "{backend}: insert {:.2} s, load {:.2} s, RSS +{:.0} MiB, {:.1} ms CPU per idle tick, lateness p50 {:.0} ms p99 {:.0} ms ({} messages)",
            figures.insert_seconds,
            figures.load_seconds,
            figures.rss_mib,
            figures.cpu_ms_per_tick,
            percentile(&figures.lateness, 0.5),
            percentile(&figures.lateness, 0.99),
            figures.lateness.len()
        );
        ours.push(figures);
    }
    let celery = celery::run(&redis, DUE_EVERY_MINUTE).await;
    report(&ours, celery.as_ref());
    Ok(())
}

async fn ours_on(
    redis: &RedisServer,
    kind: DatabaseKind,
    backend: &'static str,
) -> anyhow::Result<OurFigures> {
    let test_database = TestDatabase::new(kind, "bench_beat");
    let database = Database::connect_with(&DatabaseOptions {
        schema: test_database.schema.clone(),
        ..DatabaseOptions::new(&test_database.url)
    })
    .await?;
    let prefix = format!("bench-{}-", backend.to_ascii_lowercase());
    let mut config = Config {
        broker_url: redis.url(0),
        ..Config::default()
    };
    config.broker_transport_options.global_keyprefix = prefix.clone();
    let producer = Producer::connect(&config).await?;
    let queue = "beatbench";
    let started = Instant::now();
    insert(&database, queue).await?;
    let mut figures = OurFigures {
        insert_seconds: started.elapsed().as_secs_f64(),
        ..OurFigures::default()
    };
    let store = ScheduleStore::new(database.clone());
    let options = BeatOptions {
        node_name: "bench@beat".into(),
        ..BeatOptions::default()
    };
    let rss_before = rss_kib(std::process::id());
    let mut beat = Beat::new(store.clone(), producer.clone(), options.clone());
    let started = Instant::now();
    beat.tick().await;
    figures.load_seconds = started.elapsed().as_secs_f64();
    assert_eq!(beat.entry_count(), ENTRIES, "the leader loaded every entry");
    figures.rss_mib = (rss_kib(std::process::id()) - rss_before) as f64 / 1024.0;
    // Idle ticks: the every-minute entries are disabled, nothing is due.
    let cpu_before = cpu_seconds(std::process::id());
    for _ in 0..10 {
        tokio::time::sleep(options.max_loop_interval).await;
        beat.tick().await;
    }
    figures.cpu_ms_per_tick = (cpu_seconds(std::process::id()) - cpu_before) * 100.0;
    // Enable the 10,000 every-minute entries in one raw edit, then run the beat across a
    // minute boundary.
    raw(
        &database,
        "UPDATE celeriac_beat_periodic_task SET enabled = 1 WHERE enabled = 0",
    )
    .await?;
    beat.tick().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(beat.run(async move {
        let _ = stopped.await;
    }));
    // Watch the one minute boundary at least 4 s away, from 1 s before it.
    let boundary = next_minute(4);
    sleep_until(boundary - TimeDelta::seconds(1)).await;
    let poller = Poller::start(redis.url(0), format!("{prefix}{queue}"));
    sleep_until(boundary).await;
    let arrivals = poller
        .wait_for(DUE_EVERY_MINUTE, Duration::from_secs(30))
        .await;
    figures.lateness = arrivals
        .iter()
        .map(|arrival| (*arrival - boundary).num_microseconds().unwrap_or(0) as f64 / 1000.0)
        .collect();
    // Edit latency: a clocked entry due 50 ms after its write.
    for (round, announce) in (0..20).map(|round| (round, round % 2 == 0)) {
        let edit_queue = format!("edit{round}");
        let edit_poller = Poller::start(redis.url(0), format!("{prefix}{edit_queue}"));
        let written_at = clock::now();
        let mut task = PeriodicTask::new(
            format!("edit-{round}"),
            "demo.noop",
            Schedule::Clocked {
                at: written_at + TimeDelta::milliseconds(50),
            },
        );
        task.queue = Some(edit_queue);
        store.add(&task).await?;
        if announce {
            producer.broker().beat_announce_change().await?;
        }
        let arrival = edit_poller.wait_for(1, Duration::from_secs(10)).await;
        let Some(arrival) = arrival.first() else {
            continue;
        };
        let latency = (*arrival - written_at).num_microseconds().unwrap_or(0) as f64 / 1000.0;
        if announce {
            figures.edit_announced.push(latency);
        } else {
            figures.edit_unannounced.push(latency);
        }
    }
    let _ = stop.send(());
    running.await?;
    Ok(figures)
}

/// 100,000 rows in a few statements (the store's `add` validates one at a time, which is for
/// people, not for setting up a benchmark).
async fn insert(database: &Database, queue: &str) -> anyhow::Result<()> {
    let every_minute = serde_json::to_string(&Schedule::Crontab(
        celeriac::beat::Crontab::parse_cron("* * * * *", "UTC")?,
    ))?;
    let mut rows = Vec::with_capacity(ENTRIES);
    for index in 0..ENTRIES {
        let (schedule, enabled) = if index < DUE_EVERY_MINUTE {
            (every_minute.clone(), 0)
        } else {
            let daily = format!("{} {} * * *", index % 60, (index / 60) % 24);
            let crontab = celeriac::beat::Crontab::parse_cron(&daily, "UTC")?;
            (serde_json::to_string(&Schedule::Crontab(crontab))?, 1)
        };
        rows.push(format!(
            "('entry-{index:06}', 'demo.noop', '{queue}', '{}', {enabled})",
            schedule.replace('\'', "''")
        ));
    }
    for chunk in rows.chunks(1_000) {
        raw(
            database,
            &format!(
                "INSERT INTO celeriac_beat_periodic_task (name, task, queue, schedule, enabled) \
                 VALUES {}",
                chunk.join(", ")
            ),
        )
        .await?;
    }
    Ok(())
}

async fn raw(database: &Database, sql: &str) -> anyhow::Result<()> {
    match database {
        Database::Sqlite(pool) => {
            sqlx::query(sql).execute(pool).await?;
        }
        Database::Postgres(pool) => {
            sqlx::query(sql).execute(pool).await?;
        }
    }
    Ok(())
}

fn summary(values: &[f64]) -> String {
    if values.is_empty() {
        return "–".to_owned();
    }
    format!(
        "{:.0} / {:.0} / {:.0}",
        percentile(values, 0.5),
        percentile(values, 0.99),
        percentile(values, 1.0)
    )
}

#[allow(clippy::print_stdout, reason = "a benchmark prints its table")]
fn report(ours: &[OurFigures], celery: Option<&celery::CeleryFigures>) {
    println!(
        "| measure | celeriac, SQLite | celeriac, PostgreSQL | Celery 5.4 beat | ratio (SQLite) |"
    );
    println!("|---|---:|---:|---:|---:|");
    let (sqlite, postgres) = (&ours[0], &ours[1]);
    let ratio = |ours: f64, theirs: Option<f64>| match theirs {
        Some(theirs) if ours > 0.0 => format!("{:.1}×", theirs / ours),
        _ => "–".to_owned(),
    };
    println!(
        "| entries | {ENTRIES} | {ENTRIES} | {} | |",
        celery.map_or("–".to_owned(), |celery| celery.entries.to_string())
    );
    println!(
        "| insert 100,000 rows (s) | {:.2} | {:.2} | – | |",
        sqlite.insert_seconds, postgres.insert_seconds
    );
    println!(
        "| load (leader's first tick, s) | {:.2} | {:.2} | – | |",
        sqlite.load_seconds, postgres.load_seconds
    );
    println!(
        "| RSS added by the load (MiB) | {:.0} | {:.0} | {} (whole process) | |",
        sqlite.rss_mib,
        postgres.rss_mib,
        celery.map_or("–".to_owned(), |celery| format!("{:.0}", celery.rss_mib))
    );
    println!(
        "| CPU per idle tick (ms) | {:.1} | {:.1} | {} | {} |",
        sqlite.cpu_ms_per_tick,
        postgres.cpu_ms_per_tick,
        celery.map_or("–".to_owned(), |celery| format!(
            "{:.1}",
            celery.cpu_ms_per_idle_tick
        )),
        ratio(
            sqlite.cpu_ms_per_tick,
            celery.map(|celery| celery.cpu_ms_per_idle_tick)
        )
    );
    for (label, quantile) in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)] {
        let theirs = celery
            .filter(|celery| !celery.lateness.is_empty())
            .map(|celery| percentile(&celery.lateness, quantile));
        println!(
            "| lateness {label}, {DUE_EVERY_MINUTE} due at one minute (ms) | {:.0} | {:.0} | {} | {} |",
            percentile(&sqlite.lateness, quantile),
            percentile(&postgres.lateness, quantile),
            theirs.map_or("–".to_owned(), |theirs| format!("{theirs:.0}")),
            ratio(percentile(&sqlite.lateness, quantile), theirs)
        );
    }
    println!(
        "| messages sent at the minute | {} | {} | {} | |",
        sqlite.lateness.len(),
        postgres.lateness.len(),
        celery.map_or("–".to_owned(), |celery| celery.lateness.len().to_string())
    );
    println!(
        "| edit → message, announced (p50 / p99 / max ms) | {} | {} | – | |",
        summary(&sqlite.edit_announced),
        summary(&postgres.edit_announced)
    );
    println!(
        "| edit → message, not announced (p50 / p99 / max ms) | {} | {} | – | |",
        summary(&sqlite.edit_unannounced),
        summary(&postgres.edit_unannounced)
    );
}
