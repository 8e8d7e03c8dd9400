//! The benchmark's own `redis-server`: a fresh process on a free port with persistence off,
//! flushed between runs and killed on drop, so no run sees another's keys and the shared Redis
//! on 6379 is never touched.
//!
//! It also reads Redis's own counters. `INFO commandstats` counts every command, including
//! the ones our polling sends and the ones Lua scripts call (`EVALSHA` of the fetch script
//! shows up as one `evalsha` plus its `rpop`, `zadd` and `hset`). [`BenchRedis`] counts the
//! commands it sends itself by name, and [`Counters::commands_since`] subtracts them, so a
//! delta is what the worker or producer under test caused.

use anyhow::Context;
use redis::aio::MultiplexedConnection;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// A private `redis-server` and two connections to it (broker db 0, results db 1).
///
/// Dropping it kills the server (SIGKILL; nothing is persisted).
pub(crate) struct BenchRedis {
    child: Child,
    port: u16,
    broker: MultiplexedConnection,
    results: MultiplexedConnection,
    /// Commands this struct sent, by lowercase name, so they can be left out of deltas.
    own_commands: Mutex<BTreeMap<String, u64>>,
}

/// A snapshot of Redis's command counters, by command name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    calls: BTreeMap<String, u64>,
    own: BTreeMap<String, u64>,
}

impl Counters {
    /// The commands others sent between `earlier` and `self`, by name (zero counts left out).
    pub(crate) fn commands_since(&self, earlier: &Counters) -> BTreeMap<String, u64> {
        let mut delta = BTreeMap::new();
        for (name, &calls) in &self.calls {
            let before = earlier.calls.get(name).copied().unwrap_or(0);
            let own = self.own.get(name).copied().unwrap_or(0)
                - earlier.own.get(name).copied().unwrap_or(0);
            let others = calls.saturating_sub(before).saturating_sub(own);
            if others > 0 {
                delta.insert(name.clone(), others);
            }
        }
        delta
    }
}

impl BenchRedis {
    /// Starts `redis-server` on a free port and waits until it answers.
    pub(crate) async fn start() -> anyhow::Result<BenchRedis> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .context("redis-server not found: apt-get install redis-server")?;
        let mut attempts = 0;
        let (broker, results) = loop {
            match Self::connect(port).await {
                Ok(connections) => break connections,
                Err(error) if attempts > 200 => return Err(error),
                Err(_) => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        };
        Ok(BenchRedis {
            child,
            port,
            broker,
            results,
            own_commands: Mutex::new(BTreeMap::new()),
        })
    }

    async fn connect(port: u16) -> anyhow::Result<(MultiplexedConnection, MultiplexedConnection)> {
        // redis-rs times a reply out after 500 ms by default, which a loaded 2-core machine
        // (a prefork worker, Redis and this process) can exceed; a poll may wait.
        let config = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(Duration::from_secs(30)))
            .set_connection_timeout(Some(Duration::from_secs(5)));
        let broker = redis::Client::open(format!("redis://127.0.0.1:{port}/0"))?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let results = redis::Client::open(format!("redis://127.0.0.1:{port}/1"))?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok((broker, results))
    }

    /// The broker URL (db 0).
    pub(crate) fn broker_url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The result backend URL (db 1, which holds nothing else, so `DBSIZE` counts results).
    pub(crate) fn backend_url(&self) -> String {
        format!("redis://127.0.0.1:{}/1", self.port)
    }

    /// The server's process id, for its CPU time.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    fn count_own(&self, name: &str) {
        if let Ok(mut own) = self.own_commands.lock() {
            *own.entry(name.to_owned()).or_insert(0) += 1;
        }
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        results_db: bool,
        name: &str,
        args: &[&str],
    ) -> anyhow::Result<T> {
        self.count_own(&name.to_ascii_lowercase());
        let mut command = redis::cmd(name);
        for arg in args {
            command.arg(*arg);
        }
        let mut connection = if results_db {
            self.results.clone()
        } else {
            self.broker.clone()
        };
        Ok(command.query_async(&mut connection).await?)
    }

    /// Deletes every key in every database.
    pub(crate) async fn flush_all(&self) -> anyhow::Result<()> {
        self.query::<()>(false, "FLUSHALL", &[]).await
    }

    /// `LLEN` of a broker key.
    pub(crate) async fn list_length(&self, key: &str) -> anyhow::Result<u64> {
        self.query(false, "LLEN", &[key]).await
    }

    /// `HLEN` of a broker key.
    pub(crate) async fn hash_length(&self, key: &str) -> anyhow::Result<u64> {
        self.query(false, "HLEN", &[key]).await
    }

    /// How many keys the results database holds (one per stored task state).
    pub(crate) async fn result_count(&self) -> anyhow::Result<u64> {
        self.query(true, "DBSIZE", &[]).await
    }

    /// The command counters now.
    pub(crate) async fn counters(&self) -> anyhow::Result<Counters> {
        let text: String = self.query(false, "INFO", &["commandstats"]).await?;
        let mut calls = BTreeMap::new();
        for line in text.lines() {
            // cmdstat_evalsha:calls=40000,usec=...; subcommands look like cmdstat_client|setinfo.
            let Some(rest) = line.strip_prefix("cmdstat_") else {
                continue;
            };
            let Some((name, fields)) = rest.split_once(':') else {
                continue;
            };
            let count = fields
                .split(',')
                .find_map(|field| field.strip_prefix("calls="))
                .and_then(|value| value.parse::<u64>().ok())
                .unwrap_or(0);
            calls.insert(name.to_owned(), count);
        }
        let own = self
            .own_commands
            .lock()
            .map(|own| own.clone())
            .unwrap_or_default();
        Ok(Counters { calls, own })
    }
}

impl Drop for BenchRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
