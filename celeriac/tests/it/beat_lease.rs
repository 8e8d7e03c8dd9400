//! The beat lease and per-slot claims on a real Redis: one leader at a time, a lapsed leader
//! is fenced off, and a slot is enqueued once whoever fires it.

use crate::support::config;
use celeriac::broker::{FireOutcome, RedisBroker, SlotFire};
use celeriac::producer::broker_options;
use celeriac::testkit::TestEnv;
use std::time::Duration;

async fn broker(env: &TestEnv) -> RedisBroker {
    RedisBroker::connect(&env.redis_url, broker_options(&config(env)))
        .await
        .expect("broker connects")
}

fn fire(env: &TestEnv, schedule: &str, slot_ms: i64) -> SlotFire {
    SlotFire {
        schedule: schedule.into(),
        slot_ms,
        queue: env.queue("beat"),
        priority: 0,
        raw: format!("{{\"slot\": {slot_ms}}}"),
    }
}

async fn queued(env: &TestEnv) -> usize {
    let mut redis = env.redis().await;
    redis::cmd("LLEN")
        .arg(format!("{}{}", env.key_prefix, env.queue("beat")))
        .query_async::<usize>(&mut redis)
        .await
        .expect("LLEN")
}

#[tokio::test]
async fn one_leader_and_renewal_only_by_the_holder() {
    let env = TestEnv::new("beat-lease");
    let broker = broker(&env).await;
    let ttl = Duration::from_secs(5);
    let a = broker.beat_lease("a@host", ttl, "").await.expect("lease");
    assert!(a.held);
    assert_eq!(a.owner(), "a@host");
    let b = broker.beat_lease("b@host", ttl, "").await.expect("lease");
    assert!(!b.held, "a second beat must not take a held lease");
    assert_eq!(b.value, a.value);
    let renewed = broker
        .beat_lease("a@host", ttl, &a.value)
        .await
        .expect("renew");
    assert!(renewed.held);
    assert_eq!(renewed.value, a.value, "a renewal keeps the token");
    let leader = broker.beat_leader().await.expect("read").expect("a leader");
    assert_eq!(leader.owner, "a@host");
    assert!(leader.remaining > Duration::from_secs(3));
    broker.beat_release(&a.value).await.expect("release");
    let b = broker.beat_lease("b@host", ttl, "").await.expect("lease");
    assert!(b.held, "a released lease is free at once");
    assert!(b.token() > a.token(), "tokens grow");
}

#[tokio::test]
async fn a_lapsed_leader_is_fenced_off() {
    let env = TestEnv::new("beat-fence");
    let broker = broker(&env).await;
    let a = broker
        .beat_lease("a@host", Duration::from_millis(200), "")
        .await
        .expect("lease");
    assert!(a.held);
    celeriac::testkit::eventually(Duration::from_secs(5), "lease lapses", || async {
        broker
            .beat_leader()
            .await
            .expect("read")
            .is_none()
            .then_some(())
    })
    .await;
    let b = broker
        .beat_lease("b@host", Duration::from_secs(5), "")
        .await
        .expect("lease");
    assert!(b.held);
    let stale = broker
        .beat_fire(&a.value, &[fire(&env, "s", 60_000)], true)
        .await
        .expect("fire");
    assert_eq!(stale, vec![FireOutcome::NotLeader]);
    let again = broker
        .beat_lease("a@host", Duration::from_secs(5), &a.value)
        .await
        .expect("renew attempt");
    assert!(!again.held, "the old holder learns it lost the lease");
    assert_eq!(queued(&env).await, 0);
}

#[tokio::test]
async fn a_slot_is_enqueued_once_across_a_handover() {
    let env = TestEnv::new("beat-claim");
    let broker = broker(&env).await;
    let a = broker
        .beat_lease("a@host", Duration::from_secs(5), "")
        .await
        .expect("lease");
    let first = broker
        .beat_fire(
            &a.value,
            &[fire(&env, "s", 60_000), fire(&env, "t", 60_000)],
            true,
        )
        .await
        .expect("fire");
    assert_eq!(first, vec![FireOutcome::Enqueued, FireOutcome::Enqueued]);
    broker.beat_release(&a.value).await.expect("release");
    let b = broker
        .beat_lease("b@host", Duration::from_secs(5), "")
        .await
        .expect("lease");
    let second = broker
        .beat_fire(
            &b.value,
            &[
                fire(&env, "s", 60_000),
                fire(&env, "s", 0),
                fire(&env, "s", 120_000),
            ],
            true,
        )
        .await
        .expect("fire");
    assert_eq!(
        second,
        vec![
            FireOutcome::AlreadyClaimed(60_000),
            FireOutcome::AlreadyClaimed(60_000),
            FireOutcome::Enqueued
        ]
    );
    assert_eq!(queued(&env).await, 3);
    let mut claims = broker.beat_claims().await.expect("claims");
    claims.sort();
    assert_eq!(claims, vec![("s".into(), 120_000), ("t".into(), 60_000)]);
    let unclaimed = broker
        .beat_fire(&b.value, &[fire(&env, "s", 120_000)], false)
        .await
        .expect("fire");
    assert_eq!(unclaimed, vec![FireOutcome::Enqueued], "the failpoint path");
}
