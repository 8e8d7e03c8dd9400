//! `carts.*`: periodic housekeeping, run by beat.

use celeriac::prelude::*;
use serde_json::{json, Value};

pub(crate) fn tasks() -> Vec<Task> {
    vec![cleanup_expired_carts::task()]
}

/// Stands in for a DELETE of carts idle for more than a day.
#[task(name = "carts.cleanup_expired_carts")]
pub async fn cleanup_expired_carts() -> Result<Value, TaskError> {
    Ok(json!({"deleted": 0}))
}
