//! Test helpers that run real services: a private `redis-server` and Python Celery peers.
//!
//! Enabled by the `testkit` feature; used by the integration tests (`tests/it`) of this crate
//! and of `server`. Nothing here depends on the rest of `celeriac`, so the harness can be
//! trusted while the engine is being built.
//!
//! # Layout
//! - [`RedisServer`] (`redis_server.rs`): one private `redis-server` per test process
//!   ([`RedisServer::shared`], or `TEST_REDIS_URL`), and owned servers that chaos tests can
//!   kill and restart ([`RedisServer::start_private`]).
//! - [`SentinelRedis`] (`sentinel_redis.rs`): a master, a replica and three sentinels.
//! - [`TlsRedis`] (`tls_redis.rs`): a TLS-only `redis-server` with a CA made for the test.
//! - [`TestEnv`] (`env.rs`): one test's broker and backend URLs and unique kombu
//!   `global_keyprefix`, plus the `PEER_*` variables that point the Python peer at them.
//! - [`CeleryPeer`] (`celery_peer.rs`): a Python `celery worker` child process, and
//!   `peer_cli.py` to send tasks, read results and run kombu's restore from Rust.
//! - [`Flower`] (`flower.rs`): real Flower 2.2 (`celery flower` from the same venv) on a free
//!   port, and its HTTP API, to check what the Celery monitor makes of our workers.
//! - [`TestDatabase`] (`database.rs`): a private SQLite file or PostgreSQL schema for one
//!   test, dropped with it.
//! - [`eventually`] (`eventually.rs`): retry a check until it holds, instead of sleeping.
//! - `watchdog.rs`: how child processes are tied to the test process's lifetime.
//!
//! # Example
//! ```no_run
//! use celeriac::testkit::{CeleryPeer, TestEnv};
//!
//! let env = TestEnv::new("round_trip");
//! let queue = env.queue("math");
//! let _worker = CeleryPeer::worker(&env, &[queue.as_str()], "math@%h");
//! let sent = CeleryPeer::cli(&env, &["send", "demo.add", "--args", "[2, 3]", "--queue", &queue]);
//! let task_id = sent["task_id"].as_str().expect("send prints a task id");
//! let result = CeleryPeer::cli(&env, &["result", task_id]);
//! assert_eq!(result["result"], 5);
//! ```
//!
//! # Requirements
//! `redis-server` on `PATH` (`apt-get install -y redis-server`), the Python venv made by
//! `scripts/python-venv.sh`, and for database tests PostgreSQL on 127.0.0.1:5432 with a
//! database `test` (`scripts/setup.sh --test` starts and prepares it). A missing one fails the
//! test with a message naming the command.

mod celery_peer;
mod database;
mod django;
mod env;
mod eventually;
mod flower;
mod redis_server;
mod sentinel_redis;
mod tls_redis;
mod watchdog;

pub use celery_peer::CeleryPeer;
pub use database::{postgres_url, DatabaseKind, TestDatabase};
pub use django::DjangoProject;
pub use env::{CeleryVersion, TestEnv};
pub use eventually::{eventually, eventually_blocking, POLL_INTERVAL};
pub use flower::{Flower, FlowerResponse};
pub use redis_server::RedisServer;
pub use sentinel_redis::{SentinelRedis, MASTER_NAME};
pub use tls_redis::TlsRedis;
