//! The WASM hydrate entry: the browser loads this and it takes over the server-rendered page.
//! It holds no logic (Architecture Invariant); everything lives in `app`.

/// Called by the hydration script that `app::shell` puts in every page.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
