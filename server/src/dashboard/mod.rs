//! The web dashboard: an axum server that renders `app` with Leptos and serves the browser bundle.
//!
//! # Layout
//! - [`options`]: [`DashboardOptions`], where to listen and where the built site lives.
//! - [`routes`]: the axum router: Leptos pages, server functions, `/pkg`, static files, `/healthz`.
//! - [`state`]: [`AppState`], the engine handles the API reads through.
//! - [`api`]: the JSON API (Flower's paths plus ours), SSE at `/api/events`, `/metrics`.
//! - `local_api`: the API router called in process while a page renders.
//! - [`event_metrics`]: Flower's Prometheus counters, fed from the monitor's event batches.
//!
//! The browser bundle (`pkg/celeriac.js`, `pkg/celeriac_bg.wasm`, `pkg/celeriac.css`) is not
//! built here: `scripts/build-site.sh` or `cargo leptos` writes it into the site root first.
//! Without it pages still render but never hydrate, so [`serve`] warns when it is missing.

mod api;
mod event_metrics;
mod local_api;
mod options;
mod routes;
mod state;
#[cfg(test)]
mod tests;

use std::future::Future;

use anyhow::Context as _;

pub use options::DashboardOptions;
pub use state::AppState;

/// The bundle name `HydrationScripts` asks for; `scripts/build-site.sh` passes the same name
/// to `wasm-bindgen --out-name`, and `[[workspace.metadata.leptos]]` uses it as `output-name`.
const OUTPUT_NAME: &str = "celeriac";

/// Serves the dashboard, reading the cluster through `state`, on `options.addr` until
/// `shutdown` completes.
///
/// In-flight requests are allowed to finish after `shutdown` resolves (axum's graceful
/// shutdown); the function returns once they have.
pub async fn serve(
    options: DashboardOptions,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if !options.url_prefix.is_empty() {
        tracing::warn!(
            url_prefix = %options.url_prefix,
            "url_prefix is not supported yet; serving at the root"
        );
    }
    warn_if_bundle_missing(&options);

    let (closing_sender, closing) = tokio::sync::watch::channel(false);
    let state = AppState { closing, ..state };
    let shutdown = async move {
        shutdown.await;
        closing_sender.send_replace(true);
    };
    let router = routes::router(&options, api::router(state));
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .with_context(|| format!("binding the dashboard to {}", options.addr))?;
    let local_addr = listener
        .local_addr()
        .context("reading the dashboard's bound address")?;
    tracing::info!(
        addr = %local_addr,
        site_root = %options.site_root.display(),
        "dashboard listening on http://{local_addr}"
    );

    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving the dashboard")?;
    tracing::info!("dashboard stopped");
    Ok(())
}

/// A missing bundle is the classic silent failure: the HTML renders and nothing is interactive.
fn warn_if_bundle_missing(options: &DashboardOptions) {
    let package_dir = options.site_root.join("pkg");
    for file_name in [
        format!("{OUTPUT_NAME}.js"),
        format!("{OUTPUT_NAME}_bg.wasm"),
    ] {
        let bundle_file = package_dir.join(&file_name);
        if !bundle_file.is_file() {
            tracing::warn!(
                path = %bundle_file.display(),
                "browser bundle file missing; pages will not hydrate (run scripts/build-site.sh)"
            );
        }
    }
}
