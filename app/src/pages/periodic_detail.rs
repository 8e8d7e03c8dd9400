//! `/periodic/:name`: one periodic task — its schedule in words, the click-to-edit crontab (or
//! the interval/clocked form), enable/disable, run now, delete (confirmed), and its recent runs
//! with missed, late and duplicate markers and the state of each task sent.
//!
//! A successful change reloads the entry, which re-creates the editor with what is stored; the
//! outcome is shown outside the reloaded part so it survives.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::client::{use_api, FetchError};
use crate::components::confirm_button::ConfirmButton;
use crate::components::crontab_editor::CrontabEditor;
use crate::components::schedule_form::SimpleScheduleEditor;
use crate::components::state_badge::StateBadge;
use crate::model::{ScheduleAnswer, ScheduleDetail, ScheduleForm, ScheduleRun, ScheduleSpec};
use crate::pages::periodic::instant;
use crate::paths;

/// A request the page sends: a plain POST or a form.
type Change = (String, Option<ScheduleForm>);

/// `/periodic/:name`.
#[component]
pub fn PeriodicDetailPage() -> AnyView {
    let params = use_params_map();
    let name = Memo::new(move |_| params.with(|params| params.get("name").unwrap_or_default()));
    let reloads = RwSignal::new(0_u64);
    let api = use_api();
    let detail = Resource::new(move || (name.get(), reloads.get()), {
        let api = api.clone();
        move |(name, _): (String, u64)| {
            let api = api.clone();
            async move {
                api.get::<ScheduleDetail>(&format!("/api/schedules/{}", paths::encode(&name)))
                    .await
            }
        }
    });
    let change = Action::new(move |request: &Change| {
        let api = api.clone();
        let (path, form) = request.clone();
        async move {
            match form {
                Some(form) => api.post_json::<_, ScheduleAnswer>(&path, &form).await,
                None => api.post::<ScheduleAnswer>(&path).await,
            }
        }
    });
    let navigate = use_navigate();
    Effect::new(move |_| {
        let done = change.value().with(|answer| match answer {
            Some(Ok(answer)) => Some(answer.message == "deleted"),
            _ => None,
        });
        match done {
            Some(true) => navigate(&paths::page("/periodic"), paths::navigate_options()),
            Some(false) => reloads.update(|count| *count += 1),
            None => {}
        }
    });
    let outcome = move || {
        change.value().get().map(|answer: Result<ScheduleAnswer, FetchError>| match answer {
            Ok(answer) => view! { <p data-testid="schedule-saved">{answer.message}</p> }.into_any(),
            Err(error) => view! { <p class="error" data-testid="schedule-save-error">{error.to_string()}</p> }.into_any(),
        })
    };
    (view! {
        <p><A href=paths::page("/periodic")>"← Periodic tasks"</A></p>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || detail.get().map(|answer| match answer {
                Ok(detail) => view! { <DetailView detail change /> }.into_any(),
                Err(error) => view! { <p class="error" data-testid="schedule-unknown">{error.to_string()}</p> }.into_any(),
            })}
        </Transition>
        {outcome}
    }).into_any()
}

#[component]
fn DetailView(
    detail: ScheduleDetail,
    change: Action<Change, Result<ScheduleAnswer, FetchError>>,
) -> AnyView {
    let summary = detail.summary.clone();
    let encoded = paths::encode(&summary.name);
    let base = format!("/api/schedules/{encoded}");
    let saving = change.pending();
    let save = {
        let base = base.clone();
        Callback::new(move |spec: ScheduleSpec| {
            let form = ScheduleForm {
                schedule: Some(spec),
                ..ScheduleForm::default()
            };
            change.dispatch((base.clone(), Some(form)));
        })
    };
    let editor = match summary.schedule.clone() {
        ScheduleSpec::Crontab(initial) => view! {
            <CrontabEditor initial saving on_save=Callback::new(move |spec| save.run(ScheduleSpec::Crontab(spec))) />
        }.into_any(),
        initial => view! { <SimpleScheduleEditor initial saving on_save=save /> }.into_any(),
    };
    let toggle = format!("{base}/enabled?value={}", !summary.enabled);
    let run = format!("{base}/run");
    let delete = format!("{base}/delete");
    (view! {
        <h1 data-testid="schedule-name">{summary.name.clone()}</h1>
        <dl class="fields">
            <dt>"Task"</dt><dd class="mono" data-testid="schedule-task">{summary.task.clone()}</dd>
            <dt>"Schedule"</dt><dd data-testid="schedule-description">{summary.description.clone()}</dd>
            <dt>"Enabled"</dt><dd data-testid="schedule-enabled-state">{if summary.enabled { "yes" } else { "no" }}</dd>
            <dt>"Next run"</dt><dd data-testid="schedule-next-run">{instant(summary.next_run_at)}</dd>
            <dt>"Last run"</dt><dd>{instant(summary.last_run_at)}</dd>
            <dt>"Runs"</dt><dd>{format!("{} sent, {} missed, {} late", summary.total_run_count, summary.missed_count, summary.late_count)}</dd>
            <dt>"Arguments"</dt><dd class="mono">{detail.args.to_string()}</dd>
            <dt>"Keyword arguments"</dt><dd class="mono">{detail.kwargs.to_string()}</dd>
            <dt>"Queue"</dt><dd>{detail.queue.clone().unwrap_or_else(|| "—".to_owned())}</dd>
        </dl>
        <div class="actions needs-admin">
            <button data-testid="schedule-toggle" disabled=move || saving.get()
                on:click=move |_| { change.dispatch((toggle.clone(), None)); }>
                {if summary.enabled { "Disable" } else { "Enable" }}
            </button>
            <button data-testid="schedule-run" disabled=move || saving.get()
                on:click=move |_| { change.dispatch((run.clone(), None)); }>"Run now"</button>
            <ConfirmButton label="Delete" question="Delete this periodic task?" test_id="schedule-delete"
                disabled=saving on_confirm=Callback::new(move |()| { change.dispatch((delete.clone(), None)); }) />
        </div>
        <h2>"Edit schedule"</h2>
        {editor}
        <h2>"Recent runs"</h2>
        <RunsTable runs=detail.runs />
    }).into_any()
}

/// The markers of a run: missed slots, late, sent twice.
fn markers(run: &ScheduleRun) -> Vec<(&'static str, String)> {
    let mut markers = Vec::new();
    if run.outcome == "skipped" {
        markers.push(("missed", "missed".to_owned()));
    } else if run.missed > 0 {
        markers.push(("missed", format!("{} missed before", run.missed)));
    }
    if run.late {
        markers.push((
            "late",
            format!("late {:.1} s", run.lateness_ms as f64 / 1000.0),
        ));
    }
    if run.duplicate {
        markers.push(("duplicate", "duplicate: sent by another beat".to_owned()));
    }
    markers
}

#[component]
fn RunsTable(runs: Vec<ScheduleRun>) -> AnyView {
    if runs.is_empty() {
        return view! { <p data-testid="schedule-runs-empty">"No runs yet."</p> }.into_any();
    }
    (view! {
        <table class="runs" data-testid="schedule-runs">
            <thead><tr><th>"Slot"</th><th>"Sent"</th><th>"Outcome"</th><th>"Task"</th><th>"Markers"</th></tr></thead>
            <tbody>
                {runs.into_iter().map(|run| {
                    let markers = markers(&run);
                    view! {
                        <tr data-testid="schedule-run-row">
                            <td>{instant(Some(run.slot))}</td>
                            <td>{instant(Some(run.sent_at))}</td>
                            <td>{run.outcome.clone()}</td>
                            <td>{run.task_id.clone().map(|task_id| view! {
                                <A href=paths::task(&task_id)>{task_id.chars().take(8).collect::<String>()}</A>
                            })} " " {run.state.map(|state| view! { <StateBadge state /> })}</td>
                            <td>{markers.into_iter().map(|(kind, text)| view! {
                                <span class=format!("marker marker-{kind}") data-testid=format!("marker-{kind}")>{text}</span> " "
                            }).collect_view()}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }.into_any()).into_any()
}
