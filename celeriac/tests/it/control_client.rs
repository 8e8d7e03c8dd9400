//! Our remote-control client ([`celeriac::control::Control`]) against a real Python Celery 5.4
//! worker (ping, inspect, revoke, revoke with terminate) and against our own workers
//! (destination filter, reply limit, no workers, reply queue cleanup).

use crate::support::{config, producer, wait_for_mailbox, RunningWorker};
use celeriac::broker::RedisBroker;
use celeriac::control::{BroadcastOptions, Control, Inspect};
use celeriac::producer::{broker_options, SendOptions};
use celeriac::protocol::control::REPLY_EXCHANGE;
use celeriac::testkit::{eventually, CeleryPeer, TestEnv};
use celeriac::TaskState;
use redis::AsyncCommands;
use serde_json::{json, Map, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_inspects_and_revokes_on_a_python_worker() {
    let env = TestEnv::new("ctl-python");
    let queue = env.queue("q");
    // Prefork: a solo worker cannot answer while it runs a task, nor terminate one.
    let python = CeleryPeer::worker_with_pool(&env, &[&queue], "py-ctl@test", "prefork", 1);
    let node = python.node_name().to_owned();
    let config = config(&env);
    let control = Control::connect(&config).await.unwrap();
    let to_python = BroadcastOptions::default()
        .to([node.as_str()])
        .timeout(Duration::from_secs(5));

    let pong = control.ping(&to_python).await.unwrap();
    assert_eq!(pong.get(&node), Some(&json!({"ok": "pong"})), "{pong:?}");
    let registered = control
        .inspect(Inspect::Registered, &to_python)
        .await
        .unwrap();
    assert!(
        registered[&node]
            .as_array()
            .unwrap()
            .contains(&json!("demo.sleep")),
        "{registered:?}"
    );
    let stats = control.inspect(Inspect::Stats, &to_python).await.unwrap();
    assert_eq!(
        stats[&node]["pool"]["max-concurrency"],
        json!(1),
        "{stats:?}"
    );
    assert!(stats[&node]["rusage"]["utime"].is_number(), "{stats:?}");

    // A countdown task the Python worker holds, revoked by our client.
    let producer = producer(&config).await;
    let later = producer
        .send_task(
            "demo.add",
            vec![json!(1), json!(2)],
            Map::new(),
            SendOptions::new()
                .queue(&queue)
                .countdown(Duration::from_secs(2)),
        )
        .await
        .unwrap();
    let held = |command: Inspect| {
        let (control, options, node) = (&control, &to_python, &node);
        async move {
            control
                .inspect(command, options)
                .await
                .ok()
                .and_then(|replies| replies.get(node).cloned())
                .unwrap_or(Value::Null)
        }
    };
    eventually(
        WAIT,
        "the Python worker to hold the countdown task",
        || async {
            let scheduled = held(Inspect::Scheduled).await;
            (scheduled[0]["request"]["id"] == json!(later.id.0)).then_some(())
        },
    )
    .await;
    let revoked = control
        .revoke(&[later.id.0.as_str()], false, None, &to_python)
        .await
        .unwrap();
    assert_eq!(
        revoked[&node],
        json!({"ok": format!("tasks {{'{}'}} flagged as revoked", later.id.0)}),
        "{revoked:?}"
    );
    let meta = later.get(WAIT).await.unwrap();
    assert_eq!(meta.status, TaskState::Revoked, "{meta:?}");
    let listed = control.inspect(Inspect::Revoked, &to_python).await.unwrap();
    assert!(
        listed[&node]
            .as_array()
            .unwrap()
            .contains(&json!(later.id.0)),
        "{listed:?}"
    );

    // A running task, listed by `active`, then terminated.
    let running = producer
        .send_task(
            "demo.sleep",
            vec![json!(60)],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    eventually(
        WAIT,
        "the Python worker to run the sleeping task",
        || async {
            let active = held(Inspect::Active).await;
            (active[0]["id"] == json!(running.id.0)).then_some(())
        },
    )
    .await;
    let terminated = control
        .revoke(&[running.id.0.as_str()], true, Some("SIGTERM"), &to_python)
        .await
        .unwrap();
    assert_eq!(
        terminated[&node],
        json!({"ok": format!("terminate: {}", running.id.0)}),
        "{terminated:?}"
    );
    let meta = running.get(WAIT).await.unwrap();
    assert_eq!(meta.status, TaskState::Revoked, "{meta:?}");
    assert_eq!(
        meta.result["exc_message"],
        json!(["terminated"]),
        "{meta:?}"
    );
    python.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_addresses_one_of_our_workers_and_cleans_up() {
    let env = TestEnv::new("ctl-ours");
    let (first_queue, second_queue) = (env.queue("one"), env.queue("two"));
    let config = config(&env);
    let first = RunningWorker::start(config.clone(), None, &[&first_queue], 2).await;
    let second = RunningWorker::start(config.clone(), None, &[&second_queue], 3).await;
    let (first_node, second_node) = (
        format!("rust-{first_queue}@test"),
        format!("rust-{second_queue}@test"),
    );
    wait_for_mailbox(&config, &first_node).await;
    wait_for_mailbox(&config, &second_node).await;
    let control = Control::connect(&config).await.unwrap();

    let everyone = control
        .ping(&BroadcastOptions::default().timeout(Duration::from_millis(500)))
        .await
        .unwrap();
    assert_eq!(
        everyone.keys().collect::<Vec<_>>(),
        vec![&first_node, &second_node]
    );

    // A destination list limits who answers, and the client stops at that many replies
    // instead of waiting out its (long) timeout.
    let only_second = BroadcastOptions::default()
        .to([second_node.as_str()])
        .timeout(Duration::from_secs(60));
    let started = std::time::Instant::now();
    let stats = control.inspect(Inspect::Stats, &only_second).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(stats.keys().collect::<Vec<_>>(), vec![&second_node]);
    assert_eq!(stats[&second_node]["pool"]["max-concurrency"], json!(3));

    let grown = control.pool_grow(2, &only_second).await.unwrap();
    assert_eq!(grown[&second_node], json!({"ok": "pool will grow"}));
    let added = control
        .add_consumer(&first_queue, None, None, &only_second)
        .await
        .unwrap();
    assert_eq!(
        added[&second_node],
        json!({"ok": format!("add consumer {first_queue}")})
    );
    let stats = control.inspect(Inspect::Stats, &only_second).await.unwrap();
    assert_eq!(stats[&second_node]["pool"]["max-concurrency"], json!(5));
    let queues = control
        .inspect(Inspect::ActiveQueues, &only_second)
        .await
        .unwrap();
    assert_eq!(queues[&second_node][1]["name"], json!(first_queue));
    let unknown = control
        .broadcast("no_such_command", Map::new(), &only_second)
        .await
        .unwrap();
    assert_eq!(
        unknown[&second_node],
        json!({"error": "No such control command: no_such_command"})
    );
    let glob = control
        .ping(
            &BroadcastOptions::default()
                .matching("rust-one-*")
                .timeout(Duration::from_millis(500)),
        )
        .await
        .unwrap();
    assert_eq!(glob.keys().collect::<Vec<_>>(), vec![&first_node]);

    // Every reply queue was unbound and deleted.
    let broker = RedisBroker::connect(&config.broker_url, broker_options(&config))
        .await
        .unwrap();
    let mut redis = env.redis().await;
    let bindings: u64 = redis
        .scard(broker.keys().binding(REPLY_EXCHANGE))
        .await
        .unwrap();
    assert_eq!(bindings, 0, "reply queues are unbound after each broadcast");
    let leftovers: Vec<String> = redis
        .keys(format!("{}*.{REPLY_EXCHANGE}*", env.key_prefix))
        .await
        .unwrap();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_workers_a_broadcast_returns_no_replies_at_its_timeout() {
    let env = TestEnv::new("ctl-nobody");
    let control = Control::connect(&config(&env)).await.unwrap();
    let started = tokio::time::Instant::now();
    let replies = control
        .ping(&BroadcastOptions::default().timeout(Duration::from_millis(300)))
        .await
        .unwrap();
    assert!(replies.is_empty(), "{replies:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let cast = control
        .enable_events(&BroadcastOptions::default().without_reply())
        .await
        .unwrap();
    assert!(cast.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_worker_mingles_with_ours_and_learns_its_revokes() {
    let env = TestEnv::new("ctl-mingle");
    let queue = env.queue("q");
    let config = config(&env);
    let ours = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    let our_node = format!("rust-{queue}@test");
    wait_for_mailbox(&config, &our_node).await;
    let control = Control::connect(&config).await.unwrap();
    let to_ours = BroadcastOptions::default().to([our_node.as_str()]);
    let revoked_here = uuid::Uuid::new_v4().to_string();
    control
        .revoke(&[revoked_here.as_str()], false, None, &to_ours)
        .await
        .unwrap();

    // `hello` as Celery's mingle sends it: the sender's revokes (`LimitedSet._data`) in, ours
    // and our clock out; a worker's own `hello` gets nothing.
    let revoked_there = uuid::Uuid::new_v4().to_string();
    let mut hello = Map::new();
    hello.insert("from_node".into(), json!("other@test"));
    hello.insert(
        "revoked".into(),
        json!({revoked_there.clone(): [12.5, revoked_there]}),
    );
    let reply = control
        .broadcast("hello", hello.clone(), &to_ours)
        .await
        .unwrap();
    assert_eq!(
        reply[&our_node]["revoked"][&revoked_here][1],
        json!(revoked_here),
        "{reply:?}"
    );
    assert!(reply[&our_node]["revoked"][&revoked_here][0].is_f64());
    assert!(reply[&our_node]["clock"].is_u64(), "{reply:?}");
    let listed = control.inspect(Inspect::Revoked, &to_ours).await.unwrap();
    assert!(
        listed[&our_node]
            .as_array()
            .unwrap()
            .contains(&json!(revoked_there)),
        "{listed:?}"
    );
    hello.insert("from_node".into(), json!(our_node));
    let own = control.broadcast("hello", hello, &to_ours).await.unwrap();
    assert_eq!(own[&our_node], Value::Null);

    // A Python worker starting with mingle takes our revokes.
    let python = CeleryPeer::worker_with_mingle(&env, &[&env.queue("py")], "py-mingle@test");
    assert!(
        python.log().contains("mingle: sync with 1 nodes"),
        "{}",
        python.log()
    );
    let to_python = BroadcastOptions::default().to([python.node_name()]);
    let learned = control.inspect(Inspect::Revoked, &to_python).await.unwrap();
    let learned = learned[python.node_name()].as_array().unwrap();
    assert!(learned.contains(&json!(revoked_here)), "{learned:?}");
    assert!(learned.contains(&json!(revoked_there)), "{learned:?}");
    python.stop();
    ours.stop().await;
}
