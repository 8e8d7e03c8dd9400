//! Real Flower (the Celery monitor), driven from Rust tests.
//!
//! "Works with the Celery ecosystem" is only true if the ecosystem's own tools say so. A
//! [`Flower`] is a `celery flower` process from the interop venv (Flower 2.2, pinned beside
//! Celery in `tests/python/requirements.txt`) pointed at a test's Redis. It learns about
//! workers and tasks exactly as it would in production: from the `celeryev` events and from
//! `inspect` broadcasts on the pidbox. Tests read what it concluded through its HTTP API.
//!
//! Flower keeps its state in memory only (`--persistent=False`); its working directory is a
//! temporary directory that the watchdog deletes when it stops. The HTTP API is opened
//! without authentication (`FLOWER_UNAUTHENTICATED_API`), which is safe because Flower only
//! listens on 127.0.0.1 for the length of one test.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::celery_peer::CeleryPeer;
use super::eventually::eventually_blocking;
use super::redis_server::free_port;
use super::watchdog::Watchdog;

/// How long Flower may take to answer its health check after starting.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many times Flower is started on a fresh free port when it could not bind the one
/// picked.
const START_ATTEMPTS: usize = 3;

/// How long one HTTP request to Flower may take (a `refresh=1` waits for inspect replies).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `celery flower` child process.
///
/// Owns the process: dropping it stops Flower (SIGTERM, then SIGKILL after 5 s) and deletes
/// its log, unless the thread is panicking, in which case the log's tail is printed. Flower
/// also dies with the test process (see the watchdog in the module docs of `testkit`). Drop it
/// before the Redis server it watches: Flower lingers on SIGTERM while its broker is gone.
#[derive(Debug)]
pub struct Flower {
    port: u16,
    watchdog: Watchdog,
}

/// One HTTP response from Flower.
#[derive(Debug, Clone)]
pub struct FlowerResponse {
    /// The status code, e.g. 200.
    pub status: u16,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

impl FlowerResponse {
    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
}

impl Flower {
    /// Starts Flower on a free port of 127.0.0.1, watching `broker_url` (results are read
    /// from `result_backend`), and waits until it answers `/healthcheck`.
    ///
    /// # Panics
    /// If the venv's Python is missing (see [`CeleryPeer::python`]) or Flower does not answer
    /// within 30 s (the message includes the end of its log).
    pub fn start(broker_url: &str, result_backend: &str) -> Flower {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Flower::try_start(broker_url, result_backend) {
                Ok(flower) => return flower,
                Err(log) => failures.push(log),
            }
        }
        panic!(
            "Flower did not start ({START_ATTEMPTS} attempts); last log:\n{}",
            failures.last().map(String::as_str).unwrap_or_default()
        );
    }

    /// One start on a fresh free port; `Err(log tail)` when Flower exited (e.g. the port was
    /// taken between choosing and binding it).
    fn try_start(broker_url: &str, result_backend: &str) -> Result<Flower, String> {
        let port = free_port();
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let work_dir = std::env::temp_dir().join(format!("celeriac-flower-{}", &unique[..8]));
        std::fs::create_dir_all(&work_dir).unwrap_or_else(|error| {
            panic!(
                "cannot create Flower's directory {}: {error}",
                work_dir.display()
            )
        });
        let log_path = std::env::temp_dir().join(format!("celeriac-flower-{unique}.log"));
        let mut command = Command::new(CeleryPeer::python());
        command
            .args(["-m", "celery", "--broker", broker_url])
            .args(["--result-backend", result_backend, "flower"])
            .arg("--address=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg("--persistent=False")
            .arg(format!("--db={}", work_dir.join("flower.db").display()))
            .current_dir(&work_dir)
            .env("FLOWER_UNAUTHENTICATED_API", "true")
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let watchdog = Watchdog::spawn(&command, &log_path, Some(&work_dir));
        let flower = Flower { port, watchdog };
        let ready = eventually_blocking(
            READY_TIMEOUT,
            &format!("Flower to answer on port {port}"),
            || {
                if !flower.watchdog.is_running() {
                    return Some(false);
                }
                flower
                    .get("/healthcheck")
                    .filter(|response| response.status == 200)
                    .map(|_| true)
            },
            || flower.log_tail(40),
        );
        if ready {
            Ok(flower)
        } else {
            // Dropping it stops the watchdog and deletes the log.
            Err(flower.log_tail(40))
        }
    }

    /// The port Flower listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `GET <path>` (path with query string, e.g. `/api/workers?refresh=1`); `None` when
    /// Flower cannot be reached or answers with something that is not HTTP.
    pub fn get(&self, path: &str) -> Option<FlowerResponse> {
        http_get(self.port, path).ok()
    }

    /// `GET <path>` and the body as JSON when the status is 200; `None` otherwise.
    pub fn get_json(&self, path: &str) -> Option<serde_json::Value> {
        self.get(path)
            .filter(|response| response.status == 200)
            .and_then(|response| response.json())
    }

    /// Everything Flower has logged so far (its tornado log goes to stderr).
    pub fn log(&self) -> String {
        self.watchdog.log()
    }

    /// The last `lines` lines of Flower's log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.watchdog.log_tail(lines)
    }

    /// Where Flower logs to (deleted on drop unless the thread is panicking).
    pub fn log_path(&self) -> &Path {
        self.watchdog.log_path()
    }
}

impl Drop for Flower {
    #[allow(
        clippy::print_stderr,
        reason = "the test harness shows a failing test's stderr; Flower's log explains it"
    )]
    fn drop(&mut self) {
        self.watchdog.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- Flower log ({}), last lines ---\n{}",
                self.watchdog.log_path().display(),
                self.watchdog.log_tail(60)
            );
        } else {
            // Best effort: a leftover log in the temp directory is harmless.
            let _removed = std::fs::remove_file(self.watchdog.log_path());
        }
    }
}

/// A minimal HTTP/1.0 GET: one request per connection, read until the server closes, which
/// is all a test needs from tornado and keeps HTTP client crates out of the engine.
fn http_get(port: u16, path: &str) -> std::io::Result<FlowerResponse> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, REQUEST_TIMEOUT)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(invalid)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(invalid)?;
    Ok(FlowerResponse {
        status,
        body: body.to_owned(),
    })
}
