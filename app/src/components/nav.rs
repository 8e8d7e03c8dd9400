//! The navigation bar on every page, with the live stream's status and the hydration marker
//! the browser tests wait for.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::version::server_version;
use crate::live::use_live_events;
use crate::paths;

/// The bar at the top of every page.
#[component]
pub fn Nav() -> AnyView {
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
        ("/periodic", "Periodic tasks"),
        ("/audit", "Audit"),
    ];
    (view! {
        <header class="top">
            <span class="brand">"Celeriac"</span>
            <nav>
                {links
                    .into_iter()
                    .map(|(path, label)| {
                        let href = if path == "/" { paths::home() } else { paths::page(path) };
                        view! { <A href=href exact=true>{label}</A> }
                    })
                    .collect_view()}
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
                // A plain form: logging out works before hydration and without the WASM.
                <form method="post" action=paths::page("/logout") class="logout">
                    <button type="submit" data-testid="logout">"Log out"</button>
                </form>
            </span>
        </header>
    }).into_any()
}
