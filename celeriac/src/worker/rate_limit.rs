//! Task rate limits: Celery's `rate_limit` syntax and the token bucket a worker applies per task.
//!
//! The syntax is Celery's `celery.utils.time.rate`: `"<number>[/<unit>]"` where the unit is `s`,
//! `m` or `h` (per second when missing) and the number may be fractional (`"0.5/s"`). A rate of
//! zero, or an empty text, means no limit.
//!
//! The bucket follows kombu's `TokenBucket` (`kombu/utils/limits.py`) as Celery's consumer builds
//! it: a fill rate in tokens per second, a capacity of one token, starting full. A task may start
//! when a whole token is available, and otherwise is held back for the time the missing part of the
//! token takes to refill. Time is passed in by the caller, so tests need no sleeps.
//!
//! One deliberate difference: kombu only moves its refill timestamp while the bucket is below
//! capacity, so after an idle period it lets two tasks through back to back. This bucket moves the
//! timestamp on every observation, so the limit also holds right after idling.

use std::fmt;
use std::time::{Duration, Instant};

/// Seconds per unit, as in Celery's `RATE_MODIFIER_MAP`.
const UNITS: [(&str, f64); 3] = [("s", 1.0), ("m", 60.0), ("h", 3600.0)];

/// Tolerance when checking for a whole token: refill arithmetic in floating point can leave
/// 0.999999… after waiting exactly the time [`TokenBucket::try_acquire`] asked for.
const TOKEN_EPSILON: f64 = 1e-9;

/// A rate limit text that is not Celery's syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    /// The text is not `<number>[/s|/m|/h]` with a finite, non-negative number.
    #[error("invalid rate limit {text:?}: {reason}")]
    Invalid {
        /// The rate limit as written.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// How many tasks of one kind a worker may start per second (always finite and positive).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tasks per second; kombu's `fill_rate`.
    tasks_per_second: f64,
}

impl RateLimit {
    /// Parses Celery's syntax (`"10/s"`, `"100/m"`, `"5/h"`, `"0.5/s"`, `"10"`); `Ok(None)` means
    /// no limit (`""` or a zero rate), as Celery skips the bucket then.
    ///
    /// ```
    /// use celeriac::worker::rate_limit::RateLimit;
    /// let rate_limit = RateLimit::parse("120/m").unwrap().unwrap();
    /// assert_eq!(rate_limit.tasks_per_second(), 2.0);
    /// assert_eq!(RateLimit::parse("0").unwrap(), None);
    /// ```
    pub fn parse(text: &str) -> Result<Option<RateLimit>, RateLimitError> {
        let invalid = |reason| RateLimitError::Invalid {
            text: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Ok(None);
        }
        let (number, unit) = text.split_once('/').unwrap_or((text, ""));
        let unit = if unit.is_empty() { "s" } else { unit };
        let seconds_per_unit = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, seconds)| *seconds)
            .ok_or_else(|| invalid("the unit must be s, m or h"))?;
        // Python's float() allows surrounding whitespace; the unit after `/` must be exact.
        let count: f64 = number
            .trim()
            .parse()
            .map_err(|_| invalid("expected a number of tasks"))?;
        RateLimit::from_tasks_per_second(count / seconds_per_unit)
            .map_err(|_| invalid("the number of tasks must be finite and not negative"))
    }

    /// A limit given as a plain number of tasks per second, as Celery allows in task options;
    /// zero means no limit.
    pub fn from_tasks_per_second(
        tasks_per_second: f64,
    ) -> Result<Option<RateLimit>, RateLimitError> {
        if !tasks_per_second.is_finite() || tasks_per_second < 0.0 {
            return Err(RateLimitError::Invalid {
                text: tasks_per_second.to_string(),
                reason: "the number of tasks must be finite and not negative",
            });
        }
        if tasks_per_second == 0.0 {
            return Ok(None);
        }
        Ok(Some(RateLimit { tasks_per_second }))
    }

    /// Tasks per second, the bucket's fill rate.
    pub fn tasks_per_second(&self) -> f64 {
        self.tasks_per_second
    }
}

impl fmt::Display for RateLimit {
    /// Shows the limit in Celery's syntax, per second.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/s", self.tasks_per_second)
    }
}

/// kombu's token bucket with capacity one: decides when the next task of a kind may start.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens added per second.
    fill_rate: f64,
    /// Tokens available, at most [`TokenBucket::CAPACITY`].
    tokens: f64,
    /// When `tokens` was last brought up to date.
    refilled_at: Instant,
}

impl TokenBucket {
    /// The most tokens the bucket holds, so at most one task starts in a burst (Celery passes
    /// `capacity=1`).
    pub const CAPACITY: f64 = 1.0;

    /// A full bucket for `rate`, created at `now`, so the first task may start at once.
    pub fn new(rate: RateLimit, now: Instant) -> TokenBucket {
        TokenBucket {
            fill_rate: rate.tasks_per_second,
            tokens: Self::CAPACITY,
            refilled_at: now,
        }
    }

    /// Takes one token if available (`Ok`: start the task now); otherwise consumes nothing and
    /// returns how long until a token will be there (kombu's `expected_time(1)`).
    ///
    /// An `Instant` earlier than one seen before counts as no time passing.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens + TOKEN_EPSILON >= 1.0 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            return Ok(());
        }
        let wait_seconds = (1.0 - self.tokens) / self.fill_rate;
        Err(Duration::try_from_secs_f64(wait_seconds).unwrap_or(Duration::MAX))
    }

    /// Adds the tokens earned since the last observation, up to the capacity.
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        self.tokens = (self.tokens + self.fill_rate * elapsed.as_secs_f64()).min(Self::CAPACITY);
        if now > self.refilled_at {
            self.refilled_at = now;
        }
    }
}

#[cfg(test)]
mod tests;
