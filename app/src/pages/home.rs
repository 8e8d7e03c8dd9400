//! The landing page. For now it proves the build chain end to end: it only becomes
//! interactive once the WASM has hydrated it, and it calls a server function over HTTP.

use celeriac::TaskState;
use leptos::prelude::*;

use crate::api::version::ServerVersion;

/// The landing page at `/`.
///
/// The `data-testid` attributes are what `end2end/` looks for; keep them stable.
#[component]
pub fn HomePage() -> impl IntoView {
    let (hydrated, set_hydrated) = signal(false);
    // Effects never run during server rendering, so this only fires once the browser has
    // hydrated the page. The marker it reveals is how tests know the WASM is live.
    Effect::new(move |_| set_hydrated.set(true));

    let (click_count, set_click_count) = signal(0_u32);

    // Dispatching sends a real HTTP request to the server function, even though the same
    // function could be called directly during server rendering.
    let ask_server_version = ServerAction::<ServerVersion>::new();
    let server_version_answer = move || match ask_server_version.value().get() {
        None => "not asked yet".to_owned(),
        Some(Ok(server_version)) => server_version,
        Some(Err(api_error)) => format!("failed: {api_error}"),
    };

    view! {
        <main class="home">
            <h1>"Celeriac"</h1>
            <Show when=move || hydrated.get()>
                <p data-testid="hydrated" class="hydrated">
                    "hydrated"
                </p>
            </Show>
            <p>
                <button
                    data-testid="increment"
                    on:click=move |_| set_click_count.update(|count| *count += 1)
                >
                    "Clicked "
                    <span data-testid="count">{click_count}</span>
                    " times"
                </button>
            </p>
            <p>
                <button
                    data-testid="ask-version"
                    on:click=move |_| {
                        ask_server_version.dispatch(ServerVersion {});
                    }
                >
                    "Ask the server its version"
                </button>
                " "
                <span data-testid="server-version">{server_version_answer}</span>
            </p>
            <p>
                "A task that finished well is "
                <code data-testid="success-state">{TaskState::Success.as_str()}</code>
                "."
            </p>
        </main>
    }
}
