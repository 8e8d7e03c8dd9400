//! [`Throttle`]: failed-login budgets, taken before a password is checked.
//!
//! Three budgets per window, each spent by failures:
//! - one account from one address ([`PAIR_FAILURES`]): guessing a password;
//! - one address, any accounts ([`ADDRESS_FAILURES`]): spraying names;
//! - one account, all addresses ([`ACCOUNT_FAILURES`]): guessing from many addresses. An
//!   address that has logged in to the account before (a *known client*) is exempt from this
//!   one, so nobody can lock a user out of their own machine by guessing wrong from elsewhere.
//!
//! A login attempt [`Throttle::reserve`]s one failure from each budget *before* the password is
//! hashed, in one step under the lock, so concurrent guesses cannot all pass the check while
//! the first ones are still hashing; a right password gives the reservation back. The budgets
//! apply to names that do not exist too, so being throttled says nothing about which accounts
//! exist. Kept in memory: a restart forgives, acceptable for budgets measured in minutes, and
//! forgets known clients, which then need the account budget again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failures allowed for one account from one address per window.
pub const PAIR_FAILURES: u32 = 5;
/// Failures allowed per address per window.
pub const ADDRESS_FAILURES: u32 = 20;
/// Failures allowed per account, from all addresses but its known clients, per window.
pub const ACCOUNT_FAILURES: u32 = 50;
/// How long failures are remembered.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long an address stays a known client of an account after logging in to it.
pub const KNOWN_CLIENT: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Keys kept at most; beyond it the oldest windows are forgotten first.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
    /// Attempts refused while the budget was spent, so only the first is audited.
    refused: u32,
}

impl Window {
    fn new(now: Instant) -> Window {
        Window {
            started: now,
            failures: 0,
            refused: 0,
        }
    }
}

#[derive(Debug, Default)]
struct Budgets {
    windows: HashMap<String, Window>,
    /// `pair_key` → when it last logged in.
    known: HashMap<String, Instant>,
}

/// Shared failure budgets; cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Throttle {
    budgets: Arc<Mutex<Budgets>>,
}

/// One failure taken from each budget for an attempt in progress; hand it back with
/// [`Throttle::succeeded`] when the password was right, or drop it to count the failure.
#[derive(Debug)]
#[must_use = "a reservation not given back counts as a failure"]
pub struct Reservation {
    account: String,
    address: String,
    /// Whether the account-wide budget was charged (not for a known client).
    account_charged: bool,
}

/// Why an attempt was refused without checking the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// The first refusal of this window for the spent budget: worth an audit row; later ones
    /// are not, or a flood of refused attempts would fill the audit log.
    pub first: bool,
}

fn account_key(account: &str) -> String {
    format!("account:{account}")
}

fn address_key(address: &str) -> String {
    format!("address:{address}")
}

fn pair_key(account: &str, address: &str) -> String {
    format!("pair:{account}\n{address}")
}

/// Case and surrounding spaces do not make a new account to guess at; the key keeps at most
/// the longest name an account can have, so an oversized name costs no more memory.
fn normalized(account: &str) -> String {
    super::login::clipped(account.trim()).to_lowercase()
}

impl Throttle {
    /// Takes one failure from each budget for an attempt at `account` from `address`, or
    /// refuses it when one is spent.
    pub fn reserve(&self, account: &str, address: &str) -> Result<Reservation, Refused> {
        let account = normalized(account);
        let now = Instant::now();
        let Ok(mut budgets) = self.budgets.lock() else {
            return Err(Refused { first: false });
        };
        let Budgets { windows, known } = &mut *budgets;
        if windows.len() >= MAX_KEYS {
            windows.retain(|_, window| now.duration_since(window.started) < WINDOW);
        }
        if known.len() >= MAX_KEYS {
            known.retain(|_, at| now.duration_since(*at) < KNOWN_CLIENT);
        }
        let pair = pair_key(&account, address);
        let is_known = known
            .get(&pair)
            .is_some_and(|at| now.duration_since(*at) < KNOWN_CLIENT);
        let mut keys = vec![
            (pair, PAIR_FAILURES),
            (address_key(address), ADDRESS_FAILURES),
        ];
        if !is_known {
            keys.push((account_key(&account), ACCOUNT_FAILURES));
        }
        for (key, budget) in &keys {
            let window = windows
                .entry(key.clone())
                .or_insert_with(|| Window::new(now));
            if now.duration_since(window.started) >= WINDOW {
                *window = Window::new(now);
            }
            if window.failures >= *budget {
                window.refused = window.refused.saturating_add(1);
                return Err(Refused {
                    first: window.refused == 1,
                });
            }
        }
        for (key, _) in &keys {
            if let Some(window) = windows.get_mut(key) {
                window.failures += 1;
            }
        }
        Ok(Reservation {
            account,
            address: address.to_owned(),
            account_charged: !is_known,
        })
    }

    /// The password was right: the reservation is given back, the pair's failures are
    /// forgotten, and the address becomes a known client of the account.
    pub fn succeeded(&self, reservation: Reservation) {
        let Ok(mut budgets) = self.budgets.lock() else {
            return;
        };
        let Budgets { windows, known } = &mut *budgets;
        let pair = pair_key(&reservation.account, &reservation.address);
        windows.remove(&pair);
        let mut give_back = vec![address_key(&reservation.address)];
        if reservation.account_charged {
            give_back.push(account_key(&reservation.account));
        }
        for key in give_back {
            if let Some(window) = windows.get_mut(&key) {
                window.failures = window.failures.saturating_sub(1);
            }
        }
        known.insert(pair, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(throttle: &Throttle, account: &str, address: &str) -> Result<(), Refused> {
        throttle.reserve(account, address).map(drop)
    }

    #[test]
    fn a_pair_gets_five_failures_and_the_first_refusal_is_marked() {
        let throttle = Throttle::default();
        for _ in 0..PAIR_FAILURES {
            assert!(fail(&throttle, "ada", "10.0.0.1").is_ok());
        }
        assert_eq!(
            fail(&throttle, "ada", "10.0.0.1"),
            Err(Refused { first: true })
        );
        assert_eq!(
            fail(&throttle, " ADA ", "10.0.0.1"),
            Err(Refused { first: false })
        );
        // Another address still has its own budget for the account.
        assert!(fail(&throttle, "ada", "10.0.0.2").is_ok());
    }

    #[test]
    fn reservations_are_taken_before_the_check_so_concurrent_guesses_cannot_all_pass() {
        let throttle = Throttle::default();
        // 300 attempts in flight at once: reservations held, none settled yet.
        let held: Vec<_> = (0..300)
            .filter_map(|_| throttle.reserve("ada", "10.0.0.1").ok())
            .collect();
        assert_eq!(held.len() as u32, PAIR_FAILURES);
    }

    #[test]
    fn a_right_password_gives_the_reservation_back_and_forgets_the_pair() {
        let throttle = Throttle::default();
        for _ in 0..PAIR_FAILURES - 1 {
            fail(&throttle, "ada", "10.0.0.1").unwrap();
        }
        let right = throttle.reserve("ada", "10.0.0.1").expect("one left");
        throttle.succeeded(right);
        for _ in 0..PAIR_FAILURES {
            assert!(fail(&throttle, "ada", "10.0.0.1").is_ok());
        }
    }

    #[test]
    fn guessing_from_elsewhere_does_not_lock_out_a_known_client() {
        let throttle = Throttle::default();
        let login = throttle.reserve("ada", "10.0.0.1").unwrap();
        throttle.succeeded(login);
        // An attacker spends the account-wide budget from many addresses.
        for guess in 0..ACCOUNT_FAILURES {
            let address = format!("192.0.2.{}", guess / PAIR_FAILURES);
            assert!(fail(&throttle, "ada", &address).is_ok(), "guess {guess}");
        }
        assert!(fail(&throttle, "ada", "198.51.100.7").is_err());
        // Ada's own machine still gets in.
        let login = throttle.reserve("ada", "10.0.0.1").expect("a known client");
        throttle.succeeded(login);
    }

    #[test]
    fn one_address_spraying_names_runs_out() {
        let throttle = Throttle::default();
        for name in 0..ADDRESS_FAILURES {
            assert!(fail(&throttle, &format!("user{name}"), "10.0.0.9").is_ok());
        }
        assert!(fail(&throttle, "someone-else", "10.0.0.9").is_err());
    }
}
