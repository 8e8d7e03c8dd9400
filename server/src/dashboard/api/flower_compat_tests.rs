//! Flower 2.2's API calls against real Flower and against our dashboard on the same cluster:
//! one private Redis, one Celeriac worker, both monitors watching it. Every call goes to both,
//! and the answers must agree in status and in keys and JSON types (values too where they
//! cannot differ), so a script written against Flower reads ours the same way. Flower's
//! errors are plain text where ours are `{"error": ...}`; the texts must be equal.

use std::net::SocketAddr;

use axum::http::{Request, StatusCode};
use celeriac::testkit::{eventually, Flower, RedisServer, TestEnv};
use celeriac::worker::{Worker, WorkerOptions};
use http_body_util::BodyExt;
use hyper::body::Bytes;
use serde_json::{json, Value};

use super::tests::{spawn_app_in, within, TestApp, WAIT};

/// Our worker's node name; Flower's app sends to its default queue, `celery`.
const NODE: &str = "flower-compat@localhost";

/// A plain HTTP call to Flower (no authentication: the testkit opens its API).
async fn flower_call(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", address.to_string())
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(
            body.map(Value::to_string).unwrap_or_default(),
        )))
        .unwrap();
    let what = format!("Flower {method} {path}");
    let response = within(&what, sender.send_request(request)).await.unwrap();
    let status = response.status();
    let bytes = within(&what, response.into_body().collect())
        .await
        .unwrap()
        .to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

/// The JSON type's name; both kinds of number are a number, as Python's json makes them.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key of Flower's answer is in ours, and where both values are known (not null) their
/// types agree, down through objects and the first element of arrays.
fn assert_same_shape(flower: &Value, ours: &Value, at: &str) {
    match (flower, ours) {
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::Object(flower_fields), Value::Object(our_fields)) => {
            for (key, value) in flower_fields {
                let Some(our_value) = our_fields.get(key) else {
                    panic!("{at}: key {key:?} missing from ours\nFlower: {flower}\nours: {ours}");
                };
                assert_same_shape(value, our_value, &format!("{at}.{key}"));
            }
        }
        (Value::Array(flower_items), Value::Array(our_items)) => {
            if let (Some(flower_item), Some(our_item)) = (flower_items.first(), our_items.first()) {
                assert_same_shape(flower_item, our_item, &format!("{at}[0]"));
            }
        }
        _ => assert_eq!(
            kind(flower),
            kind(ours),
            "{at}: types differ\nFlower: {flower}\nours: {ours}"
        ),
    }
}

struct Both {
    app: TestApp,
    flower: Flower,
}

impl Both {
    /// The same call to both; the statuses must agree.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, Value) {
        let (flower_status, flower) =
            flower_call(self.flower.port(), method, path, body.as_ref()).await;
        let (our_status, ours) = self.app.json_as("tester", method, path, body).await;
        assert_eq!(
            flower_status, our_status,
            "{method} {path}: status\nFlower: {flower}\nours: {ours}"
        );
        (flower_status, flower, ours)
    }

    /// The same call to both, answered alike in status, keys and types.
    async fn same_shape(&self, method: &str, path: &str, body: Option<Value>) -> (Value, Value) {
        let (_, flower, ours) = self.call(method, path, body).await;
        assert_same_shape(&flower, &ours, &format!("{method} {path}"));
        (flower, ours)
    }

    /// The same refused call: Flower's text is our `error`.
    async fn same_error(&self, method: &str, path: &str, body: Option<Value>, status: StatusCode) {
        let (answered, flower, ours) = self.call(method, path, body).await;
        assert_eq!(answered, status, "{method} {path}: {flower} / {ours}");
        let flower_text = flower
            .get("error")
            .cloned()
            .unwrap_or_else(|| flower.clone());
        assert_eq!(ours["error"], flower_text, "{method} {path}");
    }
}

/// A Celeriac worker on `celery` sending events, until the sender is dropped.
async fn start_worker(app: &TestApp) -> tokio::sync::oneshot::Sender<()> {
    let registry = celeriac::demo::registry();
    let options = WorkerOptions {
        queues: vec!["celery".to_owned()],
        concurrency: 2,
        node_name: NODE.to_owned(),
        prefetch_multiplier: 4,
    };
    let worker = Worker::new(app.config.clone(), registry, options)
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    stop
}

fn task_id(answer: &Value) -> String {
    answer["task-id"]
        .as_str()
        .unwrap_or_else(|| panic!("a task id in {answer}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flowers_task_and_worker_calls_answer_alike() {
    let redis = RedisServer::start_private();
    let mut env = TestEnv::new("flower-compat").with_result_extended(true);
    env.redis_url = redis.url(0);
    env.backend_url = redis.url(1);
    env.key_prefix = String::new();
    let app = spawn_app_in(env).await;
    let (broker, backend) = (redis.url(0), redis.url(1));
    let flower = tokio::task::spawn_blocking(move || Flower::start(&broker, &backend))
        .await
        .unwrap();
    let both = Both { app, flower };
    let _worker = start_worker(&both.app).await;

    // Both know the worker: Flower from its inspect round, we from heartbeats.
    eventually(
        WAIT,
        "Flower and the monitor to know the worker",
        || async {
            let (_, workers) =
                flower_call(both.flower.port(), "GET", "/api/workers?refresh=1", None).await;
            let (_, ours) = both.app.json("GET", "/api/workers?status=1").await;
            (workers.get(NODE).is_some() && ours.get(NODE).is_some()).then_some(())
        },
    )
    .await;

    // Sending: Flower's app knows Celery's built-ins; send-task takes any name.
    let body = json!({"args": [1, 2]});
    let (flower, ours) = both
        .same_shape(
            "POST",
            "/api/task/async-apply/celery.accumulate",
            Some(body.clone()),
        )
        .await;
    // Read right after sending: usually PENDING, but our worker may have run it already.
    for answer in [&flower, &ours] {
        assert!(
            matches!(answer["state"].as_str(), Some("PENDING" | "SUCCESS")),
            "{answer}"
        );
    }
    let sent = [task_id(&flower), task_id(&ours)];
    let (flower, ours) = both
        .same_shape(
            "POST",
            "/api/task/send-task/demo.add",
            Some(json!({"kwargs": {"x": 2, "y": 3}, "countdown": 0})),
        )
        .await;
    let added = [task_id(&flower), task_id(&ours)];
    let (flower, ours) = both
        .same_shape(
            "POST",
            "/api/task/send-task/demo.fail",
            Some(json!({"args": ["boom"], "queue": "celery"})),
        )
        .await;
    let failed = [task_id(&flower), task_id(&ours)];
    let (flower, ours) = both
        .same_shape(
            "POST",
            "/api/task/apply/celery.accumulate",
            Some(json!({"args": [4, 5], "timeout": 30})),
        )
        .await;
    assert_eq!(flower["state"], json!("SUCCESS"), "{flower}");
    assert_eq!(ours["result"], flower["result"], "{ours} / {flower}");
    both.same_error(
        "POST",
        "/api/task/async-apply/no.such.task",
        Some(body.clone()),
        StatusCode::NOT_FOUND,
    )
    .await;
    both.same_error(
        "POST",
        "/api/task/apply/celery.accumulate",
        Some(json!({"args": 3})),
        StatusCode::BAD_REQUEST,
    )
    .await;

    // Results: each side reads the tasks both sent, waiting for them; a failure has its
    // traceback; an unknown id is PENDING.
    for id in sent.iter().chain(&added).chain(&failed) {
        let (flower, ours) = both
            .same_shape("GET", &format!("/api/task/result/{id}?timeout=30"), None)
            .await;
        assert_eq!(ours["state"], flower["state"], "{ours} / {flower}");
        assert_eq!(ours["result"], flower["result"], "{ours} / {flower}");
    }
    let (flower, _) = both
        .same_shape("GET", &format!("/api/task/result/{}", failed[1]), None)
        .await;
    assert_eq!(flower["state"], json!("FAILURE"), "{flower}");
    assert!(flower["traceback"].is_string(), "{flower}");
    let (flower, ours) = both
        .same_shape("GET", "/api/task/result/no-such-task-id", None)
        .await;
    assert_eq!(
        flower,
        json!({"task-id": "no-such-task-id", "state": "PENDING"})
    );
    assert_eq!(ours, flower);

    // Abort: Celery's ABORTED state, read back by either.
    let aborted = ["abort-by-flower", "abort-by-us"];
    for (index, id) in aborted.iter().enumerate() {
        let path = format!("/api/task/abort/{id}");
        let (flower_status, flower) = if index == 0 {
            flower_call(both.flower.port(), "POST", &path, None).await
        } else {
            both.app.json_as("tester", "POST", &path, None).await
        };
        assert_eq!(flower_status, StatusCode::OK, "{flower}");
        assert_eq!(flower, json!({"message": format!("Aborted '{id}'")}));
        let (flower, ours) = both
            .same_shape("GET", &format!("/api/task/result/{id}"), None)
            .await;
        assert_eq!(flower["state"], json!("ABORTED"), "{flower}");
        assert_eq!(ours, flower);
    }

    // Task types, from the events each has seen.
    eventually(WAIT, "both to have seen the task types", || async {
        let (_, flower) = flower_call(both.flower.port(), "GET", "/api/task/types", None).await;
        let (_, ours) = both.app.json("GET", "/api/task/types").await;
        let has = |answer: &Value| {
            ["celery.accumulate", "demo.add", "demo.fail"]
                .iter()
                .all(|name| {
                    answer["task-types"]
                        .as_array()
                        .is_some_and(|types| types.contains(&json!(name)))
                })
        };
        (has(&flower) && has(&ours)).then_some(())
    })
    .await;
    let (flower, ours) = both.same_shape("GET", "/api/task/types", None).await;
    assert_eq!(ours, flower);

    // Pool actions: our worker refuses both as a Celery worker without them does.
    both.same_error(
        "POST",
        &format!("/api/worker/pool/restart/{NODE}"),
        None,
        StatusCode::FORBIDDEN,
    )
    .await;
    both.same_error(
        "POST",
        &format!("/api/worker/pool/autoscale/{NODE}?min=1&max=3"),
        None,
        StatusCode::FORBIDDEN,
    )
    .await;
    both.same_error(
        "POST",
        "/api/worker/pool/restart/nobody@nowhere",
        None,
        StatusCode::NOT_FOUND,
    )
    .await;

    // The task list: every task in both, in the same order for each sort key, and the same
    // selection for each search.
    let all: Vec<&String> = sent.iter().chain(&added).chain(&failed).collect();
    eventually(
        WAIT,
        "both task lists to hold every task finished",
        || async {
            let (_, flower) = flower_call(both.flower.port(), "GET", "/api/tasks", None).await;
            let (_, ours) = both.app.json("GET", "/api/tasks").await;
            let done = |tasks: &Value| {
                all.iter().all(|id| {
                    matches!(
                        tasks[id.as_str()]["state"].as_str(),
                        Some("SUCCESS" | "FAILURE")
                    ) && tasks[id.as_str()]["received"].is_number()
                })
            };
            (done(&flower) && done(&ours)).then_some(())
        },
    )
    .await;
    let ids = |tasks: &Value| -> Vec<String> {
        tasks
            .as_object()
            .map(|tasks| tasks.keys().cloned().collect())
            .unwrap_or_default()
    };
    // (query, how many tasks it selects): 2 built-in calls and 2 applies, 2 additions, 2
    // failures, each pair sent once through Flower and once through us.
    for (query, count) in [
        ("sort_by=name", 8),
        ("sort_by=-name", 8),
        ("sort_by=state", 8),
        ("sort_by=received", 8),
        ("sort_by=-received", 8),
        ("sort_by=started", 8),
        ("search=accumulate", 4),
        ("search=state:failure", 2),
        ("search=args:boom", 2),
        ("search=kwargs:x=2", 2),
        ("search=kwargs:y=3%20args:boom", 0),
        ("search=result:%22%5B4,%205%5D%22", 2),
        (
            "search=name:demo%20OR%20(accumulate%20AND%20state:success)",
            8,
        ),
        (
            "search=(name:demo.add%20OR%20boom)%20AND%20worker:flower",
            4,
        ),
        ("sort_by=name&search=demo&limit=2&offset=1", 2),
    ] {
        let path = format!("/api/tasks?{query}");
        let (flower, ours) = both.same_shape("GET", &path, None).await;
        assert_eq!(
            ids(&ours),
            ids(&flower),
            "{path}: the same tasks in the same order"
        );
        assert_eq!(ids(&ours).len(), count, "{path}: {ours}");
    }
    let (flower, ours) = both.same_shape("GET", "/api/tasks", None).await;
    let mut ours_ids = ids(&ours);
    let mut flower_ids = ids(&flower);
    ours_ids.sort();
    flower_ids.sort();
    assert_eq!(ours_ids, flower_ids);
    for id in &all {
        let task = &ours[id.as_str()];
        for key in ["children", "parent", "root", "root_id", "parent_id"] {
            assert!(task.get(key).is_some(), "{key} in {task}");
        }
    }
    both.same_error("GET", "/api/tasks?search=ab", None, StatusCode::BAD_REQUEST)
        .await;
    both.same_error(
        "GET",
        "/api/tasks?sort_by=runtime",
        None,
        StatusCode::BAD_REQUEST,
    )
    .await;

    // Health checks and an unknown API path.
    let (flower_status, flower) =
        flower_call(both.flower.port(), "GET", "/healthcheck", None).await;
    let (our_status, ours) = both.app.json("GET", "/healthcheck").await;
    assert_eq!((our_status, ours), (flower_status, flower));
    let (status, ours) = both.app.json("GET", "/api/no/such/endpoint").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(ours["error"].is_string(), "JSON, not a page: {ours}");
    let (status, ours) = both.app.json("POST", "/api/no/such/endpoint").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{ours}");
    assert!(ours["error"].is_string(), "JSON, not a page: {ours}");

    // Sending is an operator's action, written to the audit log.
    let (status, _) = both
        .app
        .json_as(
            "viewer",
            "POST",
            "/api/task/send-task/demo.add",
            Some(json!({"args": [1, 1]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, audit) = both.app.json_as("admin", "GET", "/api/audit", None).await;
    let audit = audit.to_string();
    assert!(
        audit.contains(&format!("demo.add[{}]", added[1])),
        "{audit}"
    );
    assert!(audit.contains("abort-by-us"), "{audit}");
    drop(both);
}
