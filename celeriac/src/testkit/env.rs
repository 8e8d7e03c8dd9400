//! One test's private corner of the shared Redis server.
//!
//! Every test builds a [`TestEnv`] with its own name. All tests share one `redis-server`
//! ([`RedisServer::shared`]); they stay out of each other's way because everything they
//! write is under a unique kombu `global_keyprefix` (`<name>-<8 hex>:`), which both Celeriac
//! and the Python peer honour, as Oban gives each test a unique name. Task ids are UUIDs, so
//! the result backend (database 1) needs no prefix.

use std::time::Duration;

use super::redis_server::RedisServer;

/// kombu's default `visibility_timeout`.
const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(3600);

/// Connection settings and a unique key prefix for one test.
///
/// Plain data: dropping it removes nothing (the keys live until the test process's private
/// Redis server goes away).
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// The name given to [`TestEnv::new`].
    pub name: String,
    /// Broker URL: database 0 of the shared server.
    pub redis_url: String,
    /// Result backend URL: database 1 of the shared server.
    pub backend_url: String,
    /// kombu `global_keyprefix` for this test, `"<name>-<8 hex>:"`.
    pub key_prefix: String,
    /// kombu `visibility_timeout` used by the Python peer (default 3600 s, kombu's default).
    pub visibility_timeout: Duration,
    /// Whether the Python peer stores extended results (`result_extended`).
    pub result_extended: bool,
    /// Which Python Celery the peer runs.
    pub celery: CeleryVersion,
    /// The peer's `task_routes`, as JSON (`PEER_ROUTES`).
    pub peer_routes: Option<String>,
    /// The CA file the peer trusts for a `rediss://` broker and backend (`PEER_SSL_CA`).
    pub peer_ssl_ca: Option<std::path::PathBuf>,
    /// The 8 hex digits that make this environment unique.
    unique: String,
}

/// The Python Celery of a peer: 5.4 (the default, `.venv-interop`) or 5.7 (`.venv-celery57`),
/// whose chord join differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeleryVersion {
    /// Celery 5.4, pinned in `tests/python/requirements.txt`.
    V5_4,
    /// Celery 5.7, pinned in `tests/python/requirements-5.7.txt`.
    V5_7,
}

impl TestEnv {
    /// A fresh environment on [`RedisServer::shared`], starting that server if needed.
    ///
    /// # Panics
    /// If the shared Redis server cannot be started.
    pub fn new(name: &str) -> TestEnv {
        let server = RedisServer::shared();
        let unique = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        TestEnv {
            name: name.to_string(),
            redis_url: server.url(0),
            backend_url: server.url(1),
            key_prefix: format!("{name}-{unique}:"),
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
            result_extended: false,
            celery: CeleryVersion::V5_4,
            peer_routes: None,
            peer_ssl_ca: None,
            unique,
        }
    }

    /// Sets the visibility timeout the Python peer uses (tests of restore want ~1 s).
    pub fn with_visibility_timeout(mut self, visibility_timeout: Duration) -> TestEnv {
        self.visibility_timeout = visibility_timeout;
        self
    }

    /// Runs the Python peer on Celery `version`.
    pub fn with_celery(mut self, version: CeleryVersion) -> TestEnv {
        self.celery = version;
        self
    }

    /// Gives the Python peer `task_routes` (a JSON object, as in Celery's setting).
    pub fn with_peer_routes(mut self, routes: serde_json::Value) -> TestEnv {
        self.peer_routes = Some(routes.to_string());
        self
    }

    /// Points the broker and the backend at `broker_url` and `backend_url` (another server,
    /// such as a [`TlsRedis`](super::TlsRedis)), the peer trusting `ssl_ca` for `rediss://`.
    pub fn on(
        mut self,
        broker_url: String,
        backend_url: String,
        ssl_ca: Option<std::path::PathBuf>,
    ) -> TestEnv {
        self.redis_url = broker_url;
        self.backend_url = backend_url;
        self.peer_ssl_ca = ssl_ca;
        self
    }

    /// Turns the Python peer's `result_extended` on or off.
    pub fn with_result_extended(mut self, result_extended: bool) -> TestEnv {
        self.result_extended = result_extended;
        self
    }

    /// The full Redis key of the kombu key `name` under this test's prefix, e.g.
    /// `env.key("unacked")`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.key_prefix)
    }

    /// A queue name unique to this test (`"<name>-<8 hex>"`), for tests that want distinct
    /// queue names on top of the key prefix, for example in worker logs.
    pub fn queue(&self, name: &str) -> String {
        format!("{name}-{}", self.unique)
    }

    /// The `PEER_*` environment variables that configure `tests/python/peer.py` for this
    /// test.
    pub fn peer_env(&self) -> Vec<(String, String)> {
        let mut variables = vec![
            ("PEER_BROKER_URL".to_string(), self.redis_url.clone()),
            ("PEER_RESULT_BACKEND".to_string(), self.backend_url.clone()),
            ("PEER_KEYPREFIX".to_string(), self.key_prefix.clone()),
            (
                "PEER_VISIBILITY_TIMEOUT".to_string(),
                self.visibility_timeout.as_secs_f64().to_string(),
            ),
        ];
        if self.result_extended {
            variables.push(("PEER_RESULT_EXTENDED".to_string(), "1".to_string()));
        }
        if let Some(routes) = &self.peer_routes {
            variables.push(("PEER_ROUTES".to_string(), routes.clone()));
        }
        if let Some(ca) = &self.peer_ssl_ca {
            variables.push(("PEER_SSL_CA".to_string(), ca.display().to_string()));
        }
        variables
    }

    /// A connection to the broker database.
    ///
    /// # Panics
    /// If Redis cannot be reached.
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        connect(&self.redis_url).await
    }

    /// A connection to the result backend database.
    ///
    /// # Panics
    /// If Redis cannot be reached.
    pub async fn backend_redis(&self) -> redis::aio::MultiplexedConnection {
        connect(&self.backend_url).await
    }
}

async fn connect(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap_or_else(|error| panic!("invalid Redis URL {url}: {error}"))
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {url}: {error}"))
}
