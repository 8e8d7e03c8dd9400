//! The two monitors under measurement, each a real process reading the same Redis: ours (this
//! benchmark binary started again with `--ours-child`, running [`Monitor`]: receiver, state,
//! change feed) and Flower 2.2 (`celery flower`). The parent asks each how many task events it
//! has taken in (ours: a `report` line on stdin; Flower: the sum of `flower_events_total` on
//! `/metrics`, which Flower increments as its state applies each task event) and reads their
//! resident memory from `/proc`.

use anyhow::Context;
use celeriac::broker::{BrokerOptions, RedisBroker};
use celeriac::events::{Monitor, MonitorOptions, StateOptions};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Which monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Ours,
    Flower,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Ours => "celeriac Monitor",
            Kind::Flower => "Flower 2.2",
        }
    }
}

/// A running monitor process; dropping it kills the process.
pub(crate) struct Consumer {
    pub(crate) kind: Kind,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<Lines<BufReader<ChildStdout>>>,
    port: u16,
}

/// Where Flower's Python and the peer app live.
pub(crate) struct FlowerProgram {
    pub(crate) python: PathBuf,
    pub(crate) peer_directory: PathBuf,
}

impl Consumer {
    pub(crate) async fn start(
        kind: Kind,
        broker_url: &str,
        max_tasks: u64,
        flower: &FlowerProgram,
    ) -> anyhow::Result<Consumer> {
        let quiet = std::env::var_os("BENCH_VERBOSE").is_none();
        let stderr = || {
            if quiet {
                Stdio::null()
            } else {
                Stdio::inherit()
            }
        };
        match kind {
            Kind::Ours => {
                let mut child = Command::new(std::env::current_exe()?)
                    .args(["--ours-child", broker_url, &max_tasks.to_string()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(stderr())
                    .kill_on_drop(true)
                    .spawn()?;
                let stdin = child.stdin.take();
                let mut stdout = BufReader::new(child.stdout.take().context("stdout")?).lines();
                let ready = stdout.next_line().await?.unwrap_or_default();
                anyhow::ensure!(ready == "ready", "our monitor said {ready:?}");
                Ok(Consumer {
                    kind,
                    child,
                    stdin,
                    stdout: Some(stdout),
                    port: 0,
                })
            }
            Kind::Flower => {
                let port = std::net::TcpListener::bind("127.0.0.1:0")?
                    .local_addr()?
                    .port();
                let child = Command::new(&flower.python)
                    .args(["-m", "celery", "-A", "peer", "flower"])
                    .arg("--address=127.0.0.1")
                    .arg(format!("--port={port}"))
                    .arg(format!("--max_tasks={max_tasks}"))
                    .arg("--enable_events=False")
                    .arg("--logging=error")
                    .current_dir(&flower.peer_directory)
                    .env("PEER_BROKER_URL", broker_url)
                    .env("PEER_RESULT_BACKEND", "")
                    // Flower 2.2 answers its HTTP API only with auth unless told otherwise.
                    .env("FLOWER_UNAUTHENTICATED_API", "true")
                    .stdin(Stdio::null())
                    .stdout(stderr())
                    .stderr(stderr())
                    .kill_on_drop(true)
                    .spawn()
                    .context("starting Flower")?;
                let consumer = Consumer {
                    kind,
                    child,
                    stdin: None,
                    stdout: None,
                    port,
                };
                for _ in 0..600 {
                    if consumer.flower_metrics().await.is_ok() {
                        return Ok(consumer);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                anyhow::bail!("Flower did not answer on port {port} within 30 s")
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Where Flower's web server listens (the dashboard benchmark loads its pages).
    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Task events the monitor has applied so far.
    pub(crate) async fn task_events_seen(&mut self) -> anyhow::Result<u64> {
        match self.kind {
            Kind::Ours => Ok(self.ours_report().await?["task_events"]
                .as_u64()
                .unwrap_or(0)),
            Kind::Flower => {
                let metrics = self.flower_metrics().await?;
                Ok(metrics
                    .lines()
                    .filter(|line| line.starts_with("flower_events_total{"))
                    .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum::<f64>() as u64)
            }
        }
    }

    /// Our monitor's counters (`Null` for Flower).
    pub(crate) async fn ours_report(&mut self) -> anyhow::Result<Value> {
        let (Some(stdin), Some(stdout)) = (self.stdin.as_mut(), self.stdout.as_mut()) else {
            return Ok(Value::Null);
        };
        stdin.write_all(b"report\n").await?;
        stdin.flush().await?;
        let line = stdout.next_line().await?.context("our monitor exited")?;
        Ok(serde_json::from_str(&line)?)
    }

    async fn flower_metrics(&self) -> anyhow::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(self.addr()).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut response = String::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            stream.read_to_string(&mut response),
        )
        .await??;
        anyhow::ensure!(
            response.starts_with("HTTP/1.") && response.contains(" 200 "),
            "no metrics yet"
        );
        Ok(response)
    }

    /// Current resident set (`VmRSS`), KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        rss_kib_of(self.pid())
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The resident set (`VmRSS`) of process `pid` in KiB; 0 once it is gone.
pub(crate) fn rss_kib_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmRSS:")
                    .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// `--ours-child <broker url> <max tasks>`: runs a [`Monitor`] and answers `report` lines on
/// stdin with its counters as JSON, until stdin closes.
pub(crate) async fn run_child(broker_url: &str, max_tasks: usize) -> anyhow::Result<()> {
    let broker = RedisBroker::connect(broker_url, BrokerOptions::default()).await?;
    let options = MonitorOptions {
        state: StateOptions {
            max_tasks,
            ..StateOptions::default()
        },
        ..MonitorOptions::default()
    };
    let monitor = Monitor::start(&broker, options).await?;
    let mut stdout = tokio::io::stdout();
    stdout.write_all(b"ready\n").await?;
    stdout.flush().await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim() != "report" {
            continue;
        }
        let (counters, task_bytes) =
            monitor.read(|state| (state.counters(), state.task_memory_bytes()));
        let receiver = monitor.receiver_stats();
        let report = json!({
            "task_events": counters.task_events,
            "events": counters.events,
            "tasks_retained": counters.tasks_retained,
            "task_bytes": task_bytes,
            "dropped": receiver.dropped,
            "malformed": receiver.malformed,
            "reconnects": receiver.reconnects,
        });
        stdout.write_all(format!("{report}\n").as_bytes()).await?;
        stdout.flush().await?;
    }
    Ok(())
}

/// Flower's venv: `scripts/flower-venv.sh` makes it when missing and prints its Python.
pub(crate) fn flower_program(root: &Path) -> anyhow::Result<FlowerProgram> {
    let python = match std::env::var_os("BENCH_FLOWER_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => {
            let output = std::process::Command::new("bash")
                .arg(root.join("scripts/flower-venv.sh"))
                .stderr(Stdio::inherit())
                .output()
                .context("running scripts/flower-venv.sh")?;
            anyhow::ensure!(output.status.success(), "scripts/flower-venv.sh failed");
            PathBuf::from(String::from_utf8(output.stdout)?.trim())
        }
    };
    Ok(FlowerProgram {
        python,
        peer_directory: root.join("celeriac/tests/python"),
    })
}
