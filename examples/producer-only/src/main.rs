//! A producer-only service: `POST /add/2/3` sends `hello.add` to the `hello` queue and answers
//! its task id; `GET /results/<id>` waits for the result. Whoever consumes `hello` runs it:
//! examples/hello's worker, or a Python Celery worker with a task of that name.
//!
//! The broker and result backend come from `celeriac.toml` or `CELERIAC_*` variables, as for
//! every Celeriac binary; `PRODUCER_ADDR` is where it listens (127.0.0.1:8001).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use celeriac::config::Config;
use celeriac::prelude::*;
use serde_json::{json, Value};

/// The task is declared by name and signature only: this service sends it, it never runs it.
const ADD: TaskRef<(i64, i64), i64> = TaskRef::new("hello.add").with_queue("hello");

/// The producer is cheap to clone (shared connections); it is the router's state.
async fn add(
    State(producer): State<Producer>,
    Path((x, y)): Path<(i64, i64)>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let sent = producer.delay(&ADD, (x, y)).await.map_err(unavailable)?;
    Ok(Json(json!({ "task_id": sent.id.to_string() })))
}

async fn result(
    State(producer): State<Producer>,
    Path(task_id): Path<String>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let sum: i64 = producer
        .async_result(task_id)
        .typed::<i64>()
        .wait(Duration::from_secs(10))
        .await
        .map_err(unavailable)?;
    Ok(Json(json!({ "result": sum })))
}

fn unavailable(error: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load(None)?;
    let producer = Producer::connect(&config).await?;
    let app = Router::new()
        .route("/add/{x}/{y}", post(add))
        .route("/results/{task_id}", get(result))
        .with_state(producer);
    let addr = std::env::var("PRODUCER_ADDR").unwrap_or_else(|_| "127.0.0.1:8001".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("producer-only listening on http://{addr}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
