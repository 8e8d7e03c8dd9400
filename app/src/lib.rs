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
//! only uses `celeriac::types` outside `#[cfg(feature = "ssr")]` code.

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

/// The whole HTML document the server sends; the browser only hydrates its `<body>`.
///
/// `HydrationScripts` loads `/pkg/{output_name}.js` and `/pkg/{output_name}_bg.wasm`, which
/// `scripts/build-site.sh` (or `cargo leptos`) writes into the site root.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                // Without an explicit icon the browser asks for /favicon.ico and logs a 404.
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
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
pub fn App() -> impl IntoView {
    provide_meta_context();
    live::provide_live_events();

    view! {
        <Stylesheet id="leptos" href=paths::page("/pkg/celeriac.css") />
        <Title text="Celeriac" />
        <Router base=paths::prefix()>
            <components::nav::Nav />
            <main class="page">
                <Routes fallback=|| view! { <p class="not-found">"Page not found."</p> }>
                    <Route path=path!("") view=pages::overview::OverviewPage />
                    <Route path=path!("/workers") view=pages::workers::WorkersPage />
                    <Route path=path!("/tasks") view=pages::tasks::TasksPage />
                    <Route path=path!("/tasks/:id") view=pages::task_detail::TaskDetailPage />
                    <Route path=path!("/failed") view=pages::failed::FailedPage />
                    <Route path=path!("/queues") view=pages::queues::QueuesPage />
                </Routes>
            </main>
        </Router>
    }
}
