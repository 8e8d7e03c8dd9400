//! The first screen, `/`: workers online, tasks per state, throughput (now, and per minute over
//! the last hour), failure rate, queue depths and beat's leader; it reloads `/api/overview` on
//! the live stream's tick.

use celeriac::TaskState;
use leptos::prelude::*;

use crate::client::use_api;
use crate::components::throughput_chart::ThroughputChart;
use crate::live::use_live_events;
use crate::model::Overview;

const STATES: [TaskState; 8] = [
    TaskState::Pending,
    TaskState::Received,
    TaskState::Started,
    TaskState::Success,
    TaskState::Failure,
    TaskState::Retry,
    TaskState::Revoked,
    TaskState::Rejected,
];

/// `/`.
#[component]
pub fn OverviewPage() -> AnyView {
    let live = use_live_events();
    let api = use_api();
    let overview = Resource::new(
        move || live.tick.get(),
        move |_| {
            let api = api.clone();
            async move { api.get::<Overview>("/api/overview").await }
        },
    );
    (view! {
        <h1>"Overview"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || overview.get().map(|answer| match answer {
                Err(error) => view! { <p class="error">{error.to_string()}</p> }.into_any(),
                Ok(overview) => {
                    // The stream knows worker changes before the next reload.
                    let (online, known) = live.state.with(|state| {
                        if state.synced {
                            (state.workers.values().filter(|worker| worker.alive).count() as u64, state.workers.len() as u64)
                        } else {
                            (overview.workers_online, overview.workers_known)
                        }
                    });
                    let failure_rate = overview
                        .failure_rate()
                        .map_or_else(|| "—".to_owned(), |rate| format!("{:.1} %", rate * 100.0));
                    view! {
                        <section class="cards">
                            <div class="card"><span class="label">"Workers online"</span>
                                <span class="value" data-testid="workers-online">{format!("{online} / {known}")}</span></div>
                            <div class="card"><span class="label">"Tasks / s"</span>
                                <span class="value" data-testid="tasks-per-second">{format!("{:.2}", overview.tasks_per_second)}</span></div>
                            <div class="card"><span class="label">"Failure rate"</span>
                                <span class="value" data-testid="failure-rate">{failure_rate}</span></div>
                            <div class="card"><span class="label">"Unacked"</span>
                                <span class="value" data-testid="unacked">{overview.unacked.messages}</span></div>
                            <div class="card"><span class="label">"Beat leader"</span>
                                {match overview.beat.clone() {
                                    Some(beat) => view! {
                                        <span class="value small" data-testid="beat-leader">{beat.leader}</span>
                                        <span class="label" data-testid="beat-lease">
                                            {format!("lease {:.1} s left, token {}", beat.lease_remaining, beat.token)}
                                        </span>
                                    }.into_any(),
                                    None => view! {
                                        <span class="value small" data-testid="beat-leader">"none"</span>
                                        <span class="label">"no beat holds the lease"</span>
                                    }.into_any(),
                                }}
                            </div>
                        </section>
                        <h2>"Throughput"</h2>
                        <ThroughputChart throughput=overview.throughput.clone() />
                        <h2>"Tasks per state"</h2>
                        <table class="states">
                            <tbody>
                                {STATES.into_iter().map(|state| view! {
                                    <tr>
                                        <th><span class=format!("state state-{}", state.as_str())>{state.as_str()}</span></th>
                                        <td data-testid=format!("count-{}", state.as_str())>{overview.count(state)}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                        <h2>"Queues"</h2>
                        <table class="queues">
                            <thead><tr><th>"Queue"</th><th>"Messages"</th></tr></thead>
                            <tbody>
                                {overview.queues.iter().map(|queue| view! {
                                    <tr><td>{queue.name.clone()}</td><td data-testid=format!("queue-{}", queue.name)>{queue.messages}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }
            })}
        </Transition>
    }).into_any()
}
