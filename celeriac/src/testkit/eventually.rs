//! Retry an assertion until it holds, instead of sleeping in tests.
//!
//! Distributed behaviour (a worker picking a task up, a result being stored) happens "soon",
//! not at a known instant. A fixed sleep is either too short (flaky) or too long (slow), so
//! tests poll with [`eventually`] (async) or [`eventually_blocking`] (sync) every
//! [`POLL_INTERVAL`] until the check returns `Some`, and fail with a message naming what was
//! awaited. This is Oban's `with_backoff` idea.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often [`eventually`] and [`eventually_blocking`] re-run their check.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Polls `check` every [`POLL_INTERVAL`] until it returns `Some(value)` and returns the value.
///
/// Uses tokio's clock, so it also works under `tokio::time::pause()`.
///
/// # Panics
/// If `timeout` passes first; the message says `waited <timeout> for <what>`.
///
/// # Example
/// ```
/// # use std::time::Duration;
/// # use celeriac::testkit::eventually;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut attempts = 0;
/// let seen = eventually(Duration::from_secs(1), "the third attempt", || {
///     attempts += 1;
///     let attempt = attempts;
///     async move { (attempt >= 3).then_some(attempt) }
/// })
/// .await;
/// assert_eq!(seen, 3);
/// # }
/// ```
pub async fn eventually<F, Fut, T>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("waited {timeout:?} for {what}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The blocking twin of [`eventually`], for synchronous code such as waiting for a child
/// process to start. Blocks the calling thread, so do not call it from async code that
/// shares its runtime thread with the code under test.
///
/// # Panics
/// If `timeout` passes first; the message says `waited <timeout> for <what>` followed by
/// `context()` (for example the tail of a log), which is only evaluated on failure.
pub fn eventually_blocking<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
    context: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("waited {timeout:?} for {what}\n{}", context());
        }
        pause_thread(POLL_INTERVAL);
    }
}

/// The one place in the testkit that sleeps a thread: synchronous start-up waits (a child
/// process binding its port) have nothing to `.await`.
#[allow(
    clippy::disallowed_methods,
    reason = "testkit start-up waits are synchronous and run outside the code under test"
)]
fn pause_thread(duration: Duration) {
    std::thread::sleep(duration);
}
