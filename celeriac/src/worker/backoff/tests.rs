//! Unit and property tests for Celery's retry backoff formula.

use super::*;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn without_jitter(retry_backoff: f64, retry_backoff_max: u64) -> Backoff {
    Backoff {
        retry_backoff,
        retry_backoff_max,
        retry_jitter: false,
    }
}

fn countdowns(backoff: Backoff, count: u32) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..count)
        .map(|retries| backoff.countdown(retries, &mut rng))
        .collect()
}

#[test]
fn doubles_from_one_and_caps_at_the_maximum() {
    assert_eq!(
        countdowns(without_jitter(1.0, 600), 12),
        [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]
    );
    // The captured run in the wire document: retry_backoff=True, retry_backoff_max=8.
    assert_eq!(countdowns(without_jitter(1.0, 8), 5), [1, 2, 4, 8, 8]);
}

#[test]
fn factor_is_truncated_and_at_least_one() {
    assert_eq!(without_jitter(1.5, 600).factor(), 1);
    assert_eq!(countdowns(without_jitter(1.5, 600), 4), [1, 2, 4, 8]);
    assert_eq!(without_jitter(5.0, 600).factor(), 5);
    assert_eq!(countdowns(without_jitter(5.0, 600), 5), [5, 10, 20, 40, 80]);
    assert_eq!(without_jitter(5.9, 600).factor(), 5);
    assert_eq!(without_jitter(0.0, 600).factor(), 1);
    assert_eq!(without_jitter(0.5, 600).factor(), 1);
    assert_eq!(without_jitter(-3.0, 600).factor(), 1);
    assert_eq!(without_jitter(f64::NAN, 600).factor(), 1);
    assert_eq!(without_jitter(f64::INFINITY, 600).factor(), u64::MAX);
}

#[test]
fn enabled_only_when_truthy() {
    assert!(!without_jitter(0.0, 600).is_enabled());
    assert!(without_jitter(1.0, 600).is_enabled());
    assert!(without_jitter(0.5, 600).is_enabled());
}

#[test]
fn zero_maximum_means_no_wait() {
    assert_eq!(countdowns(without_jitter(1.0, 0), 3), [0, 0, 0]);
    assert_eq!(
        countdowns(
            Backoff {
                retry_backoff_max: 0,
                ..Backoff::default()
            },
            3
        ),
        [0, 0, 0]
    );
}

#[test]
fn huge_retries_saturate_at_the_maximum() {
    let backoff = without_jitter(1000.0, 600);
    assert_eq!(backoff.max_countdown(63), 600);
    assert_eq!(backoff.max_countdown(64), 600);
    assert_eq!(backoff.max_countdown(u32::MAX), 600);
    assert_eq!(without_jitter(1.0, u64::MAX).max_countdown(200), u64::MAX);
}

#[test]
fn jitter_spreads_over_the_whole_range() {
    let backoff = Backoff {
        retry_backoff: 1.0,
        retry_backoff_max: 600,
        retry_jitter: true,
    };
    let mut rng = StdRng::seed_from_u64(1);
    let samples: Vec<u64> = (0..2000).map(|_| backoff.countdown(2, &mut rng)).collect();
    for expected in 0..=4 {
        assert!(samples.contains(&expected), "never drew {expected}");
    }
    assert!(samples.iter().all(|countdown| *countdown <= 4));
}

#[test]
fn default_is_celery_retry_backoff_true() {
    assert_eq!(
        Backoff::default(),
        Backoff {
            retry_backoff: 1.0,
            retry_backoff_max: 600,
            retry_jitter: true
        }
    );
}

proptest! {
    #[test]
    fn jittered_countdown_is_within_bounds(
        retries in any::<u32>(),
        retry_backoff in 0.0f64..1000.0,
        retry_backoff_max in any::<u64>(),
        seed in any::<u64>(),
    ) {
        let backoff = Backoff { retry_backoff, retry_backoff_max, retry_jitter: true };
        let mut rng = StdRng::seed_from_u64(seed);
        let countdown = backoff.countdown(retries, &mut rng);
        let factor = (retry_backoff.max(1.0)) as u128;
        let exponential = if retries < 100 { factor << retries } else { u128::MAX };
        let bound = exponential.min(u128::from(retry_backoff_max));
        prop_assert!(u128::from(countdown) <= bound);
    }

    #[test]
    fn countdown_without_jitter_matches_the_formula(
        retries in 0u32..200,
        retry_backoff in 0.0f64..1000.0,
        retry_backoff_max in 0u64..100_000,
    ) {
        let backoff = without_jitter(retry_backoff, retry_backoff_max);
        let factor = (retry_backoff.max(1.0)) as u128;
        let exponential = if retries < 100 { factor << retries } else { u128::MAX };
        let expected = exponential.min(u128::from(retry_backoff_max));
        let mut rng = StdRng::seed_from_u64(0);
        prop_assert_eq!(u128::from(backoff.countdown(retries, &mut rng)), expected);
    }

    #[test]
    fn countdown_without_jitter_never_decreases(
        retries in 0u32..u32::MAX,
        retry_backoff in 0.0f64..1000.0,
        retry_backoff_max in any::<u64>(),
    ) {
        let backoff = without_jitter(retry_backoff, retry_backoff_max);
        prop_assert!(backoff.max_countdown(retries) <= backoff.max_countdown(retries + 1));
    }
}
