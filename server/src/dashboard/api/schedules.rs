//! Periodic tasks: `GET /api/schedules`, `GET /api/schedules/{name}` (with recent runs), and,
//! for admins, `POST /api/schedules` (create), `POST /api/schedules/{name}` (edit),
//! `POST /api/schedules/{name}/delete`, `POST /api/schedules/{name}/enabled?value=true` and
//! `POST /api/schedules/{name}/run` (run now), through the engine's `ScheduleStore`.
//!
//! `GET /api/schedule-preview?spec=…` checks a draft as the user types (the browser has no tz
//! database, see `app::model::schedule`); saving checks everything again and answers an
//! invalid field with 422 and the engine's message, which names the field (`hour: 24 is out of range 0-23`). Every change is written to the audit log
//! (`schedule.create|edit|delete|enable|disable|run_now`) and announced to running beats, as
//! `celeriac schedule` does; a beat that misses the announcement applies it at its next tick.

use app::model::{
    ScheduleAnswer, ScheduleDetail, ScheduleForm, SchedulePreview, ScheduleRun, ScheduleSpec,
    ScheduleSummary,
};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use celeriac::beat::store::StoredRun;
use celeriac::beat::{arguments, send_options, BeatOptions, PeriodicTask, StoreError, StoredTask};
use celeriac::clock;
use serde::Deserialize;

use super::error::AppError;
use super::tasks::flag;
use crate::dashboard::auth::{Admin, AuthUser, RequireRole};
use crate::dashboard::security::ClientContext;
use crate::dashboard::AppState;

/// How many runs the detail shows (the store keeps `RUNS_KEPT`).
const RUNS_SHOWN: usize = 20;

/// How many upcoming runs a preview lists.
const UPCOMING_SHOWN: usize = 5;

fn store_error(error: StoreError) -> AppError {
    match error {
        StoreError::Invalid(problem) => AppError::Unprocessable(problem.to_string()),
        error @ StoreError::NotFound { .. } => AppError::NotFound(error.to_string()),
        error @ StoreError::Exists { .. } => AppError::Conflict(error.to_string()),
        error => AppError::internal(error),
    }
}

/// A run as the page shows it; `state` is filled in by the caller.
fn run_view(run: StoredRun) -> ScheduleRun {
    let late_after = BeatOptions::default().late_after.as_millis();
    ScheduleRun {
        late: i128::from(run.lateness_ms) > late_after as i128 && run.outcome == "sent",
        duplicate: run.outcome == "already_sent",
        slot: run.slot,
        sent_at: run.sent_at,
        task_id: run.task_id,
        outcome: run.outcome,
        missed: run.missed,
        lateness_ms: run.lateness_ms,
        state: None,
    }
}

/// The state of the task a run sent, if the history has it (a read failure only hides it).
async fn with_state(state: &AppState, mut run: ScheduleRun) -> ScheduleRun {
    if let Some(task_id) = &run.task_id {
        match state.history.task(task_id).await {
            Ok(detail) => run.state = detail.map(|detail| detail.task.state),
            Err(error) => tracing::warn!(%error, task_id, "cannot read a periodic run's task"),
        }
    }
    run
}

async fn summary(state: &AppState, stored: &StoredTask) -> Result<ScheduleSummary, AppError> {
    let runs = state
        .schedules
        .runs(&stored.task.name)
        .await
        .map_err(store_error)?;
    let last_run = match runs.into_iter().next() {
        Some(run) => Some(with_state(state, run_view(run)).await),
        None => None,
    };
    let task = &stored.task;
    Ok(ScheduleSummary {
        name: task.name.clone(),
        task: task.task.clone(),
        schedule: ScheduleSpec::of(&task.schedule),
        description: task.schedule.describe(),
        enabled: task.enabled,
        one_off: task.one_off,
        last_run_at: task.last_run_at,
        next_run_at: crate::schedule::next_run(stored, clock::now()),
        total_run_count: task.total_run_count,
        missed_count: stored.missed_count,
        late_count: stored.late_count,
        last_run,
    })
}

/// `GET /api/schedules`: every periodic task by name, with its next and last run.
pub(super) async fn list(
    State(state): State<AppState>,
) -> Result<Json<Vec<ScheduleSummary>>, AppError> {
    let stored = state.schedules.list().await.map_err(store_error)?;
    let mut summaries = Vec::with_capacity(stored.len());
    for entry in &stored {
        summaries.push(summary(&state, entry).await?);
    }
    Ok(Json(summaries))
}

/// `GET /api/schedules/{name}`: one periodic task, its options and its recent runs.
pub(super) async fn detail(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ScheduleDetail>, AppError> {
    let stored = state.schedules.get(&name).await.map_err(store_error)?;
    let stored_runs = state.schedules.runs(&name).await.map_err(store_error)?;
    let mut runs = Vec::new();
    for run in stored_runs.into_iter().take(RUNS_SHOWN) {
        runs.push(with_state(&state, run_view(run)).await);
    }
    Ok(Json(ScheduleDetail {
        summary: summary(&state, &stored).await?,
        args: stored.task.args.clone(),
        kwargs: stored.task.kwargs.clone(),
        queue: stored.task.queue.clone(),
        runs,
    }))
}

/// The query of `GET /api/schedule-preview`.
#[derive(Debug, Deserialize)]
pub(super) struct PreviewQuery {
    /// A [`ScheduleSpec`] as JSON.
    spec: String,
}

/// `GET /api/schedule-preview?spec=…`: a draft schedule's description and next runs, or its
/// error naming the field. Changes nothing, so any signed-in role may ask.
pub(super) async fn preview(
    Query(query): Query<PreviewQuery>,
) -> Result<Json<SchedulePreview>, AppError> {
    let spec: ScheduleSpec = serde_json::from_str(&query.spec)
        .map_err(|error| AppError::BadRequest(format!("spec: not a schedule ({error})")))?;
    Ok(Json(spec.preview(clock::now(), UPCOMING_SHOWN)))
}

fn parse_form(body: &Bytes) -> Result<ScheduleForm, AppError> {
    serde_json::from_slice(body)
        .map_err(|error| AppError::BadRequest(format!("not a schedule form: {error}")))
}

/// Applies the form's set fields to `task` and validates the result.
fn apply(form: ScheduleForm, task: &mut PeriodicTask) -> Result<(), AppError> {
    if let Some(spec) = &form.schedule {
        let schedule = spec.build().map_err(AppError::Unprocessable)?;
        task.one_off |= matches!(schedule, celeriac::beat::Schedule::Clocked { .. });
        task.schedule = schedule;
    }
    if let Some(name) = form.task {
        task.task = name;
    }
    if let Some(args) = form.args {
        task.args = args;
    }
    if let Some(kwargs) = form.kwargs {
        task.kwargs = kwargs;
    }
    if let Some(queue) = form.queue {
        task.queue = Some(queue).filter(|queue| !queue.trim().is_empty());
    }
    if let Some(one_off) = form.one_off {
        task.one_off = one_off;
    }
    task.validate()
        .map_err(|problem| AppError::Unprocessable(problem.to_string()))
}

/// Audits the change and tells running beats; the store already holds it.
async fn changed(
    state: &AppState,
    user: &AuthUser,
    client: Option<&ClientContext>,
    action: &str,
    name: &str,
) {
    tracing::info!(action, schedule = name, user = %user.name, "periodic task changed from the dashboard");
    state.record_action(user, client, action, name).await;
    if let Err(error) = state.producer.broker().beat_announce_change().await {
        tracing::warn!(%error, "cannot announce the change; beats apply it at their next tick");
    }
}

fn answer(name: &str, message: String) -> Json<ScheduleAnswer> {
    Json(ScheduleAnswer {
        name: name.to_owned(),
        message,
        task_id: None,
    })
}

/// `POST /api/schedules`: a new periodic task; 409 if the name is taken, 422 for a bad field.
pub(super) async fn create(
    RequireRole { user, .. }: RequireRole<Admin>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<ScheduleAnswer>, AppError> {
    let mut form = parse_form(&body)?;
    let name = form.name.take().unwrap_or_default();
    let task_name = form.task.take().unwrap_or_default();
    let Some(spec) = form.schedule.take() else {
        return Err(AppError::Unprocessable("schedule: required".into()));
    };
    let schedule = spec.build().map_err(AppError::Unprocessable)?;
    let mut task = PeriodicTask::new(name.trim(), task_name.trim(), schedule);
    apply(form, &mut task)?;
    state.schedules.add(&task).await.map_err(store_error)?;
    changed(
        &state,
        &user,
        client.as_deref(),
        "schedule.create",
        &task.name,
    )
    .await;
    Ok(answer(
        &task.name,
        format!("created: {}", task.schedule.describe()),
    ))
}

/// `POST /api/schedules/{name}`: edits the fields the form sets.
pub(super) async fn edit(
    RequireRole { user, .. }: RequireRole<Admin>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<ScheduleAnswer>, AppError> {
    let form = parse_form(&body)?;
    let mut task = state.schedules.get(&name).await.map_err(store_error)?.task;
    apply(form, &mut task)?;
    state.schedules.update(&task).await.map_err(store_error)?;
    changed(&state, &user, client.as_deref(), "schedule.edit", &name).await;
    Ok(answer(
        &name,
        format!("saved: {}", task.schedule.describe()),
    ))
}

/// `POST /api/schedules/{name}/delete`.
pub(super) async fn delete(
    RequireRole { user, .. }: RequireRole<Admin>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ScheduleAnswer>, AppError> {
    state.schedules.delete(&name).await.map_err(store_error)?;
    changed(&state, &user, client.as_deref(), "schedule.delete", &name).await;
    Ok(answer(&name, "deleted".into()))
}

/// The `value` of `/enabled`.
#[derive(Debug, Deserialize)]
pub(super) struct EnabledQuery {
    value: Option<String>,
}

/// `POST /api/schedules/{name}/enabled?value=true|false`.
pub(super) async fn set_enabled(
    RequireRole { user, .. }: RequireRole<Admin>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<EnabledQuery>,
) -> Result<Json<ScheduleAnswer>, AppError> {
    let enabled = flag(query.value.as_deref());
    state
        .schedules
        .set_enabled(&name, enabled)
        .await
        .map_err(store_error)?;
    let (action, message) = if enabled {
        ("schedule.enable", "enabled")
    } else {
        ("schedule.disable", "disabled")
    };
    changed(&state, &user, client.as_deref(), action, &name).await;
    Ok(answer(&name, message.into()))
}

/// `POST /api/schedules/{name}/run`: sends the task now with the entry's arguments and options,
/// as `celeriac schedule run-now` does; beat's own slots are unchanged.
pub(super) async fn run_now(
    RequireRole { user, .. }: RequireRole<Admin>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ScheduleAnswer>, AppError> {
    let stored = state.schedules.get(&name).await.map_err(store_error)?;
    let (args, kwargs) = arguments(&stored.task);
    let options = send_options(&stored.task, None, clock::now());
    let result = state
        .producer
        .send_task(&stored.task.task, args, kwargs, options)
        .await
        .map_err(AppError::internal)?;
    tracing::info!(schedule = %name, task_id = %result.id, user = %user.name, "periodic task run now from the dashboard");
    state
        .record_action(&user, client.as_deref(), "schedule.run_now", &name)
        .await;
    Ok(Json(ScheduleAnswer {
        name: name.clone(),
        message: format!("sent {}", result.id),
        task_id: Some(result.id.to_string()),
    }))
}

#[cfg(test)]
mod tests;
