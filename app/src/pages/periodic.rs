//! `/periodic`: every periodic task beat knows, with its schedule in words, next run, last run
//! and the state of the task that run sent; admins toggle enabled, run now, and create new
//! entries (the API refuses others with 403, shown beside the button).

use leptos::prelude::*;
use leptos_router::components::A;

use crate::client::{use_api, FetchError};
use crate::components::schedule_form::CreateScheduleForm;
use crate::components::state_badge::StateBadge;
use crate::model::{ScheduleAnswer, ScheduleForm, ScheduleSummary};
use crate::paths;

/// An optional instant as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn instant(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "—".to_owned(),
        |at| format!("{} UTC", crate::components::format::utc(at, true)),
    )
}

/// `/periodic`.
#[component]
pub fn PeriodicPage() -> AnyView {
    let api = use_api();
    let reloads = RwSignal::new(0_u64);
    let schedules = Resource::new(move || reloads.get(), {
        let api = api.clone();
        move |_| {
            let api = api.clone();
            async move { api.get::<Vec<ScheduleSummary>>("/api/schedules").await }
        }
    });
    // (path, is JSON form) → the answer; every change reloads the list.
    let change = {
        let api = api.clone();
        Action::new(move |request: &(String, Option<ScheduleForm>)| {
            let api = api.clone();
            let (path, form) = request.clone();
            async move {
                match form {
                    Some(form) => api.post_json::<_, ScheduleAnswer>(&path, &form).await,
                    None => api.post::<ScheduleAnswer>(&path).await,
                }
            }
        })
    };
    Effect::new(move |_| {
        if change
            .value()
            .with(|answer| answer.as_ref().is_some_and(Result::is_ok))
        {
            reloads.update(|count| *count += 1);
        }
    });
    let outcome = move || {
        change.value().get().map(|answer: Result<ScheduleAnswer, FetchError>| match answer {
            Ok(answer) => view! { <p data-testid="schedule-outcome">{format!("{}: {}", answer.name, answer.message)}</p> }.into_any(),
            Err(error) => view! { <p class="error" data-testid="schedule-outcome-error">{error.to_string()}</p> }.into_any(),
        })
    };
    (view! {
        <h1>"Periodic tasks"</h1>
        {outcome}
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || schedules.get().map(|answer| match answer {
                Err(error) => view! { <p class="error">{error.to_string()}</p> }.into_any(),
                Ok(schedules) => view! {
                    <table class="schedules" data-testid="schedules-table">
                        <thead><tr>
                            <th>"Name"</th><th>"Task"</th><th>"Schedule"</th><th>"Next run"</th>
                            <th>"Last run"</th><th>"Runs"</th><th>"Enabled"</th><th></th>
                        </tr></thead>
                        <tbody>
                            {schedules.into_iter().map(|schedule| {
                                let encoded = paths::encode(&schedule.name);
                                let toggle = format!("/api/schedules/{encoded}/enabled?value={}", !schedule.enabled);
                                let run = format!("/api/schedules/{encoded}/run");
                                let last_state = schedule.last_run.as_ref().and_then(|run| run.state);
                                let name = schedule.name.clone();
                                let row_name = schedule.name.clone();
                                view! {
                                    <tr data-testid="schedule-row" data-name=row_name class:disabled=!schedule.enabled>
                                        <td><A href=paths::page(&format!("/periodic/{encoded}"))>{name}</A></td>
                                        <td class="mono">{schedule.task.clone()}</td>
                                        <td data-testid="schedule-description">{schedule.description.clone()}</td>
                                        <td>{instant(schedule.next_run_at)}</td>
                                        <td>{instant(schedule.last_run_at)} " "
                                            {last_state.map(|state| view! { <StateBadge state /> })}</td>
                                        <td>{schedule.total_run_count}</td>
                                        <td>
                                            <button class="needs-admin" data-testid="schedule-enabled" aria-pressed=schedule.enabled.to_string()
                                                disabled=move || change.pending().get()
                                                on:click=move |_| { change.dispatch((toggle.clone(), None)); }>
                                                {if schedule.enabled { "enabled" } else { "disabled" }}
                                            </button>
                                        </td>
                                        <td>
                                            <button class="needs-admin" data-testid="schedule-run" disabled=move || change.pending().get()
                                                on:click=move |_| { change.dispatch((run.clone(), None)); }>"Run now"</button>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            })}
        </Transition>
        <h2>"New periodic task"</h2>
        <CreateScheduleForm
            saving=change.pending()
            on_create=Callback::new(move |form| { change.dispatch(("/api/schedules".to_owned(), Some(form))); })
        />
    }).into_any()
}
