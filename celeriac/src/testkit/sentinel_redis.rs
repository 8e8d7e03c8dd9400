//! A Redis Sentinel setup for tests: a master, a replica of it and three sentinels
//! (`redis-server --sentinel`, so no package beyond redis-server), all on free ports of
//! 127.0.0.1, watching the master as `mymaster` with a one-second down-after. The master can
//! be killed (SIGKILL) to make the sentinels promote the replica.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::eventually::eventually_blocking;
use super::redis_server::{free_port, ping};
use super::watchdog::Watchdog;

/// The name the sentinels monitor the master under.
pub const MASTER_NAME: &str = "mymaster";

/// A master, a replica and three sentinels.
#[derive(Debug)]
pub struct SentinelRedis {
    directory: PathBuf,
    master: Option<(u16, Watchdog)>,
    replica: (u16, Watchdog),
    sentinels: Vec<(u16, Watchdog)>,
}

fn spawn(directory: &Path, name: &str, port: u16, arguments: &[String]) -> Watchdog {
    let mut command = Command::new("redis-server");
    command.args(arguments).current_dir(directory);
    let watchdog = Watchdog::spawn(&command, &directory.join(format!("{name}.log")), None);
    eventually_blocking(
        Duration::from_secs(10),
        &format!("{name} on port {port} to answer PING"),
        || {
            assert!(
                watchdog.is_running(),
                "{name} exited:\n{}",
                watchdog.log_tail(20)
            );
            ping(port).then_some(())
        },
        || watchdog.log_tail(20),
    );
    watchdog
}

fn server_arguments(port: u16, directory: &Path, name: &str) -> Vec<String> {
    vec![
        "--port".into(),
        port.to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--dir".into(),
        directory.display().to_string(),
        "--dbfilename".into(),
        format!("{name}.rdb"),
        "--save".into(),
        String::new(),
        "--appendonly".into(),
        "no".into(),
    ]
}

impl SentinelRedis {
    /// Starts everything and waits until every sentinel knows the master and its replica.
    ///
    /// # Panics
    /// If a server does not start or the sentinels do not agree within 30 s.
    pub fn start() -> SentinelRedis {
        let directory = std::env::temp_dir().join(format!(
            "celeriac-sentinel-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&directory)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", directory.display()));
        let master_port = free_port();
        let master = spawn(
            &directory,
            "master",
            master_port,
            &server_arguments(master_port, &directory, "master"),
        );
        let replica_port = free_port();
        let mut replica_arguments = server_arguments(replica_port, &directory, "replica");
        replica_arguments.extend([
            "--replicaof".into(),
            "127.0.0.1".into(),
            master_port.to_string(),
        ]);
        let replica = spawn(&directory, "replica", replica_port, &replica_arguments);
        let mut sentinels = Vec::new();
        for index in 0..3 {
            let port = free_port();
            let config = directory.join(format!("sentinel{index}.conf"));
            std::fs::write(
                &config,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                     sentinel failover-timeout {MASTER_NAME} 5000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n",
                    directory.display()
                ),
            )
            .unwrap_or_else(|error| panic!("write {}: {error}", config.display()));
            let arguments = vec![config.display().to_string(), "--sentinel".to_owned()];
            sentinels.push((
                port,
                spawn(&directory, &format!("sentinel{index}"), port, &arguments),
            ));
        }
        let setup = SentinelRedis {
            directory,
            master: Some((master_port, master)),
            replica: (replica_port, replica),
            sentinels,
        };
        eventually_blocking(
            Duration::from_secs(30),
            "the sentinels to know the master and its replica",
            || {
                setup
                    .sentinels
                    .iter()
                    .all(|(port, _)| {
                        let replicas = redis_cli(*port, &["SENTINEL", "replicas", MASTER_NAME]);
                        replicas.contains(&replica_port.to_string())
                            && redis_cli(
                                *port,
                                &["SENTINEL", "get-master-addr-by-name", MASTER_NAME],
                            )
                            .contains(&master_port.to_string())
                    })
                    .then_some(())
            },
            || setup.log_tail(),
        );
        setup
    }

    /// `sentinel://127.0.0.1:S1;sentinel://127.0.0.1:S2;sentinel://127.0.0.1:S3/db`, kombu's
    /// form.
    pub fn url(&self, db: u8) -> String {
        let parts: Vec<String> = self
            .sentinels
            .iter()
            .map(|(port, _)| format!("sentinel://127.0.0.1:{port}"))
            .collect();
        format!("{}/{db}", parts.join(";"))
    }

    /// The master's port now (as the first sentinel says).
    pub fn master_port(&self) -> Option<u16> {
        let answer = redis_cli(
            self.sentinels[0].0,
            &["SENTINEL", "get-master-addr-by-name", MASTER_NAME],
        );
        answer.lines().nth(1)?.trim().parse().ok()
    }

    /// The replica's port (the master after a failover).
    pub fn replica_port(&self) -> u16 {
        self.replica.0
    }

    /// Kills the original master with SIGKILL; the sentinels then promote the replica.
    pub fn kill_master(&mut self) {
        if let Some((_, mut watchdog)) = self.master.take() {
            watchdog.signal("KILL");
            watchdog.stop();
        }
    }

    /// Waits until the sentinels name the replica as master.
    pub fn wait_for_failover(&self, within: Duration) {
        let replica = self.replica.0;
        eventually_blocking(
            within,
            "the sentinels to promote the replica",
            || (self.master_port() == Some(replica)).then_some(()),
            || self.log_tail(),
        );
    }

    /// The ends of every log, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        for (name, watchdog) in self
            .master
            .iter()
            .map(|(_, watchdog)| ("master", watchdog))
            .chain(std::iter::once(("replica", &self.replica.1)))
            .chain(
                self.sentinels
                    .iter()
                    .map(|(_, watchdog)| ("sentinel", watchdog)),
            )
        {
            text.push_str(&format!("--- {name}\n{}\n", watchdog.log_tail(8)));
        }
        text
    }
}

impl Drop for SentinelRedis {
    fn drop(&mut self) {
        self.sentinels.clear();
        self.master = None;
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// `redis-cli -p port args…`'s output ("" when it fails).
fn redis_cli(port: u16, arguments: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(arguments)
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}
