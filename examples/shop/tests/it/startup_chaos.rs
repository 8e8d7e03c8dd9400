//! Started while Redis is down: `worker`, `beat` and `serve` (real processes) wait for it,
//! logging each attempt, instead of exiting; 20 s later Redis comes up and all three work
//! without a restart: the worker runs a task sent then, beat's one-second entry is sent and
//! run, and the dashboard answers `/healthz`.

use crate::chaos_support::Cluster;
use celeriac::producer::SendOptions;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long Redis stays down after the processes start.
const DOWN: Duration = Duration::from_secs(20);

/// How long each process may take to work once Redis is up (kombu's start-up waits grow by 2 s
/// to at most 30 s, so the next attempt comes within 10 s of the 20th second).
const UP_WITHIN: Duration = Duration::from_secs(60);

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn health(addr: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split(' ').nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_beat_and_serve_started_while_redis_is_down_come_up_with_it() {
    let mut cluster = Cluster::new("startup", 30.0);
    let directory = tempfile::tempdir().expect("temp dir");
    let database_url = format!(
        "sqlite://{}",
        directory.path().join("celeriac.db").display()
    );
    let command = |cluster: &Cluster| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_shop"));
        command
            .env_remove("CELERIAC_CONFIG")
            .env("CELERIAC_BROKER_URL", cluster.redis.url(0))
            .env("CELERIAC_RESULT_BACKEND", cluster.redis.url(1))
            .env("CELERIAC_DATABASE_URL", &database_url)
            .env("CELERIAC_BEAT_MAX_LOOP_INTERVAL", "0.5")
            .current_dir(directory.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };
    // The schedule goes to the database while Redis is still up (the CLI only announces it).
    let added = command(&cluster)
        .args([
            "schedule",
            "add",
            "beat-tick",
            "--task",
            "chaos.record",
            "--args",
            r#"["beat-tick", 0]"#,
            "--every",
            "1s",
            "--queue",
            "celery",
        ])
        .status()
        .expect("schedule add runs");
    assert!(added.success());

    tokio::task::block_in_place(|| cluster.redis.kill());
    let mut worker = cluster.worker(2, "", &[("CELERIAC_DATABASE_URL", &database_url)]);
    let mut beat = Process(command(&cluster).arg("beat").spawn().expect("beat starts"));
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let mut serve = Process(
        command(&cluster)
            .args([
                "serve",
                "--no-worker",
                "--no-beat",
                "--addr",
                &addr.to_string(),
            ])
            .spawn()
            .expect("serve starts"),
    );
    tokio::time::sleep(DOWN).await;
    assert!(
        worker.exited().is_none(),
        "the worker gave up while Redis was down"
    );
    assert!(
        beat.0.try_wait().ok().flatten().is_none(),
        "beat gave up while Redis was down"
    );
    assert!(
        serve.0.try_wait().ok().flatten().is_none(),
        "serve gave up while Redis was down"
    );

    tokio::task::block_in_place(|| cluster.redis.restart());
    let producer = cluster.producer().await;
    cluster
        .enqueue(
            &producer,
            "after-start",
            0,
            SendOptions::new().queue("celery"),
        )
        .await
        .expect("sent once Redis is up");
    let tokens = ["after-start".to_owned(), "beat-tick".to_owned()].into();
    let runs = cluster.wait_for_all(&tokens, UP_WITHIN).await;
    assert!(
        runs.contains_key("after-start"),
        "the worker did not run a task after Redis came up:\n{}",
        cluster.log_tail()
    );
    assert!(
        runs.contains_key("beat-tick"),
        "beat's entry was not sent and run after Redis came up"
    );
    let deadline = std::time::Instant::now() + UP_WITHIN;
    while health(addr) != Some(200) {
        assert!(
            std::time::Instant::now() < deadline,
            "serve does not answer /healthz after Redis came up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
