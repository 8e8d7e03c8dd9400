//! What the tests that run `celeriac serve` share: the server process, the operator account
//! they log in with, and a plain HTTP/1.1 client with its Basic credentials.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `celeriac serve` child, killed when dropped.
pub struct Server(pub Child);

impl Server {
    /// Runs `command` (the test's environment) as `serve --no-worker --no-beat` on a free
    /// port of 127.0.0.1; the server and its address.
    pub fn serve(mut command: Command) -> (Server, SocketAddr) {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port");
        let child = command
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
            .expect("serve starts");
        (Server(child), addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `celeriac user add oper --role operator` through `command` (the test's environment),
/// with the password `http` sends.
pub fn add_operator(mut command: Command) {
    command
        .args([
            "user",
            "add",
            "oper",
            "--role",
            "operator",
            "--password-stdin",
        ])
        .stdin(Stdio::piped());
    let mut adding = command.spawn().expect("user add runs");
    if let Some(mut stdin) = adding.stdin.take() {
        stdin.write_all(b"secret-password\n").expect("password");
    }
    assert!(adding.wait().expect("user add ends").success());
}

/// One HTTP/1.1 request with the operator's Basic credentials; the status and the body.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
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
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())?;
    Some((status, body))
}

/// The JSON object in a (possibly chunked) body.
pub fn json_body(body: &str) -> Value {
    let start = body.find(['{', '[']).unwrap_or(0);
    let end = body
        .rfind(['}', ']'])
        .map(|end| end + 1)
        .unwrap_or(body.len());
    serde_json::from_str(&body[start..end]).unwrap_or(Value::Null)
}
