//! A private `redis-server` for tests.
//!
//! Tests never touch a Redis that might hold someone else's data (the machine's shared
//! instance on port 6379 included). [`RedisServer::shared`] starts one private server per test
//! process on a free port, unless `TEST_REDIS_URL` points at one to use instead; tests isolate
//! themselves on it with key prefixes ([`TestEnv`](super::TestEnv)). Chaos tests that kill
//! and restart Redis get their own server from [`RedisServer::start_private`].
//!
//! Every server runs under a [`Watchdog`]: it dies with its owner, and with the test process
//! even when the owner is a `static` that is never dropped. Servers keep nothing on disk
//! (`--save "" --appendonly no`); their working directory is a temporary directory that the
//! watchdog deletes when the server stops.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::eventually::eventually_blocking;
use super::watchdog::Watchdog;

/// How long a starting `redis-server` may take to answer PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a private server is started on a fresh free port when the one picked was
/// taken between choosing it and binding it.
const START_ATTEMPTS: usize = 3;

/// The server shared by all tests of this process; see [`RedisServer::shared`].
static SHARED: OnceLock<RedisServer> = OnceLock::new();

/// A Redis server that tests may use freely.
///
/// Either a private `redis-server` child process (owned: stopped when this value is dropped,
/// or when the test process exits) or, for [`RedisServer::shared`] with `TEST_REDIS_URL` set,
/// an external server that is only connected to.
#[derive(Debug)]
pub struct RedisServer {
    /// `redis://host:port`, without a database number.
    base_url: String,
    /// The child process; `None` for an external server.
    private: Option<PrivateProcess>,
}

/// A `redis-server` child process and what is needed to start it again on the same port.
#[derive(Debug)]
struct PrivateProcess {
    port: u16,
    /// `None` after [`RedisServer::kill`] until [`RedisServer::restart`].
    watchdog: Option<Watchdog>,
    /// The data directory of a persistent server, which outlives restarts.
    persistent_dir: Option<PathBuf>,
}

impl Drop for PrivateProcess {
    fn drop(&mut self) {
        if let Some(directory) = &self.persistent_dir {
            let _ = std::fs::remove_dir_all(directory);
        }
    }
}

impl RedisServer {
    /// The server shared by every test in this process, started on first use.
    ///
    /// With `TEST_REDIS_URL` set (for example `redis://127.0.0.1:6390/0`) that server is used
    /// and no process is started; its database number is ignored in favour of [`Self::url`]'s.
    /// Otherwise a private `redis-server` is started on a free port of 127.0.0.1. It lives in a
    /// `static` and is never dropped; its watchdog stops it when the test process exits.
    ///
    /// # Panics
    /// If `redis-server` is not installed (the message names the install command) or does not
    /// start.
    pub fn shared() -> &'static RedisServer {
        SHARED.get_or_init(|| match std::env::var("TEST_REDIS_URL") {
            Ok(url) if !url.trim().is_empty() => RedisServer {
                base_url: strip_database(url.trim()),
                private: None,
            },
            _ => RedisServer::start_private(),
        })
    }

    /// Starts a new private `redis-server` on a free port of 127.0.0.1 and waits until it
    /// answers PING. Always private, even with `TEST_REDIS_URL` set.
    ///
    /// The returned value owns the process: dropping it stops the server (SIGTERM, then
    /// SIGKILL) and deletes its temporary directory.
    ///
    /// # Panics
    /// If `redis-server` is not installed or does not start.
    pub fn start_private() -> RedisServer {
        RedisServer::start(None)
    }

    /// Like [`RedisServer::start_private`], but the server keeps its data across
    /// [`RedisServer::kill`] and [`RedisServer::restart`] (append-only file, fsync on every
    /// write), for tests of a Redis restart.
    pub fn start_private_persistent() -> RedisServer {
        let directory = std::env::temp_dir().join(format!(
            "celeriac-redis-aof-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&directory)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", directory.display()));
        RedisServer::start(Some(directory))
    }

    fn start(persistent_dir: Option<PathBuf>) -> RedisServer {
        ensure_installed();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            match spawn_redis(port, persistent_dir.as_deref(), &[]) {
                Ok(watchdog) => {
                    return RedisServer {
                        base_url: format!("redis://127.0.0.1:{port}"),
                        private: Some(PrivateProcess {
                            port,
                            watchdog: Some(watchdog),
                            persistent_dir,
                        }),
                    };
                }
                Err(log) if attempt < START_ATTEMPTS && log.contains("Address already in use") => {
                    continue;
                }
                Err(log) => panic!("redis-server did not start on port {port}:\n{log}"),
            }
        }
        unreachable!("the last attempt either returns or panics")
    }

    /// The URL of database `db` on this server, e.g. `redis://127.0.0.1:40123/1`.
    pub fn url(&self, db: u8) -> String {
        format!("{}/{db}", self.base_url)
    }

    /// The TCP port of a private server (`None` for an external one).
    pub fn port(&self) -> Option<u16> {
        self.private.as_ref().map(|process| process.port)
    }

    /// Whether the server answers PING right now.
    pub fn is_up(&self) -> bool {
        match &self.private {
            Some(process) => ping(process.port),
            None => true,
        }
    }

    /// Kills a private server with SIGKILL (no shutdown, like a crash) and waits until the
    /// process is gone. Its data is lost. Does nothing if it is already killed.
    ///
    /// # Panics
    /// For an external (`TEST_REDIS_URL`) server.
    pub fn kill(&mut self) {
        let process = self.private_process("kill");
        if let Some(mut watchdog) = process.watchdog.take() {
            watchdog.signal("KILL");
            eventually_blocking(
                START_TIMEOUT,
                "the killed redis-server to exit",
                || (!watchdog.is_running()).then_some(()),
                || watchdog.log_tail(20),
            );
            watchdog.stop();
        }
    }

    /// Starts a private server again on the same port, empty, killing it first if it is still
    /// running, and waits until it answers PING.
    ///
    /// # Panics
    /// For an external (`TEST_REDIS_URL`) server, or if it does not start.
    pub fn restart(&mut self) {
        self.restart_with(&[]);
    }

    /// [`RedisServer::restart`] with more `redis-server` arguments for this run, e.g.
    /// `["--key-load-delay", "100"]` to keep a persistent server loading its data (answering
    /// `LOADING`) for a while after it answers PING.
    ///
    /// # Panics
    /// As [`RedisServer::restart`].
    pub fn restart_with(&mut self, arguments: &[&str]) {
        self.kill();
        let process = self.private_process("restart");
        let port = process.port;
        match spawn_redis(port, process.persistent_dir.as_deref(), arguments) {
            Ok(watchdog) => process.watchdog = Some(watchdog),
            Err(log) => panic!("redis-server did not restart on port {port}:\n{log}"),
        }
    }

    /// [`RedisServer::restart`] off the async runtime's threads (it blocks until the server
    /// answers), for an async test: `let redis = redis.restarted().await;`.
    pub async fn restarted(mut self) -> RedisServer {
        tokio::task::spawn_blocking(move || {
            self.restart();
            self
        })
        .await
        .unwrap_or_else(|error| panic!("restarting redis-server: {error}"))
    }

    fn private_process(&mut self, action: &str) -> &mut PrivateProcess {
        let base_url = &self.base_url;
        self.private.as_mut().unwrap_or_else(|| {
            panic!("cannot {action} the external TEST_REDIS_URL server {base_url}")
        })
    }
}

/// Panics with the install command when `redis-server` is not on `PATH`.
fn ensure_installed() {
    if let Err(error) = Command::new("redis-server").arg("--version").output() {
        panic!(
            "cannot run redis-server ({error}); install it with `apt-get install -y redis-server` \
             (or run scripts/setup.sh), or set TEST_REDIS_URL"
        );
    }
}

/// A port that was free a moment ago. Another process may take it before `redis-server`
/// binds it, hence the retries in [`RedisServer::start_private`].
pub(crate) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("the OS hands out a free port")
}

/// Starts `redis-server` on `port` under a watchdog and waits for PING. On failure returns the
/// server's log after stopping it.
fn spawn_redis(
    port: u16,
    persistent_dir: Option<&std::path::Path>,
    arguments: &[&str],
) -> Result<Watchdog, String> {
    let data_dir = match persistent_dir {
        Some(directory) => directory.to_path_buf(),
        None => std::env::temp_dir().join(format!(
            "celeriac-redis-{}-{port}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )),
    };
    std::fs::create_dir_all(&data_dir)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", data_dir.display()));
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(&data_dir)
        .args(["--daemonize", "no", "--save", ""]);
    if persistent_dir.is_some() {
        command.args(["--appendonly", "yes", "--appendfsync", "always"]);
    } else {
        command.args(["--appendonly", "no"]);
    }
    command.args(arguments);
    let log_path: PathBuf = data_dir.join("redis.log");
    // A persistent server's directory outlives the process; the owner deletes it.
    let owned_dir = persistent_dir.is_none().then_some(data_dir.as_path());
    let mut watchdog = Watchdog::spawn(&command, &log_path, owned_dir);
    let answered = eventually_blocking(
        START_TIMEOUT,
        &format!("redis-server on port {port} to answer PING"),
        || {
            if ping(port) {
                Some(true)
            } else if !watchdog.is_running() {
                Some(false)
            } else {
                None
            }
        },
        || watchdog.log_tail(20),
    );
    if answered {
        Ok(watchdog)
    } else {
        let log = watchdog.log_tail(20);
        watchdog.stop();
        Err(log)
    }
}

/// Sends an inline `PING` and checks for `+PONG`, without needing an async runtime.
pub(crate) fn ping(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let mut reply = [0_u8; 5];
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .is_ok()
        && stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG"
}

/// `redis://host:port/3` → `redis://host:port` (a trailing database number is removed).
fn strip_database(url: &str) -> String {
    let url = url.trim_end_matches('/');
    match url.rsplit_once('/') {
        Some((base, db)) if !db.is_empty() && db.bytes().all(|byte| byte.is_ascii_digit()) => {
            base.to_string()
        }
        _ => url.to_string(),
    }
}
