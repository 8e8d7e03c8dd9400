//! The benchmark's HTTP side: a plain hyper HTTP/1.1 client that logs in with the form (so
//! requests carry a session cookie, not Basic auth, whose argon2 check would dominate every
//! request), times page loads, and reads the SSE stream the way `EventSource` does.

use anyhow::{bail, Context};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// One keep-alive connection to the dashboard.
pub(crate) struct Connection {
    sender: SendRequest<Full<Bytes>>,
    addr: SocketAddr,
}

impl Connection {
    pub(crate) async fn open(addr: SocketAddr) -> anyhow::Result<Connection> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Connection { sender, addr })
    }

    /// Logs in as `user` and returns the session cookie (`name=value`).
    pub(crate) async fn login(&mut self, user: &str, password: &str) -> anyhow::Result<String> {
        let body = format!("username={user}&password={password}&next=%2F");
        let request = Request::post("/login")
            .header(header::HOST, self.addr.to_string())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let cookie = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("celeriac_session="))
            .and_then(|value| value.split(';').next())
            .map(str::to_owned);
        let status = response.status();
        response.into_body().collect().await?;
        match cookie {
            Some(cookie) if status.is_redirection() => Ok(cookie),
            _ => bail!("login as {user} failed: {status}"),
        }
    }

    /// GETs `path` with `cookie`; returns the status, the body and the time to the last byte.
    pub(crate) async fn get(
        &mut self,
        path: &str,
        cookie: &str,
    ) -> anyhow::Result<(StatusCode, Bytes, Duration)> {
        let request = Request::get(path)
            .header(header::HOST, self.addr.to_string())
            .header(header::COOKIE, cookie)
            .header(header::ACCEPT, "text/html")
            .body(Full::new(Bytes::new()))?;
        // After a response the connection becomes ready again asynchronously.
        self.sender.ready().await?;
        let started = Instant::now();
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body, started.elapsed()))
    }
}

/// Opens `/api/events` with `cookie` and calls `on_event(text)` for every SSE event (its
/// `data:` lines, joined) until `on_event` returns false or the stream ends.
pub(crate) async fn read_events(
    addr: SocketAddr,
    cookie: &str,
    mut on_event: impl FnMut(&str) -> bool,
) -> anyhow::Result<()> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::get("/api/events")
        .header(header::HOST, addr.to_string())
        .header(header::COOKIE, cookie)
        .header(header::ACCEPT, "text/event-stream")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    if response.status() != StatusCode::OK {
        bail!("/api/events answered {}", response.status());
    }
    let mut body = response.into_body();
    let mut pending = String::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading the event stream")?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            if !on_event(&event) {
                return Ok(());
            }
        }
    }
    Ok(())
}
