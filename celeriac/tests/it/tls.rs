//! Redis over TLS: a TLS-only `redis-server` (`--port 0 --tls-port P`, a CA made for the test,
//! see `testkit::TlsRedis`).
//!
//! - Our producer, worker, result backend, events, remote control and beat all work over
//!   `rediss://` with `broker_use_ssl` / `redis_backend_use_ssl`, and with the options in the
//!   URL's query instead.
//! - With `--tls-auth-clients yes` a client certificate is needed: with one everything works,
//!   without one the error names the host.
//! - A wrong CA is refused with an error naming the host; `ssl_cert_reqs = none` connects.
//! - A Python Celery 5.4 worker and producer on the same TLS Redis interoperate with ours.

use crate::all_parts::{add_round_trip, every_part_works};
use crate::support::{config, RunningWorker};
use celeriac::broker::{RedisBroker, RedisSsl};
use celeriac::config::Config;
use celeriac::producer::broker_options;
use celeriac::testkit::{CeleryPeer, TestEnv, TlsRedis};
use serde_json::Value;

fn trusting(redis: &TlsRedis, client: bool) -> RedisSsl {
    RedisSsl {
        ssl_cert_reqs: Some("required".to_owned()),
        ssl_ca_certs: Some(redis.file("ca.pem")),
        ssl_certfile: client.then(|| redis.file("client.pem")),
        ssl_keyfile: client.then(|| redis.file("client.key")),
        ssl_check_hostname: None,
    }
}

/// A config on `redis` with its CA trusted (and the client certificate if `client`).
fn tls_config(env: &TestEnv, redis: &TlsRedis, client: bool) -> Config {
    let mut config = config(env);
    config.broker_use_ssl = Some(trusting(redis, client));
    config.redis_backend_use_ssl = Some(trusting(redis, client));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_part_works_over_tls() {
    let redis = TlsRedis::start(false);
    let env = TestEnv::new("tls").on(redis.url(0), redis.url(1), None);
    let queue = env.queue("q");
    let config = tls_config(&env, &redis, false);

    let worker = every_part_works(&env, config.clone()).await;

    // The same with the options in the URL's query, as kombu and redis-py accept them.
    let mut by_query = config.clone();
    let ca = redis.file("ca.pem").display().to_string();
    by_query.broker_url = format!(
        "{}?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs={ca}",
        redis.url(0)
    );
    by_query.result_backend = Some(format!(
        "{}?ssl_cert_reqs=required&ssl_ca_certs={ca}",
        redis.url(1)
    ));
    by_query.broker_use_ssl = None;
    by_query.redis_backend_use_ssl = None;
    add_round_trip(&by_query, &queue).await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_wrong_cas_and_unverified_connections() {
    let redis = TlsRedis::start(true);
    let env = TestEnv::new("tls-mtls").on(redis.url(0), redis.url(1), None);
    let queue = env.queue("q");
    let config = tls_config(&env, &redis, true);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    add_round_trip(&config, &queue).await;
    worker.stop().await;

    let no_retry = |mut config: Config| {
        config.broker_connection_retry_on_startup = false;
        config
    };
    // Without a client certificate the server hangs up during the handshake.
    let error = RedisBroker::connect(
        &config.broker_url,
        broker_options(&no_retry(tls_config(&env, &redis, false))),
    )
    .await
    .expect_err("no client certificate");
    let text = format!("{error}");
    assert!(
        text.contains(&format!("localhost:{}", redis.port())),
        "{text}"
    );

    // A CA that did not sign the server's certificate: refused, naming the host.
    let mut wrong = no_retry(tls_config(&env, &redis, true));
    wrong.broker_use_ssl = Some(RedisSsl {
        ssl_ca_certs: Some(redis.file("wrong-ca.pem")),
        ..trusting(&redis, true)
    });
    let error = RedisBroker::connect(&wrong.broker_url, broker_options(&wrong))
        .await
        .expect_err("wrong CA");
    let text = format!("{error}: {:?}", std::error::Error::source(&error));
    assert!(
        text.contains(&format!("localhost:{}", redis.port())),
        "{text}"
    );
    assert!(text.to_lowercase().contains("certificate"), "{text}");

    // `ssl_cert_reqs = none`: no verification at all (the wrong CA no longer matters).
    let mut unverified = wrong.clone();
    unverified.broker_use_ssl = Some(RedisSsl {
        ssl_cert_reqs: Some("none".to_owned()),
        ..wrong.broker_use_ssl.clone().unwrap_or_default()
    });
    RedisBroker::connect(&unverified.broker_url, broker_options(&unverified))
        .await
        .expect("ssl_cert_reqs none connects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_celery_and_ours_share_a_tls_redis() {
    let redis = TlsRedis::start(false);
    let env = TestEnv::new("tls-py").on(redis.url(0), redis.url(1), Some(redis.file("ca.pem")));
    let rust_queue = env.queue("rs");
    let python_queue = env.queue("py");
    let config = tls_config(&env, &redis, false);
    let worker = RunningWorker::start(config.clone(), None, &[&rust_queue], 2).await;
    let _python = CeleryPeer::worker(&env, &[&python_queue], "py-tls@%h");

    // Python producer → our worker → Python reads the result.
    let sent = CeleryPeer::cli_async(
        &env,
        &[
            "send",
            "demo.add",
            "--args",
            "[2, 3]",
            "--queue",
            &rust_queue,
        ],
    )
    .await;
    let task_id = sent["task_id"].as_str().expect("task id").to_owned();
    let result: Value = CeleryPeer::cli_async(&env, &["result", &task_id, "--timeout", "30"]).await;
    assert_eq!(result["status"], "SUCCESS", "{result}");
    assert_eq!(result["result"], 5, "{result}");

    // Our producer → the Python worker → we read the result.
    add_round_trip(&config, &python_queue).await;
    worker.stop().await;
}
