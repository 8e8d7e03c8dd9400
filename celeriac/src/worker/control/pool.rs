//! `pool_grow`, `pool_shrink` and `autoscale`: the pool's size at run time.
//!
//! Our pool is a limit on tokio tasks running at once, so growing is immediate and shrinking
//! completes as running tasks finish (see `worker::slots`); the prefetch limit follows as
//! `prefetch_multiplier × concurrency`, as in Celery. The pool never shrinks below one slot.
//!
//! We have no autoscaler (idle slots cost nothing here, so there is nothing to scale down), and
//! answer `autoscale` as a Celery worker started without `--autoscale` does:
//! `{"error": "ValueError('Autoscale not enabled')"}`. Nor do we reload task modules, so
//! `pool_restart` is answered as a Celery worker without `worker_pool_restarts` answers it
//! (`ValueError('Pool restarts not enabled')`), which is what Flower's pool restart shows.

use super::super::Shared;
use super::integer_argument;
use crate::protocol::control::{error_reply, ok_reply};
use serde_json::{Map, Value};

pub(super) fn pool_grow(shared: &Shared, arguments: &Map<String, Value>) -> Value {
    let n = step(arguments);
    shared.set_concurrency(shared.pool.size().saturating_add(n));
    ok_reply("pool will grow")
}

pub(super) fn pool_shrink(shared: &Shared, arguments: &Map<String, Value>) -> Value {
    let n = step(arguments);
    shared.set_concurrency(shared.pool.size().saturating_sub(n).max(1));
    ok_reply("pool will shrink")
}

pub(super) fn autoscale() -> Value {
    error_reply("ValueError('Autoscale not enabled')")
}

pub(super) fn pool_restart() -> Value {
    error_reply("ValueError('Pool restarts not enabled')")
}

/// `n`, default 1 as in Celery; negative or absurd values count as 0.
fn step(arguments: &Map<String, Value>) -> usize {
    let n = integer_argument(arguments, "n").unwrap_or(1);
    usize::try_from(n).unwrap_or(0).min(10_000)
}
