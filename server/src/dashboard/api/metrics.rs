//! `GET /metrics`: Prometheus' text format, with Flower's metric names so existing dashboards
//! and alerts keep working, plus queue depths Flower cannot see.
//!
//! - From every event (`event_metrics`): `flower_events_total{task,type,worker}`,
//!   `flower_task_runtime_seconds{task,worker}` (histogram),
//!   `flower_task_prefetch_time_seconds{task,worker}`.
//! - From the monitor's workers: `flower_worker_online{worker}`,
//!   `flower_worker_number_of_currently_executing_tasks{worker}` (the last heartbeat's
//!   `active`).
//! - Read from Redis at scrape time, through the engine: `celeriac_queue_depth{queue,priority}`,
//!   `celeriac_queue_oldest_age_seconds{queue}` (only when the monitor saw the oldest message's
//!   `task-sent`: kombu's envelope carries no publish time), `celeriac_queue_unacked` and
//!   `celeriac_queue_unacked_oldest_age_seconds`, and the broker's `celeriac_redis_used_memory_bytes`
//!   and `celeriac_redis_maxmemory_bytes` (a full `noeviction` Redis refuses tasks and results).
//! - From beat's store (SQL) at scrape time: `celeriac_beat_runs_total{schedule}`,
//!   `celeriac_beat_missed_total{schedule}`, `celeriac_beat_late_total{schedule}`,
//!   `celeriac_beat_lateness_seconds{schedule}` (its latest slot), and
//!   `celeriac_beat_lease_remaining_seconds` (0 when no beat holds the lease).

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::error::AppError;
use crate::dashboard::event_metrics::escape;
use crate::dashboard::AppState;

/// `GET /metrics`.
pub(super) async fn render(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let now = celeriac::clock::epoch_now();
    let mut out = String::with_capacity(16 * 1024);
    state.metrics.render(&mut out);

    let workers = state.monitor.read(|cluster| cluster.workers(now));
    out.push_str("# HELP flower_worker_online Worker online status\n");
    out.push_str("# TYPE flower_worker_online gauge\n");
    for worker in &workers {
        let _ = writeln!(
            out,
            "flower_worker_online{{worker=\"{}\"}} {}",
            escape(&worker.hostname),
            u8::from(worker.alive)
        );
    }
    out.push_str(
        "# HELP flower_worker_number_of_currently_executing_tasks Number of tasks currently \
         executing at a worker\n",
    );
    out.push_str("# TYPE flower_worker_number_of_currently_executing_tasks gauge\n");
    for worker in &workers {
        let _ = writeln!(
            out,
            "flower_worker_number_of_currently_executing_tasks{{worker=\"{}\"}} {}",
            escape(&worker.hostname),
            worker.active
        );
    }

    let names: Vec<&str> = state.queues.iter().map(String::as_str).collect();
    let broker = state.producer.broker();
    let depths = broker
        .queue_depths(&names)
        .await
        .map_err(AppError::internal)?;
    out.push_str("# HELP celeriac_queue_depth Messages waiting in a queue, per priority step\n");
    out.push_str("# TYPE celeriac_queue_depth gauge\n");
    for depth in &depths {
        for priority in &depth.priorities {
            let _ = writeln!(
                out,
                "celeriac_queue_depth{{queue=\"{}\",priority=\"{}\"}} {}",
                escape(&depth.queue),
                priority.step,
                priority.messages
            );
        }
    }
    out.push_str(
        "# HELP celeriac_queue_oldest_age_seconds Age of the longest-waiting message, when its \
         task-sent event was seen\n",
    );
    out.push_str("# TYPE celeriac_queue_oldest_age_seconds gauge\n");
    for depth in &depths {
        let sent_times: Vec<f64> = state.monitor.read(|cluster| {
            depth
                .priorities
                .iter()
                .filter_map(|priority| cluster.task(priority.oldest_task_id.as_deref()?)?.sent)
                .map(|sent| sent.timestamp_micros() as f64 / 1e6)
                .collect()
        });
        if let Some(oldest) = sent_times.into_iter().reduce(f64::min) {
            let _ = writeln!(
                out,
                "celeriac_queue_oldest_age_seconds{{queue=\"{}\"}} {:?}",
                escape(&depth.queue),
                (now - oldest).max(0.0)
            );
        }
    }
    let unacked = broker.unacked_depth(0).await.map_err(AppError::internal)?;
    out.push_str("# HELP celeriac_queue_unacked Messages delivered and not yet acked\n");
    out.push_str("# TYPE celeriac_queue_unacked gauge\n");
    let _ = writeln!(out, "celeriac_queue_unacked {}", unacked.messages);
    if let Some(oldest) = unacked.oldest_delivered_at {
        out.push_str(
            "# HELP celeriac_queue_unacked_oldest_age_seconds Age of the oldest unacked \
             delivery\n",
        );
        out.push_str("# TYPE celeriac_queue_unacked_oldest_age_seconds gauge\n");
        let age = now - oldest.timestamp_micros() as f64 / 1e6;
        let _ = writeln!(
            out,
            "celeriac_queue_unacked_oldest_age_seconds {:?}",
            age.max(0.0)
        );
    }
    if let Some((used, max)) = broker.memory().await {
        out.push_str(
            "# HELP celeriac_redis_used_memory_bytes The broker's used_memory; at maxmemory a \
             noeviction Redis refuses new tasks, and workers ack before storing results\n",
        );
        out.push_str("# TYPE celeriac_redis_used_memory_bytes gauge\n");
        let _ = writeln!(out, "celeriac_redis_used_memory_bytes {used}");
        out.push_str("# HELP celeriac_redis_maxmemory_bytes The broker's maxmemory (0: none)\n");
        out.push_str("# TYPE celeriac_redis_maxmemory_bytes gauge\n");
        let _ = writeln!(out, "celeriac_redis_maxmemory_bytes {max}");
    }
    render_beat(&state, &mut out).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    ))
}

/// Beat's series: per periodic task from the store, and the leader's lease from Redis.
async fn render_beat(state: &AppState, out: &mut String) -> Result<(), AppError> {
    let tasks = state.schedules.list().await.map_err(AppError::internal)?;
    let lateness = state
        .schedules
        .latest_lateness()
        .await
        .map_err(AppError::internal)?;
    for (family, help, value) in [
        (
            "celeriac_beat_runs_total",
            "Messages beat sent for a periodic task",
            (|task: &celeriac::beat::StoredTask| task.task.total_run_count)
                as fn(&celeriac::beat::StoredTask) -> u64,
        ),
        (
            "celeriac_beat_missed_total",
            "Slots of a periodic task that passed without a message (downtime, catch-up policy)",
            |task| task.missed_count,
        ),
        (
            "celeriac_beat_late_total",
            "Messages beat sent later than its lateness threshold",
            |task| task.late_count,
        ),
    ] {
        let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} counter");
        for task in &tasks {
            let _ = writeln!(
                out,
                "{family}{{schedule=\"{}\"}} {}",
                escape(&task.task.name),
                value(task)
            );
        }
    }
    out.push_str(
        "# HELP celeriac_beat_lateness_seconds How late beat sent a periodic task's latest slot\n\
         # TYPE celeriac_beat_lateness_seconds gauge\n",
    );
    for (name, lateness_ms) in &lateness {
        let _ = writeln!(
            out,
            "celeriac_beat_lateness_seconds{{schedule=\"{}\"}} {:?}",
            escape(name),
            *lateness_ms as f64 / 1000.0
        );
    }
    let leader = state
        .producer
        .broker()
        .beat_leader()
        .await
        .map_err(AppError::internal)?;
    out.push_str(
        "# HELP celeriac_beat_lease_remaining_seconds Time left on the beat leader's lease (0: no leader)\n\
         # TYPE celeriac_beat_lease_remaining_seconds gauge\n",
    );
    let _ = writeln!(
        out,
        "celeriac_beat_lease_remaining_seconds {:?}",
        leader.map_or(0.0, |leader| leader.remaining.as_secs_f64())
    );
    Ok(())
}
