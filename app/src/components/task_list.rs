//! The task list of the Tasks and Failed pages: a page of `/api/history` (filters and cursor
//! from the URL, so the server renders it and links share it) with the live stream laid over.
//!
//! Live tasks update their rows in place; on the first page, live tasks that match the filters
//! and are newer than the page's oldest row are added on top, so a task started anywhere shows
//! up within a second without a reload.

use std::collections::HashMap;

use celeriac::TaskState;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::client::use_api;
use crate::components::bulk_retry::SelectBox;
use crate::components::format;
use crate::components::state_badge::StateBadge;
use crate::live::use_live_events;
use crate::model::{HistoryPage, LiveTask, RetryAnswer, TaskInfo};
use crate::paths;

/// Rows per page.
const PAGE_ROWS: u32 = 50;

/// The list's filters, as the URL's query holds them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// Comma-separated states.
    pub state: String,
    /// Task name.
    pub name: String,
    /// Worker node name.
    pub worker: String,
    /// Queue.
    pub queue: String,
    /// Task id prefix.
    pub task_id: String,
    /// Substring of the arguments' repr.
    pub search: String,
    /// The page's cursor.
    pub cursor: String,
}

impl Filters {
    /// The history API query.
    fn api_path(&self) -> String {
        let limit = PAGE_ROWS.to_string();
        format!(
            "/api/history{}",
            paths::query(&[
                ("state", &self.state),
                ("name", &self.name),
                ("worker", &self.worker),
                ("queue", &self.queue),
                ("task_id", &self.task_id),
                ("search", &self.search),
                ("cursor", &self.cursor),
                ("limit", &limit),
            ])
        )
    }

    /// The page's own query (without the cursor unless given).
    fn page_query(&self, cursor: &str) -> String {
        paths::query(&[
            ("state", &self.state),
            ("name", &self.name),
            ("worker", &self.worker),
            ("queue", &self.queue),
            ("task_id", &self.task_id),
            ("search", &self.search),
            ("cursor", cursor),
        ])
    }

    /// Whether a live task belongs in this list.
    fn matches(&self, task: &TaskInfo) -> bool {
        let equal = |wanted: &str, value: &Option<String>| {
            wanted.trim().is_empty() || value.as_deref() == Some(wanted.trim())
        };
        let states_match = self.state.trim().is_empty()
            || self
                .state
                .split(',')
                .any(|state| state.trim().eq_ignore_ascii_case(task.state.as_str()));
        let search = self.search.trim();
        states_match
            && equal(&self.name, &task.name)
            && equal(&self.worker, &task.worker)
            && equal(&self.queue, &task.routing_key)
            && task.uuid.starts_with(self.task_id.trim())
            && (search.is_empty()
                || [&task.args, &task.kwargs]
                    .iter()
                    .any(|repr| repr.as_deref().is_some_and(|repr| repr.contains(search))))
    }
}

/// The page's rows: history rows with live changes over them, new live tasks on top.
fn merge(page: &HistoryPage, filters: &Filters, live: &HashMap<String, LiveTask>) -> Vec<TaskInfo> {
    let mut rows: Vec<TaskInfo> = page.tasks.clone();
    for row in &mut rows {
        if let Some(task) = live.get(&row.uuid) {
            row.overlay(task);
        }
    }
    if filters.cursor.is_empty() {
        let oldest = if page.next.is_some() {
            rows.iter()
                .map(TaskInfo::last_seen)
                .fold(f64::INFINITY, f64::min)
        } else {
            0.0
        };
        let mut fresh: Vec<TaskInfo> = live
            .values()
            .filter(|task| !rows.iter().any(|row| row.uuid == task.id))
            .map(|task| task.to_info())
            .filter(|task| task.last_seen() >= oldest && filters.matches(task))
            .collect();
        fresh.sort_by(|a, b| b.last_seen().total_cmp(&a.last_seen()));
        fresh.extend(rows);
        rows = fresh;
    }
    rows
}

/// The list; `fixed_state` pins the state filter (the Failed page), `retry` adds a per-row
/// retry button and, when the page provides `SelectedTasks`, a checkbox.
#[component]
pub fn TaskList(fixed_state: Option<TaskState>, retry: bool) -> AnyView {
    let query = use_query_map();
    let filters = Memo::new(move |_| {
        query.with(|query| {
            let get = |key: &str| query.get(key).unwrap_or_default();
            Filters {
                state: fixed_state.map_or_else(|| get("state"), |state| state.as_str().to_owned()),
                name: get("name"),
                worker: get("worker"),
                queue: get("queue"),
                task_id: get("task_id"),
                search: get("search"),
                cursor: get("cursor"),
            }
        })
    });
    let api = use_api();
    let page = Resource::new(
        move || filters.get().api_path(),
        move |path| {
            let api = api.clone();
            async move { api.get::<HistoryPage>(&path).await }
        },
    );
    let live = use_live_events();
    provide_context(RetriedRows(RwSignal::new(HashMap::new())));
    let base = paths::page(if fixed_state.is_some() {
        "/failed"
    } else {
        "/tasks"
    });

    (view! {
        <FilterForm filters fixed_state=fixed_state.is_some() base=base.clone() />
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                page.get()
                    .map(|answer| match answer {
                        Err(error) => view! { <p class="error">{error.to_string()}</p> }.into_any(),
                        Ok(page) => {
                            let filters = filters.get();
                            let rows = live.state.with(|state| merge(&page, &filters, &state.tasks));
                            let next = page.next.clone().map(|cursor| format!("{base}{}", filters.page_query(&cursor)));
                            let first = (!filters.cursor.is_empty()).then(|| format!("{base}{}", filters.page_query("")));
                            let count = format!("{}{} matching", page.count.tasks, if page.count.capped { "+" } else { "" });
                            view! {
                                <p class="count" data-testid="task-count">{count}</p>
                                <TaskTable rows retry />
                                <p class="pager">
                                    {first.map(|href| view! { <A href=href>"« First page"</A> })}
                                    " "
                                    {next.map(|href| view! { <A href=href attr:data-testid="next-page">"Next page »"</A> })}
                                </p>
                            }
                                .into_any()
                        }
                    })
            }}
        </Transition>
    }).into_any()
}

/// The filter inputs; applying them navigates, so the URL always says what is shown.
#[component]
fn FilterForm(filters: Memo<Filters>, fixed_state: bool, base: String) -> AnyView {
    let initial = filters.get_untracked();
    let state = RwSignal::new(initial.state);
    let name = RwSignal::new(initial.name);
    let worker = RwSignal::new(initial.worker);
    let queue = RwSignal::new(initial.queue);
    let task_id = RwSignal::new(initial.task_id);
    let search = RwSignal::new(initial.search);
    let navigate = use_navigate();
    let apply = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let chosen = Filters {
            state: state.get_untracked(),
            name: name.get_untracked(),
            worker: worker.get_untracked(),
            queue: queue.get_untracked(),
            task_id: task_id.get_untracked(),
            search: search.get_untracked(),
            cursor: String::new(),
        };
        navigate(
            &format!("{base}{}", chosen.page_query("")),
            paths::navigate_options(),
        );
    };
    let field = |label: &'static str, key: &'static str, value: RwSignal<String>| {
        view! {
            <label>
                {label}
                <input name=key data-testid=format!("filter-{key}") bind:value=value />
            </label>
        }
    };
    (view! {
        <form class="filters" on:submit=apply>
            <Show when=move || !fixed_state>
                <label>
                    "State"
                    <select name="state" data-testid="filter-state" bind:value=state>
                        <option value="">"any"</option>
                        {[
                            TaskState::Pending,
                            TaskState::Received,
                            TaskState::Started,
                            TaskState::Success,
                            TaskState::Failure,
                            TaskState::Retry,
                            TaskState::Revoked,
                            TaskState::Rejected,
                        ]
                            .into_iter()
                            .map(|state| view! { <option value=state.as_str()>{state.as_str()}</option> })
                            .collect_view()}
                    </select>
                </label>
            </Show>
            {field("Name", "name", name)}
            {field("Worker", "worker", worker)}
            {field("Queue", "queue", queue)}
            {field("Id", "task_id", task_id)}
            {field("Arguments contain", "search", search)}
            <button type="submit" data-testid="apply-filters">"Apply"</button>
        </form>
    }).into_any()
}

/// The rows.
#[component]
fn TaskTable(rows: Vec<TaskInfo>, retry: bool) -> AnyView {
    let live = use_live_events();
    let now = live.now.get_untracked();
    (view! {
        <table class="tasks" data-testid="task-table">
            <thead>
                <tr>
                    {retry.then(|| view! { <th></th> })}
                    <th>"Id"</th>
                    <th>"Name"</th>
                    <th>"State"</th>
                    <th>"Arguments"</th>
                    <th>"Worker"</th>
                    <th>"Queue"</th>
                    <th>"Received"</th>
                    <th>"Runtime"</th>
                    {retry.then(|| view! { <th></th> })}
                </tr>
            </thead>
            <tbody>
                {rows
                    .into_iter()
                    .map(|task| {
                        let href = paths::task(&task.uuid);
                        let short = format::short_id(&task.uuid);
                        let retry_id = task.uuid.clone();
                        let select_id = task.uuid.clone();
                        view! {
                            <tr data-testid="task-row" data-task-id=task.uuid.clone() data-state=task.state.as_str()>
                                {retry.then(|| view! { <td><SelectBox task_id=select_id /></td> })}
                                <td class="mono"><A href=href>{short}</A></td>
                                <td>{format::or_dash(task.name.as_deref())}</td>
                                <td><StateBadge state=task.state /></td>
                                <td class="mono clip">{format::or_dash(task.args.as_deref())}</td>
                                <td>{format::or_dash(task.worker.as_deref())}</td>
                                <td>{format::or_dash(task.routing_key.as_deref())}</td>
                                <td>{format::time(task.received.or(task.sent), now)}</td>
                                <td>{format::runtime(task.runtime)}</td>
                                {retry.then(|| view! { <td><RetryRow task_id=retry_id /></td> })}
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }).into_any()
}

/// Retries sent from this list, by task id: the new task's id or the error. Kept above the
/// rows, which live updates re-render.
#[derive(Debug, Clone, Copy)]
struct RetriedRows(RwSignal<HashMap<String, Result<String, String>>>);

/// A row's retry button and, once sent, the link to the new task.
#[component]
fn RetryRow(task_id: String) -> AnyView {
    let Some(RetriedRows(retried)) = use_context::<RetriedRows>() else {
        return ().into_any();
    };
    let api = use_api();
    let prefix = paths::prefix();
    let path = format!("/api/task/retry/{}", paths::encode(&task_id));
    let send = {
        let task_id = task_id.clone();
        move |_| {
            let api = api.clone();
            let path = path.clone();
            let task_id = task_id.clone();
            leptos::task::spawn_local(async move {
                let outcome = api
                    .post::<RetryAnswer>(&path)
                    .await
                    .map(|answer| answer.task_id)
                    .map_err(|error| error.to_string());
                retried.update(|retried| {
                    retried.insert(task_id, outcome);
                });
            });
        }
    };
    let outcome = move || retried.with(|retried| retried.get(&task_id).cloned());
    (view! {
        {move || match outcome() {
            None => view! {
                <button class="needs-operator" data-testid="row-retry" on:click=send.clone()>"Retry"</button>
            }.into_any(),
            Some(Ok(new_id)) => view! {
                <A href=format!("{prefix}/tasks/{}", paths::encode(&new_id)) attr:data-testid="row-retried">
                    {format!("→ {}", format::short_id(&new_id))}
                </A>
            }.into_any(),
            Some(Err(error)) => view! { <span class="error">{error}</span> }.into_any(),
        }}
    }
    .into_any()).into_any()
}
