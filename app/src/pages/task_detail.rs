//! `/tasks/:id`: one task — its fields, state timeline, arguments, result or failure with
//! traceback (always as text: Leptos escapes it), links to its parent and root, and the retry,
//! revoke and terminate actions, each confirmed first.
//!
//! The server renders `/api/task/info/{id}`; the live stream's version of the task is laid
//! over it, and each change of it, or of another task of its workflow (group members, tasks
//! it sent), reloads the info (and once more shortly after, when the history recorder has
//! written the event) for the timeline and the workflow section.

use std::time::Duration;

use celeriac::TaskState;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use crate::client::{use_api, FetchError};
use crate::components::confirm_button::ConfirmButton;
use crate::components::format;
use crate::components::state_badge::StateBadge;
use crate::live::use_live_events;
use crate::model::{RetryAnswer, RevokeAnswer, TaskInfo, WorkflowTask};
use crate::paths;

/// How long after a live change the info is read again, for the recorder to catch up.
const RELOAD_AGAIN: Duration = Duration::from_millis(1_500);

/// `/tasks/:id`.
#[component]
pub fn TaskDetailPage() -> AnyView {
    let params = use_params_map();
    let task_id = Memo::new(move |_| params.with(|params| params.get("id").unwrap_or_default()));
    let live = use_live_events();
    // The other tasks of its workflow: a change to one of them (a chord member finishing)
    // reloads the page's info too.
    let related = RwSignal::new(Vec::<String>::new());
    let live_version = Memo::new(move |_| {
        let id = task_id.get();
        live.state.with(|state| {
            let own = state.tasks.get(&id).map(|task| task.version)?;
            let others: u64 = related.with(|related| {
                related
                    .iter()
                    .filter_map(|other| state.tasks.get(other).map(|task| task.version))
                    .sum()
            });
            Some(own.wrapping_add(others))
        })
    });
    let reloads = RwSignal::new(0_u64);
    Effect::new(move |previous: Option<Option<u64>>| {
        let version = live_version.get();
        if previous.is_some_and(|previous| previous != version) {
            reloads.update(|count| *count += 1);
            set_timeout(move || reloads.update(|count| *count += 1), RELOAD_AGAIN);
        }
        version
    });
    let api = use_api();
    let info = Resource::new(
        move || (task_id.get(), reloads.get()),
        move |(id, _)| {
            let api = api.clone();
            async move {
                api.get::<TaskInfo>(&format!("/api/task/info/{}", paths::encode(&id)))
                    .await
            }
        },
    );

    Effect::new(move |_| {
        if let Some(Ok(task)) = info.get() {
            let ids: Vec<String> = task
                .group
                .iter()
                .chain(task.children.iter())
                .map(|other| other.task_id.clone())
                .filter(|other| *other != task.uuid)
                .collect();
            if related.with_untracked(|related| *related != ids) {
                related.set(ids);
            }
        }
    });

    // Only this task's changes re-render the page (other tasks' deltas do not).
    let live_task = Memo::new(move |_| {
        let id = task_id.get();
        live.state.with(|state| state.tasks.get(&id).cloned())
    });
    let live_state = Memo::new(move |_| live_task.get().map(|task| task.state));

    (view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || info.get().map(|answer| {
                let id = task_id.get();
                let task: Result<TaskInfo, FetchError> = match (answer, live_task.get()) {
                    (Ok(mut task), Some(live_task)) => { task.overlay(&live_task); Ok(task) }
                    (Ok(task), None) => Ok(task),
                    (Err(error), Some(live_task)) if error.is_not_found() => Ok(live_task.to_info()),
                    (Err(error), _) => Err(error),
                };
                match task {
                    Ok(task) => view! { <TaskView task /> }.into_any(),
                    Err(error) if error.is_not_found() => view! {
                        <h1>"Task " <code>{id}</code></h1>
                        <p data-testid="task-unknown">"Not known yet: waiting for its events…"</p>
                    }.into_any(),
                    Err(error) => view! { <p class="error">{error.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
        // Outside the data's re-renders, so a half-confirmed action or its outcome survives
        // live updates; made anew for each task.
        {move || {
            let task_id = task_id.get();
            view! { <Actions task_id state=live_state /> }
        }}
    }).into_any()
}

/// A text block, or nothing when there is no text.
fn text_block(title: &'static str, test_id: &'static str, text: Option<String>) -> impl IntoView {
    text.filter(|text| !text.is_empty()).map(|text| {
        view! {
            <h2>{title}</h2>
            <pre data-testid=test_id>{text}</pre>
        }
    })
}

fn task_link(task_id: Option<String>) -> impl IntoView {
    match task_id {
        Some(task_id) => view! { <A href=paths::task(&task_id)>{task_id.clone()}</A> }.into_any(),
        None => view! { "—" }.into_any(),
    }
}

#[component]
fn TaskView(task: TaskInfo) -> AnyView {
    let live = use_live_events();
    let now = live.now.get_untracked();
    (view! {
        <h1>{format::or_dash(task.name.as_deref())}</h1>
        <dl class="fields">
            <dt>"Id"</dt><dd class="mono" data-testid="task-id">{task.uuid.clone()}</dd>
            <dt>"State"</dt><dd data-testid="task-state" data-state=task.state.as_str()><StateBadge state=task.state /></dd>
            <dt>"Worker"</dt><dd>{format::or_dash(task.worker.as_deref())}</dd>
            <dt>"Queue"</dt><dd>{format::or_dash(task.routing_key.as_deref())}</dd>
            <dt>"Received"</dt><dd>{format::time(task.received.or(task.sent), now)}</dd>
            <dt>"Started"</dt><dd>{format::time(task.started, now)}</dd>
            <dt>"Runtime"</dt><dd>{format::runtime(task.runtime)}</dd>
            <dt>"Retries"</dt><dd>{task.retries.unwrap_or(0)}</dd>
            <dt>"ETA"</dt><dd>{format::or_dash(task.eta.as_deref())}</dd>
            <dt>"Parent"</dt><dd data-testid="parent-link">{task_link(task.parent_id.clone())}</dd>
            <dt>"Root"</dt><dd data-testid="root-link">{task_link(task.root_id.clone())}</dd>
        </dl>
        {(!task.retried_as.is_empty()).then(|| view! {
            <p>"Re-run as: "
                {task.retried_as.clone().into_iter().map(|id| view! { <A href=paths::task(&id)>{format::short_id(&id)}</A> " " }).collect_view()}
            </p>
        })}
        <Workflow task=task.clone() />
        {text_block("Arguments", "task-args", task.args.clone())}
        {text_block("Keyword arguments", "task-kwargs", task.kwargs.clone())}
        {text_block("Result", "task-result", task.result.clone())}
        {text_block("Exception", "task-exception", task.exception.clone())}
        {text_block("Traceback", "task-traceback", task.traceback.clone())}
        {(!task.timeline.is_empty()).then(|| view! {
            <h2>"Timeline"</h2>
            <table class="timeline" data-testid="task-timeline">
                <tbody>
                    {task.timeline.iter().map(|entry| view! {
                        <tr>
                            <td>{format::time(Some(entry.timestamp), now)}</td>
                            <td>{entry.kind.clone()}</td>
                            <td>{format::or_dash(entry.hostname.as_deref())}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        })}
    }).into_any()
}

/// The task's place in its workflow: its group or chord (with the chord's progress while it
/// waits), the group's members and the tasks it sent, each with its state.
#[component]
fn Workflow(task: TaskInfo) -> AnyView {
    if task.group_id.is_none() && task.children.is_empty() {
        return ().into_any();
    }
    let list = |tasks: Vec<WorkflowTask>, test_id: &'static str| {
        view! {
            <ul class="workflow" data-testid=test_id>
                {tasks.into_iter().map(|member| view! {
                    <li>
                        <StateBadge state=member.state />" "
                        <A href=paths::task(&member.task_id)>{format::short_id(&member.task_id)}</A>" "
                        {format::or_dash(member.name.as_deref())}
                    </li>
                }).collect_view()}
            </ul>
        }
    };
    (view! {
        <h2>"Workflow"</h2>
        {task.group_id.clone().map(|group_id| view! {
            <p data-testid="workflow-group">"Group " <code>{group_id}</code>
                {task.chord.map(|chord| view! {
                    <span data-testid="chord-progress">
                        {format!(" — chord: {} of {} header tasks done", chord.done, chord.size)}
                    </span>
                })}
            </p>
        })}
        {task.chord_body.clone().map(|body| view! {
            <p data-testid="chord-body">"Chord body: "
                <StateBadge state=body.state />" "
                <A href=paths::task(&body.task_id)>{format::short_id(&body.task_id)}</A>" "
                {format::or_dash(body.name.as_deref())}
            </p>
        })}
        {(!task.group.is_empty()).then(|| list(task.group.clone(), "workflow-members"))}
        {(!task.children.is_empty()).then(|| view! {
            <p>"Sent:"</p>
            {list(task.children.clone(), "workflow-children")}
        })}
    })
    .into_any()
}

/// Retry, revoke, terminate.
#[component]
fn Actions(task_id: String, state: Memo<Option<TaskState>>) -> AnyView {
    // Without live news the buttons stay usable; the API refuses what cannot apply.
    let running = move || state.get().is_none_or(|state| state == TaskState::Started);
    let finished = move || state.get().is_some_and(TaskState::is_ready);
    let api = use_api();
    let encoded = paths::encode(&task_id);
    let retry = {
        let api = api.clone();
        let path = format!("/api/task/retry/{encoded}");
        Action::new(move |(): &()| {
            let api = api.clone();
            let path = path.clone();
            async move { api.post::<RetryAnswer>(&path).await }
        })
    };
    let revoke = {
        let path = format!("/api/task/revoke/{encoded}");
        Action::new(move |terminate: &bool| {
            let api = api.clone();
            let path = format!("{path}?terminate={terminate}");
            async move { api.post::<RevokeAnswer>(&path).await }
        })
    };
    let retry_outcome = move || {
        retry.value().get().map(|answer| match answer {
            Ok(answer) => view! {
                <p>"Retried as "
                    <A href=paths::task(&answer.task_id) attr:data-testid="retried-link">{answer.task_id.clone()}</A>
                </p>
            }.into_any(),
            Err(error) => view! { <p class="error" data-testid="retry-error">{error.to_string()}</p> }.into_any(),
        })
    };
    let revoke_outcome = move || {
        revoke.value().get().map(|answer| match answer {
            Ok(answer) => view! { <p data-testid="revoke-sent">{answer.message}</p> }.into_any(),
            Err(error) => view! { <p class="error">{error.to_string()}</p> }.into_any(),
        })
    };
    (view! {
        <div class="actions needs-operator">
            <ConfirmButton label="Retry" question="Send this task again with the same arguments?"
                test_id="retry" disabled=retry.pending() on_confirm=Callback::new(move |()| { retry.dispatch(()); }) />
            <ConfirmButton label="Revoke" question="Workers will not run it. Revoke?"
                test_id="revoke" disabled=Signal::derive(move || finished() || revoke.pending().get())
                on_confirm=Callback::new(move |()| { revoke.dispatch(false); }) />
            <ConfirmButton label="Terminate" question="Stop it while it runs?"
                test_id="terminate" disabled=Signal::derive(move || !running() || revoke.pending().get())
                on_confirm=Callback::new(move |()| { revoke.dispatch(true); }) />
        </div>
        {retry_outcome}
        {revoke_outcome}
    }).into_any()
}
