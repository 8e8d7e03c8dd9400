//! The dashboard's axum router.
//!
//! Every path lives under the URL prefix (`--url-prefix`, `""` by default): `<prefix>/healthz`,
//! `<prefix>/pkg/*` (the browser bundle), `<prefix>/login` and `<prefix>/logout`, every Leptos
//! route and server function, and last a fallback that serves a file from the site root
//! (`public/` copies such as `favicon.svg`) or renders the app's not-found page. The router is
//! not nested under the prefix: Leptos matches the full path against `<Router base=prefix>`, so
//! the server renders exactly what the browser will hydrate.
//!
//! The JSON API (`/api/*`, `/metrics`) arrives as a router with its own state applied and is
//! mounted under the prefix, inside the same layers; a clone of it is given to server
//! rendering as context (`local_api`), so pages render with data.
//!
//! Layers, outermost first: tracing, `without_trailing_slash` (`/tasks/` → `/tasks`),
//! `security::client_context` (client address and scheme,
//! trusted proxies, `Secure` cookies), `security::security_headers` (CSP nonce),
//! `security::reject_cross_site`, sessions, `auth::require_login`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, on, post, MethodFilter};
use axum::Router;
use leptos::prelude::{provide_context, use_context, LeptosOptions};
use leptos_axum::{generate_route_list_with_exclusions_and_ssg_and_context, LeptosRoutes};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use super::auth::{login, require_login, AuthState};
use super::local_api::RouterApi;
use super::security::{self, CspNonce, SecurityConfig};
use super::{DashboardOptions, OUTPUT_NAME};
use app::client::LocalApiContext;

/// Builds the router, all state applied; `api` (the JSON API, SSE and `/metrics`, its state
/// applied) is mounted under the prefix inside the security layers.
pub(super) fn router(options: &DashboardOptions, auth: AuthState, api: Router) -> Router {
    let prefix = options.url_prefix.clone();
    let at = |path: &str| format!("{prefix}{path}");
    let leptos_options = LeptosOptions::builder()
        .output_name(OUTPUT_NAME)
        .site_root(options.site_root.to_string_lossy().into_owned())
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
        .nest_service(&at("/pkg"), ServeDir::new(options.site_root.join("pkg")))
        .leptos_routes_with_context(&leptos_options, app_routes, page_context.clone(), {
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
                handler(strip_prefix(&prefix, uri), state, request)
            }
        })
        .with_state(leptos_options);
    let accounts = Router::new()
        .route(
            &at("/login"),
            get(login::login_page).post(login::login_submit),
        )
        .route(&at("/logout"), post(login::logout))
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

    pages
        .merge(api)
        .merge(accounts)
        .layer(from_fn_with_state(auth.clone(), require_login))
        .layer(auth.session_layer())
        .layer(from_fn(security::reject_cross_site))
        .layer(from_fn(security::security_headers))
        .layer(from_fn_with_state(
            security_config,
            security::client_context,
        ))
        .layer(from_fn(without_trailing_slash))
        .layer(TraceLayer::new_for_http())
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
        let target = match request.uri().query() {
            Some(query) => format!("{}?{query}", if trimmed.is_empty() { "/" } else { trimmed }),
            None => (if trimmed.is_empty() { "/" } else { trimmed }).to_owned(),
        };
        return Redirect::permanent(&target).into_response();
    }
    next.run(request).await
}

/// Liveness probe for scripts and orchestrators: answers as soon as the router is serving.
async fn healthz() -> &'static str {
    "ok"
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
