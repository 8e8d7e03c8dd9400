//! Task history at scale (`cargo bench -p celeriac --bench history`): ingest 1,000,000 tasks
//! through `TaskHistory::record_events`, then time the dashboard's typical queries, p50 and p99
//! over repeated runs, on a SQLite file and on PostgreSQL (`TEST_DATABASE_URL`, else the local
//! `test` database, in a schema dropped at the end). Prints one table; the target is 50 ms.
//!
//! `--rows N` changes the number of tasks, `--runs N` the repetitions per query; `--only sqlite`
//! or `--only postgres` runs one backend; `--keep` leaves the databases behind to look at, and
//! `--reuse URL [--schema NAME]` runs the queries again on such a database (no load).
//!
//! There is no Python side: Celery keeps no task history (Flower holds the last 10,000 tasks in
//! memory and loses them on restart), so there is nothing to put beside these figures.
//!
//! The data: tasks spread over 7 days in time order, 40 task names with a skewed (Zipf-like)
//! mix, 16 workers, 6 queues (mostly by name), final states 85 % SUCCESS, 5 % FAILURE, 3 %
//! RECEIVED, 2 % STARTED, 2 % PENDING (sent only), 2 % RETRY, 1 % REVOKED; each task has the
//! events a worker with `-E` sends for it (sent, received, started, outcome), so the timeline
//! holds about 3 rows per task. Arguments look like `(123456, 'order-123456')` and
//! `{'customer_id': 4711, 'amount': 12.5}`.

use celeriac::db::{Database, DatabaseOptions};
use celeriac::history::{TaskEvent, TaskEventKind, TaskFilter, TaskHistory, TimeField};
use celeriac::testkit::{DatabaseKind, TestDatabase};
use celeriac::TaskState;
use chrono::{DateTime, Duration as TimeDelta, TimeZone, Utc};
use std::future::Future;
use std::time::Instant;

/// Events per `record_events` call, as an event receiver would batch them.
const BATCH_EVENTS: usize = 3000;

const NAMES: usize = 40;
const WORKERS: usize = 16;
const QUEUES: [&str; 6] = ["celery", "orders", "emails", "reports", "billing", "hipri"];

/// SplitMix64: a small deterministic generator, so every run inserts the same data.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut value = self.0;
        value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        value ^ (value >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    /// A skewed index: low indexes are much more frequent (roughly Zipf).
    fn skewed(&mut self, bound: usize) -> usize {
        let uniform = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((bound as f64).powf(uniform) - 1.0).floor() as usize % bound
    }
}

fn task_name(index: usize) -> String {
    const VERBS: [&str; 8] = [
        "send", "charge", "refund", "render", "sync", "import", "notify", "resize",
    ];
    const NOUNS: [&str; 5] = ["email", "invoice", "report", "order", "image"];
    format!(
        "app.{}.{}_{}",
        NOUNS[index % 5],
        VERBS[index / 5 % 8],
        NOUNS[(index + 2) % 5]
    )
}

fn worker_name(index: usize) -> String {
    format!("celery@worker-{index:02}")
}

fn start_time() -> DateTime<Utc> {
    Utc.timestamp_opt(1_795_000_000, 0).unwrap()
}

const SPAN_SECONDS: f64 = 7.0 * 86400.0;

/// The events of task number `number` of `rows`.
fn task_events(random: &mut Random, number: usize, rows: usize) -> Vec<TaskEvent> {
    let task_id = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        random.next() as u32,
        random.next() as u16,
        random.next() % 0x1000,
        random.next() % 0x1000,
        random.next() % (1 << 48)
    );
    let name_index = random.skewed(NAMES);
    let worker = worker_name(random.below(WORKERS));
    let queue = if random.below(10) == 0 {
        QUEUES[random.below(QUEUES.len())]
    } else {
        QUEUES[name_index % QUEUES.len()]
    };
    let seen = start_time()
        + TimeDelta::microseconds((SPAN_SECONDS * 1e6 * number as f64 / rows as f64) as i64);
    let final_state = match random.below(100) {
        0..=84 => TaskEventKind::Succeeded,
        85..=89 => TaskEventKind::Failed,
        90..=92 => TaskEventKind::Received,
        93..=94 => TaskEventKind::Started,
        95..=96 => TaskEventKind::Sent,
        97..=98 => TaskEventKind::Retried,
        _ => TaskEventKind::Revoked,
    };
    let at = |milliseconds: i64| seen + TimeDelta::milliseconds(milliseconds);
    let mut sent = TaskEvent::new(TaskEventKind::Sent, &task_id, "gen1234@web-1", at(0));
    let order = number * 7 + 100_000;
    sent.name = Some(task_name(name_index));
    sent.args = Some(format!("({order}, 'order-{order}')"));
    sent.kwargs = Some(format!(
        "{{'customer_id': {}, 'amount': {}.5}}",
        random.below(50_000),
        random.below(500)
    ));
    sent.queue = Some(queue.to_owned());
    sent.retries = Some(0);
    let mut events = vec![sent.clone()];
    if final_state == TaskEventKind::Sent {
        return events;
    }
    let mut received = TaskEvent::new(TaskEventKind::Received, &task_id, &worker, at(5));
    received.name = sent.name.clone();
    received.args = sent.args.clone();
    received.kwargs = sent.kwargs.clone();
    received.retries = Some(0);
    events.push(received);
    if final_state == TaskEventKind::Received {
        return events;
    }
    events.push(TaskEvent::new(
        TaskEventKind::Started,
        &task_id,
        &worker,
        at(6),
    ));
    let runtime = random.below(2000) as i64 + 1;
    let mut outcome = TaskEvent::new(final_state, &task_id, &worker, at(6 + runtime));
    match final_state {
        TaskEventKind::Started => return events,
        TaskEventKind::Succeeded => {
            outcome.result = Some("{'status': 'ok'}".into());
            outcome.runtime = Some(runtime as f64 / 1000.0);
        }
        TaskEventKind::Failed | TaskEventKind::Retried => {
            outcome.exception = Some("ConnectionError('upstream timed out')".into());
            outcome.traceback = Some("Traceback (most recent call last):\n  ...".into());
        }
        _ => {}
    }
    events.push(outcome);
    events
}

/// Ingests `rows` tasks; returns (seconds, events).
async fn load(history: &TaskHistory, rows: usize) -> (f64, usize) {
    let mut random = Random(42);
    let mut batch = Vec::with_capacity(BATCH_EVENTS + 4);
    let mut events = 0;
    let started = Instant::now();
    for number in 0..rows {
        batch.extend(task_events(&mut random, number, rows));
        if batch.len() >= BATCH_EVENTS || number + 1 == rows {
            events += batch.len();
            history.record_events(&batch).await.expect("record events");
            batch.clear();
        }
    }
    (started.elapsed().as_secs_f64(), events)
}

/// Refreshes the planner's statistics after the bulk load, as a running history does:
/// `TaskHistory::optimize` on SQLite (the retention loop calls it), and on PostgreSQL a
/// `VACUUM ANALYZE` standing in for autovacuum, which runs both after this many inserts (the
/// vacuum's visibility map is what lets a count read only the index).
async fn analyze(history: &TaskHistory) {
    history.optimize().await.expect("optimize");
    if let Database::Postgres(pool) = history.database() {
        sqlx::query("VACUUM ANALYZE celeriac_task_history")
            .execute(pool)
            .await
            .expect("vacuum analyze");
        sqlx::query("VACUUM ANALYZE celeriac_task_history_events")
            .execute(pool)
            .await
            .expect("vacuum analyze");
    }
}

/// The history's size: the SQLite file with its WAL, or PostgreSQL's tables with indexes.
async fn size_in_megabytes(database: &Database, test_database: &TestDatabase) -> f64 {
    let bytes = match database {
        Database::Sqlite(_) => {
            let path = test_database.url.trim_start_matches("sqlite://");
            [String::new(), "-wal".to_owned()]
                .iter()
                .filter_map(|suffix| std::fs::metadata(format!("{path}{suffix}")).ok())
                .map(|metadata| metadata.len() as i64)
                .sum()
        }
        Database::Postgres(pool) => sqlx::query_scalar::<_, i64>(
            "SELECT (pg_total_relation_size('celeriac_task_history') \
             + pg_total_relation_size('celeriac_task_history_events'))::int8",
        )
        .fetch_one(pool)
        .await
        .expect("table sizes"),
    };
    bytes as f64 / 1e6
}

/// Milliseconds of each of `runs` runs of `query`, sorted.
async fn measure<F, Fut>(runs: usize, mut query: F) -> Vec<f64>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = usize>,
{
    // One untimed run warms the statement cache.
    query(runs).await;
    let mut times = Vec::with_capacity(runs);
    for run in 0..runs {
        let started = Instant::now();
        std::hint::black_box(query(run).await);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

/// The label, p50 and p99 of every query.
type Results = Vec<(String, f64, f64)>;

async fn run_queries(history: &TaskHistory, rows: usize, runs: usize) -> Results {
    let mut results = Results::new();
    let window = |run: usize, hours: i64| {
        let offset = (run * 7919) % (7 * 24 - hours as usize);
        let since = start_time() + TimeDelta::hours(offset as i64);
        (since, since + TimeDelta::hours(hours))
    };
    let mut record = |label: &str, times: Vec<f64>| {
        results.push((
            label.to_owned(),
            percentile(&times, 0.5),
            percentile(&times, 0.99),
        ));
    };
    let page = |filter: TaskFilter| async move {
        history.list(&filter, None, 50).await.unwrap().tasks.len()
    };
    let times = measure(runs, |_| page(TaskFilter::default())).await;
    record("newest 50, no filter", times);
    let times = measure(runs, |_| {
        page(TaskFilter {
            states: vec![TaskState::Failure],
            ..TaskFilter::default()
        })
    })
    .await;
    record("state = FAILURE", times);
    let times = measure(runs, |run| {
        page(TaskFilter {
            states: vec![TaskState::Failure],
            name: Some(task_name(run % NAMES)),
            ..TaskFilter::default()
        })
    })
    .await;
    record("state + name", times);
    let times = measure(runs, |run| async move {
        let filter = TaskFilter {
            name: Some(task_name(run % NAMES)),
            ..TaskFilter::default()
        };
        let mut cursor = None;
        let mut tasks = 0;
        for _ in 0..10 {
            let page = history.list(&filter, cursor, 50).await.unwrap();
            tasks += page.tasks.len();
            cursor = page.next;
        }
        tasks
    })
    .await;
    // The walk is timed whole; a page is a tenth of it.
    let per_page: Vec<f64> = times.iter().map(|total| total / 10.0).collect();
    record("name, pages 1-10 by cursor (per page)", per_page);
    let times = measure(runs, |run| {
        let (since, until) = window(run, 1);
        page(TaskFilter {
            worker: Some(worker_name(run % WORKERS)),
            since: Some(since),
            until: Some(until),
            ..TaskFilter::default()
        })
    })
    .await;
    record("worker + 1 h window", times);
    let times = measure(runs, |run| {
        let (since, until) = window(run, 1);
        page(TaskFilter {
            states: vec![TaskState::Success],
            time_field: TimeField::Done,
            since: Some(since),
            until: Some(until),
            ..TaskFilter::default()
        })
    })
    .await;
    record("state + done in 1 h window", times);
    let times = measure(runs, |run| {
        page(TaskFilter {
            queue: Some(QUEUES[run % QUEUES.len()].to_owned()),
            ..TaskFilter::default()
        })
    })
    .await;
    record("queue", times);
    let times = measure(runs, |run| {
        page(TaskFilter {
            task_id_prefix: Some(format!("{:04x}", (run * 2654435761) % 0x10000)),
            ..TaskFilter::default()
        })
    })
    .await;
    record("task id prefix (4 hex)", times);
    let times = measure(runs, |run| {
        let order = (run * 104_729) % rows * 7 + 100_000;
        page(TaskFilter {
            args_contains: Some(format!("order-{order}'")),
            ..TaskFilter::default()
        })
    })
    .await;
    record("args search, 1 match", times);
    let times = measure(runs, |_| {
        page(TaskFilter {
            args_contains: Some("customer_id".into()),
            ..TaskFilter::default()
        })
    })
    .await;
    record("args search, every row matches", times);
    // `'customer_id': 4711`: one part (`4711`) is in a few hundred rows (under the 2,000 of
    // `SearchTuning::rare_below`).
    let times = measure(runs, |run| {
        page(TaskFilter {
            states: vec![TaskState::Failure],
            args_contains: Some(format!("'customer_id': {}", 1000 + run * 211 % 49_000)),
            ..TaskFilter::default()
        })
    })
    .await;
    record("args search + state, one rare part", times);
    // `'amount': 7.5`: every part is in 10 % of the rows or more, the whole in 0.2 %.
    let times = measure(runs, |run| {
        page(TaskFilter {
            states: vec![TaskState::Failure],
            args_contains: Some(format!("'amount': {}.5", run % 100)),
            ..TaskFilter::default()
        })
    })
    .await;
    record("args search + state, only common parts", times);
    let times = measure(runs, |_| async {
        history.state_counts().await.unwrap().len()
    })
    .await;
    record("counts per state", times);
    let times = measure(runs, |run| async move {
        let filter = TaskFilter {
            name: Some(task_name(run % NAMES)),
            ..TaskFilter::default()
        };
        history.count(&filter, 10_000).await.unwrap().tasks as usize
    })
    .await;
    record("count name (cap 10,000)", times);
    let times = measure(runs, |run| async move {
        let (since, until) = window(run, 1);
        let filter = TaskFilter {
            worker: Some(worker_name(run % WORKERS)),
            since: Some(since),
            until: Some(until),
            ..TaskFilter::default()
        };
        history.count(&filter, 10_000).await.unwrap().tasks as usize
    })
    .await;
    record("count worker + 1 h window", times);
    let newest = history
        .list(&TaskFilter::default(), None, 1000)
        .await
        .unwrap()
        .tasks;
    let times = measure(runs, |run| {
        let task_id = newest[run % newest.len()].task_id.clone();
        async move {
            history
                .task(&task_id)
                .await
                .unwrap()
                .map_or(0, |detail| detail.timeline.len())
        }
    })
    .await;
    record("task detail (row + timeline)", times);
    results
}

fn argument(name: &str, default: usize) -> usize {
    let arguments: Vec<String> = std::env::args().collect();
    arguments
        .iter()
        .position(|argument| argument == name)
        .and_then(|index| arguments.get(index + 1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn flag(name: &str) -> Option<String> {
    let arguments: Vec<String> = std::env::args().collect();
    let index = arguments.iter().position(|argument| argument == name)?;
    Some(arguments.get(index + 1).cloned().unwrap_or_default())
}

#[tokio::main]
async fn main() {
    let rows = argument("--rows", 1_000_000);
    let runs = argument("--runs", 200);
    let kinds = match flag("--only").as_deref() {
        Some("sqlite") => vec![DatabaseKind::Sqlite],
        Some("postgres") => vec![DatabaseKind::Postgres],
        _ => vec![DatabaseKind::Sqlite, DatabaseKind::Postgres],
    };
    let mut columns = Vec::new();
    if let Some(url) = flag("--reuse") {
        // Queries only, on a database an earlier `--keep` run left behind.
        let mut options = DatabaseOptions::new(&url);
        options.schema = flag("--schema");
        let database = Database::connect_with(&options)
            .await
            .expect("open the kept database");
        let history = TaskHistory::new(database);
        for (label, p50, p99) in run_queries(&history, rows, runs).await {
            println!("| {label} | {p50:.2} | {p99:.2} |");
        }
        return;
    }
    for kind in kinds {
        let test_database = TestDatabase::new(kind, "bench");
        let options = DatabaseOptions {
            schema: test_database.schema.clone(),
            ..DatabaseOptions::new(&test_database.url)
        };
        let database = Database::connect_with(&options)
            .await
            .unwrap_or_else(|error| panic!("cannot open {}: {error}", test_database.url));
        let history = TaskHistory::new(database.clone());
        let (seconds, events) = load(&history, rows).await;
        println!(
            "{kind:?}: ingested {rows} tasks ({events} events) in {seconds:.1} s: \
             {:.0} tasks/s, {:.0} events/s",
            rows as f64 / seconds,
            events as f64 / seconds
        );
        analyze(&history).await;
        println!(
            "{kind:?}: {:.0} MB on disk",
            size_in_megabytes(&database, &test_database).await
        );
        columns.push((
            kind,
            rows as f64 / seconds,
            run_queries(&history, rows, runs).await,
        ));
        database.close().await;
        if flag("--keep").is_some() {
            println!(
                "{kind:?}: kept {} {:?}",
                test_database.url, test_database.schema
            );
            std::mem::forget(test_database);
        }
    }
    println!();
    println!("history benchmark: {rows} tasks, {runs} runs per query, 50 rows per page");
    let mut header = String::from("| query |");
    let mut rule = String::from("|---|");
    for (kind, _, _) in &columns {
        header.push_str(&format!(" {kind:?} p50 (ms) | {kind:?} p99 (ms) |"));
        rule.push_str("---:|---:|");
    }
    println!("{header}");
    println!("{rule}");
    let mut ingest = String::from("| ingest, tasks/s |");
    for (_, tasks_per_second, _) in &columns {
        ingest.push_str(&format!(" {tasks_per_second:.0} | |"));
    }
    println!("{ingest}");
    for (index, (label, _, _)) in columns[0].2.iter().enumerate() {
        let mut line = format!("| {label} |");
        for (_, _, results) in &columns {
            let (_, p50, p99) = &results[index];
            line.push_str(&format!(" {p50:.2} | {p99:.2} |"));
        }
        println!("{line}");
    }
}
