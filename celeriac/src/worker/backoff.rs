//! Exponential backoff for automatic retries, computed exactly as Celery does.
//!
//! Celery's `autoretry_for` wrapper (`celery/app/autoretry.py`) sets the retry countdown with
//! `get_exponential_backoff_interval` (`celery/utils/time.py`); see the wire document §7.2:
//!
//! ```text
//! factor    = int(max(1.0, float(retry_backoff)))     # True → 1, 5 → 5, 1.5 → 1 (truncated)
//! countdown = min(retry_backoff_max, factor * 2 ** retries)
//! if retry_jitter: countdown = randrange(countdown + 1)    # "full jitter"
//! countdown = max(0, countdown)
//! ```
//!
//! `retries` is the count before this retry (0 on the first failure), and countdowns are whole
//! seconds. Celery only uses the formula when `retry_backoff` is truthy; with `retry_backoff = 0`
//! (`False`) the retry falls back to `default_retry_delay`, which is the caller's business (see
//! [`Backoff::is_enabled`]). A manual retry with an explicit countdown bypasses it entirely.
//!
//! Invariant: the result never exceeds `min(retry_backoff_max, factor * 2^retries)`, and
//! arithmetic saturates instead of overflowing for any `retries`.

use rand::Rng;

/// A task's backoff options, named as Celery's task attributes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The backoff factor: Celery's `retry_backoff`, where `True` is 1.0 and `False` is 0.0.
    /// Truncated to a whole number of at least 1 before use.
    pub retry_backoff: f64,
    /// The largest countdown in seconds (Celery's `retry_backoff_max`, default 600).
    pub retry_backoff_max: u64,
    /// Whether to pick a random countdown between zero and the exponential value (Celery's
    /// `retry_jitter`, default true), so that failing tasks do not retry in lockstep.
    pub retry_jitter: bool,
}

impl Default for Backoff {
    /// The values a task gets from `retry_backoff=True` alone: factor 1, at most 600 s, jitter.
    fn default() -> Self {
        Backoff {
            retry_backoff: 1.0,
            retry_backoff_max: 600,
            retry_jitter: true,
        }
    }
}

impl Backoff {
    /// Whether Celery would apply backoff at all: `retry_backoff` is truthy (non-zero).
    pub fn is_enabled(&self) -> bool {
        self.retry_backoff != 0.0
    }

    /// The whole-number factor: `int(max(1.0, retry_backoff))`, saturating for huge values.
    pub fn factor(&self) -> u64 {
        // NaN compares false, so it becomes 1 as Python's max(1.0, nan) does. The cast truncates
        // toward zero like int() and saturates instead of raising OverflowError.
        if self.retry_backoff > 1.0 {
            self.retry_backoff as u64
        } else {
            1
        }
    }

    /// The countdown before retry number `retries + 1`, without jitter: the upper bound of the
    /// jittered value.
    pub fn max_countdown(&self, retries: u32) -> u64 {
        let exponential = 1u64
            .checked_shl(retries)
            .and_then(|power| self.factor().checked_mul(power))
            .unwrap_or(u64::MAX);
        exponential.min(self.retry_backoff_max)
    }

    /// The countdown in seconds for a task that has been retried `retries` times so far.
    ///
    /// ```
    /// use celeriac::worker::backoff::Backoff;
    /// let backoff = Backoff { retry_backoff: 1.0, retry_backoff_max: 8, retry_jitter: false };
    /// let countdowns: Vec<u64> =
    ///     (0..5).map(|retries| backoff.countdown(retries, &mut rand::thread_rng())).collect();
    /// assert_eq!(countdowns, [1, 2, 4, 8, 8]);
    /// ```
    pub fn countdown(&self, retries: u32, rng: &mut impl Rng) -> u64 {
        let countdown = self.max_countdown(retries);
        if self.retry_jitter {
            rng.gen_range(0..=countdown)
        } else {
            countdown
        }
    }
}

#[cfg(test)]
mod tests;
