//! The stock `celeriac serve` pointed at a Redis full of Python Celery's tasks: it must take
//! none of them (it has no tasks of its own, so it embeds no worker) and write no schedule
//! (it declares no periodic task), while its dashboard and beat run.

use celeriac::testkit::{eventually_blocking, CeleryPeer, TestEnv};
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// The queues a Django project's workers consume.
const QUEUES: [&str; 3] = ["celery", "email", "render"];

fn celeriac(env: &TestEnv, database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_celeriac"));
    command
        .env_remove("CELERIAC_CONFIG")
        .env("CELERIAC_BROKER_URL", &env.redis_url)
        .env("CELERIAC_RESULT_BACKEND", &env.backend_url)
        .env("CELERIAC_DATABASE_URL", database_url)
        .env(
            "CELERIAC_BROKER_TRANSPORT_OPTIONS",
            json!({"global_keyprefix": env.key_prefix, "polling_interval": 0.01}).to_string(),
        )
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null());
    command
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

/// `GET /healthz`'s status line, if the server answers.
fn health(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.lines().next().map(str::to_owned)
}

fn queue_lengths(env: &TestEnv) -> Vec<usize> {
    let client = redis::Client::open(env.redis_url.as_str()).expect("redis url");
    let mut connection = client.get_connection().expect("redis connection");
    QUEUES
        .iter()
        .map(|queue| {
            redis::cmd("LLEN")
                .arg(format!("{}{queue}", env.key_prefix))
                .query(&mut connection)
                .expect("LLEN")
        })
        .collect()
}

#[test]
fn stock_serve_leaves_python_tasks_in_place_and_writes_no_schedule() {
    let env = TestEnv::new("stock-serve");
    let directory = tempfile::tempdir().expect("temp dir");
    let database_url = format!(
        "sqlite://{}",
        directory.path().join("celeriac.db").display()
    );
    // Task names the demo once ran (and dead-lettered others'), plus a project's own.
    let names = [
        "orders.render_pdf",
        "orders.send_invoice_email",
        "proj.tasks.export",
    ];
    for queue in QUEUES {
        for name in names {
            CeleryPeer::cli(&env, &["send", name, "--args", "[1]", "--queue", queue]);
        }
    }
    assert_eq!(queue_lengths(&env), [3, 3, 3]);

    let addr = free_address();
    let log_path = directory.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut server = Server(
        celeriac(&env, &database_url)
            .args(["serve", "--addr", &addr.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("celeriac serve starts"),
    );
    let log_tail = || std::fs::read_to_string(&log_path).unwrap_or_default();
    eventually_blocking(
        WAIT,
        "serve to answer /healthz",
        || health(addr).filter(|status| status.contains(" 200 ")),
        log_tail,
    );
    // Long enough for an embedded worker to have fetched (it polls every 10 ms here) and for
    // beat to have taken the lease and synced a static schedule.
    #[allow(
        clippy::disallowed_methods,
        reason = "a plain #[test] with no runtime: waiting for what must not happen"
    )]
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        server.0.try_wait().expect("wait").is_none(),
        "serve exited: {}",
        log_tail()
    );
    assert_eq!(
        queue_lengths(&env),
        [3, 3, 3],
        "serve took tasks: {}",
        log_tail()
    );
    let schedules = celeriac(&env, &database_url)
        .args(["schedule", "list", "--json"])
        .output()
        .expect("celeriac schedule list runs");
    assert!(schedules.status.success(), "{schedules:?}");
    assert_eq!(String::from_utf8_lossy(&schedules.stdout).trim(), "");
    let log = log_tail();
    assert!(log.contains("no embedded worker"), "{log}");
    assert!(log.contains("beat: starting"), "{log}");

    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(server.0.id().to_string())
        .status();
    let status = eventually_blocking(
        WAIT,
        "serve to exit after SIGTERM",
        || server.0.try_wait().ok().flatten(),
        log_tail,
    );
    assert!(
        status.success(),
        "serve exited with {status}: {}",
        log_tail()
    );
    assert_eq!(queue_lengths(&env), [3, 3, 3]);
}

#[test]
fn stock_worker_refuses_to_start_without_tasks() {
    let env = TestEnv::new("stock-worker");
    let output = celeriac(&env, "sqlite::memory:")
        .args(["worker", "-Q", "celery"])
        .output()
        .expect("celeriac worker runs");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("has no tasks to run"), "{stderr}");
}
