//! The Tasks page's statistics table: per task name, over a window (the last hour unless
//! another is chosen), how many tasks finished, succeeded and failed, tasks per minute and
//! the runtime p50/p95/p99, read from `GET /api/stats/tasks?since=<span>`.
//!
//! The window is kept in the URL (`?window=1h`), so a link shares it; the table refreshes when
//! the window changes. The browser reads it after hydration, so the page's first paint does
//! not wait for it.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::client::use_api;
use crate::components::format;
use crate::model::TaskStatsAnswer;
use crate::paths;

/// The windows offered, as the API's spans.
const WINDOWS: [(&str, &str); 4] = [
    ("15m", "last 15 minutes"),
    ("1h", "last hour"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
];

/// The table with its window picker.
#[component]
pub fn TaskStats() -> AnyView {
    let query = use_query_map();
    let window = Memo::new(move |_| {
        query.with(|query| {
            query
                .get("window")
                .filter(|window| WINDOWS.iter().any(|(span, _)| span == window))
                .unwrap_or_else(|| "1h".to_owned())
        })
    });
    let api = use_api();
    // Read by the browser only: the statistics scan a window of the history (up to its row
    // cap), and the server's first paint of the task list must not wait for it (the
    // dashboard benchmark measured `/tasks` at 197 ms with it, 50 ms being the target).
    let stats = LocalResource::new(move || {
        let path = format!("/api/stats/tasks?since={}", window.get());
        let api = api.clone();
        async move { api.get::<TaskStatsAnswer>(&path).await }
    });
    let navigate = use_navigate();
    let base = paths::page("/tasks");
    let choose = move |event: leptos::ev::Event| {
        let chosen = event_target_value(&event);
        navigate(
            &format!("{base}{}", paths::query(&[("window", &chosen)])),
            paths::navigate_options(),
        );
    };
    (view! {
        <section class="task-stats" data-testid="task-stats">
            <h2>
                "Per task name, "
                <select data-testid="stats-window" on:change=choose prop:value=move || window.get()>
                    {WINDOWS
                        .into_iter()
                        .map(|(span, label)| {
                            view! {
                                <option value=span selected=move || window.get() == span>
                                    {label}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </h2>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || {
                    stats
                        .get()
                        .map(|answer| match answer {
                            Err(error) => {
                                view! { <p class="error">{error.to_string()}</p> }.into_any()
                            }
                            Ok(answer) if answer.names.is_empty() => {
                                view! {
                                    <p data-testid="stats-empty">"No task finished in this window."</p>
                                }
                                    .into_any()
                            }
                            Ok(answer) => stats_table(answer).into_any(),
                        })
                }}
            </Transition>
        </section>
    }).into_any()
}

/// The rows of one answer.
fn stats_table(answer: TaskStatsAnswer) -> impl IntoView {
    let sampled = answer.sampled.then(|| {
        view! { <p class="note">"A busy window: only its newest finished tasks are counted."</p> }
    });
    view! {
        {sampled}
        <table class="tasks stats" data-testid="stats-table">
            <thead>
                <tr>
                    <th>"Task name"</th>
                    <th>"Finished"</th>
                    <th>"Succeeded"</th>
                    <th>"Failed"</th>
                    <th>"Tasks/min"</th>
                    <th>"p50"</th>
                    <th>"p95"</th>
                    <th>"p99"</th>
                </tr>
            </thead>
            <tbody>
                {answer
                    .names
                    .into_iter()
                    .map(|row| {
                        let name = row.name.clone();
                        view! {
                            <tr data-testid="stats-row" data-task-name=name>
                                <td>{row.name}</td>
                                <td data-testid="stats-count">{row.count}</td>
                                <td>{row.succeeded}</td>
                                <td data-testid="stats-failed">{row.failed}</td>
                                <td>{format!("{:.1}", row.tasks_per_minute)}</td>
                                <td>{format::runtime(row.runtime_p50)}</td>
                                <td>{format::runtime(row.runtime_p95)}</td>
                                <td>{format::runtime(row.runtime_p99)}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
