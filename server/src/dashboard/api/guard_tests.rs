//! Every route of the dashboard, listed, refuses a request that carries no session and no
//! Basic auth: pages redirect to the login form, everything else answers 401.
//!
//! The list is not typed by hand: it is read from the router's source (`api/mod.rs`,
//! `routes.rs`) and the app's `<Route path=path!(..)>` lines, so a route added later is
//! covered without anyone remembering this test. `/healthz`, Flower's `/healthcheck`, `/login`
//! and the bundle under `/pkg` are the public exceptions, checked to stay public.

use axum::http::{header, Request, StatusCode};
use http_body_util::Empty;
use hyper::body::Bytes;

use super::tests::spawn_app;

/// The string literals in `source` that start with `/` and sit in a `.route(` or `path!(`
/// call (a route may be written over several lines), placeholders filled in.
fn route_paths(source: &str, marker: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for (at, _) in source.match_indices(marker) {
        let rest = &source[at + marker.len()..];
        let Some(open) = rest.find('"') else { continue };
        if !rest[..open].trim().is_empty() {
            continue;
        }
        let literal = &rest[open + 1..];
        let Some(close) = literal.find('"') else {
            continue;
        };
        let path = &literal[..close];
        if !path.starts_with('/') && !path.is_empty() {
            continue;
        }
        let filled: Vec<String> = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') || segment.starts_with(':') {
                    "x@example".to_owned()
                } else {
                    segment.to_owned()
                }
            })
            .collect();
        let filled = filled.join("/");
        paths.push(if filled.is_empty() {
            "/".to_owned()
        } else {
            filled
        });
    }
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_requests_without_a_login() {
    let api_routes = route_paths(include_str!("mod.rs"), ".route(");
    let account_routes = route_paths(include_str!("../routes.rs"), ".route(&at(");
    let pages = route_paths(include_str!("../../../../app/src/lib.rs"), "path=path!(");
    // The listing found what it should: a sample from each source.
    for expected in ["/api/workers", "/api/schedules/x@example/run", "/metrics"] {
        assert!(api_routes.contains(&expected.to_owned()), "{api_routes:?}");
    }
    assert!(
        account_routes.contains(&"/api/audit".to_owned()),
        "{account_routes:?}"
    );
    for expected in ["/", "/periodic/x@example", "/audit", "/workers/x@example"] {
        assert!(pages.contains(&expected.to_owned()), "{pages:?}");
    }
    assert!(api_routes.len() >= 30, "{api_routes:?}");

    let app = spawn_app("dash-guard").await;
    let send = |method: &'static str, path: String, html: bool| {
        let addr = app.addr;
        async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(connection);
            let mut request = Request::builder()
                .method(method)
                .uri(&path)
                .header(header::HOST, addr.to_string());
            if html {
                request = request.header(header::ACCEPT, "text/html");
            }
            let response = sender
                .send_request(request.body(Empty::<Bytes>::new()).unwrap())
                .await
                .unwrap();
            (response.status(), response.headers().clone())
        }
    };

    let mut checked = 0;
    for path in api_routes.iter().chain(&account_routes) {
        if path == "/login" || path == "/healthz" || path == "/healthcheck" {
            continue;
        }
        for method in ["GET", "POST"] {
            let (status, _) = send(method, path.clone(), false).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            checked += 1;
        }
    }
    for path in &pages {
        let (status, headers) = send("GET", path.clone(), true).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "GET {path}");
        let location = headers[header::LOCATION].to_str().unwrap();
        assert!(location.starts_with("/login?next="), "{path}: {location}");
        checked += 1;
    }
    assert!(checked >= 70, "only {checked} checks");

    // The public exceptions stay public.
    assert_eq!(
        send("GET", "/healthz".into(), false).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send("GET", "/healthcheck".into(), false).await.0,
        StatusCode::OK,
        "Flower's health check needs no login, as in Flower"
    );
    assert_eq!(send("GET", "/login".into(), true).await.0, StatusCode::OK);
}
