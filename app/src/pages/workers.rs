//! `/workers`: every worker the monitor knows, live from the stream (the server renders the
//! first paint from `/api/snapshot`); offline workers stay listed, faded.

use leptos::prelude::*;

use crate::client::use_api;
use crate::components::format;
use crate::live::use_live_events;
use crate::model::{LiveSnapshot, LiveWorker};

/// `/workers`.
#[component]
pub fn WorkersPage() -> impl IntoView {
    let live = use_live_events();
    let api = use_api();
    let snapshot = Resource::new(
        || (),
        move |()| {
            let api = api.clone();
            async move { api.get::<LiveSnapshot>("/api/snapshot").await }
        },
    );
    view! {
        <h1>"Workers"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || snapshot.get().map(|answer| {
                let workers: Vec<LiveWorker> = live.state.with(|state| {
                    if state.synced {
                        Ok(state.workers.values().cloned().collect())
                    } else {
                        answer.map(|snapshot| snapshot.workers)
                    }
                }).unwrap_or_default();
                let now = live.now.get();
                view! {
                    <table class="workers" data-testid="workers-table">
                        <thead><tr>
                            <th>"Worker"</th><th>"Status"</th><th>"Active"</th><th>"Processed"</th>
                            <th>"Load (1/5/15 min)"</th><th>"Last heartbeat"</th><th>"Software"</th>
                        </tr></thead>
                        <tbody>
                            {workers.into_iter().map(|worker| {
                                let heartbeat = worker.last_seen.map_or_else(
                                    || "—".to_owned(),
                                    |seen| format!("{} ago", format::age(now - seen.timestamp_micros() as f64 / 1e6)),
                                );
                                let [one, five, fifteen] = worker.loadavg;
                                view! {
                                    <tr data-testid="worker-row" class:offline=!worker.alive>
                                        <td>{worker.hostname.clone()}</td>
                                        <td data-testid="worker-status">{if worker.alive { "online" } else { "offline" }}</td>
                                        <td>{worker.active}</td>
                                        <td>{worker.processed}</td>
                                        <td>{format!("{one:.2} / {five:.2} / {fifteen:.2}")}</td>
                                        <td>{heartbeat}</td>
                                        <td>{format!("{} {}", format::or_dash(worker.sw_ident.as_deref()), worker.sw_ver.unwrap_or_default())}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }
            })}
        </Transition>
    }
}
