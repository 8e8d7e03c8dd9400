//! The dashboard's axum router.
//!
//! Every path lives under the URL prefix (`--url-prefix`, `""` by default): `<prefix>/healthz`
//! (and Flower's `<prefix>/healthcheck`),
//! `<prefix>/pkg/*` (the browser bundle), `<prefix>/login` and `<prefix>/logout`, every Leptos
//! route and server function, and last a fallback that serves a static file (`public/` copies
//! such as `favicon.svg`, embedded or from the site root) or renders the app's not-found page.
//! The routes carry the prefix rather than being nested under it: Leptos matches the full path
//! against `<Router base=prefix>`, so the server renders exactly what the browser will hydrate.
//! [`nestable`] lets a host app `nest` the router all the same.
//!
//! Pages are rendered to their end before the answer leaves, and rendered again when a render
//! stalls (`render_page`): Leptos' streaming renderer can leave a page unfinished for good.
//!
//! The JSON API (`/api/*`, `/metrics`) arrives as a router with its own state applied and is
//! mounted under the prefix, inside the same layers; a clone of it is given to server
//! rendering as context (`local_api`), so pages render with data.
//!
//! Layers, outermost first: tracing, `without_trailing_slash` (`/tasks/` → `/tasks`),
//! `security::client_context` (client address and scheme,
//! trusted proxies, `Secure` cookies), `security::security_headers` (CSP nonce),
//! `security::reject_cross_site`, then sessions and `auth::require_login` (own accounts) or
//! `auth::require_host_user` (behind a host app's login).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, OriginalUri, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, on, post, MethodFilter};
use axum::Router;
use leptos::prelude::{provide_context, use_context, LeptosOptions};
use leptos_axum::{generate_route_list_with_exclusions_and_ssg_and_context, LeptosRoutes};
use tower::ServiceExt as _;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use super::assets::{embedded_response, Assets};
use super::auth::{login, require_host_user, require_login, AuthState, HostLogin};
use super::local_api::RouterApi;
use super::security::{self, CspNonce, SecurityConfig};
use super::{DashboardOptions, OUTPUT_NAME};
use app::client::LocalApiContext;

/// Builds the router, all state applied; `api` (the JSON API, SSE and `/metrics`, its state
/// applied) is mounted under the prefix inside the security layers. With `host` the host
/// app's login guards it; else the dashboard's own accounts and sessions.
pub(super) fn router(
    options: &DashboardOptions,
    auth: AuthState,
    host: Option<HostLogin>,
    api: Router,
) -> Router {
    let prefix = options.url_prefix.clone();
    let at = |path: &str| format!("{prefix}{path}");
    let assets = Assets::choose(options.site_root.as_deref());
    let leptos_options = LeptosOptions::builder()
        .output_name(OUTPUT_NAME)
        .site_root(assets.site_root().to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(options.addr)
        .build();
    let prefix_context = {
        let prefix = prefix.clone();
        move || provide_context(app::UrlPrefix(prefix.clone()))
    };
    // The nonce `security_headers` put in the CSP header replaces the one leptos_axum drew,
    // so the hydration script carries the header's nonce.
    // Server rendering reads the same API the browser does, in process (no prefix needed).
    let local_api = LocalApiContext(Arc::new(RouterApi(api.clone())));
    let page_context = {
        let prefix_context = prefix_context.clone();
        move || {
            prefix_context();
            provide_context(local_api.clone());
            let nonce = use_context::<axum::http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<CspNonce>().cloned());
            if let Some(CspNonce(nonce)) = nonce {
                provide_context(leptos::nonce::Nonce::from_value(nonce));
            }
        }
    };
    let (app_routes, _static_routes) =
        generate_route_list_with_exclusions_and_ssg_and_context(app::App, None, prefix_context);

    let mut pages = Router::new()
        .route(&at("/healthz"), get(healthz))
        .route(&at("/healthcheck"), get(flower_healthcheck));
    pages = match &assets {
        Assets::Embedded => pages.route(
            &at("/pkg/{*file}"),
            get({
                let prefix = prefix.clone();
                move |uri: Uri, request: Request| async move {
                    let path = strip_prefix(&prefix, uri);
                    embedded_response(path.path(), request.headers())
                        .unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
                }
            }),
        ),
        Assets::Dir(site_root) => {
            pages.nest_service(&at("/pkg"), ServeDir::new(site_root.join("pkg")))
        }
    };
    pages = pages.leptos_routes_with_context(&leptos_options, app_routes, page_context.clone(), {
        let leptos_options = leptos_options.clone();
        move || app::shell(leptos_options.clone())
    });
    if !prefix.is_empty() {
        // Server functions are compiled with paths at the root (`/api/...`); under a prefix
        // the browser posts to `<prefix>/api/...` (see `frontend`), served here.
        for (path, method) in leptos::server_fn::axum::server_fn_paths() {
            let Ok(filter) = MethodFilter::try_from(method) else {
                continue;
            };
            pages = pages.route(
                &at(path),
                on(filter, {
                    let prefix = prefix.clone();
                    let page_context = page_context.clone();
                    move |request: Request| server_fn_under_prefix(prefix, page_context, request)
                }),
            );
        }
    }
    let pages = pages
        .fallback({
            let prefix = prefix.clone();
            let handler = leptos_axum::file_and_error_handler(app::shell);
            move |uri: Uri, state: State<LeptosOptions>, request: Request<Body>| {
                let uri = strip_prefix(&prefix, uri);
                // No API route and no server function claimed it: an API client gets the
                // API's JSON error, not the HTML page.
                let is_api = uri.path() == "/api" || uri.path().starts_with("/api/");
                let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
                let embedded = match &assets {
                    Assets::Embedded if is_read => embedded_response(uri.path(), request.headers()),
                    _ => None,
                };
                async move {
                    match embedded {
                        Some(file) => file,
                        None if is_api => api_not_found(uri.path()),
                        None => handler(uri, state, request).await,
                    }
                }
            }
        })
        .with_state(leptos_options);
    // Everything the API and the account routes do not claim goes to the pages, each rendered
    // whole and again if its render stalls (`render_page`).
    let pages = Router::new().fallback(render_page).with_state(pages);
    let accounts = match &host {
        None => Router::new()
            .route(
                &at("/login"),
                get(login::login_page)
                    .post(login::login_submit)
                    .layer(DefaultBodyLimit::max(login::LOGIN_BODY_LIMIT)),
            )
            .route(&at("/logout"), post(login::logout)),
        Some(host) => {
            let to_login = {
                let host = host.clone();
                move || std::future::ready(host.to_login())
            };
            let to_logout = {
                let host = host.clone();
                move || std::future::ready(host.to_logout())
            };
            Router::new()
                .route(&at("/login"), get(to_login))
                .route(&at("/logout"), post(to_logout))
        }
    };
    let accounts = accounts
        .route(&at("/api/me"), get(login::whoami))
        .route(&at("/api/audit"), get(login::audit_entries))
        .with_state(auth.clone());
    let security_config = Arc::new(SecurityConfig {
        url_prefix: prefix.clone(),
        trusted_proxies: Arc::new(options.trusted_proxies.clone()),
    });

    let api = if prefix.is_empty() {
        api
    } else {
        Router::new().nest(&prefix, api)
    };

    let guarded = pages.merge(api).merge(accounts);
    let guarded = match host {
        None => guarded
            .layer(from_fn_with_state(auth.clone(), require_login))
            .layer(auth.session_layer()),
        Some(host) => guarded.layer(from_fn_with_state(host, require_host_user)),
    };
    let router = guarded
        .layer(from_fn(security::reject_cross_site))
        .layer(from_fn(security::security_headers))
        .layer(from_fn_with_state(
            security_config,
            security::client_context,
        ))
        .layer(from_fn(without_trailing_slash))
        .layer(TraceLayer::new_for_http());
    nestable(prefix, router)
}

/// `router` (whose routes carry `prefix`) made to work both merged into a host app and nested
/// with `nest(prefix, ..)`: nesting strips the prefix from the path, so it is put back from
/// [`OriginalUri`] before routing.
fn nestable(prefix: String, router: Router) -> Router {
    if prefix.is_empty() {
        return router;
    }
    let restored = tower::util::MapRequestLayer::new(move |mut request: Request| {
        let under_prefix = |path: &str| {
            path.strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if !under_prefix(request.uri().path()) {
            let original = request
                .extensions()
                .get::<OriginalUri>()
                .map(|OriginalUri(uri)| uri.clone());
            if let Some(original) = original.filter(|uri| under_prefix(uri.path())) {
                *request.uri_mut() = original;
            }
        }
        request
    });
    Router::new().fallback_service(tower::Layer::layer(&restored, router))
}

/// Redirects `GET /tasks/` to `/tasks` (any path but `/` ending in a slash, query kept).
///
/// Leptos matches routes exactly, so `/tasks/` would render "page not found", and that is the
/// address people type and reverse proxies hand on (nginx's `location /tasks/`). A permanent
/// redirect keeps one URL per page; other methods are left alone, since a redirected POST
/// would be replayed by the browser.
async fn without_trailing_slash(request: Request, next: axum::middleware::Next) -> Response {
    let path = request.uri().path();
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    if is_read && path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        // `//evil.example/` trimmed is `//evil.example`, which a browser reads as another
        // site (and `/\` as `//`): such a path names no page here, so it is not redirected.
        if trimmed.starts_with("//") || trimmed.starts_with("/\\") {
            return StatusCode::NOT_FOUND.into_response();
        }
        let target = match request.uri().query() {
            Some(query) => format!("{}?{query}", if trimmed.is_empty() { "/" } else { trimmed }),
            None => (if trimmed.is_empty() { "/" } else { trimmed }).to_owned(),
        };
        return Redirect::permanent(&target).into_response();
    }
    next.run(request).await
}

/// How long a page may take to render before it counts as stalled. Pages read the API in
/// process and render in milliseconds; the slowest waits up to a second for a worker's reply,
/// and the slowest seen under load took 1.2 s, so this is far beyond any render merely slow.
const RENDER_STALL: Duration = Duration::from_secs(5);

/// Renders before giving up with a 503.
const RENDER_ATTEMPTS: u32 = 3;

/// Serves a page from `pages`, rendered to the end before the answer goes out, and rendered
/// again if it stalls.
///
/// Leptos 0.8's streaming server rendering can stall for good: now and then a `<Suspense>`
/// (or `<Transition>`) misses the wake-up that its last pending resource finished, and the
/// stream never ends; no CPU is used and nothing is logged. The server tests met it in one
/// run in twenty to one in five under load, after the shell had gone out with "Loading…" in
/// place of the data; a browser would wait on such a page forever. The same page renders at
/// once when asked again, so a stalled render is dropped and repeated. Rendering to the end
/// first gives up streaming the first bytes early, which for pages built from in-process API
/// answers is a few milliseconds. Other methods (server functions) pass through; a GET whose
/// answer is not HTML (a file under `/pkg`) is handed on as soon as its headers are ready,
/// though it too is asked again if those take longer than the stall limit.
async fn render_page(State(pages): State<Router>, request: Request) -> Response {
    render_with_retries(pages, request, RENDER_STALL, RENDER_ATTEMPTS).await
}

async fn render_with_retries(
    pages: Router,
    request: Request,
    stall: Duration,
    attempts: u32,
) -> Response {
    if request.method() != Method::GET {
        return answer(pages, request).await;
    }
    let (parts, _body) = request.into_parts();
    for attempt in 1..=attempts {
        let render = render_whole(
            pages.clone(),
            Request::from_parts(parts.clone(), Body::empty()),
        );
        match tokio::time::timeout(stall, render).await {
            Ok(response) => return response,
            Err(_) => tracing::warn!(
                path = %parts.uri.path(),
                attempt,
                stalled_after_ms = stall.as_millis() as u64,
                "a page render stalled (Leptos server rendering); dropped"
            ),
        }
    }
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        "the page could not be rendered; try again\n",
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// `pages`' answer to `request`, its body read to the end if it is HTML.
async fn render_whole(pages: Router, request: Request) -> Response {
    let response = answer(pages, request).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if !is_html {
        return response;
    }
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, PAGE_LIMIT).await {
        Ok(bytes) => Response::from_parts(parts, Body::from(bytes)),
        Err(error) => {
            tracing::error!(%error, "reading a rendered page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `router`'s answer to `request` (a router never fails); also the in-process API calls
/// (`local_api`).
pub(super) async fn answer(router: Router, request: Request) -> Response {
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    }
}

/// Far above any page (the largest, a history page, is tens of kilobytes).
const PAGE_LIMIT: usize = 16 * 1024 * 1024;

/// Liveness probe for scripts and orchestrators: answers as soon as the router is serving.
async fn healthz() -> &'static str {
    "ok"
}

/// Flower's health check, for the load balancers and scripts that probe Flower: `OK`.
async fn flower_healthcheck() -> &'static str {
    "OK"
}

/// The API's 404 for a path no API route serves.
fn api_not_found(path: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({ "error": format!("no API endpoint at {path}") })),
    )
        .into_response()
}

/// `uri` without `prefix`, so paths resolve against the site root.
fn strip_prefix(prefix: &str, uri: Uri) -> Uri {
    let Some(path_and_query) = uri.path_and_query() else {
        return uri;
    };
    match path_and_query.as_str().strip_prefix(prefix) {
        Some(rest) if rest.starts_with('/') => rest.parse().unwrap_or(uri),
        _ => uri,
    }
}

async fn server_fn_under_prefix(
    prefix: String,
    context: impl Fn() + Clone + Send + 'static,
    request: Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    parts.uri = strip_prefix(&prefix, parts.uri);
    leptos_axum::handle_server_fns_with_context(context, Request::from_parts(parts, body))
        .await
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use futures::StreamExt as _;

    use super::*;

    /// A page whose first `stalls` renders send the shell and then never end, as a stalled
    /// Leptos stream does; later renders finish.
    fn pages(stalls: u32) -> (Router, Arc<AtomicU32>) {
        let renders = Arc::new(AtomicU32::new(0));
        let page = {
            let renders = renders.clone();
            move || async move {
                let render = renders.fetch_add(1, Ordering::SeqCst) + 1;
                let shell = futures::stream::once(async {
                    Ok::<_, std::io::Error>("<html><p>Loading…</p>".to_owned())
                });
                let body = if render <= stalls {
                    Body::from_stream(shell.chain(futures::stream::pending()))
                } else {
                    let rest = futures::stream::once(async { Ok("<p>data</p></html>".to_owned()) });
                    Body::from_stream(shell.chain(rest))
                };
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body)
            }
        };
        let router = Router::new().route("/page", get(page.clone()).post(page));
        (router, renders)
    }

    fn request(method: Method) -> Request {
        Request::builder()
            .method(method)
            .uri("/page")
            .body(Body::empty())
            .expect("a request")
    }

    const STALL: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn a_stalled_render_is_dropped_and_the_page_rendered_again() {
        let (pages, renders) = pages(1);
        let response = render_with_retries(pages, request(Method::GET), STALL, 3).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), PAGE_LIMIT)
            .await
            .expect("the whole page");
        assert_eq!(
            &body[..],
            "<html><p>Loading…</p><p>data</p></html>".as_bytes()
        );
        assert_eq!(renders.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_page_that_keeps_stalling_is_a_503_to_retry() {
        let (pages, renders) = pages(u32::MAX);
        let response = render_with_retries(pages, request(Method::GET), STALL, 3).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(renders.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn other_methods_pass_through_once_and_unbuffered() {
        let (pages, renders) = pages(1);
        let response = render_with_retries(pages, request(Method::POST), STALL, 3).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(renders.load(Ordering::SeqCst), 1);
        // The stalled body is handed on as it is: reading it would wait forever.
        let mut body = response.into_body();
        let first = http_body_util::BodyExt::frame(&mut body).await;
        assert!(first.is_some());
        let rest = tokio::time::timeout(STALL, http_body_util::BodyExt::frame(&mut body)).await;
        assert!(rest.is_err(), "the stream should still be open");
    }
}
