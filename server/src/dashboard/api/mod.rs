//! The dashboard's JSON API, server-sent events and Prometheus metrics.
//!
//! Flower 2.2's paths and shapes for the calls scripts use, so they keep working against
//! Celeriac: `GET /api/workers`, `GET /api/tasks`, `GET /api/task/info/{id}`,
//! `POST /api/task/revoke/{id}`, `GET /api/queues/length`, `GET /metrics`, and the task calls
//! `GET /api/task/types`, `GET /api/task/result/{id}`, `POST /api/task/apply/{name}`,
//! `/async-apply/{name}`, `/send-task/{name}`, `/abort/{id}` (see `flower_tasks.rs`).
//! Flower's worker actions (`POST /api/worker/pool/grow/{name}`, `pool/restart`,
//! `pool/autoscale`, ...) too, see `worker_control.rs`. An unknown `/api/...` path is a JSON
//! 404 (`routes.rs`), and `/healthcheck` answers Flower's `OK`. Our own: `GET /api/overview`, `GET /api/queues`, `GET /api/history`,
//! `POST /api/task/retry/{id}`, `POST /api/tasks/bulk_retry`, `GET /api/stats/tasks`,
//! `GET /api/worker/{name}` and `POST /api/worker/{name}/<command>`, `GET /api/events` (SSE),
//! `GET /api/snapshot` (its first event as JSON), and the periodic tasks under
//! `/api/schedules` (admins edit them) with `GET /api/schedule-preview` for the editors.
//!
//! Every handler reads through [`AppState`] (engine types only); GET never changes anything.
//! The router is returned already stated, so `routes` merges it beside the Leptos pages and an
//! authentication layer can wrap it as a whole.
//!
//! # Layout
//! - `error.rs`: [`AppError`](error::AppError), the one failure type.
//! - `flower.rs`: Flower's task dictionary built from our records; `search.rs`: Flower's
//!   `search` syntax and `sort_by` for `/api/tasks`.
//! - `flower_tasks.rs`: sending tasks and reading results the Flower way; `aborted.rs`:
//!   Celery's `ABORTED` state in the Redis result backend.
//! - `workers.rs`, `tasks.rs`, `queues.rs`, `history.rs`: the JSON endpoints.
//! - `schedules.rs`: periodic tasks (list, detail with runs, create/edit/delete/enable/run,
//!   a draft's preview).
//! - `bulk_retry.rs`: many tasks sent again, capped and throttled; `stats.rs`: per task name
//!   statistics.
//! - `worker.rs`: one worker's detail; `worker_control.rs`: the actions on one worker.
//! - `events.rs`: the SSE stream; `metrics.rs`: `/metrics`.

mod aborted;
mod bulk_retry;
mod error;
mod events;
#[cfg(test)]
mod flood_tests;
mod flower;
#[cfg(test)]
mod flower_compat_tests;
mod flower_tasks;
#[cfg(test)]
mod guard_tests;
mod history;
mod metrics;
mod queues;
mod schedules;
mod search;
mod stats;
mod tasks;
#[cfg(test)]
mod tests;
mod worker;
mod worker_control;
#[cfg(test)]
mod worker_tests;
mod workers;
#[cfg(test)]
mod workflow_tests;

use axum::routing::{get, post};
use axum::Router;

use super::AppState;

pub(crate) use aborted::AbortStore;
pub(crate) use stats::StatsCache;

/// The API, SSE and metrics routes over `state`.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/workers", get(workers::list))
        .route("/api/worker/{name}", get(worker::detail))
        .route(
            "/api/worker/{name}/add_consumer",
            post(worker_control::add_consumer),
        )
        .route(
            "/api/worker/{name}/cancel_consumer",
            post(worker_control::cancel_consumer),
        )
        .route(
            "/api/worker/{name}/pool_grow",
            post(worker_control::pool_grow),
        )
        .route(
            "/api/worker/{name}/pool_shrink",
            post(worker_control::pool_shrink),
        )
        .route(
            "/api/worker/{name}/rate_limit",
            post(worker_control::rate_limit),
        )
        .route(
            "/api/worker/{name}/time_limit",
            post(worker_control::time_limit),
        )
        .route(
            "/api/worker/{name}/shutdown",
            post(worker_control::shutdown),
        )
        // Flower's paths for the same actions.
        .route(
            "/api/worker/queue/add-consumer/{name}",
            post(worker_control::add_consumer),
        )
        .route(
            "/api/worker/queue/cancel-consumer/{name}",
            post(worker_control::cancel_consumer),
        )
        .route(
            "/api/worker/pool/grow/{name}",
            post(worker_control::pool_grow),
        )
        .route(
            "/api/worker/pool/shrink/{name}",
            post(worker_control::pool_shrink),
        )
        .route(
            "/api/worker/shutdown/{name}",
            post(worker_control::shutdown),
        )
        .route(
            "/api/worker/pool/restart/{name}",
            post(worker_control::flower_pool_restart),
        )
        .route(
            "/api/worker/pool/autoscale/{name}",
            post(worker_control::flower_autoscale),
        )
        .route(
            "/api/task/rate-limit/{task_name}",
            post(worker_control::flower_rate_limit),
        )
        .route(
            "/api/task/timeout/{task_name}",
            post(worker_control::flower_timeout),
        )
        .route("/api/tasks", get(tasks::list))
        .route("/api/task/info/{task_id}", get(tasks::info))
        .route("/api/task/revoke/{task_id}", post(tasks::revoke))
        .route("/api/task/retry/{task_id}", post(tasks::retry))
        .route("/api/task/types", get(flower_tasks::types))
        .route("/api/task/result/{task_id}", get(flower_tasks::result))
        .route("/api/task/abort/{task_id}", post(flower_tasks::abort))
        .route("/api/task/apply/{name}", post(flower_tasks::apply))
        .route(
            "/api/task/async-apply/{name}",
            post(flower_tasks::async_apply),
        )
        .route("/api/task/send-task/{name}", post(flower_tasks::send_task))
        .route("/api/tasks/bulk_retry", post(bulk_retry::bulk_retry))
        .route("/api/stats/tasks", get(stats::tasks))
        .route("/api/queues/length", get(queues::length))
        .route("/api/queues", get(queues::detail))
        .route("/api/overview", get(queues::overview))
        .route("/api/history", get(history::list))
        .route(
            "/api/schedules",
            get(schedules::list).post(schedules::create),
        )
        .route(
            "/api/schedules/{name}",
            get(schedules::detail).post(schedules::edit),
        )
        .route("/api/schedules/{name}/delete", post(schedules::delete))
        .route(
            "/api/schedules/{name}/enabled",
            post(schedules::set_enabled),
        )
        .route("/api/schedules/{name}/run", post(schedules::run_now))
        .route("/api/schedule-preview", get(schedules::preview))
        .route("/api/events", get(events::stream))
        .route("/api/snapshot", get(events::snapshot))
        .route("/metrics", get(metrics::render))
        .layer(axum::middleware::from_fn(error::json_rejections))
        .with_state(state)
}
