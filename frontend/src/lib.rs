//! The WASM hydrate entry: the browser loads this and it takes over the server-rendered page.
//! It holds no logic (Architecture Invariant); everything lives in `app`.

/// Called by the hydration script that `app::shell` puts in every page.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    let prefix = url_prefix_of_page();
    if !prefix.is_empty() {
        // Server functions are posted to `<prefix>/api/...`; the URL must live for the page.
        leptos::server_fn::client::set_server_url(Box::leak(prefix.clone().into_boxed_str()));
    }
    leptos::mount::hydrate_body(move || {
        leptos::prelude::provide_context(app::UrlPrefix(prefix.clone()));
        app::App()
    });
}

/// The prefix `app::shell` wrote into the page, so the browser resolves URLs as the server did.
#[cfg(target_arch = "wasm32")]
fn url_prefix_of_page() -> String {
    leptos::prelude::document()
        .query_selector(&format!("meta[name={}]", app::URL_PREFIX_META))
        .ok()
        .flatten()
        .and_then(|meta| meta.get_attribute("content"))
        .unwrap_or_default()
}
