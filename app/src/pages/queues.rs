//! `/queues`: depth of every watched queue per priority step, and the unacked messages;
//! reloaded on the live stream's tick.

use leptos::prelude::*;

use crate::client::use_api;
use crate::components::format;
use crate::live::use_live_events;
use crate::model::Overview;

/// `/queues`.
#[component]
pub fn QueuesPage() -> impl IntoView {
    let live = use_live_events();
    let api = use_api();
    let overview = Resource::new(
        move || live.tick.get(),
        move |_| {
            let api = api.clone();
            async move { api.get::<Overview>("/api/overview").await }
        },
    );
    view! {
        <h1>"Queues"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || overview.get().map(|answer| match answer {
                Err(error) => view! { <p class="error">{error.to_string()}</p> }.into_any(),
                Ok(overview) => {
                    let now = live.now.get();
                    let oldest = overview.unacked.oldest_delivered_at.map_or_else(
                        || "—".to_owned(),
                        |at| format!("{} ago", format::age(now - at.timestamp_micros() as f64 / 1e6)),
                    );
                    view! {
                        <table class="queues" data-testid="queues-table">
                            <thead><tr><th>"Queue"</th><th>"Messages"</th><th>"By priority step"</th></tr></thead>
                            <tbody>
                                {overview.queues.into_iter().map(|queue| {
                                    let steps = queue.priorities.iter()
                                        .filter(|priority| priority.messages > 0)
                                        .map(|priority| format!("{}: {}", priority.step, priority.messages))
                                        .collect::<Vec<_>>()
                                        .join(", ");
                                    view! {
                                        <tr data-testid="queue-row">
                                            <td>{queue.name.clone()}</td>
                                            <td>{queue.messages}</td>
                                            <td>{if steps.is_empty() { "—".to_owned() } else { steps }}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        <p>"Unacked (delivered, not yet acknowledged): "
                            <strong data-testid="unacked">{overview.unacked.messages}</strong>
                            "; oldest delivered " {oldest}</p>
                    }.into_any()
                }
            })}
        </Transition>
    }
}
