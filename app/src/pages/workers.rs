//! `/workers`: every worker the monitor knows, live from the stream (the server renders the
//! first paint from `/api/snapshot`); offline workers stay listed, faded, unless "Hide
//! offline" is ticked. Each name links to the worker's detail page.
//!
//! "Failed" counts the failures among the tasks this tab knows (the snapshot's newest tasks
//! and those changed since), not since the worker started: Celery's heartbeats carry no
//! failure count.

use std::collections::BTreeMap;

use celeriac::TaskState;
use leptos::prelude::*;
use leptos_router::components::A;

use crate::client::use_api;
use crate::components::format;
use crate::live::use_live_events;
use crate::model::{LiveSnapshot, LiveTask, LiveWorker};
use crate::paths;

/// `/workers`.
#[component]
pub fn WorkersPage() -> AnyView {
    let live = use_live_events();
    let api = use_api();
    let snapshot = Resource::new(
        || (),
        move |()| {
            let api = api.clone();
            async move { api.get::<LiveSnapshot>("/api/snapshot").await }
        },
    );
    let hide_offline = RwSignal::new(false);
    (view! {
        <h1>"Workers"</h1>
        <label class="toggle">
            <input
                type="checkbox"
                data-testid="hide-offline"
                prop:checked=move || hide_offline.get()
                on:change=move |event| hide_offline.set(event_target_checked(&event))
            />
            " Hide offline workers"
        </label>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || snapshot.get().map(|answer| {
                // Before the stream's snapshot, the server's (so both sides render alike).
                let (workers, failures): (Vec<LiveWorker>, BTreeMap<String, usize>) = live.state.with(|state| {
                    if state.synced {
                        (state.workers.values().cloned().collect(), failures_by_worker(state.tasks.values()))
                    } else {
                        answer
                            .map(|snapshot| (snapshot.workers.clone(), failures_by_worker(snapshot.tasks.iter())))
                            .unwrap_or_default()
                    }
                });
                let hide = hide_offline.get();
                let workers: Vec<LiveWorker> = workers.into_iter().filter(|worker| worker.alive || !hide).collect();
                let now = live.now.get();
                view! {
                    <table class="workers" data-testid="workers-table">
                        <thead><tr>
                            <th>"Worker"</th><th>"Status"</th><th>"Active"</th><th>"Processed"</th>
                            <th title="Failures among the recent tasks this page knows">"Failed (recent)"</th>
                            <th>"Load (1/5/15 min)"</th><th>"Last heartbeat"</th><th>"Software"</th>
                        </tr></thead>
                        <tbody>
                            {workers.into_iter().map(|worker| {
                                let heartbeat = worker.last_seen.map_or_else(
                                    || "—".to_owned(),
                                    |seen| format!("{} ago", format::age(now - seen.timestamp_micros() as f64 / 1e6)),
                                );
                                let [one, five, fifteen] = worker.loadavg;
                                let failed = failures.get(&worker.hostname).copied().unwrap_or(0);
                                view! {
                                    <tr data-testid="worker-row" class:offline=!worker.alive>
                                        <td><A href=paths::worker(&worker.hostname) attr:data-testid="worker-link">{worker.hostname.clone()}</A></td>
                                        <td data-testid="worker-status">{if worker.alive { "online" } else { "offline" }}</td>
                                        <td>{worker.active}</td>
                                        <td>{worker.processed}</td>
                                        <td data-testid="worker-failed">{failed}</td>
                                        <td>{format!("{one:.2} / {five:.2} / {fifteen:.2}")}</td>
                                        <td data-testid="worker-heartbeat-age">{heartbeat}</td>
                                        <td>{format!("{} {}", format::or_dash(worker.sw_ident.as_deref()), worker.sw_ver.unwrap_or_default())}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }
            })}
        </Transition>
    }).into_any()
}

/// Failed tasks per worker among `tasks`.
fn failures_by_worker<'a>(tasks: impl Iterator<Item = &'a LiveTask>) -> BTreeMap<String, usize> {
    let mut failures = BTreeMap::new();
    for task in tasks.filter(|task| task.state == TaskState::Failure) {
        if let Some(worker) = &task.worker {
            *failures.entry(worker.clone()).or_insert(0) += 1;
        }
    }
    failures
}
