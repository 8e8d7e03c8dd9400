//! Results in django-celery-results' table (issue 15): time to run N tasks and store their
//! results as `TaskResult` rows on PostgreSQL, our worker against Python Celery 5.4's (the
//! `examples/django` project's `celery worker`, `CELERY_RESULT_BACKEND = "django-db"`) on the
//! same fresh `redis-server` and database, in one run. A benchmark, not a test: it asserts
//! only that every row arrived, and prints a Markdown table with the ratios.
//!
//! ```sh
//! scripts/python-venv.sh
//! cargo bench -p shop --bench django_db                       # 2,000 tasks per worker
//! BENCH_DJANGO_TASKS=500 cargo bench -p shop --bench django_db
//! ```
//!
//! Both workers run with the project's settings (`acks_late`, prefetch multiplier 1, results
//! not extended). Each run: flush Redis, empty the table, start the worker, wait for a probe
//! task's row, then send N tasks (`demo.add` to ours, the project's `orders.tasks.add` to
//! Celery's: the same addition) in batches and poll the table until N more SUCCESS rows are
//! there. The database is a fresh schema of the local PostgreSQL `test` (`TEST_DATABASE_URL`),
//! migrated by Django.

#[allow(
    dead_code,
    reason = "shared with the drain benchmark, which uses all of it"
)]
#[path = "../drain/drain.rs"]
mod drain;
#[allow(
    dead_code,
    reason = "shared with the drain benchmark, which uses all of it"
)]
#[path = "../drain/process.rs"]
mod process;
#[allow(
    dead_code,
    reason = "shared with the drain benchmark, which uses all of it"
)]
#[path = "../drain/redis_server.rs"]
mod redis_server;

use anyhow::Context;
use celeriac::config::Config;
use celeriac::db::{Database, DatabaseOptions};
use celeriac::producer::{Producer, SendOptions, TaskCall};
use drain::WorkerKind as Kind;
use process::Worker;
use serde_json::{json, Map};
use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const QUEUE: &str = "bench.django";

/// The fresh schema and the ways each side reaches it.
struct Django {
    schema: String,
    base_url: String,
    root: PathBuf,
    rows: Database,
}

impl Django {
    async fn create(root: &Path) -> anyhow::Result<Django> {
        let base_url = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let schema = format!("bench_django_{}", std::process::id());
        let mut connection = sqlx::PgConnection::connect(&base_url)
            .await
            .context("PostgreSQL (TEST_DATABASE_URL)")?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .execute(&mut connection)
            .await?;
        connection.close().await?;
        let django = Django {
            rows: Database::connect_existing(
                &DatabaseOptions::new(base_url.clone()).schema(schema.clone()),
            )
            .await?,
            schema,
            base_url,
            root: root.to_path_buf(),
        };
        let status = django
            .python_command()
            .args(["manage.py", "migrate", "--noinput"])
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "manage.py migrate failed");
        Ok(django)
    }

    fn celeriac_url(&self) -> String {
        format!(
            "{}?options=-c%20search_path%3D{}",
            self.base_url, self.schema
        )
    }

    fn python_command(&self) -> Command {
        let python = std::env::var_os("CELERIAC_TEST_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.root.join(".venv-interop/bin/python"));
        let mut command = drain::clean_command(&python);
        command
            .current_dir(self.root.join("examples/django"))
            .env("DJANGO_DB_ENGINE", "postgresql")
            .env(
                "DJANGO_DB_NAME",
                self.base_url.rsplit('/').next().unwrap_or("test"),
            )
            .env("DJANGO_DB_SCHEMA", &self.schema)
            .env("PYTHONDONTWRITEBYTECODE", "1");
        command
    }

    async fn successes(&self) -> anyhow::Result<i64> {
        let Database::Postgres(pool) = &self.rows else {
            anyhow::bail!("the benchmark runs on PostgreSQL");
        };
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM django_celery_results_taskresult WHERE status = 'SUCCESS'",
        )
        .fetch_one(pool)
        .await?)
    }

    async fn empty(&self) -> anyhow::Result<()> {
        if let Database::Postgres(pool) = &self.rows {
            sqlx::query("DELETE FROM django_celery_results_taskresult")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    async fn drop_schema(&self) {
        if let Ok(mut connection) = sqlx::PgConnection::connect(&self.base_url).await {
            let statement = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
            let _dropped = sqlx::query(&statement).execute(&mut connection).await;
            let _closed = connection.close().await;
        }
    }
}

fn worker_command(kind: Kind, redis: &redis_server::BenchRedis, django: &Django) -> Command {
    match kind {
        Kind::Celeriac { concurrency } => {
            let mut command = drain::clean_command(Path::new(env!("CARGO_BIN_EXE_shop")));
            command
                .args(["worker", "-Q", QUEUE, "-c", &concurrency.to_string()])
                .args(["-n", "bench@%h", "--loglevel", "warning"])
                .current_dir(std::env::temp_dir())
                .env("CELERIAC_BROKER_URL", redis.broker_url())
                .env("CELERIAC_RESULT_BACKEND", "django-db")
                .env("CELERIAC_DATABASE_URL", django.celeriac_url())
                // The djshop settings' (the seed's): CELERY_TASK_ACKS_LATE,
                // CELERY_WORKER_PREFETCH_MULTIPLIER = 1.
                .env("CELERIAC_TASK_ACKS_LATE", "true")
                .env("CELERIAC_WORKER_PREFETCH_MULTIPLIER", "1");
            command
        }
        Kind::CeleryPrefork { concurrency } | Kind::CeleryThreads { concurrency } => {
            let pool = if matches!(kind, Kind::CeleryPrefork { .. }) {
                "prefork"
            } else {
                "threads"
            };
            let mut command = django.python_command();
            command
                .args(["-m", "celery", "-A", "djshop", "worker", "-P", pool])
                .args(["-c", &concurrency.to_string()])
                .args([
                    "--without-mingle",
                    "--without-gossip",
                    "--without-heartbeat",
                ])
                .args(["-Q", QUEUE, "-n", "bench@%h", "-l", "warning"])
                .env("CELERY_BROKER_URL", redis.broker_url());
            command
        }
    }
}

fn task_name(kind: Kind) -> &'static str {
    if kind.is_celery() {
        "orders.tasks.add"
    } else {
        "demo.add"
    }
}

async fn wait_for_rows(django: &Django, wanted: i64, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while django.successes().await? < wanted {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{wanted} rows did not arrive in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

struct Row {
    kind: Kind,
    elapsed: Duration,
    worker_cpu: Duration,
}

async fn run(
    kind: Kind,
    tasks: usize,
    redis: &redis_server::BenchRedis,
    producer: &Producer,
    django: &Django,
) -> anyhow::Result<Row> {
    redis.flush_all().await?;
    django.empty().await?;
    let mut worker = Worker::spawn(worker_command(kind, redis, django))
        .with_context(|| format!("starting {}", kind.label()))?;
    let options = SendOptions::new().queue(QUEUE);
    producer
        .send_task(
            task_name(kind),
            vec![json!(1), json!(1)],
            Map::new(),
            options.clone(),
        )
        .await?;
    wait_for_rows(django, 1, Duration::from_secs(60))
        .await
        .with_context(|| format!("{} did not store the probe task", kind.label()))?;
    worker.remember_tree();
    let cpu_before = process::tree_cpu(worker.pid());
    let started = Instant::now();
    let mut remaining = tasks;
    while remaining > 0 {
        let batch = remaining.min(500);
        let calls = (0..batch)
            .map(|index| TaskCall {
                name: task_name(kind).to_owned(),
                args: vec![json!(index), json!(1)],
                kwargs: Map::new(),
                options: options.clone(),
            })
            .collect();
        producer.send_batch(calls).await?;
        remaining -= batch;
    }
    wait_for_rows(django, tasks as i64 + 1, Duration::from_secs(900)).await?;
    let elapsed = started.elapsed();
    let cpu_after = process::tree_cpu(worker.pid());
    worker.stop(Duration::from_secs(15)).await;
    Ok(Row {
        kind,
        elapsed,
        worker_cpu: process::cpu_between(&cpu_before, &cpu_after),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tasks: usize = std::env::var("BENCH_DJANGO_TASKS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(2_000);
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let redis = redis_server::BenchRedis::start().await?;
    let django = Django::create(&root).await?;
    let config = Config {
        broker_url: redis.broker_url(),
        ..Config::default()
    };
    let producer = Producer::connect(&config).await?;
    let kinds = [
        Kind::Celeriac { concurrency: 2 },
        Kind::CeleryPrefork { concurrency: 2 },
        Kind::Celeriac { concurrency: 8 },
        Kind::CeleryThreads { concurrency: 8 },
    ];
    let mut rows = Vec::new();
    for kind in kinds {
        eprintln!("django-db: {} with {tasks} tasks", kind.label());
        match run(kind, tasks, &redis, &producer, &django).await {
            Ok(row) => {
                eprintln!("  {:.2} s", row.elapsed.as_secs_f64());
                rows.push(row);
            }
            Err(error) => {
                django.drop_schema().await;
                return Err(error);
            }
        }
    }
    django.drop_schema().await;
    println!("| worker | {tasks} tasks → TaskResult rows | tasks/s | worker CPU | vs Celery |");
    println!("|---|---:|---:|---:|---:|");
    for pair in rows.chunks(2) {
        let theirs = pair.get(1).map(|row| row.elapsed.as_secs_f64());
        for row in pair {
            let seconds = row.elapsed.as_secs_f64();
            let ratio = match (row.kind.is_celery(), theirs) {
                (true, _) => "1.0×".to_owned(),
                (false, Some(theirs)) => format!("{:.1}×", theirs / seconds),
                (false, None) => String::new(),
            };
            println!(
                "| {} | {seconds:.2} s | {:.0} | {:.2} s | {ratio} |",
                row.kind.label(),
                tasks as f64 / seconds,
                row.worker_cpu.as_secs_f64(),
            );
        }
    }
    Ok(())
}
