//! The chaos suite's harness: a private `redis-server`, real `celeriac worker` processes that
//! can be killed, frozen and restarted, and a ground truth outside the broker (a file every
//! `chaos.record` run appends to) from which lost and duplicated tasks are counted.

use celeriac::config::Config;
use celeriac::producer::{Producer, SendOptions};
use celeriac::testkit::RedisServer;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a chaos run may go on: `CELERIAC_CHAOS_SCALE` (default 1) multiplies the amount of
/// work and faults, for the documented long form.
pub fn scale() -> u32 {
    std::env::var("CELERIAC_CHAOS_SCALE")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// One chaos scenario's world.
pub struct Cluster {
    pub redis: RedisServer,
    pub truth: PathBuf,
    pub visibility_timeout: f64,
    logs: PathBuf,
    spawned: u32,
}

/// One `celeriac worker` process.
pub struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal with the `kill` command (no unsafe code in tests).
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .stderr(Stdio::null())
            .status();
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process has exited (and reaps it).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.signal("CONT");
        self.kill();
    }
}

impl Cluster {
    pub fn new(name: &str, visibility_timeout: f64) -> Cluster {
        Cluster::with_redis(name, visibility_timeout, RedisServer::start_private())
    }

    /// A cluster whose Redis keeps its data across a kill and restart (append-only file).
    pub fn persistent(name: &str, visibility_timeout: f64) -> Cluster {
        Cluster::with_redis(
            name,
            visibility_timeout,
            RedisServer::start_private_persistent(),
        )
    }

    fn with_redis(name: &str, visibility_timeout: f64, redis: RedisServer) -> Cluster {
        let directory = std::env::temp_dir().join(format!("celeriac-chaos-{name}-{}", uuid_like()));
        std::fs::create_dir_all(&directory).unwrap();
        Cluster {
            redis,
            truth: directory.join("truth.jsonl"),
            visibility_timeout,
            logs: directory,
            spawned: 0,
        }
    }

    pub fn config(&self) -> Config {
        let mut config = Config {
            broker_url: self.redis.url(0),
            result_backend: Some(self.redis.url(1)),
            task_acks_late: true,
            worker_prefetch_multiplier: 1,
            ..Config::default()
        };
        config.broker_transport_options.visibility_timeout = self.visibility_timeout;
        config.broker_transport_options.polling_interval = 0.01;
        config
    }

    pub async fn producer(&self) -> Producer {
        Producer::connect(&self.config())
            .await
            .expect("producer connects to the private Redis")
    }

    /// Starts a worker; `failpoints` is the `CELERIAC_FAILPOINTS` value ("" for none).
    pub fn worker(
        &mut self,
        concurrency: u32,
        failpoints: &str,
        extra: &[(&str, &str)],
    ) -> WorkerProcess {
        self.spawned += 1;
        let name = format!("chaos{}@test", self.spawned);
        let log =
            std::fs::File::create(self.logs.join(format!("worker{}.log", self.spawned))).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_shop"));
        command
            .args([
                "worker",
                "-Q",
                "celery",
                "-c",
                &concurrency.to_string(),
                "-n",
                &name,
            ])
            .env_remove("CELERIAC_CONFIG")
            .env("CELERIAC_BROKER_URL", self.redis.url(0))
            .env("CELERIAC_RESULT_BACKEND", self.redis.url(1))
            .env("CELERIAC_TASK_ACKS_LATE", "true")
            .env("CELERIAC_WORKER_PREFETCH_MULTIPLIER", "1")
            .env(
                "CELERIAC_BROKER_TRANSPORT_OPTIONS",
                json!({"visibility_timeout": self.visibility_timeout, "polling_interval": 0.01})
                    .to_string(),
            )
            .env("CELERIAC_CHAOS_TRUTH", &self.truth)
            .env("CELERIAC_FAILPOINTS", failpoints)
            .current_dir(&self.logs)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (key, value) in extra {
            command.env(key, value);
        }
        WorkerProcess {
            child: command.spawn().expect("celeriac worker starts"),
        }
    }

    /// Enqueues `chaos.record(token, milliseconds)`; returns the token when the send was
    /// acknowledged by Redis (only those count as enqueued).
    pub async fn enqueue(
        &self,
        producer: &Producer,
        token: &str,
        milliseconds: u64,
        options: SendOptions,
    ) -> Option<String> {
        producer
            .send_task(
                "chaos.record",
                vec![json!(token), json!(milliseconds)],
                Default::default(),
                options,
            )
            .await
            .ok()
            .map(|_| token.to_owned())
    }

    /// Every run recorded in the ground truth, by token.
    pub fn runs(&self) -> BTreeMap<String, Vec<Value>> {
        let text = std::fs::read_to_string(&self.truth).unwrap_or_default();
        let mut runs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for line in text.lines() {
            if let Ok(record) = serde_json::from_str::<Value>(line) {
                let token = record["token"].as_str().unwrap_or_default().to_owned();
                runs.entry(token).or_default().push(record);
            }
        }
        runs
    }

    /// Waits until every token ran at least once, or `timeout` passes; returns the runs.
    pub async fn wait_for_all(
        &self,
        tokens: &BTreeSet<String>,
        timeout: Duration,
    ) -> BTreeMap<String, Vec<Value>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let runs = self.runs();
            if tokens.iter().all(|token| runs.contains_key(token))
                || std::time::Instant::now() > deadline
            {
                return runs;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        for index in 1..=self.spawned {
            let log = std::fs::read_to_string(self.logs.join(format!("worker{index}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(8).collect();
            text.push_str(&format!(
                "--- worker{index}\n{}\n",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        text
    }
}

/// Counts of a run against the ground truth.
#[derive(Debug, Default)]
pub struct Tally {
    pub enqueued: usize,
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    pub unflagged_duplicates: Vec<String>,
}

pub fn tally(tokens: &BTreeSet<String>, runs: &BTreeMap<String, Vec<Value>>) -> Tally {
    let mut tally = Tally {
        enqueued: tokens.len(),
        ..Tally::default()
    };
    for token in tokens {
        match runs.get(token) {
            None => tally.lost.push(token.clone()),
            Some(records) if records.len() > 1 => {
                tally.duplicated.push(token.clone());
                if !records
                    .iter()
                    .any(|record| record["redelivered"] == json!(true))
                {
                    tally.unflagged_duplicates.push(token.clone());
                }
            }
            Some(_) => {}
        }
    }
    tally
}

fn uuid_like() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        celeriac::clock::now().timestamp_subsec_nanos()
    )
}
