//! Bad input never crashes the worker and never vanishes: every malformed message ends in the
//! dead-letter list with its reason, and a FAILURE result when it carries a task id.

use crate::support::{config, producer, RunningWorker};
use base64::Engine;
use celeriac::producer::SendOptions;
use celeriac::testkit::{eventually, TestEnv};
use celeriac::TaskState;
use redis::AsyncCommands;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// How long an ack may trail its task's result (acks ride along with the next fetch).
const WAIT_ACK: std::time::Duration = std::time::Duration::from_secs(10);

/// The `worker_max_message_size` of these tests.
const MAX_MESSAGE: usize = 64 * 1024;

fn encode(body: &Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(body.to_string())
}

/// A valid envelope for `demo.add(2, 3)` that each case then breaks in one way.
fn valid(id: &str, queue: &str) -> Value {
    json!({
        "body": encode(&json!([[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}])),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"lang": "py", "task": "demo.add", "id": id, "retries": 0, "timelimit": [null, null], "eta": null, "expires": null},
        "properties": {"delivery_tag": format!("tag-{id}"), "body_encoding": "base64",
                       "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0}
    })
}

fn broken(queue: &str) -> Vec<(&'static str, String, bool)> {
    let mut cases: Vec<(&'static str, String, bool)> = Vec::new();
    let mut case = |name: &'static str, id: &str, change: &dyn Fn(&mut Value), has_id: bool| {
        let mut message = valid(id, queue);
        change(&mut message);
        cases.push((name, message.to_string(), has_id));
    };
    case(
        "no delivery tag",
        "bad-01",
        &|m| {
            m["properties"]
                .as_object_mut()
                .unwrap()
                .remove("delivery_tag");
        },
        false,
    );
    case(
        "numeric delivery tag",
        "bad-02",
        &|m| m["properties"]["delivery_tag"] = json!(7),
        false,
    );
    case(
        "no delivery_info",
        "bad-03",
        &|m| {
            m["properties"]
                .as_object_mut()
                .unwrap()
                .remove("delivery_info");
        },
        true,
    );
    case(
        "body is not base64",
        "bad-04",
        &|m| m["body"] = json!("%%% not base64 %%%"),
        true,
    );
    case(
        "body is base64 of text",
        "bad-05",
        &|m| m["body"] = json!(base64::engine::general_purpose::STANDARD.encode("plain words")),
        true,
    );
    case(
        "pickle content type",
        "bad-06",
        &|m| m["content-type"] = json!("application/x-python-serialize"),
        true,
    );
    case(
        "no content type",
        "bad-07",
        &|m| {
            m.as_object_mut().unwrap().remove("content-type");
        },
        true,
    );
    case(
        "two-element body",
        "bad-08",
        &|m| m["body"] = json!(encode(&json!([[2, 3], {}]))),
        true,
    );
    case(
        "object body with task header",
        "bad-09",
        &|m| m["body"] = json!(encode(&json!({"args": [2, 3]}))),
        true,
    );
    case(
        "args is a string",
        "bad-10",
        &|m| m["body"] = json!(encode(&json!(["2, 3", {}, {}]))),
        true,
    );
    case(
        "kwargs is a list",
        "bad-11",
        &|m| m["body"] = json!(encode(&json!([[2, 3], [], {}]))),
        true,
    );
    case(
        "no id header",
        "bad-12",
        &|m| {
            m["headers"].as_object_mut().unwrap().remove("id");
        },
        false,
    );
    case(
        "numeric id header",
        "bad-13",
        &|m| m["headers"]["id"] = json!(13),
        false,
    );
    case(
        "empty task name",
        "bad-14",
        &|m| m["headers"]["task"] = json!(""),
        true,
    );
    case(
        "unparseable eta",
        "bad-15",
        &|m| m["headers"]["eta"] = json!("next tuesday"),
        true,
    );
    case(
        "unparseable expires",
        "bad-16",
        &|m| m["headers"]["expires"] = json!(12),
        true,
    );
    case(
        "negative retries",
        "bad-17",
        &|m| m["headers"]["retries"] = json!(-1),
        true,
    );
    case(
        "timelimit wrong shape",
        "bad-18",
        &|m| m["headers"]["timelimit"] = json!("60"),
        true,
    );
    case(
        "unknown task",
        "bad-19",
        &|m| m["headers"]["task"] = json!("nobody.knows"),
        true,
    );
    case(
        "too many arguments",
        "bad-20",
        &|m| m["body"] = json!(encode(&json!([[1, 2, 3], {}, {}]))),
        true,
    );
    case(
        "wrong argument type",
        "bad-21",
        &|m| m["body"] = json!(encode(&json!([["two", 3], {}, {}]))),
        true,
    );
    case(
        "unexpected keyword",
        "bad-22",
        &|m| m["body"] = json!(encode(&json!([[2], {"z": 3}, {}]))),
        true,
    );
    case(
        "protocol 1 body without id",
        "bad-23",
        &|m| {
            m["headers"] = json!({});
            m["body"] = json!(encode(&json!({"task": "demo.add", "args": [1, 2]})));
        },
        false,
    );
    case(
        "headers is a string",
        "bad-24",
        &|m| m["headers"] = json!("task=demo.add"),
        false,
    );
    case(
        "ignore_result is text",
        "bad-25",
        &|m| m["headers"]["ignore_result"] = json!("yes"),
        true,
    );
    // Issue 13: a 10 MB argument was quoted whole in the log line and the reason.
    case(
        "a huge argument of the wrong type",
        "bad-26",
        &|m| m["body"] = json!(encode(&json!([["w".repeat(40_000), 3], {}, {}]))),
        true,
    );
    case(
        "over worker_max_message_size",
        "bad-27",
        &|m| {
            m["body"] = json!(encode(
                &json!([[2, 3], {"pad": "p".repeat(MAX_MESSAGE)}, {}])
            ))
        },
        true,
    );
    case(
        "a task id longer than any real one",
        "bad-28",
        &|m| m["headers"]["id"] = json!("i".repeat(5_000)),
        false,
    );
    cases.push(("not JSON at all", "this is not json {".to_owned(), false));
    cases.push(("a JSON array", "[1, 2, 3]".to_owned(), false));
    cases.push(("a JSON string", "\"hello\"".to_owned(), false));
    cases.push(("an empty object", "{}".to_owned(), false));
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_message_is_dead_lettered_and_the_worker_survives() {
    let env = TestEnv::new("bad-input");
    let queue = env.queue("q");
    let mut config = config(&env);
    config.worker_max_message_size = MAX_MESSAGE as u64;
    let cases = broken(&queue);
    assert!(cases.len() >= 20);
    let mut redis = env.redis().await;
    for (_, raw, _) in &cases {
        let () = redis
            .lpush(format!("{}{}", env.key_prefix, queue), raw)
            .await
            .unwrap();
    }
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 2).await;
    let producer = producer(&config).await;
    let broker = producer.broker().clone();
    let dead_letters = eventually(
        Duration::from_secs(20),
        "every broken message dead-lettered",
        || {
            let broker = broker.clone();
            let expected = cases.len();
            async move {
                let entries = broker.dead_letters().await.unwrap();
                (entries.len() == expected).then_some(entries)
            }
        },
    )
    .await;
    for (name, raw, _) in &cases {
        let entry = dead_letters.iter().find(|entry| entry.message == *raw);
        let entry =
            entry.unwrap_or_else(|| panic!("case {name:?} is missing from the dead-letter list"));
        assert!(!entry.reason.is_empty(), "case {name:?} has a reason");
        assert!(
            entry.reason.len() <= 1_100,
            "case {name:?}: {}",
            entry.reason.len()
        );
    }
    let oversized = dead_letters
        .iter()
        .find(|entry| entry.task_id.as_deref() == Some("bad-27"))
        .expect("the oversized message");
    assert!(
        oversized.reason.contains("worker_max_message_size"),
        "{}",
        oversized.reason
    );
    for (name, raw, has_id) in &cases {
        if !has_id {
            continue;
        }
        let id = serde_json::from_str::<Value>(raw).unwrap()["headers"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let meta = producer.async_result(id.as_str()).meta().await.unwrap();
        let meta = meta.unwrap_or_else(|| panic!("case {name:?} has no FAILURE result"));
        assert_eq!(meta.status, TaskState::Failure, "case {name:?}");
    }
    let unknown = producer
        .async_result("bad-19")
        .meta()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        unknown.result,
        json!({"exc_type": "NotRegistered", "exc_message": ["nobody.knows"], "exc_module": "celery.exceptions"})
    );
    let arguments = producer
        .async_result("bad-20")
        .meta()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(arguments.result["exc_type"], json!("TypeError"));
    assert_eq!(
        broker.unacked_count().await.unwrap(),
        0,
        "nothing is left in flight"
    );
    assert_eq!(broker.queue_length(&queue).await.unwrap(), 0);
    let after = producer
        .send_task(
            "demo.add",
            vec![json!(2), json!(3)],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    assert_eq!(
        after.get(Duration::from_secs(10)).await.unwrap().result,
        json!(5),
        "the worker keeps serving"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_deliveries_are_restored_after_the_visibility_timeout() {
    let env = TestEnv::new("orphan")
        .with_visibility_timeout(Duration::from_secs(1))
        .with_result_extended(true);
    let queue = env.queue("q");
    let config = config(&env);
    let producer = producer(&config).await;
    let result = producer
        .send_task(
            "demo.add",
            vec![json!(4), json!(4)],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    // A consumer takes the message and dies without acking: it is only in `unacked`.
    let fetched = producer
        .broker()
        .fetch(std::slice::from_ref(&queue), 1)
        .await
        .unwrap();
    assert_eq!(fetched.len(), 1);
    assert_eq!(producer.broker().queue_length(&queue).await.unwrap(), 0);
    assert_eq!(producer.broker().unacked_count().await.unwrap(), 1);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    let meta = result.get(Duration::from_secs(15)).await.unwrap();
    assert_eq!(meta.status, TaskState::Success);
    assert_eq!(meta.result, json!(8));
    let broker = producer.broker().clone();
    eventually(WAIT_ACK, "the ack follows the result", || {
        let broker = broker.clone();
        async move { (broker.unacked_count().await.unwrap() == 0).then_some(()) }
    })
    .await;
    worker.stop().await;
}

/// An entry that is not UTF-8 (anyone who can write the list can put one there) made the whole
/// listing fail, so `celeriac dead-letters` printed nothing; it is listed, bytes escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_that_is_not_utf8_is_listed_escaped_with_the_others() {
    let env = TestEnv::new("dead-letter-bytes");
    let config = config(&env);
    let producer = producer(&config).await;
    let list = format!("{}celeriac.dead_letter", env.key_prefix);
    let mut redis = env.redis().await;
    let readable =
        json!({"reason": "unknown task", "queue": "q", "task_id": "t1", "message": "{}"});
    let () = redis.lpush(&list, readable.to_string()).await.unwrap();
    let () = redis
        .lpush(&list, b"\xff\xfe garbage".to_vec())
        .await
        .unwrap();
    let entries = producer.broker().dead_letters().await.unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].message, "\\xff\\xfe garbage");
    assert_eq!(entries[1].task_id.as_deref(), Some("t1"));
}
