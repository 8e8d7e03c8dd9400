//! Leptos components and the types shared by server and browser.
//!
//! The same code runs twice: under `ssr` the server renders every page to HTML, and under
//! `hydrate` the browser (through `frontend`) takes over that HTML and makes it live.
//!
//! # Layout
//! - [`App`] and [`shell`]: the router and the HTML document around it.
//! - [`pages`]: one file per page; [`components`]: what pages share (nav, task list, ...).
//! - [`model`]: the JSON API's types; [`client`]: reads the API (in process while rendering,
//!   `fetch` in the browser); [`live`]: the SSE stream as a signal; [`paths`]: every URL.
//! - [`api`]: `#[server]` functions; their bodies only exist under `ssr`.
//! - [`error`]: [`error::ApiError`], the error type server functions send across the wire.
//!
//! Architecture Invariant: this crate compiles to `wasm32-unknown-unknown` without `ssr`, so it
//! only uses the engine's IO-free parts (`celeriac::types`, `celeriac::beat`'s spec types)
//! outside `#[cfg(feature = "ssr")]` code; parsing schedules is server-side only (see
//! `model::schedule`), which keeps the tz database out of the WASM.

pub mod api;
pub mod client;
pub mod components;
pub mod error;
pub mod live;
pub mod model;
pub mod pages;
pub mod paths;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

/// The path the dashboard is served under (`--url-prefix`, e.g. `/tasks`; `""` at the root).
///
/// The server provides it as context when it renders; the browser reads it back from the
/// `<meta name="celeriac-url-prefix">` tag [`shell`] writes, so links, assets, server functions
/// and streams resolve the same way on both sides. Build every absolute URL with [`href`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlPrefix(pub String);

/// The name of the `<meta>` tag that carries the [`UrlPrefix`] to the browser.
pub const URL_PREFIX_META: &str = "celeriac-url-prefix";

/// The current [`UrlPrefix`] (empty when none was provided).
pub fn use_url_prefix() -> String {
    use_context::<UrlPrefix>().unwrap_or_default().0
}

/// `path` (starting with `/`) under the current [`UrlPrefix`].
pub fn href(path: &str) -> String {
    format!("{}{path}", use_url_prefix())
}

/// The whole HTML document the server sends; the browser only hydrates its `<body>`.
///
/// `HydrationScripts` loads `<prefix>/pkg/{output_name}.js` and
/// `<prefix>/pkg/{output_name}_bg.wasm`, which `scripts/build-site.sh` (or `cargo leptos`)
/// writes into the site root; its inline script carries the request's CSP nonce.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let prefix = use_url_prefix();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                // Without an explicit icon the browser asks for /favicon.ico and logs a 404.
                <link rel="icon" type="image/svg+xml" href=format!("{prefix}/favicon.svg") />
                <meta name=URL_PREFIX_META content=prefix.clone() />
                <AutoReload options=options.clone() />
                <HydrationScripts options root=prefix />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The dashboard: metadata, stylesheet, the live stream, the navigation bar and the routes.
#[component]
pub fn App() -> AnyView {
    provide_meta_context();
    live::provide_live_events();
    // The user's role, read by the browser once (`/api/me` is not part of the API that
    // server rendering calls): `<main data-role>` then hides, through the stylesheet, the
    // controls marked `needs-operator` or `needs-admin` that the role may not use. Only an
    // attribute changes, so hydration is unaffected; the API refuses such calls regardless.
    let me = {
        let api = client::use_api();
        LocalResource::new(move || {
            let api = api.clone();
            async move { api.get::<model::Me>("/api/me").await }
        })
    };
    let role = move || me.get().and_then(Result::ok).map(|me| me.role);

    (view! {
        <Stylesheet id="leptos" href=paths::page("/pkg/celeriac.css") />
        <Title text="Celeriac" />
        <Router base=paths::prefix()>
            <components::nav::Nav />
            <main class="page" data-role=role>
                <Routes fallback=|| view! { <p class="not-found">"Page not found."</p> }>
                    <Route path=path!("") view=pages::overview::OverviewPage />
                    <Route path=path!("/workers") view=pages::workers::WorkersPage />
                    <Route path=path!("/workers/:name") view=pages::worker_detail::WorkerDetailPage />
                    <Route path=path!("/tasks") view=pages::tasks::TasksPage />
                    <Route path=path!("/tasks/:id") view=pages::task_detail::TaskDetailPage />
                    <Route path=path!("/failed") view=pages::failed::FailedPage />
                    <Route path=path!("/queues") view=pages::queues::QueuesPage />
                    <Route path=path!("/periodic") view=pages::periodic::PeriodicPage />
                    <Route path=path!("/periodic/:name") view=pages::periodic_detail::PeriodicDetailPage />
                    <Route path=path!("/audit") view=pages::audit::AuditPage />
                </Routes>
            </main>
        </Router>
    }).into_any()
}
