//! Router tests without a socket: requests go straight into the axum service, with the real
//! security layers and a real SQLite database in a temporary directory.
//! The browser half (hydration, clicks) is covered by `end2end/`.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use base64::Engine as _;
use celeriac::auth::Role;
use tower::ServiceExt as _;

use super::auth::{AuthState, SessionLimits, SESSION_COOKIE};
use super::{routes, DashboardOptions};

/// Large enough for any page the shell renders.
const BODY_LIMIT: usize = 1024 * 1024;
const PASSWORD: &str = "correct horse battery";
/// Longer than any request here takes; the API tests (`api::tests`) wait as long.
pub(super) const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Awaits `future`, failing the test with `what` if it takes longer than [`WAIT`]: a request
/// the server never finishes must fail the test, naming itself, rather than hang the run.
pub(super) async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: no answer within {WAIT:?}"),
    }
}

struct Harness {
    router: Router,
    auth: AuthState,
    _directory: tempfile::TempDir,
}

async fn harness(url_prefix: &str) -> Harness {
    let directory = tempfile::tempdir().expect("a temp dir");
    let url = format!(
        "sqlite://{}",
        directory.path().join("dashboard.db").display()
    );
    let database = celeriac::db::Database::connect(&url)
        .await
        .expect("sqlite opens");
    let options = DashboardOptions {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        site_root: Some(PathBuf::from("target/site-for-router-tests")),
        url_prefix: url_prefix.to_owned(),
        trusted_proxies: Vec::new(),
        proxy_auth: None,
    };
    let auth = AuthState::new(database, SessionLimits::default(), url_prefix.to_owned())
        .expect("auth state");
    for (name, role) in [("ada", Role::Admin), ("vic", Role::Viewer)] {
        let hash = auth.hasher.hash(PASSWORD.to_owned()).await.expect("hash");
        auth.users.add(name, role, &hash).await.expect("user added");
    }
    Harness {
        router: routes::router(&options, auth.clone(), None, axum::Router::new()),
        auth,
        _directory: directory,
    }
}

impl Harness {
    async fn send(&self, request: Request<Body>) -> Response<Body> {
        let what = format!("{} {}", request.method(), request.uri());
        within(&what, self.router.clone().oneshot(request))
            .await
            .expect("infallible")
    }

    async fn login(&self, name: &str, password: &str, cookie: Option<&str>) -> Response<Body> {
        let mut request = Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::HOST, "dash.test")
            .header(header::ORIGIN, "http://dash.test");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let body = format!(
            "username={name}&password={}&next=%2F",
            password.replace(' ', "+")
        );
        self.send(request.body(Body::from(body)).expect("request"))
            .await
    }

    async fn session_cookie(&self) -> String {
        let response = self.login("ada", PASSWORD, None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        cookie_pair(&response).expect("a session cookie")
    }
}

fn set_cookie(response: &Response<Body>) -> Option<String> {
    response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn cookie_pair(response: &Response<Body>) -> Option<String> {
    set_cookie(response).and_then(|cookie| cookie.split(';').next().map(str::to_owned))
}

async fn text(response: Response<Body>) -> String {
    let bytes = within(
        "the body",
        axum::body::to_bytes(response.into_body(), BODY_LIMIT),
    )
    .await
    .expect("body");
    String::from_utf8_lossy(&bytes).into_owned()
}

fn get(path: &str) -> axum::http::request::Builder {
    Request::get(path).header(header::HOST, "dash.test")
}

#[tokio::test]
async fn healthz_and_assets_are_public() {
    let harness = harness("").await;
    let response = harness
        .send(get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "ok");
    let response = harness
        .send(get("/login").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // A missing bundle file is a 404, not a login redirect.
    let response = harness
        .send(get("/pkg/celeriac.js").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// Every route that is not public, without credentials: pages redirect, the rest is 401.
#[tokio::test]
async fn every_protected_route_needs_a_login() {
    let harness = harness("").await;
    let pages = ["/", "/no-such-page", "/tasks", "/schedules"];
    for page in pages {
        let response = harness
            .send(
                get(page)
                    .header(header::ACCEPT, "text/html")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        let location = response.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(location.starts_with("/login?next="), "{page}: {location}");
    }
    let mut api: Vec<(String, String)> = vec![
        ("GET", "/api/me".to_owned()),
        ("GET", "/api/audit".to_owned()),
        ("GET", "/api/events".to_owned()),
        ("POST", "/logout".to_owned()),
        ("GET", "/".to_owned()),
    ]
    .into_iter()
    .map(|(method, path)| (method.to_owned(), path))
    .collect();
    for (path, method) in leptos::server_fn::axum::server_fn_paths() {
        api.push((method.as_str().to_owned(), path.to_owned()));
    }
    for (method, path) in api {
        let response = harness
            .send(
                Request::builder()
                    .method(method.as_str())
                    .uri(&path)
                    .header(header::HOST, "dash.test")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn login_cycles_the_session_id_and_sets_strict_cookie_flags() {
    let harness = harness("").await;
    let first = harness.session_cookie().await;
    let response = harness.login("ada", PASSWORD, Some(&first)).await;
    let cookie = set_cookie(&response).expect("a cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let second = cookie_pair(&response).unwrap();
    assert!(second.starts_with(&format!("{SESSION_COOKIE}=")));
    assert_ne!(first, second, "the session id changes at login");

    let me = harness
        .send(
            get("/api/me")
                .header(header::COOKIE, &second)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    assert!(text(me).await.contains("\"admin\""));

    // Logout deletes the session: the old cookie no longer works.
    let logout = harness
        .send(
            Request::post("/logout")
                .header(header::HOST, "dash.test")
                .header(header::ORIGIN, "http://dash.test")
                .header(header::COOKIE, &second)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    let me = harness
        .send(
            get("/api/me")
                .header(header::COOKIE, &second)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    let actions: Vec<String> = harness
        .auth
        .audit
        .recent(10)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.action)
        .collect();
    assert_eq!(actions[0], "logout");
    assert!(actions.contains(&"login".to_owned()));
}

#[tokio::test]
async fn cookie_is_secure_behind_a_trusted_https_proxy() {
    let harness = harness("").await;
    let directory = tempfile::tempdir().unwrap();
    let _ = directory;
    let options = DashboardOptions {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        site_root: Some(PathBuf::from("target/site-for-router-tests")),
        url_prefix: String::new(),
        trusted_proxies: vec!["10.0.0.1".parse().unwrap()],
        proxy_auth: None,
    };
    let router = routes::router(&options, harness.auth.clone(), None, axum::Router::new());
    let login = |peer: &str| {
        let mut request = Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::HOST, "dash.test")
            .header("x-forwarded-proto", "https")
            .body(Body::from(format!(
                "username=ada&password={}",
                PASSWORD.replace(' ', "+")
            )))
            .unwrap();
        let peer: SocketAddr = format!("{peer}:4000").parse().unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        request
    };
    let trusted = router.clone().oneshot(login("10.0.0.1")).await.unwrap();
    assert!(set_cookie(&trusted).unwrap().contains("Secure"));
    let untrusted = router.oneshot(login("10.0.0.2")).await.unwrap();
    assert!(!set_cookie(&untrusted).unwrap().contains("Secure"));
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let harness = harness("").await;
    let cookie = harness.session_cookie().await;
    let cases = [
        vec![("sec-fetch-site", "cross-site")],
        vec![("origin", "http://evil.test")],
        vec![("origin", "null")],
    ];
    for path in ["/login", "/logout"] {
        for headers in &cases {
            let mut request = Request::post(path)
                .header(header::HOST, "dash.test")
                .header(header::COOKIE, &cookie);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response = harness.send(request.body(Body::empty()).unwrap()).await;
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{path} {headers:?}"
            );
        }
    }
}

#[tokio::test]
async fn failed_logins_are_throttled_and_unknown_users_look_alike() {
    let harness = harness("").await;
    let unknown = harness.login("nobody", "wrong password", None).await;
    let wrong = harness.login("vic", "wrong password", None).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let unknown_page = text(unknown)
        .await
        .replace("value=\"nobody\"", "value=\"NAME\"");
    let wrong_page = text(wrong).await.replace("value=\"vic\"", "value=\"NAME\"");
    assert_eq!(unknown_page, wrong_page);
    for _ in 1..super::auth::throttle::ACCOUNT_FAILURES {
        harness.login("vic", "wrong password", None).await;
    }
    let throttled = harness.login("vic", PASSWORD, None).await;
    assert_eq!(
        throttled.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password"
    );
    assert!(set_cookie(&throttled).is_none());
    // Another account is not affected by vic's budget.
    assert_eq!(
        harness.login("ada", PASSWORD, None).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn basic_auth_works_for_api_clients_and_roles_are_enforced() {
    let harness = harness("").await;
    let basic = |name: &str, password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"))
        )
    };
    let response = harness
        .send(
            get("/api/me")
                .header(header::AUTHORIZATION, basic("vic", PASSWORD))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = harness
        .send(
            get("/api/audit")
                .header(header::AUTHORIZATION, basic("vic", PASSWORD))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "viewers cannot read the audit log"
    );
    let response = harness
        .send(
            get("/api/audit")
                .header(header::AUTHORIZATION, basic("ada", PASSWORD))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = harness
        .send(
            get("/api/me")
                .header(header::AUTHORIZATION, basic("ada", "nope"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
}

#[tokio::test]
async fn pages_carry_security_headers_and_the_nonce_reaches_the_hydration_script() {
    let harness = harness("").await;
    let cookie = harness.session_cookie().await;
    let response = harness
        .send(
            get("/")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let policy = headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("'wasm-unsafe-eval'") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert!(headers.contains_key(header::REFERRER_POLICY));
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap()
        .to_owned();
    let body = text(response).await;
    assert!(body.contains(&format!("nonce=\"{nonce}\"")), "{body}");
    assert!(body.contains("/pkg/celeriac.js"), "{body}");
    assert!(body.contains("<h1>Overview<"), "{body}");
    // The marker only appears after hydration, never in server-rendered HTML.
    assert!(!body.contains(r#"data-testid="hydrated""#), "{body}");

    let login_page = harness
        .send(get("/login").body(Body::empty()).unwrap())
        .await;
    assert!(login_page
        .headers()
        .contains_key(header::CONTENT_SECURITY_POLICY));
}

#[tokio::test]
async fn user_text_is_rendered_inert() {
    let harness = harness("").await;
    let response = harness
        .send(
            get("/login?next=%2F%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let body = text(response).await;
    assert!(!body.contains("<script>alert(1)"), "{body}");
    let response = harness.login("<script>alert(1)</script>", "x", None).await;
    let body = text(response).await;
    assert!(!body.contains("<script>"), "{body}");
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{body}"
    );
}

#[tokio::test]
async fn everything_lives_under_the_url_prefix() {
    let harness = harness("/tasks").await;
    let response = harness
        .send(get("/tasks/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = harness
        .send(get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // The address people type (and nginx's `location /tasks/` hands on) has one URL.
    for (path, canonical) in [
        ("/tasks/", "/tasks"),
        ("/tasks/workers/?x=1", "/tasks/workers?x=1"),
    ] {
        let response = harness.send(get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT, "{path}");
        assert_eq!(response.headers()[header::LOCATION], canonical, "{path}");
    }
    let response = harness
        .send(
            get("/tasks")
                .header(header::ACCEPT, "text/html")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        response.headers()[header::LOCATION],
        "/tasks/login?next=/tasks"
    );
    let login = harness
        .send(
            Request::post("/tasks/login")
                .header(header::HOST, "dash.test")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "username=ada&password={}&next=%2Ftasks%2F",
                    PASSWORD.replace(' ', "+")
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(login.headers()[header::LOCATION], "/tasks/");
    assert!(set_cookie(&login).unwrap().contains("Path=/tasks"));
    let cookie = cookie_pair(&login).unwrap();
    let page = harness
        .send(
            get("/tasks")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(page.status(), StatusCode::OK, "{:?}", page.headers());
    let body = text(page).await;
    assert!(body.contains("\"/tasks\""), "hydration root: {body}");
    assert!(body.contains("/tasks/pkg/celeriac.css"), "{body}");
    assert!(body.contains("<h1>Overview<"), "{body}");
}

#[test]
fn explicit_addr_wins_over_the_environment() {
    let addr = SocketAddr::from(([127, 0, 0, 1], 4321));
    assert_eq!(DashboardOptions::from_env(Some(addr)).addr, addr);
}

#[test]
fn url_prefixes_are_normalised() {
    assert_eq!(super::normalize_url_prefix("tasks/"), "/tasks");
    assert_eq!(super::normalize_url_prefix("/"), "");
    assert_eq!(super::normalize_url_prefix(""), "");
}

/// A host app's user, as its own login middleware would leave it on the request.
#[derive(Clone)]
struct HostStaff(&'static str);

/// The dashboard behind a host app's login, nested at `/tasks` in the host's router, as
/// `Dashboard::router` hands it over (the host's middleware marks requests with `staff` in
/// a header here, standing in for its session).
async fn mounted(harness: &Harness) -> Router {
    let options = DashboardOptions {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        site_root: Some(PathBuf::from("target/site-for-router-tests")),
        url_prefix: "/tasks".to_owned(),
        trusted_proxies: Vec::new(),
        proxy_auth: None,
    };
    let host = super::HostLogin::new(|request| {
        let HostStaff(name) = request.extensions.get::<HostStaff>()?;
        Some(super::AuthUser {
            name: (*name).to_owned(),
            role: Role::Operator,
        })
    })
    .login_url("/signin")
    .logout_url("/signout");
    let dashboard = routes::router(&options, harness.auth.clone(), Some(host), Router::new());
    Router::new()
        .route("/", axum::routing::get(|| async { "the host app" }))
        .nest("/tasks", dashboard)
        .layer(axum::middleware::from_fn(
            |mut request: axum::extract::Request, next: axum::middleware::Next| async move {
                if request.headers().contains_key("x-test-staff") {
                    request.extensions_mut().insert(HostStaff("grace"));
                }
                next.run(request).await
            },
        ))
}

async fn send_to(router: &Router, request: Request<Body>) -> Response<Body> {
    let what = format!("{} {}", request.method(), request.uri());
    within(&what, router.clone().oneshot(request))
        .await
        .expect("infallible")
}

#[tokio::test]
async fn nested_behind_the_host_login_the_host_decides_who_is_in() {
    let harness = harness("/tasks").await;
    let app = mounted(&harness).await;

    // Anonymous: pages go to the host's login, with the page to come back to; API calls 401.
    let page = send_to(
        &app,
        get("/tasks/failed")
            .header(header::ACCEPT, "text/html")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        page.headers()[header::LOCATION],
        "/signin?next=/tasks/failed"
    );
    let api = send_to(&app, get("/tasks/api/me").body(Body::empty()).unwrap()).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);

    // Signed in at the host: pages render under the prefix, the API knows the host's user.
    let page = send_to(
        &app,
        get("/tasks")
            .header(header::ACCEPT, "text/html")
            .header("x-test-staff", "1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    let body = text(page).await;
    assert!(body.contains("/tasks/pkg/celeriac.js"), "{body}");
    assert!(body.contains("<h1>Overview<"), "{body}");
    let me = send_to(
        &app,
        get("/tasks/api/me")
            .header("x-test-staff", "1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(me.status(), StatusCode::OK);
    let me = text(me).await;
    assert!(
        me.contains("\"grace\"") && me.contains("\"operator\""),
        "{me}"
    );

    // The dashboard has no login of its own here: its login and logout lead to the host's.
    let login = send_to(&app, get("/tasks/login").body(Body::empty()).unwrap()).await;
    assert_eq!(login.headers()[header::LOCATION], "/signin");
    let logout = send_to(
        &app,
        Request::post("/tasks/logout")
            .header(header::HOST, "dash.test")
            .header(header::ORIGIN, "http://dash.test")
            .header("x-test-staff", "1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(logout.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(logout.headers()[header::LOCATION], "/signout");
    // No session cookie is ever set: the host's session is the only one.
    assert!(set_cookie(&logout).is_none());

    // The host's own routes are untouched.
    let home = send_to(&app, get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(text(home).await, "the host app");
}
