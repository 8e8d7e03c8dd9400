//! Beat test harness: a schedule store on a private database, a producer on a private Redis
//! prefix, beats run as tokio tasks, and the queue read back as decoded messages with their
//! slot headers (the ground truth of what beat sent).

use crate::history::open_database;
use crate::support::config;
use celeriac::beat::{
    Beat, BeatOptions, BeatStats, Interval, PeriodicTask, Schedule, ScheduleStore,
    BEAT_SLOT_HEADER, PERIODIC_TASK_NAME_HEADER,
};
use celeriac::db::Database;
use celeriac::producer::Producer;
use celeriac::protocol::{Envelope, TaskMessage};
use celeriac::testkit::{DatabaseKind, TestDatabase, TestEnv};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// One beat test's world.
pub struct BeatWorld {
    pub env: TestEnv,
    pub database: Database,
    pub store: ScheduleStore,
    pub producer: Producer,
    pub queue: String,
    _test_database: TestDatabase,
}

/// One message beat sent, as read from the queue.
#[derive(Debug, Clone)]
pub struct Sent {
    pub schedule: String,
    pub slot: Option<DateTime<Utc>>,
    pub message: TaskMessage,
}

/// A beat running as a tokio task; `stop` gives the lease up, `abort` does not (a crash).
pub struct RunningBeat {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<BeatStats>,
}

impl RunningBeat {
    pub async fn stop(self) -> BeatStats {
        let _ = self.stop.send(());
        self.handle.await.expect("beat task")
    }

    pub fn abort(self) {
        self.handle.abort();
    }
}

impl BeatWorld {
    pub async fn new(kind: DatabaseKind, name: &str) -> BeatWorld {
        let test_database = TestDatabase::new(kind, name);
        let database = open_database(&test_database).await;
        let env = TestEnv::new(name);
        let config = config(&env);
        let producer = Producer::connect(&config).await.expect("producer");
        BeatWorld {
            queue: env.queue("beat"),
            store: ScheduleStore::new(database.clone()),
            env,
            database,
            producer,
            _test_database: test_database,
        }
    }

    /// Options for a quick test beat named `node`.
    pub fn options(&self, node: &str) -> BeatOptions {
        BeatOptions {
            node_name: node.to_owned(),
            lease_timeout: Duration::from_secs(3),
            max_loop_interval: Duration::from_secs(1),
            ..BeatOptions::default()
        }
    }

    pub fn beat(&self, options: BeatOptions) -> Beat {
        Beat::new(self.store.clone(), self.producer.clone(), options)
    }

    pub fn start(&self, options: BeatOptions) -> RunningBeat {
        let beat = self.beat(options);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let handle = tokio::spawn(beat.run(async move {
            let _ = stopped.await;
        }));
        RunningBeat { stop, handle }
    }

    /// An entry sending `demo.add(2, 3)` to this world's queue every `every`.
    pub fn every(&self, name: &str, every: &str) -> PeriodicTask {
        let interval: Interval = every.parse().expect("interval");
        self.on(name, Schedule::Interval(interval))
    }

    pub fn on(&self, name: &str, schedule: Schedule) -> PeriodicTask {
        let mut task = PeriodicTask::new(name, "demo.add", schedule);
        task.args = serde_json::json!([2, 3]);
        task.queue = Some(self.queue.clone());
        task
    }

    /// Adds an entry and announces it, as the CLI does.
    pub async fn add(&self, task: &PeriodicTask) {
        self.store.add(task).await.expect("add schedule");
        self.announce().await;
    }

    pub async fn announce(&self) {
        self.producer
            .broker()
            .beat_announce_change()
            .await
            .expect("announce");
    }

    /// Every message in the queue, oldest first.
    pub async fn sent(&self) -> Vec<Sent> {
        let mut redis = self.env.redis().await;
        let raw: Vec<String> = redis::cmd("LRANGE")
            .arg(format!("{}{}", self.env.key_prefix, self.queue))
            .arg(0)
            .arg(-1)
            .query_async(&mut redis)
            .await
            .expect("LRANGE");
        raw.iter()
            .rev()
            .map(|raw| {
                let envelope = Envelope::from_json(raw.as_bytes()).expect("envelope");
                let message = TaskMessage::decode(&envelope).expect("task message");
                let header = |name: &str| {
                    message
                        .headers
                        .extra
                        .get(name)
                        .and_then(|value| value.as_str())
                        .map(str::to_owned)
                };
                Sent {
                    schedule: header(PERIODIC_TASK_NAME_HEADER).unwrap_or_default(),
                    slot: header(BEAT_SLOT_HEADER).map(|slot| {
                        DateTime::parse_from_rfc3339(&slot)
                            .expect("slot header")
                            .with_timezone(&Utc)
                    }),
                    message,
                }
            })
            .collect()
    }

    /// The slots sent for `schedule`, in send order.
    pub async fn slots(&self, schedule: &str) -> Vec<DateTime<Utc>> {
        self.sent()
            .await
            .into_iter()
            .filter(|sent| sent.schedule == schedule)
            .filter_map(|sent| sent.slot)
            .collect()
    }

    /// Waits until `schedule` has at least `count` messages; returns its slots.
    pub async fn wait_for(&self, schedule: &str, count: usize) -> Vec<DateTime<Utc>> {
        celeriac::testkit::eventually(
            Duration::from_secs(20),
            &format!("{count} messages of {schedule}"),
            || async move {
                let slots = self.slots(schedule).await;
                (slots.len() >= count).then_some(slots)
            },
        )
        .await
    }

    pub async fn raw_sql(&self, sql: &str) {
        match &self.database {
            Database::Sqlite(pool) => {
                sqlx::query(sql).execute(pool).await.expect("raw sql");
            }
            Database::Postgres(pool) => {
                sqlx::query(sql).execute(pool).await.expect("raw sql");
            }
        }
    }
}

/// Asserts that `slots` are unique and every `every` apart with none missing.
pub fn assert_contiguous(slots: &[DateTime<Utc>], every: chrono::TimeDelta) {
    let mut sorted = slots.to_vec();
    sorted.sort();
    for pair in sorted.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            every,
            "slots must be one period apart, unique and complete: {sorted:?}"
        );
    }
}
