//! The web dashboard: an axum router that renders `app` with Leptos and serves the browser
//! bundle. `celeriac serve` runs it on its own port; [`Dashboard`] hands it to a team's own
//! axum app to `nest` under a path, behind that app's login ([`HostLogin`]). Those two, with
//! [`AuthUser`] and [`Role`], are the public surface; the rest serves `serve`.
//!
//! # Layout
//! - `mount`: [`Dashboard`], the router and the monitoring it reads, for a host app.
//! - `options`: `DashboardOptions`, where to listen and where the built site lives.
//! - `assets`: the browser bundle, embedded by `build.rs` or read from a site root.
//! - `routes`: the axum router: Leptos pages, server functions, `/pkg`, static files, `/healthz`.
//! - `state`: `AppState`, the engine handles the API reads through; `consumers`: which
//!   workers consume which queue, asked with `inspect active_queues` and cached.
//! - `api`: the JSON API (Flower's paths plus ours), SSE at `/api/events`, `/metrics`.
//! - `local_api`: the API router called in process while a page renders.
//! - `event_metrics`: Flower's Prometheus counters, fed from the monitor's event batches;
//!   `throughput`: the per-minute counts behind the overview's chart.
//! - `auth`: users, login sessions, Basic auth, the login guards and `RequireRole`.
//! - `security`: client address behind trusted proxies, cross-site request refusal, security
//!   headers with a per-request CSP nonce.
//!
//! The browser bundle (`pkg/celeriac.js`, `pkg/celeriac_bg.wasm`, `pkg/celeriac.css`) is not
//! built here: `scripts/build-site.sh` builds it and copies it to `server/site/`, which
//! `build.rs` embeds (a published crate carries it). Without it pages still render but never
//! hydrate, so start-up warns when it is missing.

mod api;
mod assets;
#[cfg(test)]
mod attack_tests;
pub(crate) mod auth;
mod consumers;
mod event_metrics;
mod local_api;
mod mount;
mod options;
#[cfg(test)]
mod proxy_auth_tests;
mod routes;
mod security;
mod state;
#[cfg(test)]
mod tests;
mod throughput;

use std::future::Future;

use anyhow::Context as _;

pub use auth::{AuthUser, HostLogin};
pub use celeriac::auth::Role;
pub use mount::{Dashboard, DashboardBuilder};
pub(crate) use options::{normalize_url_prefix, DashboardOptions, ProxyAuth};
pub(crate) use state::AppState;

/// The bundle name `HydrationScripts` asks for; `scripts/build-site.sh` passes the same name
/// to `wasm-bindgen --out-name`, and `[[workspace.metadata.leptos]]` uses it as `output-name`.
const OUTPUT_NAME: &str = "celeriac";

/// How often expired login sessions are deleted from the database.
const SESSION_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Serves the dashboard, reading the cluster through `state`, on `options.addr` until
/// `shutdown` completes; users, sessions and the audit log live in `database`.
///
/// In-flight requests are allowed to finish after `shutdown` resolves (axum's graceful
/// shutdown); the function returns once they have.
pub(crate) async fn serve(
    options: DashboardOptions,
    state: AppState,
    database: celeriac::db::Database,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (closing_sender, closing) = tokio::sync::watch::channel(false);
    let Composed {
        router,
        sweeper,
        assets,
    } = compose(&options, state, database, None, closing)?;
    let shutdown = async move {
        shutdown.await;
        closing_sender.send_replace(true);
    };
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .with_context(|| format!("binding the dashboard to {}", options.addr))?;
    let local_addr = listener
        .local_addr()
        .context("reading the dashboard's bound address")?;
    tracing::info!(
        addr = %local_addr,
        assets = %assets.describe(),
        url_prefix = %options.url_prefix,
        "dashboard listening on http://{local_addr}{}/", options.url_prefix
    );

    // Without TCP_NODELAY a page written in several segments waits for the client's delayed
    // ACK (40 ms on Linux) before its last one: measured as a 40 ms floor on `/tasks` by the
    // dashboard benchmark.
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("serving the dashboard");
    if let Some(sweeper) = sweeper {
        let _ = sweeper.await;
    }
    served?;
    tracing::info!("dashboard stopped");
    Ok(())
}

/// The dashboard put together, for `serve` and for [`Dashboard`] alike.
struct Composed {
    /// The whole router, its state applied.
    router: axum::Router,
    /// The expired-session sweeper (own accounts only; a host's login keeps no sessions here).
    sweeper: Option<tokio::task::JoinHandle<()>>,
    /// Where the browser bundle comes from.
    assets: assets::Assets,
}

/// Builds the router over `state` with the accounts and audit log in `database` (or the host's
/// login), warns when the browser bundle is missing, and starts the session sweeper. `closing`
/// turns true when the server begins to shut down: the live streams and the sweeper end then.
fn compose(
    options: &DashboardOptions,
    state: AppState,
    database: celeriac::db::Database,
    host: Option<auth::HostLogin>,
    closing: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Composed> {
    let assets = assets::Assets::choose(options.site_root.as_deref());
    warn_if_bundle_missing(&assets);
    let mut auth = auth::AuthState::new(
        database,
        auth::SessionLimits::default(),
        options.url_prefix.clone(),
    )?;
    auth.proxy_auth = options.proxy_auth.clone();
    let sweeper = host.is_none().then(|| {
        let stop = crate::stopped(closing.clone());
        tokio::spawn(auth.clone().sweep_sessions(SESSION_SWEEP_EVERY, stop))
    });
    let state = AppState { closing, ..state };
    let router = routes::router(options, auth, host, api::router(state));
    Ok(Composed {
        router,
        sweeper,
        assets,
    })
}

/// A missing bundle is the classic silent failure: the HTML renders and nothing is interactive.
fn warn_if_bundle_missing(assets: &assets::Assets) {
    let bundle = [
        format!("{OUTPUT_NAME}.js"),
        format!("{OUTPUT_NAME}_bg.wasm"),
    ];
    for missing in assets.missing(&bundle) {
        tracing::warn!(
            path = %missing,
            "browser bundle file missing; pages will not hydrate (run scripts/build-site.sh)"
        );
    }
}
