//! A task state as a coloured badge; the class is the state's name, so the stylesheet colours it.

use celeriac::TaskState;
use leptos::prelude::*;

/// `SUCCESS`, `FAILURE`, ... with `class="state state-SUCCESS"`.
#[component]
pub fn StateBadge(state: TaskState) -> AnyView {
    (view! { <span class=format!("state state-{}", state.as_str())>{state.as_str()}</span> })
        .into_any()
}
