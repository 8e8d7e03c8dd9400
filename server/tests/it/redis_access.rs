//! The dashboard on production Redis setups: `celeriac serve` sends a task through Flower's
//! `send-task`, a Rust worker on the same Redis runs it, the result is read back through
//! `/api/task/result`, and `/api/workers` shows the worker from its events;
//! - on a TLS-only Redis, configured by `CELERIAC_BROKER_USE_SSL` and
//!   `CELERIAC_REDIS_BACKEND_USE_SSL` (JSON tables);
//! - as an ACL user confined to the key prefix (the README's rules), its password read from
//!   `CELERIAC_BROKER_PASSWORD_FILE` / `CELERIAC_REDIS_BACKEND_PASSWORD_FILE`;
//! - on Sentinel (`sentinel://` URLs, `master_name`), and again after the master is killed and
//!   the replica promoted: the same processes send, read results and receive events.

use crate::support::{add_operator, http, json_body, Server};
use celeriac::config::{Config, RedisSsl};
use celeriac::testkit::{
    eventually_blocking, RedisServer, SentinelRedis, TestEnv, TlsRedis, MASTER_NAME,
};
use celeriac::worker::{Worker, WorkerOptions};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Runs the round trip: `serve_env` configures the dashboard process (on top of the broker,
/// backend, database and prefix), `worker_config` the in-process worker. With `failover`, the
/// master is then killed and, once the replica leads, a second round trip must succeed and its
/// task's `task-succeeded` event must reach the dashboard's history (its event receiver
/// followed the master), with no process restarted.
async fn dashboard_round_trip(
    env: &TestEnv,
    serve_env: &[(&str, String)],
    mut worker_config: Config,
    failover: Option<&mut SentinelRedis>,
) {
    let queue = env.queue("q");
    let directory = tempfile::tempdir().expect("temp dir");
    let database_url = format!(
        "sqlite://{}",
        directory.path().join("celeriac.db").display()
    );
    let command = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_celeriac"));
        command
            .env_remove("CELERIAC_CONFIG")
            .env("CELERIAC_BROKER_URL", &env.redis_url)
            .env("CELERIAC_RESULT_BACKEND", &env.backend_url)
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
        for (name, value) in serve_env {
            command.env(name, value);
        }
        command
    };

    add_operator(command());

    // A Rust worker on the same Redis, in this process.
    worker_config.worker_send_task_events = true;
    worker_config.broker_transport_options.global_keyprefix = env.key_prefix.clone();
    let registry = celeriac::demo::registry();
    let node = format!("access-{queue}@test");
    let worker = Worker::new(
        worker_config,
        registry,
        WorkerOptions {
            queues: vec![queue.clone()],
            concurrency: 2,
            node_name: node.clone(),
            prefetch_multiplier: 4,
        },
    )
    .await
    .expect("the worker connects");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));

    let (_server, addr) = Server::serve(command());
    let first = round_trip(addr, node.clone()).await;
    assert_eq!(first["result"], 5, "{first}");
    if let Some(redis) = failover {
        tokio::task::block_in_place(|| redis.kill_master());
        tokio::task::block_in_place(|| redis.wait_for_failover(WAIT));
        // Tasks sent, run and read through the new master. Events published before the
        // dashboard's receiver has subscribed again are lost (PUB/SUB keeps nothing; the
        // history catches their states up from the result backend), so round trips go on
        // until one task's own `task-succeeded` event reaches the history.
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let again = round_trip(addr, node.clone()).await;
            assert_eq!(again["result"], 5, "{again}");
            let task_id = again["task-id"].as_str().unwrap_or_default().to_owned();
            let mut seen = false;
            let until = std::time::Instant::now() + Duration::from_secs(3);
            while !seen && std::time::Instant::now() < until {
                let task_id = task_id.clone();
                seen = tokio::task::spawn_blocking(move || {
                    http(addr, "GET", &format!("/api/task/info/{task_id}"), "")
                        .filter(|(status, _)| *status == 200)
                        .and_then(|(_, body)| {
                            json_body(&body)["timeline"].as_array().map(|timeline| {
                                timeline
                                    .iter()
                                    .any(|entry| entry["type"] == "task-succeeded")
                            })
                        })
                        .unwrap_or(false)
                })
                .await
                .expect("a request");
                if !seen {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            if seen {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no task's events reached the dashboard after the failover"
            );
        }
    }
    let _ = stop.send(());
    running.await.expect("worker task").expect("worker ran");
}

/// Sends `demo.add(2, 3)` through the dashboard, waits for its result there and for the
/// worker on `/api/workers`; the result's answer, with `task-id` added.
async fn round_trip(addr: std::net::SocketAddr, node: String) -> serde_json::Value {
    tokio::task::spawn_blocking(move || {
        let sent = eventually_blocking(
            WAIT,
            "serve to send a task",
            || match http(
                addr,
                "POST",
                "/api/task/send-task/demo.add",
                r#"{"args": [2, 3]}"#,
            ) {
                Some((200, body)) => Some(json_body(&body)),
                _ => None,
            },
            String::new,
        );
        let task_id = sent["task-id"].as_str().expect("task-id").to_owned();
        let mut result = eventually_blocking(
            WAIT,
            "the result through the dashboard",
            || match http(addr, "GET", &format!("/api/task/result/{task_id}"), "") {
                Some((200, body)) if json_body(&body)["state"] == "SUCCESS" => {
                    Some(json_body(&body))
                }
                _ => None,
            },
            String::new,
        );
        eventually_blocking(
            WAIT,
            "the worker on /api/workers",
            || match http(addr, "GET", "/api/workers", "") {
                Some((200, body)) if json_body(&body).get(&node).is_some() => Some(()),
                _ => None,
            },
            String::new,
        );
        result["task-id"] = json!(task_id);
        result
    })
    .await
    .expect("requests")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_sends_reads_and_monitors_over_tls() {
    let redis = TlsRedis::start(false);
    let env = TestEnv::new("tls-serve").on(redis.url(0), redis.url(1), None);
    let ssl = RedisSsl {
        ssl_ca_certs: Some(redis.file("ca.pem")),
        ..RedisSsl::default()
    };
    let ssl_json =
        json!({"ssl_cert_reqs": "required", "ssl_ca_certs": redis.file("ca.pem")}).to_string();
    let worker_config = Config {
        broker_url: env.redis_url.clone(),
        result_backend: Some(env.backend_url.clone()),
        broker_use_ssl: Some(ssl.clone()),
        redis_backend_use_ssl: Some(ssl),
        ..Config::default()
    };
    dashboard_round_trip(
        &env,
        &[
            ("CELERIAC_BROKER_USE_SSL", ssl_json.clone()),
            ("CELERIAC_REDIS_BACKEND_USE_SSL", ssl_json),
        ],
        worker_config,
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_as_an_acl_user_confined_to_its_prefix() {
    let server = RedisServer::start_private();
    let env = TestEnv::new("acl-serve");
    let prefix = env.key_prefix.clone();
    let admin = redis::Client::open(server.url(0)).expect("admin url");
    let mut connection = admin
        .get_multiplexed_async_connection()
        .await
        .expect("admin connection");
    // The README's rules.
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("dashboard")
        .arg("on")
        .arg(">s3cret/p@ss")
        .arg("resetkeys")
        .arg(format!("~{prefix}*"))
        .arg("~celery-task-meta-*")
        .arg("~celery-taskset-meta-*")
        .arg("resetchannels")
        .arg(format!("&{prefix}*"))
        .arg(format!("&{prefix}/0.celeryev/*"))
        .arg("&celery-task-meta-*")
        .arg("+@all")
        .arg("-@dangerous")
        .query_async(&mut connection)
        .await
        .expect("ACL SETUSER");
    let port = server.port().expect("a private server");
    let url = |db: u8| format!("redis://dashboard@127.0.0.1:{port}/{db}");
    let env = env.on(url(0), url(1), None);
    let secrets = tempfile::tempdir().expect("temp dir");
    let password_file = secrets.path().join("redis-password");
    std::fs::write(&password_file, "s3cret/p@ss\n").expect("the secret");
    let worker_config = Config {
        broker_url: env.redis_url.clone(),
        result_backend: Some(env.backend_url.clone()),
        broker_password_file: Some(password_file.clone()),
        redis_backend_password_file: Some(password_file.clone()),
        ..Config::default()
    };
    let file = password_file.display().to_string();
    dashboard_round_trip(
        &env,
        &[
            ("CELERIAC_BROKER_PASSWORD_FILE", file.clone()),
            ("CELERIAC_REDIS_BACKEND_PASSWORD_FILE", file),
        ],
        worker_config,
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_follows_a_sentinel_failover() {
    let mut redis = tokio::task::block_in_place(SentinelRedis::start);
    let env = TestEnv::new("sentinel-serve").on(redis.url(0), redis.url(1), None);
    let mut worker_config = Config {
        broker_url: env.redis_url.clone(),
        result_backend: Some(env.backend_url.clone()),
        ..Config::default()
    };
    worker_config.broker_transport_options.master_name = Some(MASTER_NAME.to_owned());
    worker_config.result_backend_transport_options.master_name = Some(MASTER_NAME.to_owned());
    dashboard_round_trip(
        &env,
        &[
            (
                "CELERIAC_BROKER_TRANSPORT_OPTIONS",
                json!({"global_keyprefix": env.key_prefix, "master_name": MASTER_NAME}).to_string(),
            ),
            (
                "CELERIAC_RESULT_BACKEND_TRANSPORT_OPTIONS",
                json!({"master_name": MASTER_NAME}).to_string(),
            ),
        ],
        worker_config,
        Some(&mut redis),
    )
    .await;
}
