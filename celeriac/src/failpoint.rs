//! Failpoints: deliberate faults that prove a chaos test can fail.
//!
//! Each guarantee the chaos suite checks (no loss when a worker dies between pop and record, a
//! frozen worker's late ack leaves the redelivery alone, poison messages stop, held ETA tasks
//! are not duplicated) has a failpoint that turns the guarantee off. They exist only in builds
//! with the `failpoints` feature (the test builds) and fire only when named in the
//! `CELERIAC_FAILPOINTS` variable (comma-separated), so a release build has none.
//!
//! | failpoint | effect |
//! |---|---|
//! | `fetch_non_atomic` | fetch pops, then records in a second step (kombu's way) |
//! | `crash_after_pop` | with `fetch_non_atomic`: abort between the pop and the record |
//! | `crash_after_fetch` | abort right after a fetch returned messages |
//! | `ack_any_owner` | ack deletes the record even if it now belongs to another delivery |
//! | `no_poison_limit` | no limit on deliveries without an ack |
//! | `no_refresh` | held deliveries are not refreshed, so the sweep restores them |
//! | `ignore_acks_late` | ack before running even with `acks_late` (a kill loses the task) |
//! | `no_shutdown_restore` | a task stopped at shutdown stays in `unacked` until the sweep |
//! | `no_reclaim` | a fetch whose reply was lost is not reclaimed: its messages wait in `unacked` for the visibility timeout |
//! | `stop_on_fetch_error` | the consumer gives up when Redis goes away (Celery's known bug) |
//! | `beat_no_claim` | beat pushes a slot even if it was claimed before (a second enqueue of a slot) |

/// True when the failpoint `name` is active in this process.
#[cfg(feature = "failpoints")]
pub fn active(name: &str) -> bool {
    use std::sync::OnceLock;
    static ACTIVE: OnceLock<Vec<String>> = OnceLock::new();
    ACTIVE
        .get_or_init(|| {
            std::env::var("CELERIAC_FAILPOINTS")
                .unwrap_or_default()
                .split(',')
                .map(|point| point.trim().to_owned())
                .filter(|point| !point.is_empty())
                .collect()
        })
        .iter()
        .any(|point| point == name)
}

/// Always false: this build has no failpoints.
#[cfg(not(feature = "failpoints"))]
pub fn active(_name: &str) -> bool {
    false
}
