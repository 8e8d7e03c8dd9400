//! `/workers/:name`: one worker — its heartbeat figures (live from the stream), pool size,
//! consumed queues, and the tasks it holds (active, reserved, scheduled) from
//! `GET /api/worker/{name}` — with the remote-control actions of
//! [`WorkerActions`](crate::components::worker_actions::WorkerActions).
//!
//! The inspect replies are read when the page opens, on "Refresh", and after each action
//! (again shortly after, as a Python worker applies some commands on its next loop). A worker
//! that does not answer within a second is shown as such, with its last heartbeat.

use std::time::Duration;

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use crate::client::use_api;
use crate::components::format;
use crate::components::worker_actions::{QueueCancel, WorkerActions, WorkerCommands};
use crate::live::use_live_events;
use crate::model::{ScheduledRequest, WorkerDetail, WorkerRequest};
use crate::paths;

/// How long after an action the replies are read once more.
const RELOAD_AGAIN: Duration = Duration::from_millis(1_000);

/// `/workers/:name`.
#[component]
pub fn WorkerDetailPage() -> AnyView {
    let params = use_params_map();
    let name = Memo::new(move |_| params.with(|params| params.get("name").unwrap_or_default()));
    let reloads = RwSignal::new(0_u64);
    let api = use_api();
    let detail = Resource::new(
        move || (name.get(), reloads.get()),
        move |(name, _)| {
            let api = api.clone();
            async move {
                api.get::<WorkerDetail>(&format!("/api/worker/{}", paths::encode(&name)))
                    .await
            }
        },
    );
    let reload = Callback::new(move |()| {
        reloads.update(|count| *count += 1);
        set_timeout(move || reloads.update(|count| *count += 1), RELOAD_AGAIN);
    });
    let commands = WorkerCommands::new(name, reload);
    provide_context(commands);
    (view! {
        <p><A href=paths::page("/workers")>"← Workers"</A></p>
        <h1>"Worker " <code data-testid="worker-name">{move || name.get()}</code></h1>
        <Summary name />
        <Transition fallback=|| view! { <p>"Asking the worker…"</p> }>
            {move || detail.get().map(|answer| match answer {
                Ok(detail) => view! { <Replies detail reload /> }.into_any(),
                Err(error) => view! {
                    <p class="error" data-testid="worker-error">{error.to_string()}</p>
                }.into_any(),
            })}
        </Transition>
        // Outside the data's re-renders, so typed values and outcomes survive a reload.
        <WorkerActions commands />
    })
    .into_any()
}

/// Status, load and counters from the live stream.
#[component]
fn Summary(name: Memo<String>) -> AnyView {
    let live = use_live_events();
    (move || {
        let worker = live
            .state
            .with(|state| state.workers.get(&name.get()).cloned());
        let now = live.now.get();
        worker.map(|worker| {
            let heartbeat = worker.last_seen.map_or_else(
                || "—".to_owned(),
                |seen| {
                    format!(
                        "{} ago",
                        format::age(now - seen.timestamp_micros() as f64 / 1e6)
                    )
                },
            );
            let [one, five, fifteen] = worker.loadavg;
            view! {
                <dl class="fields">
                    <dt>"Status"</dt>
                    <dd data-testid="worker-status">{if worker.alive { "online" } else { "offline" }}</dd>
                    <dt>"Active"</dt><dd>{worker.active}</dd>
                    <dt>"Processed"</dt><dd>{worker.processed}</dd>
                    <dt>"Load (1/5/15 min)"</dt><dd>{format!("{one:.2} / {five:.2} / {fifteen:.2}")}</dd>
                    <dt>"Last heartbeat"</dt><dd data-testid="worker-heartbeat-age">{heartbeat}</dd>
                    <dt>"Software"</dt>
                    <dd>{format!("{} {}", format::or_dash(worker.sw_ident.as_deref()), worker.sw_ver.unwrap_or_default())}</dd>
                </dl>
            }
        })
    }).into_any()
}

/// What the worker answered: pool size, queues, registered tasks, held tasks.
#[component]
fn Replies(detail: WorkerDetail, reload: Callback<()>) -> AnyView {
    let live = use_live_events();
    let now = live.now.get_untracked();
    let no_reply = (!detail.replied).then(|| {
        let seen = detail
            .heartbeat
            .as_ref()
            .and_then(|heartbeat| heartbeat.last_seen)
            .map(|seen| format::age(now - seen.timestamp_micros() as f64 / 1e6));
        view! {
            <p class="error" data-testid="worker-no-reply">
                "The worker did not reply within a second: it is offline or too busy."
                {seen.map(|seen| format!(" Last heartbeat {seen} ago."))}
            </p>
        }
    });
    let queues = detail.active_queues.unwrap_or_default();
    let registered = detail.registered.unwrap_or_default();
    (view! {
        {no_reply}
        <div class="actions">
            <button type="button" data-testid="worker-refresh" on:click=move |_| reload.run(())>"Refresh"</button>
        </div>
        <dl class="fields">
            <dt>"Pool size"</dt>
            <dd data-testid="worker-pool-size">{detail.pool_size.map_or_else(|| "—".to_owned(), |size| size.to_string())}</dd>
        </dl>
        <h2>"Queues"</h2>
        <table class="queues" data-testid="worker-queues">
            <thead><tr><th>"Queue"</th><th>"Routing key"</th><th></th></tr></thead>
            <tbody>
                {queues.into_iter().map(|queue| {
                    let routing_key = format::or_dash(queue.routing_key.as_deref());
                    let queue_name = queue.name.clone();
                    view! {
                        <tr data-testid="worker-queue" data-queue=queue.name.clone()>
                            <td>{queue.name.clone()}</td>
                            <td>{routing_key}</td>
                            <td><QueueCancel queue=queue_name /></td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        <datalist id="worker-registered">
            {registered.iter().map(|name| view! { <option value=name.clone() /> }).collect_view()}
        </datalist>
        <h2>"Active tasks"</h2>
        <RequestTable test_id="worker-active" requests=detail.active.unwrap_or_default() now />
        <h2>"Reserved tasks"</h2>
        <RequestTable test_id="worker-reserved" requests=detail.reserved.unwrap_or_default() now />
        <h2>"Scheduled tasks"</h2>
        <ScheduledTable requests=detail.scheduled.unwrap_or_default() />
        <h2>"Registered tasks"</h2>
        <p data-testid="worker-registered">
            {if registered.is_empty() { "—".to_owned() } else { registered.join(", ") }}
        </p>
    }).into_any()
}

/// A link to the task's detail page, by its short id.
fn task_link(request: &WorkerRequest) -> impl IntoView {
    let short_id = format::short_id(&request.id);
    view! { <A href=paths::task(&request.id)>{short_id}</A> }
}

/// Tasks a worker holds, linked to their detail pages.
#[component]
fn RequestTable(test_id: &'static str, requests: Vec<WorkerRequest>, now: f64) -> AnyView {
    if requests.is_empty() {
        return view! { <p data-testid=test_id>"None."</p> }.into_any();
    }
    (view! {
        <table class="tasks" data-testid=test_id>
            <thead><tr><th>"Task"</th><th>"Name"</th><th>"Arguments"</th><th>"Started"</th></tr></thead>
            <tbody>
                {requests.into_iter().map(|request| view! {
                    <tr>
                        <td class="mono">{task_link(&request)}</td>
                        <td>{format::or_dash(request.name.as_deref())}</td>
                        <td class="mono">{request.arguments()}</td>
                        <td>{format::time(request.time_start, now)}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()).into_any()
}

/// Tasks waiting for their eta.
#[component]
fn ScheduledTable(requests: Vec<ScheduledRequest>) -> AnyView {
    if requests.is_empty() {
        return view! { <p data-testid="worker-scheduled">"None."</p> }.into_any();
    }
    (view! {
        <table class="tasks" data-testid="worker-scheduled">
            <thead><tr><th>"Task"</th><th>"Name"</th><th>"Arguments"</th><th>"ETA"</th></tr></thead>
            <tbody>
                {requests.into_iter().map(|scheduled| {
                    let eta = match scheduled.eta {
                        Some(serde_json::Value::String(text)) => text,
                        Some(other) if !other.is_null() => other.to_string(),
                        _ => "—".to_owned(),
                    };
                    let request = scheduled.request;
                    view! {
                        <tr>
                            <td class="mono">{task_link(&request)}</td>
                            <td>{format::or_dash(request.name.as_deref())}</td>
                            <td class="mono">{request.arguments()}</td>
                            <td>{eta}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any())
    .into_any()
}
