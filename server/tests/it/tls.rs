//! The dashboard on a TLS-only Redis: `celeriac serve` configured by `CELERIAC_BROKER_USE_SSL`
//! and `CELERIAC_REDIS_BACKEND_USE_SSL` (JSON tables) sends a task through Flower's
//! `send-task`, a Rust worker on the same TLS Redis runs it, the result is read back through
//! `/api/task/result`, and `/api/workers` shows the worker from its events.

use celeriac::config::{Config, RedisSsl};
use celeriac::task::Registry;
use celeriac::testkit::{eventually_blocking, TestEnv, TlsRedis};
use celeriac::worker::{Worker, WorkerOptions};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request with the operator's Basic credentials (`oper` / `secret-password`).
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic b3BlcjpzZWNyZXQtcGFzc3dvcmQ=\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let (_, body) = answer.split_once("\r\n\r\n")?;
    let start = body.find(['{', '[']).unwrap_or(0);
    let end = body.rfind(['}', ']']).map_or(body.len(), |end| end + 1);
    Some((
        status,
        serde_json::from_str(&body[start..end]).unwrap_or(Value::Null),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_sends_reads_and_monitors_over_tls() {
    let redis = TlsRedis::start(false);
    let env = TestEnv::new("tls-serve").on(redis.url(0), redis.url(1), None);
    let queue = env.queue("q");
    let ssl = RedisSsl {
        ssl_ca_certs: Some(redis.file("ca.pem")),
        ..RedisSsl::default()
    };
    let directory = tempfile::tempdir().expect("temp dir");
    let database_url = format!(
        "sqlite://{}",
        directory.path().join("celeriac.db").display()
    );
    let ssl_json =
        json!({"ssl_cert_reqs": "required", "ssl_ca_certs": redis.file("ca.pem")}).to_string();
    let command = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_celeriac"));
        command
            .env_remove("CELERIAC_CONFIG")
            .env("CELERIAC_BROKER_URL", &env.redis_url)
            .env("CELERIAC_RESULT_BACKEND", &env.backend_url)
            .env("CELERIAC_BROKER_USE_SSL", &ssl_json)
            .env("CELERIAC_REDIS_BACKEND_USE_SSL", &ssl_json)
            .env("CELERIAC_DATABASE_URL", &database_url)
            .env("CELERIAC_WORKER_SEND_TASK_EVENTS", "true")
            .env(
                "CELERIAC_BROKER_TRANSPORT_OPTIONS",
                json!({"global_keyprefix": env.key_prefix}).to_string(),
            )
            .env(
                "CELERIAC_TASK_ROUTES",
                json!({"demo.*": {"queue": queue}}).to_string(),
            )
            .current_dir(directory.path());
        command
    };

    let mut add = command();
    add.args([
        "user",
        "add",
        "oper",
        "--role",
        "operator",
        "--password-stdin",
    ])
    .stdin(Stdio::piped());
    let mut adding = add.spawn().expect("user add runs");
    if let Some(mut stdin) = adding.stdin.take() {
        stdin.write_all(b"secret-password\n").expect("password");
    }
    assert!(adding.wait().expect("user add ends").success());

    // A Rust worker on the TLS Redis, in this process.
    let mut config = Config {
        broker_url: env.redis_url.clone(),
        result_backend: Some(env.backend_url.clone()),
        broker_use_ssl: Some(ssl.clone()),
        redis_backend_use_ssl: Some(ssl),
        worker_send_task_events: true,
        ..Config::default()
    };
    config.broker_transport_options.global_keyprefix = env.key_prefix.clone();
    let mut registry = Registry::new();
    for task in celeriac::demo::tasks() {
        registry.register(task);
    }
    let node = format!("tls-{queue}@test");
    let worker = Worker::new(
        config,
        registry,
        WorkerOptions {
            queues: vec![queue.clone()],
            concurrency: 2,
            node_name: node.clone(),
            prefetch_multiplier: 4,
        },
    )
    .await
    .expect("worker over TLS");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));

    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let _server = Server(
        command()
            .args([
                "serve",
                "--no-worker",
                "--no-beat",
                "--addr",
                &addr.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts"),
    );
    let sent = tokio::task::spawn_blocking(move || {
        let sent = eventually_blocking(
            WAIT,
            "serve to send a task over TLS",
            || match http(
                addr,
                "POST",
                "/api/task/send-task/demo.add",
                r#"{"args": [2, 3]}"#,
            ) {
                Some((200, answer)) => Some(answer),
                _ => None,
            },
            String::new,
        );
        let task_id = sent["task-id"].as_str().expect("task-id").to_owned();
        let result = eventually_blocking(
            WAIT,
            "the result through the dashboard",
            || match http(addr, "GET", &format!("/api/task/result/{task_id}"), "") {
                Some((200, answer)) if answer["state"] == "SUCCESS" => Some(answer),
                _ => None,
            },
            String::new,
        );
        let workers = eventually_blocking(
            WAIT,
            "the worker on /api/workers",
            || match http(addr, "GET", "/api/workers", "") {
                Some((200, answer)) if answer.get(&node).is_some() => Some(answer),
                _ => None,
            },
            String::new,
        );
        (result, workers)
    })
    .await
    .expect("requests");
    assert_eq!(sent.0["result"], 5, "{}", sent.0);
    let _ = stop.send(());
    running.await.expect("worker task").expect("worker ran");
}
