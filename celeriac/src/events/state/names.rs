//! [`TaskNameStats`]: per task name, how many of each task event were seen (each distinct
//! event once) and the runtimes of the latest successes, for p50/p95/p99.
//!
//! Runtimes are a ring of the last `runtime_window` successes (`f32` seconds, 4 bytes each), so
//! the percentiles describe recent behaviour and the memory per name is fixed; they are exact
//! over that window (nearest rank), not a sketch of all time.

use super::task::KIND_COUNT;

/// Counters and recent runtimes of one task name.
#[derive(Debug, Clone)]
pub(crate) struct TaskNameStats {
    /// Events seen per kind, in `task::KINDS` order.
    pub(crate) counts: [u64; KIND_COUNT],
    runtimes: Vec<f32>,
    next: usize,
    window: usize,
    pub(crate) version: u64,
}

/// Nearest-rank percentiles over the runtime window, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Percentiles {
    pub(crate) samples: usize,
    pub(crate) p50: f64,
    pub(crate) p95: f64,
    pub(crate) p99: f64,
}

impl TaskNameStats {
    pub(crate) fn new(window: usize) -> TaskNameStats {
        TaskNameStats {
            counts: [0; KIND_COUNT],
            runtimes: Vec::new(),
            next: 0,
            window: window.max(1),
            version: 0,
        }
    }

    pub(crate) fn record_runtime(&mut self, seconds: f64) {
        if !seconds.is_finite() || seconds < 0.0 {
            return;
        }
        let seconds = seconds as f32;
        if self.runtimes.len() < self.window {
            self.runtimes.push(seconds);
        } else {
            self.runtimes[self.next] = seconds;
            self.next = (self.next + 1) % self.window;
        }
    }

    pub(crate) fn percentiles(&self) -> Option<Percentiles> {
        if self.runtimes.is_empty() {
            return None;
        }
        let mut sorted = self.runtimes.clone();
        sorted.sort_unstable_by(f32::total_cmp);
        let rank = |percent: f64| {
            let index = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
            f64::from(sorted[index.clamp(1, sorted.len()) - 1])
        };
        Some(Percentiles {
            samples: sorted.len(),
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
        })
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.runtimes.capacity() * std::mem::size_of::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_over_the_window() {
        let mut stats = TaskNameStats::new(100);
        assert_eq!(stats.percentiles(), None);
        for value in 1..=200 {
            stats.record_runtime(f64::from(value));
        }
        // The window holds 101..=200.
        let percentiles = stats.percentiles().unwrap();
        assert_eq!(percentiles.samples, 100);
        assert_eq!(
            (percentiles.p50, percentiles.p95, percentiles.p99),
            (150.0, 195.0, 199.0)
        );
        stats.record_runtime(f64::NAN);
        stats.record_runtime(-1.0);
        assert_eq!(stats.percentiles().unwrap().samples, 100);
    }
}
