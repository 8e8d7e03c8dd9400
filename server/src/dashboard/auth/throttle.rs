//! [`Throttle`]: failed-login counting per account and per client address.
//!
//! Each key gets a budget of failures per window; once spent, logins for that key are refused
//! (without checking the password) until the window ends. The per-account budget stops
//! guessing one user's password from many addresses; the per-address budget stops one address
//! spraying many accounts. Both apply to names that do not exist too, so being throttled says
//! nothing about which accounts exist. Kept in memory: a restart forgives, which is acceptable
//! for a budget measured in minutes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failures allowed per account per window.
pub const ACCOUNT_FAILURES: u32 = 5;
/// Failures allowed per address per window.
pub const ADDRESS_FAILURES: u32 = 20;
/// How long failures are remembered.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys kept at most; beyond it the oldest windows are forgotten first.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Shared failure counters; cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Throttle {
    windows: Arc<Mutex<HashMap<String, Window>>>,
}

fn account_key(account: &str) -> String {
    format!("account:{}", account.to_lowercase())
}

fn address_key(address: &str) -> String {
    format!("address:{address}")
}

impl Throttle {
    /// True when either budget is spent.
    pub fn is_blocked(&self, account: &str, address: &str) -> bool {
        let now = Instant::now();
        let Ok(windows) = self.windows.lock() else {
            return true;
        };
        let spent = |key: String, budget: u32| {
            windows.get(&key).is_some_and(|window| {
                now.duration_since(window.started) < WINDOW && window.failures >= budget
            })
        };
        spent(account_key(account), ACCOUNT_FAILURES)
            || spent(address_key(address), ADDRESS_FAILURES)
    }

    /// Counts a failed login against both keys.
    pub fn record_failure(&self, account: &str, address: &str) {
        let now = Instant::now();
        let Ok(mut windows) = self.windows.lock() else {
            return;
        };
        if windows.len() >= MAX_KEYS {
            windows.retain(|_, window| now.duration_since(window.started) < WINDOW);
        }
        for key in [account_key(account), address_key(address)] {
            let window = windows.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.duration_since(window.started) >= WINDOW {
                *window = Window {
                    started: now,
                    failures: 0,
                };
            }
            window.failures += 1;
        }
    }

    /// Forgets the account's failures after a successful login (the address keeps its count).
    pub fn record_success(&self, account: &str) {
        if let Ok(mut windows) = self.windows.lock() {
            windows.remove(&account_key(account));
        }
    }
}
