//! Router tests without a socket: requests go straight into the axum service.
//! The browser half (hydration, clicks) is covered by `end2end/`.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt as _;

use super::{routes, DashboardOptions};

/// Large enough for any page the shell renders.
const BODY_LIMIT: usize = 1024 * 1024;

fn test_options() -> DashboardOptions {
    DashboardOptions {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        site_root: PathBuf::from("target/site-for-router-tests"),
        url_prefix: String::new(),
    }
}

async fn get_text(path: &str) -> (StatusCode, String) {
    let router = routes::router(&test_options(), axum::Router::new());
    let request = Request::get(path)
        .body(Body::empty())
        .expect("a GET with an empty body is a valid request");
    let response = router
        .oneshot(request)
        .await
        .expect("the router's error type is Infallible");
    let status = response.status();
    let body_bytes = axum::body::to_bytes(response.into_body(), BODY_LIMIT)
        .await
        .expect("the body fits the limit");
    (status, String::from_utf8_lossy(&body_bytes).into_owned())
}

#[tokio::test]
async fn healthz_answers_ok() {
    let (status, body) = get_text("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "ok");
}

#[tokio::test]
async fn overview_page_is_rendered_with_hydration_scripts() {
    let (status, body) = get_text("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<title>Celeriac</title>"), "{body}");
    assert!(body.contains("/pkg/celeriac.js"), "{body}");
    assert!(body.contains("/pkg/celeriac_bg.wasm"), "{body}");
    assert!(body.contains("<h1>Overview</h1>"), "{body}");
    // Without an API behind it the page says so instead of failing.
    assert!(body.contains(r#"class="error""#), "{body}");
    // The marker only appears after hydration, never in server-rendered HTML.
    assert!(!body.contains(r#"data-testid="hydrated""#), "{body}");
}

#[tokio::test]
async fn unknown_path_is_not_found() {
    let (status, _body) = get_text("/no-such-page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn explicit_addr_wins_over_the_environment() {
    let addr = SocketAddr::from(([127, 0, 0, 1], 4321));
    assert_eq!(DashboardOptions::from_env(Some(addr)).addr, addr);
}
