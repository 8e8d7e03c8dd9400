//! Beat's HA guarantee proven with real processes: three `celeriac beat`s on one SQLite file and
//! one private Redis, the leader repeatedly killed, frozen past its lease, cut off from Redis,
//! and killed while the database stalls its run records. Ground truth is the queue itself:
//! every message carries its schedule and slot, so a second enqueue of a slot or a missing slot
//! is visible. The same scenario under the `beat_no_claim` failpoint must produce duplicates,
//! so we know the check can fail.
//!
//! `CELERIAC_CHAOS_SCALE=5 cargo test -p shop --test it beat_chaos` runs it five times longer.

use crate::chaos_support::scale;
use celeriac::beat::{BEAT_SLOT_HEADER, PERIODIC_TASK_NAME_HEADER};
use celeriac::clock;
use celeriac::config::Config;
use celeriac::db::Database;
use celeriac::producer::Producer;
use celeriac::protocol::{Envelope, TaskMessage};
use celeriac::testkit::RedisServer;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(3);
const TICK: Duration = Duration::from_millis(500);
const QUEUE: &str = "beatq";

/// The schedules: (name, `schedule add` options, period).
const SCHEDULES: [(&str, &[&str], i64); 3] = [
    ("tick", &["--every", "1s"], 1),
    ("tick3", &["--every", "3s"], 3),
    ("minutely", &["--crontab", "* * * * *"], 60),
];

struct World {
    redis: RedisServer,
    directory: PathBuf,
    database_url: String,
    failpoints: String,
    beats: Vec<Option<Child>>,
    spawned: usize,
}

impl World {
    fn new(failpoints: &str) -> World {
        let directory = std::env::temp_dir().join(format!(
            "celeriac-beat-chaos-{}-{}",
            std::process::id(),
            clock::now().timestamp_subsec_nanos()
        ));
        std::fs::create_dir_all(&directory).unwrap();
        World {
            redis: RedisServer::start_private(),
            database_url: format!("sqlite://{}", directory.join("celeriac.db").display()),
            directory,
            failpoints: failpoints.to_owned(),
            beats: Vec::new(),
            spawned: 0,
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_shop"));
        command
            .env_remove("CELERIAC_CONFIG")
            .env("CELERIAC_BROKER_URL", self.redis.url(0))
            .env("CELERIAC_DATABASE_URL", &self.database_url)
            .env(
                "CELERIAC_BEAT_LEASE_TIMEOUT",
                LEASE.as_secs_f64().to_string(),
            )
            .env(
                "CELERIAC_BEAT_MAX_LOOP_INTERVAL",
                TICK.as_secs_f64().to_string(),
            )
            .env("CELERIAC_FAILPOINTS", &self.failpoints)
            .current_dir(&self.directory)
            .stdin(Stdio::null());
        command
    }

    fn cli(&self, args: &[&str]) -> String {
        let output = self.command().args(args).output().expect("celeriac runs");
        assert!(
            output.status.success(),
            "celeriac {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Starts (or restarts) beat `index`.
    fn start_beat(&mut self, index: usize) {
        self.spawned += 1;
        let log = std::fs::File::create(
            self.directory
                .join(format!("beat{index}-{}.log", self.spawned)),
        )
        .unwrap();
        let child = self
            .command()
            .args(["beat", "-n", &format!("beat{index}@chaos")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("celeriac beat starts");
        if self.beats.len() <= index {
            self.beats.resize_with(index + 1, || None);
        }
        self.beats[index] = Some(child);
    }

    fn signal(&self, index: usize, signal: &str) {
        if let Some(child) = &self.beats[index] {
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(child.id().to_string())
                .status();
        }
    }

    fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.beats[index].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn producer(&self) -> Producer {
        // The same database as the beats: beat's Redis keys are namespaced by it.
        let config = Config {
            broker_url: self.redis.url(0),
            database_url: self.database_url.clone(),
            ..Config::default()
        };
        Producer::connect(&config).await.expect("producer")
    }

    /// The index of the beat that holds the lease.
    async fn leader(&self, producer: &Producer) -> Option<usize> {
        let leader = producer.broker().beat_leader().await.ok()??;
        leader
            .owner
            .strip_prefix("beat")?
            .strip_suffix("@chaos")?
            .parse()
            .ok()
    }

    async fn wait_for_leader(&self, producer: &Producer) -> usize {
        for _ in 0..200 {
            if let Some(index) = self.leader(producer).await {
                return index;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no beat became leader; logs in {}",
            self.directory.display()
        );
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for index in 0..self.beats.len() {
            self.signal(index, "CONT");
            self.kill(index);
        }
    }
}

/// Raw queue messages as (schedule, slot).
async fn queued(redis: &mut redis::aio::MultiplexedConnection) -> Vec<(String, DateTime<Utc>)> {
    let raw: Vec<String> = redis::cmd("LRANGE")
        .arg(QUEUE)
        .arg(0)
        .arg(-1)
        .query_async(redis)
        .await
        .unwrap_or_default();
    raw.iter()
        .filter_map(|raw| {
            let envelope = Envelope::from_json(raw.as_bytes()).ok()?;
            let message = TaskMessage::decode(&envelope).ok()?;
            let header = |name: &str| message.headers.extra.get(name)?.as_str().map(str::to_owned);
            let slot = DateTime::parse_from_rfc3339(&header(BEAT_SLOT_HEADER)?).ok()?;
            Some((header(PERIODIC_TASK_NAME_HEADER)?, slot.with_timezone(&Utc)))
        })
        .collect()
}

#[derive(Debug, Default)]
struct Outcome {
    messages: usize,
    duplicates: Vec<(String, DateTime<Utc>, usize)>,
    missing: Vec<(String, DateTime<Utc>)>,
    faults: usize,
    /// (fault, seconds from the fault to the next push).
    handovers: Vec<(&'static str, f64)>,
}

/// The faults, in turn.
const FAULTS: [&str; 4] = ["kill", "freeze", "disconnect", "stall-and-kill"];

async fn scenario(failpoints: &str, faults: &[&'static str], rounds: usize) -> Outcome {
    let mut world = World::new(failpoints);
    for (name, schedule, _) in SCHEDULES {
        let mut args = vec![
            "schedule",
            "add",
            name,
            "--task",
            "demo.noop",
            "--queue",
            QUEUE,
        ];
        args.extend_from_slice(schedule);
        world.cli(&args);
    }
    for index in 0..3 {
        world.start_beat(index);
    }
    let producer = world.producer().await;
    let mut redis = redis::Client::open(world.redis.url(0))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // Watches the queue length: when each push became visible (within 20 ms).
    let arrivals: Arc<Mutex<Vec<DateTime<Utc>>>> = Arc::default();
    let watcher = {
        let arrivals = arrivals.clone();
        let mut redis = redis.clone();
        tokio::spawn(async move {
            let mut seen = 0usize;
            loop {
                let length: usize = redis::cmd("LLEN")
                    .arg(QUEUE)
                    .query_async(&mut redis)
                    .await
                    .unwrap_or(seen);
                if length > seen {
                    let now = clock::now();
                    arrivals.lock().unwrap().extend((seen..length).map(|_| now));
                    seen = length;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    world.wait_for_leader(&producer).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let database = Database::connect(&world.database_url).await.unwrap();
    let mut outcome = Outcome::default();
    let mut fault_times = Vec::new();
    for round in 0..rounds {
        let fault = faults[round % faults.len()];
        let leader = world.wait_for_leader(&producer).await;
        match fault {
            "kill" => {
                fault_times.push((fault, clock::now()));
                world.kill(leader);
                world.start_beat(leader);
            }
            "freeze" => {
                fault_times.push((fault, clock::now()));
                world.signal(leader, "STOP");
                tokio::time::sleep(LEASE + Duration::from_millis(1500)).await;
                world.signal(leader, "CONT");
            }
            "disconnect" => {
                fault_times.push((fault, clock::now()));
                let _: Result<i64, _> = redis::cmd("CLIENT")
                    .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"][..])
                    .query_async(&mut redis)
                    .await;
                let _: Result<i64, _> = redis::cmd("CLIENT")
                    .arg(&["KILL", "TYPE", "pubsub"][..])
                    .query_async(&mut redis)
                    .await;
            }
            _ => {
                // The leader pushes, then blocks on the run records; it dies before they land.
                let Database::Sqlite(pool) = &database else {
                    unreachable!("the chaos world is SQLite")
                };
                let mut connection = pool.acquire().await.unwrap();
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut *connection)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(1200)).await;
                fault_times.push((fault, clock::now()));
                world.kill(leader);
                tokio::time::sleep(Duration::from_millis(300)).await;
                sqlx::query("ROLLBACK")
                    .execute(&mut *connection)
                    .await
                    .unwrap();
                drop(connection);
                world.start_beat(leader);
            }
        }
        outcome.faults += 1;
        tokio::time::sleep(LEASE + Duration::from_secs(3)).await;
    }
    // Let the last handover finish, then stop the beats and read the ground truth.
    tokio::time::sleep(LEASE + Duration::from_secs(2)).await;
    for index in 0..3 {
        world.kill(index);
    }
    watcher.abort();
    let arrivals = arrivals.lock().unwrap().clone();
    for (fault, at) in fault_times {
        let next = arrivals
            .iter()
            .find(|arrival| **arrival > at + TimeDelta::milliseconds(100));
        if let Some(next) = next {
            outcome
                .handovers
                .push((fault, (*next - at).num_milliseconds() as f64 / 1000.0));
        }
    }
    let messages = queued(&mut redis).await;
    outcome.messages = messages.len();
    let mut by_slot: BTreeMap<(String, DateTime<Utc>), usize> = BTreeMap::new();
    for message in messages {
        *by_slot.entry(message).or_default() += 1;
    }
    for ((name, slot), count) in &by_slot {
        if *count > 1 {
            outcome.duplicates.push((name.clone(), *slot, *count));
        }
    }
    for (name, _, period) in SCHEDULES {
        let slots: Vec<DateTime<Utc>> = by_slot
            .keys()
            .filter(|(schedule, _)| schedule == name)
            .map(|(_, slot)| *slot)
            .collect();
        for pair in slots.windows(2) {
            let mut expected = pair[0] + TimeDelta::seconds(period);
            while expected < pair[1] {
                outcome.missing.push((name.to_owned(), expected));
                expected += TimeDelta::seconds(period);
            }
        }
    }
    if !outcome.missing.is_empty() || (failpoints.is_empty() && !outcome.duplicates.is_empty()) {
        eprintln!("beat logs kept in {}", world.directory.display());
    }
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_beats_under_faults_send_each_slot_exactly_once() {
    let rounds = 8 * scale() as usize;
    let outcome = scenario("", &FAULTS, rounds).await;
    let worst = outcome
        .handovers
        .iter()
        .map(|(_, seconds)| *seconds)
        .fold(0.0, f64::max);
    eprintln!(
        "beat chaos: {} faults, {} messages, {} duplicates, {} missing, handovers {:?}, max {worst:.2} s",
        outcome.faults,
        outcome.messages,
        outcome.duplicates.len(),
        outcome.missing.len(),
        outcome.handovers
    );
    assert!(outcome.messages > 40, "beats sent too little: {outcome:?}");
    assert!(
        outcome.duplicates.is_empty(),
        "duplicates: {:?}",
        outcome.duplicates
    );
    assert!(
        outcome.missing.is_empty(),
        "missing slots: {:?}",
        outcome.missing
    );
    // The bound: lease plus one tick, plus 0.5 s for loading and for seeing the push.
    let bound = (LEASE + TICK).as_secs_f64() + 0.5;
    assert!(
        worst <= bound,
        "a handover took {worst:.2} s (bound {bound} s)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_claim_the_same_faults_duplicate_slots() {
    let outcome = scenario("beat_no_claim", &["stall-and-kill"], 3).await;
    assert!(
        !outcome.duplicates.is_empty(),
        "without the per-slot claim a killed leader's unrecorded slots must be sent twice, \
         or the check cannot fail: {outcome:?}"
    );
}
