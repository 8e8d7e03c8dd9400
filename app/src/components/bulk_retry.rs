//! Bulk retry on the Failed page: a checkbox per row ([`SelectBox`]), and a bar
//! ([`BulkRetryBar`]) that retries the selection, or everything the list's filter matches
//! after showing the dry run's count, through `POST /api/tasks/bulk_retry`.
//!
//! The selection lives in [`SelectedTasks`], which the page provides as context above the list,
//! so the rows (re-rendered by live updates) keep their checkboxes. Both actions ask for
//! confirmation ([`ConfirmButton`]); the server caps a run at 1,000 tasks and sends them at
//! its configured rate, so the new tasks appear in the list over the next seconds.

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::client::use_api;
use crate::components::confirm_button::ConfirmButton;
use crate::model::{BulkRetryAnswer, BulkRetryFilter, BulkRetryRequest};

/// The task ids ticked on the page.
#[derive(Debug, Clone, Copy)]
pub struct SelectedTasks(pub RwSignal<BTreeSet<String>>);

/// A row's checkbox (nothing when no [`SelectedTasks`] is provided).
#[component]
pub fn SelectBox(task_id: String) -> AnyView {
    let Some(SelectedTasks(selected)) = use_context::<SelectedTasks>() else {
        return ().into_any();
    };
    let checked = {
        let task_id = task_id.clone();
        move || selected.with(|selected| selected.contains(&task_id))
    };
    (view! {
        <input
            type="checkbox"
            data-testid="row-select"
            aria-label="Select for retry"
            prop:checked=checked
            on:change=move |event| {
                let on = event_target_checked(&event);
                selected.update(|selected| {
                    if on {
                        selected.insert(task_id.clone());
                    } else {
                        selected.remove(&task_id);
                    }
                });
            }
        />
    }
    .into_any())
    .into_any()
}

/// What the bar last heard from the server.
#[derive(Debug, Clone, PartialEq)]
enum Status {
    Idle,
    Counted(BulkRetryAnswer),
    Accepted(BulkRetryAnswer),
    Failed(String),
}

/// "Retry selected" and "Retry all matching" (with the dry-run count first).
#[component]
pub fn BulkRetryBar() -> AnyView {
    let Some(SelectedTasks(selected)) = use_context::<SelectedTasks>() else {
        return ().into_any();
    };
    let query = use_query_map();
    let status = RwSignal::new(Status::Idle);
    let busy = RwSignal::new(false);
    let api = use_api();
    let filter = move || {
        query.with_untracked(|query| {
            let get = |key: &str| query.get(key).filter(|value| !value.trim().is_empty());
            BulkRetryFilter {
                state: Some("FAILURE".to_owned()),
                name: get("name"),
                worker: get("worker"),
                queue: get("queue"),
                task_id: get("task_id"),
                search: get("search"),
                ..BulkRetryFilter::default()
            }
        })
    };
    let send = {
        let api = api.clone();
        move |request: BulkRetryRequest| {
            let api = api.clone();
            busy.set(true);
            leptos::task::spawn_local(async move {
                let dry_run = request.dry_run;
                let outcome = api
                    .post_json::<_, BulkRetryAnswer>("/api/tasks/bulk_retry", &request)
                    .await;
                status.set(match outcome {
                    Ok(answer) if dry_run => Status::Counted(answer),
                    Ok(answer) => Status::Accepted(answer),
                    Err(error) => Status::Failed(error.to_string()),
                });
                busy.set(false);
            });
        }
    };
    let retry_selected = {
        let send = send.clone();
        Callback::new(move |()| {
            let task_ids: Vec<String> = selected.get_untracked().into_iter().collect();
            selected.set(BTreeSet::new());
            send(BulkRetryRequest {
                task_ids: Some(task_ids),
                ..BulkRetryRequest::default()
            });
        })
    };
    let count_matching = {
        let send = send.clone();
        move |_| {
            send(BulkRetryRequest {
                filter: Some(filter()),
                dry_run: true,
                ..BulkRetryRequest::default()
            })
        }
    };
    let retry_matching = Callback::new(move |()| {
        send(BulkRetryRequest {
            filter: Some(filter()),
            ..BulkRetryRequest::default()
        })
    });
    let none_selected = Signal::derive(move || busy.get() || selected.with(BTreeSet::is_empty));
    let message = move || match status.get() {
        Status::Idle => None,
        Status::Counted(answer) => Some(format!(
            "{} failed tasks match{}.",
            answer.tasks.unwrap_or(0),
            if answer.capped {
                format!(" (more than that; one run retries at most {})", answer.cap)
            } else {
                String::new()
            }
        )),
        Status::Accepted(answer) => Some(format!(
            "Retrying {} tasks; they appear as they are sent.",
            answer.accepted.unwrap_or(0)
        )),
        Status::Failed(error) => Some(error),
    };
    let counted = move || matches!(status.get(), Status::Counted(ref answer) if answer.tasks.unwrap_or(0) > 0);
    (view! {
        <div class="bulk-retry needs-operator" data-testid="bulk-retry">
            <span data-testid="selected-count">
                {move || format!("{} selected", selected.with(BTreeSet::len))}
            </span>
            " "
            <ConfirmButton
                label="Retry selected"
                question="Send the selected tasks again?"
                test_id="retry-selected"
                disabled=none_selected
                on_confirm=retry_selected
            />
            " "
            <button
                data-testid="retry-matching-count"
                disabled=move || busy.get()
                on:click=count_matching
            >
                "Retry all matching…"
            </button>
            " "
            <Show when=counted>
                <ConfirmButton
                    label="Retry them all"
                    question="Send every matching task again?"
                    test_id="retry-matching"
                    disabled=Signal::derive(move || busy.get())
                    on_confirm=retry_matching
                />
            </Show>
            <p class="bulk-retry-status" data-testid="bulk-retry-status">
                {message}
            </p>
        </div>
    }
    .into_any())
    .into_any()
}
