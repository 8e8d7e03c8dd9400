//! The navigation bar on every page, with the live stream's status and the hydration marker
//! the browser tests wait for.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::version::server_version;
use crate::live::use_live_events;
use crate::paths;

/// The bar at the top of every page.
#[component]
pub fn Nav() -> impl IntoView {
    let live = use_live_events();
    let (hydrated, set_hydrated) = signal(false);
    // Effects never run during server rendering, so the marker proves the WASM took over.
    Effect::new(move |_| set_hydrated.set(true));
    let version = Resource::new(|| (), |()| server_version());
    let links = [
        ("/", "Overview"),
        ("/workers", "Workers"),
        ("/tasks", "Tasks"),
        ("/failed", "Failed"),
        ("/queues", "Queues"),
        ("/audit", "Audit"),
    ];
    view! {
        <header class="top">
            <span class="brand">"Celeriac"</span>
            <nav>
                {links
                    .into_iter()
                    .map(|(path, label)| view! { <A href=paths::page(path) exact=true>{label}</A> })
                    .collect_view()}
                // Periodic tasks arrive with the beat work; their page goes here.
                <span class="nav-slot" data-testid="nav-periodic"></span>
            </nav>
            <span class="status">
                <span
                    data-testid="live-status"
                    class=move || {
                        if live.state.with(|state| state.connected) { "live on" } else { "live" }
                    }
                >
                    {move || if live.state.with(|state| state.connected) { "live" } else { "offline" }}
                </span>
                <Show when=move || hydrated.get()>
                    <span data-testid="hydrated" class="hydrated">
                        "hydrated"
                    </span>
                </Show>
                <Transition>
                    <span data-testid="server-version" class="version">
                        {move || version.get().map(|answer| answer.unwrap_or_default())}
                    </span>
                </Transition>
            </span>
        </header>
    }
}
