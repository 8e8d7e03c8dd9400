//! The dashboard's axum router.
//!
//! Order of matching: `/healthz`, `/pkg/*` (the browser bundle), then every Leptos route and
//! server function registered by `leptos_routes`, and last a fallback that serves a file from
//! the site root (`public/` copies such as `favicon.ico`) or renders the app's not-found page.
//! The API routes (`/api/*`, `/metrics`) arrive as a router with its own state applied and are
//! merged after the pages are stated; a clone of it is given to server rendering as context
//! (`local_api`), so pages render with data.

use std::sync::Arc;

use app::client::LocalApiContext;
use axum::routing::get;
use axum::Router;
use leptos::prelude::{provide_context, LeptosOptions};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use super::local_api::RouterApi;
use super::{DashboardOptions, OUTPUT_NAME};

/// Builds the router; the pages' state is the [`LeptosOptions`] that Leptos' handlers extract,
/// `api` brings its own.
pub(super) fn router(options: &DashboardOptions, api: Router) -> Router {
    let leptos_options = LeptosOptions::builder()
        .output_name(OUTPUT_NAME)
        .site_root(options.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(options.addr)
        .build();
    let app_routes = generate_route_list(app::App);
    // Server rendering reads the same API the browser does, in process.
    let local_api = LocalApiContext(Arc::new(RouterApi(api.clone())));

    Router::new()
        .route("/healthz", get(healthz))
        .nest_service("/pkg", ServeDir::new(options.site_root.join("pkg")))
        .leptos_routes_with_context(
            &leptos_options,
            app_routes,
            move || provide_context(local_api.clone()),
            {
                let leptos_options = leptos_options.clone();
                move || app::shell(leptos_options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler(app::shell))
        .with_state(leptos_options)
        .merge(api)
        .layer(TraceLayer::new_for_http())
}

/// Liveness probe for scripts and orchestrators: answers as soon as the router is serving.
async fn healthz() -> &'static str {
    "ok"
}
