//! `carts.*`: periodic housekeeping, run by beat.

use celeriac::task::{Task, TaskError};
use serde_json::{json, Value};

pub(super) fn tasks() -> Vec<Task> {
    vec![Task::new(
        "carts.cleanup_expired_carts",
        cleanup_expired_carts,
    )]
}

async fn cleanup_expired_carts() -> Result<Value, TaskError> {
    // Stands in for a DELETE of carts idle for more than a day.
    Ok(json!({"deleted": 0}))
}
