//! Behind a proxy that authenticates (nginx `auth_basic` or `auth_request`): the user header
//! counts from trusted proxies only, a proxied user without an account gets the configured
//! role and one with an account keeps theirs; and a dashboard session is not undone by the
//! Basic credentials a browser keeps sending to nginx.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine as _;
use celeriac::auth::Role;
use tower::ServiceExt as _;

use super::auth::{AuthState, SessionLimits};
use super::tests::within;
use super::{routes, DashboardOptions, ProxyAuth};

const PASSWORD: &str = "correct horse battery";

async fn router(proxy_auth: Option<ProxyAuth>) -> (axum::Router, tempfile::TempDir) {
    let directory = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", directory.path().join("proxy.db").display());
    let database = celeriac::db::Database::connect(&url).await.expect("sqlite");
    let mut auth = AuthState::new(database, SessionLimits::default(), String::new()).expect("auth");
    auth.proxy_auth = proxy_auth.clone();
    let hash = auth.hasher.hash(PASSWORD.to_owned()).await.expect("hash");
    auth.users
        .add("ada", Role::Admin, &hash)
        .await
        .expect("user");
    let options = DashboardOptions {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        site_root: Some(PathBuf::from("target/site-for-router-tests")),
        url_prefix: String::new(),
        trusted_proxies: vec!["10.0.0.1".parse().expect("an address")],
        proxy_auth,
    };
    (
        routes::router(&options, auth, None, axum::Router::new()),
        directory,
    )
}

fn from(peer: &str, path: &str, headers: &[(&str, String)]) -> Request<Body> {
    let mut request = Request::get(path).header(header::HOST, "dash.test");
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    let mut request = request.body(Body::empty()).expect("request");
    let peer: SocketAddr = format!("{peer}:4000").parse().expect("peer");
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    request
}

async fn me(router: &axum::Router, request: Request<Body>) -> (StatusCode, String) {
    let response = within("GET /api/me", router.clone().oneshot(request))
        .await
        .expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn the_user_header_counts_from_trusted_proxies_only() {
    let (router, _directory) = router(Some(ProxyAuth {
        header: "X-Remote-User".into(),
        role: Role::Operator,
    }))
    .await;
    let user = |name: &str| vec![("x-remote-user", name.to_owned())];
    let (status, body) = me(&router, from("10.0.0.1", "/api/me", &user("oper"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("\"oper\"") && body.contains("\"operator\""),
        "{body}"
    );
    // An account keeps its own role.
    let (status, body) = me(&router, from("10.0.0.1", "/api/me", &user("ada"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("\"admin\""), "{body}");
    // The same header from anyone else is a forgery, and from the proxy an empty one is
    // nobody.
    let (status, _) = me(&router, from("10.0.0.2", "/api/me", &user("ada"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = me(&router, from("10.0.0.1", "/api/me", &user(" "))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Without proxy authentication configured the header means nothing.
    let (plain, _directory) = router_without_proxy_auth().await;
    let (status, _) = me(&plain, from("10.0.0.1", "/api/me", &user("ada"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn router_without_proxy_auth() -> (axum::Router, tempfile::TempDir) {
    router(None).await
}

#[tokio::test]
async fn a_session_survives_the_basic_credentials_nginx_asked_for() {
    let (router, _directory) = router(None).await;
    let mut login = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "dash.test")
        .header(header::ORIGIN, "http://dash.test")
        .body(Body::from(format!(
            "username=ada&password={}",
            PASSWORD.replace(' ', "+")
        )))
        .expect("request");
    login
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(SocketAddr::from((
            [10, 0, 0, 1],
            4000,
        ))));
    let response = router.clone().oneshot(login).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    // The browser adds nginx's htpasswd credentials, unknown to the dashboard.
    let nginx_basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("htuser:htpassword")
    );
    let (status, body) = me(
        &router,
        from(
            "10.0.0.1",
            "/api/me",
            &[("cookie", cookie), ("authorization", nginx_basic.clone())],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"ada\""), "{body}");
    // Without a session those credentials are still checked, and refused.
    let (status, _) = me(
        &router,
        from("10.0.0.1", "/api/me", &[("authorization", nginx_basic)]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
