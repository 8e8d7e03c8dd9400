//! The API over a real socket: a dashboard on port 0 whose monitor and history watch a real
//! Redis (private key prefix) and a SQLite file, an in-process worker sending task events, and
//! a real HTTP client (hyper) reading JSON and the SSE stream.

use std::net::SocketAddr;

use axum::http::{Request, StatusCode};
use celeriac::config::Config;
use celeriac::history::{TaskEvent, TaskEventKind};
use celeriac::producer::{Producer, SendOptions};
use celeriac::testkit::{eventually, TestEnv};
use celeriac::worker::{Worker, WorkerOptions};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use serde_json::{json, Value};

use crate::dashboard::auth::{AuthState, SessionLimits};
use crate::dashboard::{api, routes, AppState, DashboardOptions};
use base64::Engine as _;

/// The test operator's password.
pub(super) const PASSWORD: &str = "correct horse battery";
use crate::monitoring::{self, Monitoring};

pub(super) use crate::dashboard::tests::{within, WAIT};

/// A dashboard serving the API on a free port, with what it reads.
pub(super) struct TestApp {
    pub(super) addr: SocketAddr,
    pub(super) config: Config,
    pub(super) queue: String,
    pub(super) monitoring: Monitoring,
    _directory: TempDir,
}

/// Removes the SQLite directory when the test ends.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Shared with the sibling API tests (`schedules/tests.rs`, `worker_tests.rs`).
pub(super) async fn spawn_app(name: &str) -> TestApp {
    spawn_app_in(TestEnv::new(name).with_result_extended(true)).await
}

/// [`spawn_app`] on `env`'s Redis and key prefix (`flower_compat_tests.rs`: Flower's).
pub(super) async fn spawn_app_in(env: TestEnv) -> TestApp {
    let queue = env.queue("q");
    let directory = std::env::temp_dir().join(env.queue("dashboard"));
    std::fs::create_dir_all(&directory).unwrap();
    let mut config = Config {
        broker_url: env.redis_url.clone(),
        result_backend: Some(env.backend_url.clone()),
        result_extended: true,
        worker_send_task_events: true,
        database_url: format!("sqlite://{}", directory.join("history.db").display()),
        ..Config::default()
    };
    config.broker_transport_options.global_keyprefix = env.key_prefix.clone();
    config.broker_transport_options.polling_interval = 0.01;
    let database = celeriac::db::Database::connect(&config.database_url)
        .await
        .unwrap();
    let monitoring = monitoring::start(&config, database, std::future::pending::<()>)
        .await
        .unwrap();
    let state = AppState::new(&monitoring, vec![queue.clone()]).with_result_backend(&config);
    // The API alone: login and the security layers have their own tests (dashboard/tests.rs).
    // The whole dashboard router, security layers included; requests log in with Basic auth
    // as an operator, which retry and revoke demand.
    let auth = AuthState::new(
        monitoring.history.database().clone(),
        SessionLimits::default(),
        String::new(),
    )
    .unwrap();
    let hash = auth.hasher.hash(PASSWORD.to_owned()).await.unwrap();
    // `viewer` and `admin` for the role checks of the worker actions (worker_tests.rs).
    for (name, role) in [
        ("tester", celeriac::auth::Role::Operator),
        ("viewer", celeriac::auth::Role::Viewer),
        ("admin", celeriac::auth::Role::Admin),
    ] {
        auth.users.add(name, role, &hash).await.unwrap();
    }
    let options = DashboardOptions {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        site_root: Some("target/site-for-api-tests".into()),
        url_prefix: String::new(),
        trusted_proxies: Vec::new(),
        proxy_auth: None,
    };
    let router = routes::router(&options, auth, None, api::router(state))
        .into_make_service_with_connect_info::<SocketAddr>();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    TestApp {
        addr,
        config,
        queue,
        monitoring,
        _directory: TempDir(directory),
    }
}

impl TestApp {
    /// A worker on the app's queue, sending task events, until the returned sender is dropped.
    pub(super) async fn start_worker(&self, node_name: &str) -> tokio::sync::oneshot::Sender<()> {
        let registry = celeriac::demo::registry();
        let options = WorkerOptions {
            queues: vec![self.queue.clone()],
            concurrency: 2,
            node_name: node_name.to_owned(),
            prefetch_multiplier: 4,
        };
        let worker = Worker::new(self.config.clone(), registry, options)
            .await
            .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(worker.run(async move {
            let _ = stopped.await;
        }));
        stop
    }

    pub(super) async fn producer(&self) -> Producer {
        Producer::connect(&self.config).await.unwrap()
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        last_event_id: Option<&str>,
    ) -> hyper::Response<Incoming> {
        self.request_as("tester", method, path, last_event_id).await
    }

    /// A request authenticated as `user` (`tester` operator, `viewer`, `admin`).
    async fn request_as(
        &self,
        user: &str,
        method: &str,
        path: &str,
        last_event_id: Option<&str>,
    ) -> hyper::Response<Incoming> {
        let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header(
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{PASSWORD}"))
                ),
            );
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        within(
            &format!("{method} {path} (headers)"),
            sender.send_request(request.body(Empty::<Bytes>::new()).unwrap()),
        )
        .await
        .unwrap()
    }

    pub(super) async fn json(&self, method: &str, path: &str) -> (StatusCode, Value) {
        let response = self.request(method, path, None).await;
        let status = response.status();
        let body = within(&format!("{method} {path}"), response.into_body().collect())
            .await
            .unwrap()
            .to_bytes();
        let value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        (status, value)
    }

    /// Sends `body` (JSON, if any) as user `user` (`tester` the operator, `viewer`, `admin`)
    /// and reads the JSON answer.
    pub(super) async fn json_as(
        &self,
        user: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{PASSWORD}"));
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("authorization", format!("Basic {credentials}"))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(Bytes::from(
                body.map(|body| body.to_string()).unwrap_or_default(),
            )))
            .unwrap();
        let what = format!("{method} {path} as {user}");
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

    pub(super) async fn text(&self, path: &str) -> String {
        let response = self.request("GET", path, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = within(&format!("GET {path}"), response.into_body().collect())
            .await
            .unwrap()
            .to_bytes();
        String::from_utf8_lossy(&body).into_owned()
    }
}

/// One server-sent event.
#[derive(Debug)]
struct SseEvent {
    id: String,
    kind: String,
    data: Value,
}

/// Reads events off a response body, frame by frame.
struct SseReader {
    body: Incoming,
    buffer: String,
}

impl SseReader {
    fn new(response: hyper::Response<Incoming>) -> SseReader {
        SseReader {
            body: response.into_body(),
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("event:") {
                        kind = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if kind.is_empty() {
                    continue; // A keep-alive comment.
                }
                return SseEvent {
                    id,
                    kind,
                    data: serde_json::from_str(&data).unwrap(),
                };
            }
            let frame = tokio::time::timeout(WAIT, self.body.frame())
                .await
                .expect("an SSE frame within the timeout")
                .expect("the stream is still open")
                .unwrap();
            if let Ok(bytes) = frame.into_data() {
                self.buffer.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }

    /// Reads until an event lists task `task_id` in `state`.
    async fn until_task_state(&mut self, task_id: &str, state: &str) -> SseEvent {
        loop {
            let event = self.next().await;
            let found = event.data["tasks"].as_array().is_some_and(|tasks| {
                tasks
                    .iter()
                    .any(|task| task["id"] == json!(task_id) && task["state"] == json!(state))
            });
            if found {
                return event;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_state_change_arrives_over_sse_and_a_reconnect_resumes() {
    let app = spawn_app("dash-sse").await;
    let response = app.request("GET", "/api/events", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["x-accel-buffering"], "no");
    // The security layer makes every authenticated response `no-store`, the stream included.
    assert_eq!(headers["cache-control"], "no-store");
    let mut stream = SseReader::new(response);
    let snapshot = stream.next().await;
    assert_eq!(snapshot.kind, "snapshot");
    assert!(snapshot.data["workers"].is_array(), "{:?}", snapshot.data);

    let _worker = app.start_worker("sse-worker@test").await;
    let producer = app.producer().await;
    let options = SendOptions::new().queue(&app.queue);
    let sent = producer
        .send_task(
            "demo.add",
            vec![json!(2), json!(3)],
            Default::default(),
            options,
        )
        .await
        .unwrap();
    let task_id = sent.id.0.clone();
    let delta = stream.until_task_state(&task_id, "SUCCESS").await;
    assert_eq!(delta.kind, "delta");

    // A tab that saw only the snapshot resumes with the delta since it.
    let resumed = app.request("GET", "/api/events", Some(&snapshot.id)).await;
    let mut resumed = SseReader::new(resumed);
    let first = resumed.next().await;
    assert_eq!(first.kind, "delta", "{first:?}");
    assert!(
        first.data["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|task| task["id"] == json!(task_id)),
        "{first:?}"
    );
    // An id from another process (or a restart) gets a fresh snapshot.
    let foreign = app.request("GET", "/api/events", Some("0.1")).await;
    assert_eq!(SseReader::new(foreign).next().await.kind, "snapshot");
    drop(app.monitoring);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flower_paths_and_our_api_answer_from_monitor_history_and_redis() {
    let app = spawn_app("dash-api").await;
    let node = "api-worker@test";
    let _worker = app.start_worker(node).await;
    let producer = app.producer().await;
    let sent = producer
        .send_task(
            "demo.add",
            vec![json!(20), json!(22)],
            Default::default(),
            SendOptions::new().queue(&app.queue),
        )
        .await
        .unwrap();
    let task_id = sent.id.0.clone();

    let tasks = eventually(WAIT, "the task in /api/tasks as SUCCESS", || async {
        let (status, tasks) = app.json("GET", "/api/tasks?state=SUCCESS&limit=10").await;
        assert_eq!(status, StatusCode::OK);
        (tasks[&task_id]["state"] == json!("SUCCESS")).then_some(tasks)
    })
    .await;
    assert_eq!(tasks[&task_id]["name"], json!("demo.add"));
    assert_eq!(tasks[&task_id]["worker"], json!(node));
    let (_, filtered) = app.json("GET", "/api/tasks?taskname=demo.nothing").await;
    assert_eq!(filtered, json!({}));

    let (status, info) = app.json("GET", &format!("/api/task/info/{task_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["result"], json!("42"));
    assert!(!info["timeline"].as_array().unwrap().is_empty(), "{info}");
    let (status, missing) = app.json("GET", "/api/task/info/no-such-task").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["error"], json!("Unknown task 'no-such-task'"));

    let (status, page) = app.json("GET", "/api/history?state=SUCCESS&limit=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["tasks"][0]["uuid"], json!(task_id));
    let (status, _) = app.json("GET", "/api/history?cursor=garbage").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.json("GET", "/api/history?state=DONE").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, overview) = app.json("GET", "/api/overview").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        overview["workers_online"].as_u64().unwrap() >= 1,
        "{overview}"
    );
    assert!(
        overview["states"]["SUCCESS"].as_u64().unwrap() >= 1,
        "{overview}"
    );
    assert_eq!(overview["queues"][0]["name"], json!(app.queue));
    // The chart's last hour counts the success; no beat runs under this test's prefix.
    let overview = eventually(WAIT, "the success in the overview's chart", || async {
        let (_, overview) = app.json("GET", "/api/overview").await;
        let succeeded: u64 = overview["throughput"]["points"]
            .as_array()?
            .iter()
            .filter_map(|point| point["succeeded"].as_u64())
            .sum();
        (succeeded >= 1).then_some(overview)
    })
    .await;
    assert_eq!(
        overview["throughput"]["points"].as_array().unwrap().len(),
        61
    );
    assert_eq!(overview["beat"], json!(null), "{overview}");

    // The Queues page: the worker answers `active_queues`, so it is the queue's consumer.
    let (status, queues) = app.json("GET", "/api/queues").await;
    assert_eq!(status, StatusCode::OK);
    assert!(queues["workers_replied"].as_u64().unwrap() >= 1, "{queues}");
    let queue = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|queue| queue["name"] == json!(app.queue))
        .cloned()
        .unwrap();
    assert_eq!(queue["consumers"], json!([node]), "{queues}");
    assert_eq!(queue["messages"], json!(0));
    serde_json::from_value::<app::model::QueuesDetail>(queues).unwrap();

    let (_, lengths) = app.json("GET", "/api/queues/length").await;
    assert_eq!(
        lengths,
        json!({"active_queues": [{"name": app.queue, "messages": 0}]})
    );

    let workers = eventually(WAIT, "the worker in /api/workers", || async {
        let (status, workers) = app
            .json("GET", &format!("/api/workers?workername={node}"))
            .await;
        (status == StatusCode::OK).then_some(workers)
    })
    .await;
    assert!(workers[node]["stats"].is_object(), "{workers}");
    assert!(workers[node]["registered"].is_array(), "{workers}");
    let (_, status_only) = app.json("GET", "/api/workers?status=true").await;
    assert_eq!(status_only[node], json!(true));

    let metrics = app.text("/metrics").await;
    for expected in [
        format!(
            "flower_events_total{{task=\"demo.add\",type=\"task-succeeded\",worker=\"{node}\"}} 1"
        ),
        format!("flower_worker_online{{worker=\"{node}\"}} 1"),
        format!("flower_task_runtime_seconds_count{{task=\"demo.add\",worker=\"{node}\"}} 1"),
        format!(
            "celeriac_queue_depth{{queue=\"{}\",priority=\"0\"}} 0",
            app.queue
        ),
        "celeriac_queue_unacked ".to_owned(),
        "celeriac_redis_used_memory_bytes ".to_owned(),
        "celeriac_redis_maxmemory_bytes ".to_owned(),
        // No beat runs under this test's key prefix.
        "celeriac_beat_lease_remaining_seconds 0.0".to_owned(),
        "# TYPE celeriac_beat_missed_total counter".to_owned(),
    ] {
        assert!(
            metrics.contains(&expected),
            "{expected} missing in\n{metrics}"
        );
    }

    let (status, revoked) = app
        .json(
            "POST",
            &format!("/api/task/revoke/{task_id}?terminate=true"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revoked["message"], json!(format!("Revoked '{task_id}'")));
    let (status, _) = app
        .json("GET", &format!("/api/task/revoke/{task_id}"))
        .await;
    assert_eq!(
        status,
        StatusCode::METHOD_NOT_ALLOWED,
        "GET changes nothing"
    );

    let (status, retried) = app
        .json("POST", &format!("/api/task/retry/{task_id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    let new_id = retried["task-id"].as_str().unwrap().to_owned();
    let result = producer
        .async_result(new_id.as_str())
        .get(WAIT)
        .await
        .unwrap();
    assert_eq!(result.result, json!(42));

    let (status, _) = app.json("POST", "/api/task/retry/no-such-task").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mut from_events = TaskEvent::new(
        TaskEventKind::Succeeded,
        "known-from-events-only",
        node,
        celeriac::clock::now(),
    );
    from_events.name = Some("demo.add".into());
    from_events.args = Some("(1, 2)".into());
    app.monitoring
        .history
        .record_events(&[from_events])
        .await
        .unwrap();
    let (status, refused) = app
        .json("POST", "/api/task/retry/known-from-events-only")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("result_extended"),
        "{refused}"
    );
}

/// The pages render their first paint with data read in process from this API, and the
/// app's model types read the API's real JSON (the browser parses the same with them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_with_data_and_the_app_model_reads_the_api() {
    let app = spawn_app("dash-pages").await;
    let node = "pages-worker@test";
    let _worker = app.start_worker(node).await;
    let producer = app.producer().await;
    let sent = producer
        .send_task(
            "demo.fail",
            vec![json!("<b>boom</b>")],
            Default::default(),
            SendOptions::new().queue(&app.queue),
        )
        .await
        .unwrap();
    let task_id = sent.id.0.clone();
    // Task info also answers from the live state (with its timeline) before the recorder's
    // batch lands, so wait on the history listing itself.
    eventually(WAIT, "the failure in the history", || async {
        let (_, page) = app.json("GET", "/api/history?state=FAILURE").await;
        (page["tasks"].as_array()?.first()?["uuid"] == json!(task_id)).then_some(())
    })
    .await;

    let (_, snapshot) = app.json("GET", "/api/snapshot").await;
    let snapshot: app::model::LiveSnapshot = serde_json::from_value(snapshot).unwrap();
    assert!(snapshot
        .workers
        .iter()
        .any(|worker| worker.hostname == node));
    assert!(snapshot.tasks.iter().any(|task| task.id == task_id));
    let (_, overview) = app.json("GET", "/api/overview").await;
    let overview: app::model::Overview = serde_json::from_value(overview).unwrap();
    assert!(overview.failure_rate().is_some());
    let (_, page) = app.json("GET", "/api/history?state=FAILURE").await;
    let page: app::model::HistoryPage = serde_json::from_value(page).unwrap();
    assert_eq!(page.tasks[0].uuid, task_id);
    let (_, info) = app.json("GET", &format!("/api/task/info/{task_id}")).await;
    let info: app::model::TaskInfo = serde_json::from_value(info).unwrap();
    assert!(!info.timeline.is_empty());

    let overview_page = app.text("/").await;
    assert!(
        overview_page.contains(r#"data-testid="workers-online""#),
        "{overview_page}"
    );
    let workers_page = app.text("/workers").await;
    assert!(workers_page.contains(node), "{workers_page}");
    let failed_page = app.text("/failed").await;
    assert!(
        failed_page.contains(&format!(r#"data-task-id="{task_id}""#)),
        "{failed_page}"
    );
    let detail_page = app.text(&format!("/tasks/{task_id}")).await;
    assert!(
        detail_page.contains(r#"data-state="FAILURE""#),
        "{detail_page}"
    );
    // The failure's text is shown escaped, never as markup.
    assert!(
        detail_page.contains("&lt;b&gt;boom&lt;/b&gt;"),
        "{detail_page}"
    );
    assert!(!detail_page.contains("<b>boom</b>"), "{detail_page}");
    drop(app.monitoring);
}

/// Issue 13: a query string that did not parse got axum's plain-text rejection, where the
/// README promises `{"error": ...}` for every API error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparseable_parameters_get_the_json_error_shape() {
    let app = spawn_app("dash-json-errors").await;
    for path in [
        "/api/history?limit=lots",
        "/api/tasks?limit=-5",
        "/api/stats/tasks?since=1h&until=2&until=3",
    ] {
        let (status, body) = app.json("GET", path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(
            body["error"].as_str().is_some_and(|text| !text.is_empty()),
            "{path}: {body}"
        );
    }
}

/// Issue 13: a task the worker dead-lettered (unknown name, arguments the task refuses) stayed
/// RECEIVED in the history forever and never reached the Failed page; Celery's worker sends
/// `task-failed` with `NotRegistered` for an unknown task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_lettered_tasks_show_as_failed_with_the_reason() {
    let app = spawn_app("dash-dead-letter").await;
    let _worker = app.start_worker("dead-letter-worker@test").await;
    let producer = app.producer().await;
    let options = || SendOptions::new().queue(&app.queue);
    let unknown = producer
        .send_task("shop.no_such_task", vec![], Default::default(), options())
        .await
        .unwrap();
    let refused = producer
        .send_task(
            "demo.add",
            vec![json!("too"), json!("many"), json!("args")],
            Default::default(),
            options(),
        )
        .await
        .unwrap();
    for (sent, reason) in [(&unknown, "NotRegistered"), (&refused, "TypeError")] {
        let task_id = sent.id.0.clone();
        let row = eventually(
            WAIT,
            "the dead-lettered task FAILURE in the history",
            || async {
                let (status, page) = app.json("GET", "/api/history?state=FAILURE&limit=50").await;
                assert_eq!(status, StatusCode::OK);
                page["tasks"]
                    .as_array()?
                    .iter()
                    .find(|row| row["uuid"] == json!(task_id))
                    .cloned()
            },
        )
        .await;
        assert!(
            row["exception"]
                .as_str()
                .is_some_and(|text| text.contains(reason)),
            "{row}"
        );
    }
}
