//! Unit tests for rate limit parsing and the token bucket, with explicit instants (no sleeps).

use super::*;

fn per_second(text: &str) -> f64 {
    RateLimit::parse(text).unwrap().unwrap().tasks_per_second()
}

fn bucket(text: &str) -> (TokenBucket, Instant) {
    let start = Instant::now();
    (
        TokenBucket::new(RateLimit::parse(text).unwrap().unwrap(), start),
        start,
    )
}

#[test]
fn parses_celery_units() {
    assert_eq!(per_second("10/s"), 10.0);
    assert_eq!(per_second("120/m"), 2.0);
    assert_eq!(per_second("7200/h"), 2.0);
    assert_eq!(per_second("5"), 5.0);
    assert_eq!(per_second("5/"), 5.0);
    assert_eq!(per_second("0.5/s"), 0.5);
    assert_eq!(per_second(" 3 /m"), 0.05);
    assert_eq!(per_second("1e1/s"), 10.0);
}

#[test]
fn zero_or_empty_means_no_limit() {
    assert_eq!(RateLimit::parse(""), Ok(None));
    assert_eq!(RateLimit::parse("0"), Ok(None));
    assert_eq!(RateLimit::parse("0/m"), Ok(None));
    assert_eq!(RateLimit::parse("0.0/h"), Ok(None));
    assert_eq!(RateLimit::from_tasks_per_second(0.0), Ok(None));
}

#[test]
fn bad_input_names_the_text() {
    for text in [
        "abc", "10/d", "10/ s", "10/sec", "/s", " ", "-1/s", "inf/s", "NaN", "1/s/s",
    ] {
        let error = RateLimit::parse(text).unwrap_err();
        let RateLimitError::Invalid { text: named, .. } = &error;
        assert_eq!(named, text);
        assert!(
            error
                .to_string()
                .starts_with(&format!("invalid rate limit {text:?}: ")),
            "{error}"
        );
    }
    assert!(RateLimit::from_tasks_per_second(-1.0).is_err());
    assert!(RateLimit::from_tasks_per_second(f64::INFINITY).is_err());
}

#[test]
fn display_is_per_second() {
    assert_eq!(
        RateLimit::parse("120/m").unwrap().unwrap().to_string(),
        "2/s"
    );
}

#[test]
fn first_task_goes_at_once_then_waits_a_period() {
    let (mut bucket, start) = bucket("2/s");
    assert_eq!(bucket.try_acquire(start), Ok(()));
    assert_eq!(bucket.try_acquire(start), Err(Duration::from_millis(500)));
    // Asking did not consume anything: a quarter second later a quarter second is left.
    assert_eq!(
        bucket.try_acquire(start + Duration::from_millis(250)),
        Err(Duration::from_millis(250))
    );
    assert_eq!(
        bucket.try_acquire(start + Duration::from_millis(500)),
        Ok(())
    );
    assert_eq!(
        bucket.try_acquire(start + Duration::from_millis(500)),
        Err(Duration::from_millis(500))
    );
}

#[test]
fn waiting_exactly_the_returned_time_is_enough() {
    let (mut bucket, start) = bucket("3/s");
    let mut now = start;
    assert_eq!(bucket.try_acquire(now), Ok(()));
    for _ in 0..1000 {
        let wait = bucket.try_acquire(now).unwrap_err();
        now += wait;
        assert_eq!(bucket.try_acquire(now), Ok(()));
    }
    // 1000 tasks after the first took 1000/3 seconds, give or take rounding.
    let elapsed = now.duration_since(start).as_secs_f64();
    assert!((elapsed - 1000.0 / 3.0).abs() < 1e-3, "{elapsed}");
}

#[test]
fn idle_time_refills_only_one_token() {
    let (mut bucket, start) = bucket("1/s");
    let later = start + Duration::from_secs(3600);
    assert_eq!(bucket.try_acquire(later), Ok(()));
    assert_eq!(bucket.try_acquire(later), Err(Duration::from_secs(1)));
}

#[test]
fn slow_rates_wait_long() {
    let (mut bucket, start) = bucket("2/h");
    assert_eq!(bucket.try_acquire(start), Ok(()));
    assert_eq!(bucket.try_acquire(start), Err(Duration::from_secs(1800)));
    let wait = bucket
        .try_acquire(start + Duration::from_secs(1799))
        .unwrap_err();
    assert!((wait.as_secs_f64() - 1.0).abs() < 1e-6, "{wait:?}");
    assert_eq!(
        bucket.try_acquire(start + Duration::from_secs(1800)),
        Ok(())
    );
}

#[test]
fn an_earlier_instant_counts_as_no_time() {
    let start = Instant::now() + Duration::from_secs(10);
    let mut bucket = TokenBucket::new(RateLimit::parse("1/s").unwrap().unwrap(), start);
    assert_eq!(bucket.try_acquire(start), Ok(()));
    assert_eq!(
        bucket.try_acquire(start - Duration::from_secs(5)),
        Err(Duration::from_secs(1))
    );
}

#[test]
fn tiny_rates_do_not_overflow() {
    let rate_limit = RateLimit::from_tasks_per_second(1e-300).unwrap().unwrap();
    let start = Instant::now();
    let mut bucket = TokenBucket::new(rate_limit, start);
    assert_eq!(bucket.try_acquire(start), Ok(()));
    assert_eq!(bucket.try_acquire(start), Err(Duration::MAX));
}
