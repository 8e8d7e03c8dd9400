//! The attacks of the security review (issue 13), each as real HTTP against a real server:
//! the whole dashboard router on a port, a SQLite database in a temporary directory, client
//! addresses given through a trusted proxy's `X-Forwarded-For`.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::{header, StatusCode};
use celeriac::auth::Role;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;

use super::auth::{AuthState, SessionLimits};
use super::{routes, DashboardOptions};

const PASSWORD: &str = "correct horse battery";

struct Server {
    addr: SocketAddr,
    auth: AuthState,
    _directory: tempfile::TempDir,
}

/// A dashboard with the accounts `ada` (admin) and `vic` (viewer), believing the proxy at
/// 127.0.0.1, so each request can say which client it comes from.
async fn serve() -> Server {
    let directory = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", directory.path().join("attack.db").display());
    let database = celeriac::db::Database::connect(&url)
        .await
        .expect("sqlite opens");
    let auth = AuthState::new(database, SessionLimits::default(), String::new()).expect("auth");
    for (name, role) in [("ada", Role::Admin), ("vic", Role::Viewer)] {
        let hash = auth.hasher.hash(PASSWORD.to_owned()).await.expect("hash");
        auth.users.add(name, role, &hash).await.expect("user added");
    }
    let options = DashboardOptions {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        site_root: Some(PathBuf::from("target/site-for-attack-tests")),
        url_prefix: String::new(),
        trusted_proxies: vec!["127.0.0.1".parse().expect("an address")],
        proxy_auth: None,
    };
    let addr = listen(routes::router(
        &options,
        auth.clone(),
        None,
        axum::Router::new(),
    ))
    .await;
    Server {
        addr,
        auth,
        _directory: directory,
    }
}

/// Serves `router` on a free local port, as `serve` does (with the peer's address).
async fn listen(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("its address");
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    addr
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    location: Option<String>,
    cookie: Option<String>,
    body: String,
}

impl Server {
    /// Sends one request on its own connection, as client `from`, and reads the answer.
    async fn send(
        &self,
        method: &str,
        path: &str,
        from: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let response = self.open(method, path, from, headers, body).await;
        let status = response.status();
        let text = |name| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let location = text(header::LOCATION);
        let headers = response.headers().clone();
        let cookie =
            text(header::SET_COOKIE).and_then(|cookie| cookie.split(';').next().map(str::to_owned));
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        Answer {
            status,
            headers,
            location,
            cookie,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// Sends one request on its own connection, as client `from`; the body is left to read
    /// (an event stream never ends).
    async fn open(
        &self,
        method: &str,
        path: &str,
        from: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> hyper::Response<hyper::body::Incoming> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connects");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("handshake");
        tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "dash.test")
            .header("x-forwarded-for", from);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body))).expect("request");
        super::tests::within(path, sender.send_request(request))
            .await
            .expect("an answer")
    }

    /// `POST /logout` with `cookie`, from a page of `origin`.
    async fn logout(&self, cookie: &str, from: &str, origin: &str) -> Answer {
        self.send(
            "POST",
            "/logout",
            from,
            &[("cookie", cookie), ("origin", origin)],
            Vec::new(),
        )
        .await
    }

    async fn login(&self, name: &str, password: &str, from: &str, next: &str) -> Answer {
        let form = format!(
            "username={}&password={}&next={}",
            super::auth::login::percent_encode(name),
            super::auth::login::percent_encode(password),
            super::auth::login::percent_encode(next)
        );
        self.send(
            "POST",
            "/login",
            from,
            &[(
                header::CONTENT_TYPE.as_str(),
                "application/x-www-form-urlencoded",
            )],
            form.into_bytes(),
        )
        .await
    }

    /// `password`'s argon2 hash, as the accounts store them.
    async fn hash(&self, password: &str) -> String {
        self.auth
            .hasher
            .hash(password.to_owned())
            .await
            .expect("hash")
    }

    /// Gives `name` the password `password`, as `celeriac user passwd` does.
    async fn set_password(&self, name: &str, password: &str) {
        let hash = self.hash(password).await;
        self.auth
            .users
            .set_password(name, &hash)
            .await
            .expect("password set");
    }

    /// `GET /api/me` as client `from` with one header: a session cookie or Basic credentials.
    async fn me(&self, from: &str, header: (&str, &str)) -> StatusCode {
        self.send("GET", "/api/me", from, &[header], Vec::new())
            .await
            .status
    }

    async fn audit_actions(&self) -> Vec<(String, String)> {
        self.auth
            .audit
            .recent(10_000)
            .await
            .expect("the audit log")
            .into_iter()
            .map(|entry| (entry.actor, entry.action))
            .collect()
    }
}

/// F1: 300 guesses at once were all verified, and the right one, sent with them, got in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_cannot_outrun_the_throttle() {
    let server = std::sync::Arc::new(serve().await);
    let mut guesses = tokio::task::JoinSet::new();
    for guess in 0..60 {
        let server = server.clone();
        guesses.spawn(async move {
            let password = format!("wrong {guess}");
            server
                .login("ada", &password, "203.0.113.5", "/")
                .await
                .status
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = guesses.join_next().await {
        statuses.push(status.expect("a guess"));
    }
    let checked = statuses
        .iter()
        .filter(|status| **status != StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(checked, 5, "passwords checked: {statuses:?}");
    let right = server.login("ada", PASSWORD, "203.0.113.5", "/").await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
}

/// F2: huge names filled the audit log and the throttle; refused floods wrote a row each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_bodies_and_names_are_bounded_and_refusals_audited_once() {
    let server = serve().await;
    let huge = "n".repeat(1024 * 1024);
    let answer = server.login(&huge, "x", "203.0.113.6", "/").await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);

    let long = "m".repeat(2_000);
    for _ in 0..30 {
        let answer = server.login(&long, "wrong", "203.0.113.6", "/").await;
        assert!(
            matches!(
                answer.status,
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            ),
            "{}",
            answer.status
        );
        assert!(!answer.body.contains(&long), "the name is echoed whole");
    }
    let actions = server.audit_actions().await;
    assert!(actions.iter().all(|(actor, _)| actor.chars().count() <= 64));
    let failed = actions
        .iter()
        .filter(|(_, action)| action == "login_failed")
        .count();
    let throttled = actions
        .iter()
        .filter(|(_, action)| action == "login_throttled")
        .count();
    assert_eq!((failed, throttled), (5, 1), "{actions:?}");
}

/// F8: five wrong guesses from anywhere locked the account for everyone for 15 minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_from_elsewhere_does_not_lock_out_the_user() {
    let server = serve().await;
    let home = "198.51.100.1";
    assert_eq!(
        server.login("ada", PASSWORD, home, "/").await.status,
        StatusCode::SEE_OTHER
    );
    // An attacker spends every budget it can reach: five guesses from each of ten addresses.
    for attacker in 0..10 {
        for _ in 0..5 {
            let from = format!("192.0.2.{attacker}");
            let answer = server.login("ada", "guess", &from, "/").await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        }
    }
    let from_elsewhere = server.login("ada", PASSWORD, "192.0.2.200", "/").await;
    assert_eq!(from_elsewhere.status, StatusCode::TOO_MANY_REQUESTS);
    // Ada, from the machine she logged in from before, still gets in.
    let from_home = server.login("ada", PASSWORD, home, "/").await;
    assert_eq!(from_home.status, StatusCode::SEE_OTHER);
}

/// F3 and F4: redirects that a browser follows to another site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_redirect_leaves_the_site() {
    let server = serve().await;
    for path in ["//evil.example/", "///evil.example/", "/\\evil.example/"] {
        let answer = server
            .send("GET", path, "203.0.113.7", &[], Vec::new())
            .await;
        let location = answer.location.unwrap_or_default();
        assert!(
            !location.starts_with("//") && !location.starts_with("/\\"),
            "{path} → {} {location}",
            answer.status
        );
    }
    for next in ["/\t/evil.example", "/..//evil.example/", "//evil.example"] {
        let answer = server.login("vic", PASSWORD, "203.0.113.8", next).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
        assert_eq!(answer.location.as_deref(), Some("/"), "next={next:?}");
    }
}

/// F6: a session outlived the password it was made with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_password_ends_the_old_sessions() {
    let server = serve().await;
    let login = server.login("vic", PASSWORD, "203.0.113.9", "/").await;
    let cookie = login.cookie.expect("a session cookie");
    let from = "203.0.113.9";
    assert_eq!(server.me(from, ("cookie", &cookie)).await, StatusCode::OK);
    server.set_password("vic", "a brand new password").await;
    assert_eq!(
        server.me(from, ("cookie", &cookie)).await,
        StatusCode::UNAUTHORIZED
    );

    // Deleting and re-adding the account ends them too.
    let login = server.login("ada", PASSWORD, "203.0.113.9", "/").await;
    let cookie = login.cookie.expect("a session cookie");
    server.auth.users.delete("ada").await.expect("deleted");
    let hash = server.hash(PASSWORD).await;
    server
        .auth
        .users
        .add("ada", Role::Admin, &hash)
        .await
        .expect("added again");
    assert_eq!(
        server.me(from, ("cookie", &cookie)).await,
        StatusCode::UNAUTHORIZED
    );
}

/// F5: a request in flight at logout saved its session afterwards and brought it back. The
/// store now never re-creates a session by saving it.
#[tokio::test]
async fn saving_a_session_that_ended_does_not_bring_it_back() {
    use tower_sessions::session::Record;
    use tower_sessions::SessionStore as _;

    let server = serve().await;
    let store = super::auth::store::SqlSessionStore::new(server.auth.sessions());
    let mut record = Record {
        id: Default::default(),
        data: Default::default(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    store.create(&mut record).await.expect("created");
    store.delete(&record.id).await.expect("logged out");
    store.save(&record).await.expect("a late save");
    assert!(store.load(&record.id).await.expect("loads").is_none());
}

/// F13, F16 and a NUL byte: smaller holes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_scheme_origins_missing_icons_and_nul_bytes_are_refused() {
    let server = serve().await;
    let login = server.login("ada", PASSWORD, "203.0.113.10", "/").await;
    let cookie = login.cookie.expect("a session cookie");
    // The server is plain HTTP, reached directly: an https origin is another site.
    let answer = server
        .logout(&cookie, "203.0.113.10", "https://dash.test")
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // A missing public file rendered the app shell to anyone.
    let icon = server
        .send(
            "GET",
            "/favicon.ico",
            "203.0.113.11",
            &[("accept", "text/html")],
            Vec::new(),
        )
        .await;
    assert_ne!(icon.status, StatusCode::OK);
    assert!(!icon.body.contains("<nav"), "{}", icon.body);
    // A NUL byte in a search was a 500 (PostgreSQL refuses it); it is the caller's mistake.
    let search = server
        .send(
            "GET",
            "/api/history?search=a%00b",
            "203.0.113.10",
            &[("cookie", &cookie)],
            Vec::new(),
        )
        .await;
    assert_ne!(search.status, StatusCode::INTERNAL_SERVER_ERROR);
}

/// F11: behind a trusted proxy that writes `ip:port`, `[v6]` or `unknown`, that hop did not
/// parse and was skipped, so the address the client wrote itself was believed: a fresh one per
/// guess, and the per-address budget never ran out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_forwarded_hops_do_not_escape_the_address_budget() {
    for real in [
        "203.0.113.20:443",
        "[2001:db8::20]:443",
        "[2001:db8::21]",
        "unknown",
    ] {
        let server = serve().await;
        let mut statuses = Vec::new();
        for guess in 0..25 {
            let from = format!("10.9.8.{guess}, {real}");
            let answer = server
                .login(&format!("nobody{guess}"), "x", &from, "/")
                .await;
            statuses.push(answer.status);
        }
        assert!(
            statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
            "{real}: {statuses:?}"
        );
    }
}

/// F12: no `Strict-Transport-Security`, even when the trusted proxy says the client used TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_is_sent_when_the_proxy_speaks_tls() {
    let server = serve().await;
    let https = server
        .send(
            "GET",
            "/login",
            "203.0.113.30",
            &[("x-forwarded-proto", "https")],
            Vec::new(),
        )
        .await;
    assert_eq!(
        https
            .headers
            .get(header::STRICT_TRANSPORT_SECURITY)
            .and_then(|value| value.to_str().ok()),
        Some("max-age=31536000")
    );
    let plain = server
        .send("GET", "/login", "203.0.113.30", &[], Vec::new())
        .await;
    assert!(plain
        .headers
        .get(header::STRICT_TRANSPORT_SECURITY)
        .is_none());
}

/// F14: every Basic-auth request ran a full argon2 verify in the pool the login form shares.
/// Verified credentials are now remembered for a minute; a new password still counts at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_verifies_once_and_still_sees_a_new_password() {
    use base64::Engine as _;
    let server = serve().await;
    let basic = |password: &str| {
        let pair = format!("vic:{password}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    };
    let from = "203.0.113.40";
    let before = server.auth.hasher.verifications();
    for _ in 0..20 {
        let status = server.me(from, ("authorization", &basic(PASSWORD))).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(server.auth.hasher.verifications() - before, 1);
    server.set_password("vic", "a new password").await;
    let old = server.me(from, ("authorization", &basic(PASSWORD))).await;
    assert_eq!(old, StatusCode::UNAUTHORIZED);
    let new = server
        .me(from, ("authorization", &basic("a new password")))
        .await;
    assert_eq!(new, StatusCode::OK);
}

/// F7: an open event stream kept sending after logout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_ends_at_logout() {
    let directory = tempfile::tempdir().expect("a temp dir");
    let env = celeriac::testkit::TestEnv::new("attack-sse");
    let mut config = celeriac::config::Config {
        broker_url: env.redis_url.clone(),
        database_url: format!("sqlite://{}", directory.path().join("sse.db").display()),
        ..celeriac::config::Config::default()
    };
    config.broker_transport_options.global_keyprefix = env.key_prefix.clone();
    let dashboard = super::Dashboard::builder(config)
        .start()
        .await
        .expect("the dashboard starts");
    let addr = listen(dashboard.router()).await;
    let auth = AuthState::new(
        celeriac::db::Database::connect(&format!(
            "sqlite://{}",
            directory.path().join("sse.db").display()
        ))
        .await
        .expect("sqlite opens"),
        SessionLimits::default(),
        String::new(),
    )
    .expect("auth");
    let hash = auth.hasher.hash(PASSWORD.to_owned()).await.expect("hash");
    auth.users
        .add("vic", Role::Viewer, &hash)
        .await
        .expect("added");
    let server = Server {
        addr,
        auth,
        _directory: directory,
    };
    let cookie = server
        .login("vic", PASSWORD, "203.0.113.12", "/")
        .await
        .cookie
        .expect("a session cookie");

    let response = server
        .open(
            "GET",
            "/api/events",
            "203.0.113.12",
            &[("cookie", &cookie)],
            Vec::new(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = super::tests::within("the snapshot", body.frame()).await;
    assert!(first.is_some(), "the stream sends its snapshot");

    let logout = server
        .logout(&cookie, "203.0.113.12", "http://dash.test")
        .await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    // The stream ends within a few re-checks (300 ms apart in tests; 15 s in a server).
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream still runs after logout");
    dashboard.stopped().await;
}
