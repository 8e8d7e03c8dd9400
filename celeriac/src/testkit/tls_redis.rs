//! A TLS-only `redis-server` (`--port 0 --tls-port P`) with its own certificate authority,
//! made for the test with the `openssl` command: a server certificate for `localhost` and
//! 127.0.0.1, a client certificate signed by the same CA, and a second CA that signed nothing
//! (the "wrong CA").

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::eventually::eventually_blocking;
use super::redis_server::free_port;
use super::watchdog::Watchdog;

/// A running TLS-only Redis and the files a client needs.
#[derive(Debug)]
pub struct TlsRedis {
    port: u16,
    directory: PathBuf,
    watchdog: Watchdog,
}

/// Runs `openssl` with `arguments` in `directory`.
///
/// # Panics
/// If openssl is missing or fails (its stderr is in the message).
fn openssl(directory: &Path, arguments: &[&str]) {
    let output = Command::new("openssl")
        .args(arguments)
        .current_dir(directory)
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run openssl ({error}); install it with `apt-get install -y openssl`")
        });
    assert!(
        output.status.success(),
        "openssl {arguments:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A key and a certificate `name` signed by `ca`, with `extensions` (an `openssl x509`
/// extension line).
fn signed(directory: &Path, name: &str, subject: &str, extensions: &str) {
    let key = format!("{name}.key");
    let request = format!("{name}.csr");
    let certificate = format!("{name}.pem");
    let extension_file = format!("{name}.ext");
    openssl(
        directory,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &request, "-subj",
            subject,
        ],
    );
    std::fs::write(directory.join(&extension_file), extensions)
        .unwrap_or_else(|error| panic!("write {extension_file}: {error}"));
    openssl(
        directory,
        &[
            "x509",
            "-req",
            "-in",
            &request,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &certificate,
            "-days",
            "2",
            "-extfile",
            &extension_file,
        ],
    );
}

impl TlsRedis {
    /// Makes the certificates and starts the server; with `client_certificates`, it refuses
    /// clients that present none (`--tls-auth-clients yes`).
    ///
    /// # Panics
    /// If `openssl` or `redis-server` is missing or fails to start.
    pub fn start(client_certificates: bool) -> TlsRedis {
        let port = free_port();
        let directory = std::env::temp_dir().join(format!(
            "celeriac-tls-redis-{}-{port}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&directory)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", directory.display()));
        for (key, certificate, subject) in [
            ("ca.key", "ca.pem", "/CN=Celeriac test CA"),
            ("wrong-ca.key", "wrong-ca.pem", "/CN=Some other CA"),
        ] {
            openssl(
                &directory,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    key,
                    "-out",
                    certificate,
                    "-days",
                    "2",
                    "-subj",
                    subject,
                ],
            );
        }
        signed(
            &directory,
            "server",
            "/CN=localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        );
        signed(
            &directory,
            "client",
            "/CN=celeriac-test-client",
            "extendedKeyUsage=clientAuth\n",
        );
        let mut command = Command::new("redis-server");
        command
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--tls-cert-file")
            .arg(directory.join("server.pem"))
            .arg("--tls-key-file")
            .arg(directory.join("server.key"))
            .arg("--tls-ca-cert-file")
            .arg(directory.join("ca.pem"))
            .args([
                "--tls-auth-clients",
                if client_certificates { "yes" } else { "no" },
            ])
            .arg("--dir")
            .arg(&directory)
            .args(["--daemonize", "no", "--save", "", "--appendonly", "no"]);
        let watchdog = Watchdog::spawn(&command, &directory.join("redis.log"), Some(&directory));
        eventually_blocking(
            Duration::from_secs(10),
            &format!("the TLS redis-server on port {port} to be ready"),
            || {
                assert!(
                    watchdog.is_running(),
                    "the TLS redis-server exited (does this redis-server support TLS?):\n{}",
                    watchdog.log_tail(20)
                );
                watchdog
                    .log()
                    .contains("Ready to accept connections")
                    .then_some(())
            },
            || watchdog.log_tail(20),
        );
        TlsRedis {
            port,
            directory,
            watchdog,
        }
    }

    /// The TLS port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rediss://localhost:P/db`.
    pub fn url(&self, db: u8) -> String {
        format!("rediss://localhost:{}/{db}", self.port)
    }

    /// A file of the server's directory: `ca.pem`, `wrong-ca.pem`, `client.pem`, `client.key`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.directory.join(name)
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        self.watchdog.log_tail(40)
    }
}
