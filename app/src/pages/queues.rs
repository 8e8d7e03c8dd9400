//! `/queues`: every watched queue and every queue a worker consumes, with its depth per
//! priority step, how long its oldest message has waited, its consumers (a warning when no
//! worker consumes it) and its unacked messages; reloaded on the live stream's tick.

use leptos::prelude::*;

use crate::client::use_api;
use crate::components::format;
use crate::live::use_live_events;
use crate::model::{QueueDetail, QueuesDetail, UNACKED_SCANNED_PER_QUEUE_SPLIT as UNACKED_COUNTED};
use crate::paths;

/// `/queues`.
#[component]
pub fn QueuesPage() -> AnyView {
    let live = use_live_events();
    let api = use_api();
    let detail = Resource::new(
        move || live.tick.get(),
        move |_| {
            let api = api.clone();
            async move { api.get::<QueuesDetail>("/api/queues").await }
        },
    );
    (view! {
        <h1>"Queues"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || detail.get().map(|answer| match answer {
                Err(error) => view! { <p class="error">{error.to_string()}</p> }.into_any(),
                Ok(detail) => {
                    let now = live.now.get();
                    let oldest = detail.unacked.oldest_delivered_at.map_or_else(
                        || "—".to_owned(),
                        |at| format!("{} ago", format::age(now - at.timestamp_micros() as f64 / 1e6)),
                    );
                    let consumers_known = detail.workers_replied > 0;
                    view! {
                        <table class="queues" data-testid="queues-table">
                            <thead><tr>
                                <th>"Queue"</th><th>"Messages"</th><th>"By priority step"</th>
                                <th>"Oldest waiting"</th><th>"Unacked"</th><th>"Consumers"</th>
                            </tr></thead>
                            <tbody>
                                {detail.queues.into_iter()
                                    .map(|queue| queue_row(queue, consumers_known))
                                    .collect_view()}
                            </tbody>
                        </table>
                        {(!consumers_known).then(|| view! {
                            <p class="muted" data-testid="consumers-unknown">
                                "No worker answered, so consumers are unknown."
                            </p>
                        })}
                        <p>"Unacked (delivered, not yet acknowledged): "
                            <strong data-testid="unacked">{detail.unacked.messages}</strong>
                            "; oldest delivered " {oldest}</p>
                        {(detail.unacked.messages > UNACKED_COUNTED).then(|| view! {
                            <p class="muted" data-testid="unacked-partial">
                                {format!("Unacked per queue counts the first {UNACKED_COUNTED} unacked messages.")}
                            </p>
                        })}
                    }.into_any()
                }
            })}
        </Transition>
    }).into_any()
}

/// One queue's row; `consumers_known` is false when no worker answered the question.
fn queue_row(queue: QueueDetail, consumers_known: bool) -> impl IntoView {
    let steps = queue
        .priorities
        .iter()
        .filter(|priority| priority.messages > 0)
        .map(|priority| format!("{}: {}", priority.step, priority.messages))
        .collect::<Vec<_>>()
        .join(", ");
    // The next message out: the lowest step that has one.
    let next = queue
        .priorities
        .iter()
        .find(|priority| priority.messages > 0)
        .and_then(|priority| {
            Some((
                priority.oldest_task_id.clone()?,
                priority.oldest_task_name.clone(),
            ))
        });
    let age = queue.oldest_age.map(format::age);
    let unconsumed = consumers_known && queue.consumers.is_empty();
    let name = queue.name.clone();
    let label = queue.name;
    view! {
        <tr data-testid="queue-row" data-queue=name class:warning=unconsumed>
            <td>{label}</td>
            <td data-testid="queue-messages">{queue.messages}</td>
            <td>{if steps.is_empty() { "—".to_owned() } else { steps }}</td>
            <td>
                {match next {
                    Some((task_id, task_name)) => view! {
                        <a href=paths::task(&task_id)>{task_name.unwrap_or_else(|| task_id.clone())}</a>
                        {age.map(|age| format!(" ({age})"))}
                    }.into_any(),
                    None => "—".into_any(),
                }}
            </td>
            <td>{queue.unacked}</td>
            <td data-testid="queue-consumers">
                {if unconsumed {
                    view! { <span class="warning" data-testid="no-consumers">"⚠ no workers consume this"</span> }.into_any()
                } else {
                    queue.consumers.join(", ").into_any()
                }}
            </td>
        </tr>
    }
}
