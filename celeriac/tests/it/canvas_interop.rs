//! Canvas against real Python Celery 5.4 and 5.7 (issue 14's matrix): chains, groups, chords,
//! `link` and `link_error` with Python steps around Rust steps and the reverse, sent by Python's
//! own canvas and by ours. `demo.*` tasks run on a Rust worker, `py.*` on a Python one; both
//! sides route by the same `task_routes`. Chord bodies count their calls, so "fired once" is
//! checked, not assumed.

use crate::support::{config, RunningWorker};
use celeriac::canvas::{chain, chord, group, Signature};
use celeriac::producer::Producer;
use celeriac::routing::{Route, TaskRoutes};
use celeriac::testkit::{eventually, CeleryPeer, CeleryVersion, TestEnv};
use celeriac::TaskState;
use redis::AsyncCommands;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(40);

struct Matrix {
    env: TestEnv,
    rust: String,
    python: String,
    producer: Producer,
}

impl Matrix {
    /// Runs Python's canvas for `spec` (see peer_cli.py `build`) and returns what it got.
    async fn python(&self, spec: Value) -> Value {
        let spec = spec.to_string();
        CeleryPeer::cli_async(&self.env, &["canvas", &spec, "--timeout", "40"]).await
    }

    async fn calls(&self, task: &str) -> i64 {
        let mut redis = self.env.redis().await;
        let calls: Option<i64> = redis
            .get(self.env.key(&format!("calls:{task}")))
            .await
            .unwrap();
        calls.unwrap_or(0)
    }

    async fn errbacks(&self) -> Vec<String> {
        let mut redis = self.env.redis().await;
        redis.lrange(self.env.key("errbacks"), 0, -1).await.unwrap()
    }

    async fn result(&self, task_id: &str) -> celeriac::protocol::ResultMeta {
        self.producer.async_result(task_id).get(WAIT).await.unwrap()
    }
}

fn task(name: &str, args: Value) -> Value {
    json!({"task": name, "args": args})
}

fn sig(name: &str, args: Value) -> Signature {
    Signature::new(name).args(args.as_array().cloned().unwrap_or_default())
}

async fn matrix(version: CeleryVersion, name: &str) -> (Matrix, RunningWorker, CeleryPeer) {
    let probe = TestEnv::new(name);
    let rust = probe.queue("rs");
    let python = probe.queue("py");
    let routes = json!({"demo.*": {"queue": rust}, "py.*": {"queue": python}});
    let env = probe.with_celery(version).with_peer_routes(routes);
    let mut config = config(&env);
    config.task_routes = TaskRoutes::new(vec![
        ("demo.*".into(), Route::queue(&rust)),
        ("py.*".into(), Route::queue(&python)),
    ])
    .unwrap();
    let worker = RunningWorker::start(config.clone(), None, &[&rust], 4).await;
    let peer =
        CeleryPeer::worker_with_pool(&env, &[&python], &format!("py-{name}@%h"), "threads", 4);
    let producer = Producer::connect(&config).await.unwrap();
    let matrix = Matrix {
        env,
        rust,
        python,
        producer,
    };
    (matrix, worker, peer)
}

async fn python_canvases_through_a_rust_worker(m: &Matrix) {
    // The table, row by row.
    let got = m
        .python(json!({"chain": [task("demo.add", json!([2, 2])), task("py.mul", json!([10]))]}))
        .await;
    assert_eq!(
        (got["status"].clone(), got["result"].clone()),
        (json!("SUCCESS"), json!(40)),
        "{got}"
    );

    let got = m
        .python(json!({"chain": [task("py.mul", json!([1, 2])), task("demo.add", json!([3])), task("py.mul", json!([10]))]}))
        .await;
    assert_eq!(got["result"], json!(50), "{got}");

    let linked = json!({"task": "demo.add", "args": [1, 1], "link": [task("py.mul", json!([5]))]});
    let got = m.python(linked).await;
    assert_eq!(got["result"], json!(2), "{got}");
    let parent = m.result(got["id"].as_str().unwrap()).await;
    assert_eq!(
        parent.children.len(),
        1,
        "the callback is listed as a child: {parent:?}"
    );
    let child_id = parent.children[0][0][0].as_str().unwrap().to_owned();
    let child = m.result(&child_id).await;
    assert_eq!(
        (child.status, child.result.clone()),
        (TaskState::Success, json!(10))
    );
    assert_eq!(
        child.parent_id.as_deref(),
        Some(got["id"].as_str().unwrap())
    );

    let failing = json!({"task": "demo.fail", "args": ["boom"], "link_error": [task("py.errback", json!([]))]});
    let got = m.python(failing).await;
    assert_eq!(got["status"], json!("FAILURE"), "{got}");
    let failed_id = got["id"].as_str().unwrap().to_owned();
    eventually(
        WAIT,
        "the Python errback to run with the failed task's id",
        || async { m.errbacks().await.contains(&failed_id).then_some(()) },
    )
    .await;

    let header: Vec<Value> = (0..5).map(|i| task("demo.add", json!([i, i]))).collect();
    let got = m
        .python(json!({"chord": header, "body": task("py.tsum", json!([]))}))
        .await;
    assert_eq!(got["result"], json!(20), "{got}");
    assert_eq!(m.calls("py.tsum").await, 1, "the body fired once");

    // Nested: a chain inside a group inside a chord, Python and Rust steps mixed.
    let nested = json!({
        "chord": [{"group": [
            {"chain": [task("demo.add", json!([1, 1])), task("py.mul", json!([3]))]},
            task("py.mul", json!([2, 2])),
            task("demo.add", json!([5, 5])),
        ]}],
        "body": task("py.tsum", json!([])),
    });
    let got = m.python(nested).await;
    assert_eq!(got["result"], json!(6 + 4 + 10), "{got}");
    assert_eq!(m.calls("py.tsum").await, 2);

    // link_error on a chain: the failing Rust step calls it; the last step is FAILURE too.
    let chained = json!({
        "chain": [task("demo.add", json!([1, 1])), task("demo.fail", json!([])), task("py.mul", json!([2]))],
        "link_error": [task("py.errback", json!([]))],
    });
    let errbacks_before = m.errbacks().await.len();
    let got = m.python(chained).await;
    assert_eq!(got["status"], json!("FAILURE"), "{got}");
    eventually(WAIT, "the chain's errback", || async {
        (m.errbacks().await.len() > errbacks_before).then_some(())
    })
    .await;

    // A chord whose header members retry (Python and Rust), and a header failure.
    let header = json!([
        task("py.retry_once", json!([7])),
        task("demo.flaky", json!([1])),
        task("demo.add", json!([1, 2]))
    ]);
    let got = m
        .python(json!({"chord": header, "body": task("py.tsum", json!([]))}))
        .await;
    assert_eq!(got["result"], json!(7 + 2 + 3), "{got}");
    assert_eq!(m.calls("py.tsum").await, 3);
    let header = json!([
        task("demo.add", json!([1, 1])),
        task("demo.fail", json!(["header"]))
    ]);
    let got = m
        .python(json!({"chord": header, "body": task("py.tsum", json!([]))}))
        .await;
    assert_eq!(got["status"], json!("FAILURE"), "{got}");
    assert_eq!(got["result"]["exc_type"], json!("ChordError"), "{got}");
    assert!(
        got["result"]["message"]
            .as_str()
            .unwrap()
            .ends_with("raised ValueError('header')"),
        "{got}"
    );
    assert_eq!(
        m.calls("py.tsum").await,
        3,
        "a failed chord's body does not run"
    );

    // Python header, Rust body; Python first step, Rust second.
    let header: Vec<Value> = (1..4).map(|i| task("py.mul", json!([i, i]))).collect();
    let got = m
        .python(json!({"chord": header, "body": task("demo.tsum", json!([]))}))
        .await;
    assert_eq!(got["result"], json!(1 + 4 + 9), "{got}");
    let got = m
        .python(json!({"chain": [task("py.mul", json!([2, 3])), task("demo.add", json!([1]))]}))
        .await;
    assert_eq!(got["result"], json!(7), "{got}");
    let got = m
        .python(json!({"group": [task("demo.add", json!([1, 1])), task("py.mul", json!([2, 2]))]}))
        .await;
    assert_eq!(got["results"], json!([2, 4]), "{got}");
}

/// Celery's built-in tasks, sent by Python's canvas to the Rust worker.
async fn builtins_on_a_rust_worker(m: &Matrix) {
    let got = m
        .python(json!({"starmap": task("demo.mul", json!([])), "it": [[2, 3], [4, 5]]}))
        .await;
    assert_eq!(got["result"], json!([6, 20]), "{got}");
    let got = m
        .python(
            json!({"chunks": task("demo.add", json!([])), "it": [[1, 1], [2, 2], [3, 3]], "n": 2, "apply": {"queue": m.rust}}),
        )
        .await;
    assert_eq!(got["results"], json!([[2, 4], [6]]), "{got}");
    let accumulate = json!({"task": "celery.accumulate", "args": [1, 2, 3], "kwargs": {"index": 1}, "options": {"queue": m.rust}});
    let got = m.python(accumulate).await;
    assert_eq!(got["result"], json!(2), "{got}");
}

async fn rust_canvases_through_a_python_worker(m: &Matrix) {
    let wait = |sent: celeriac::canvas::Sent| async move {
        let metas = sent.result(&m.producer).get(WAIT).await.unwrap();
        metas
            .into_iter()
            .map(|meta| (meta.status, meta.result))
            .collect::<Vec<_>>()
    };
    let sent = m
        .producer
        .apply_signature(chain([
            sig("py.mul", json!([2, 3])),
            sig("demo.add", json!([1])),
            sig("py.mul", json!([10])),
        ]))
        .await
        .unwrap();
    assert_eq!(wait(sent).await, vec![(TaskState::Success, json!(70))]);

    let before = m.calls("py.tsum").await;
    let header: Vec<Signature> = (0..5).map(|i| sig("py.mul", json!([i, 2]))).collect();
    let sent = m
        .producer
        .apply_signature(chord(header, sig("py.tsum", json!([]))))
        .await
        .unwrap();
    assert_eq!(wait(sent).await, vec![(TaskState::Success, json!(20))]);
    assert_eq!(m.calls("py.tsum").await, before + 1, "the body fired once");

    let sent = m
        .producer
        .apply_signature(group([
            sig("py.mul", json!([3, 3])),
            sig("demo.add", json!([3, 3])),
        ]))
        .await
        .unwrap();
    assert_eq!(
        wait(sent).await,
        vec![
            (TaskState::Success, json!(9)),
            (TaskState::Success, json!(6))
        ]
    );

    let linked = sig("py.mul", json!([4, 4]))
        .link(sig("demo.add", json!([1])))
        .link_error(sig("py.errback", json!([])));
    let sent = m.producer.apply_signature(linked).await.unwrap();
    let parent = sent.id().to_owned();
    assert_eq!(wait(sent).await, vec![(TaskState::Success, json!(16))]);
    let meta = eventually(WAIT, "the Python worker's callback child", || async {
        let meta = m.result(&parent).await;
        (!meta.children.is_empty()).then_some(meta)
    })
    .await;
    let child = m.result(meta.children[0][0][0].as_str().unwrap()).await;
    assert_eq!(child.result, json!(17));

    let failing = sig("py.mul", json!(["x"])).link_error(
        sig("py.errback", json!([]))
            .immutable()
            .args(vec![json!("fixed")]),
    );
    let sent = m.producer.apply_signature(failing).await.unwrap();
    let _ = wait(sent).await;
    eventually(
        WAIT,
        "an immutable errback with its own argument",
        || async {
            m.errbacks()
                .await
                .contains(&"fixed".to_owned())
                .then_some(())
        },
    )
    .await;
}

/// Header members on two Rust workers and one Python worker, all on one queue.
async fn chord_over_mixed_workers(m: &Matrix, version: CeleryVersion) {
    let shared = m.env.queue("mixed");
    let mut config = config(&m.env);
    config.task_routes = TaskRoutes::new(vec![("py.*".into(), Route::queue(&m.python))]).unwrap();
    let second = RunningWorker::start(
        config.clone(),
        Some(celeriac::demo::registry()),
        &[&shared],
        2,
    )
    .await;
    let third = RunningWorker::start(config, Some(celeriac::demo::registry()), &[&shared], 2).await;
    let python = CeleryPeer::worker_with_pool(
        &m.env,
        &[&shared],
        &format!("py-mixed-{version:?}@%h"),
        "threads",
        2,
    );
    let before = m.calls("py.tsum").await;
    let header: Vec<Signature> = (0..30)
        .map(|i| sig("demo.add", json!([i, 1])).option("queue", json!(shared)))
        .collect();
    let sent = m
        .producer
        .apply_signature(chord(header, sig("py.tsum", json!([]))))
        .await
        .unwrap();
    let metas = sent.result(&m.producer).get(WAIT).await.unwrap();
    assert_eq!(metas[0].result, json!((0..30).map(|i| i + 1).sum::<i64>()));
    assert_eq!(m.calls("py.tsum").await, before + 1, "the body fired once");
    let ran_on_python = python.log().matches("demo.add").count();
    assert!(
        ran_on_python > 0,
        "the Python worker took part: {ran_on_python}"
    );
    second.stop().await;
    third.stop().await;
}

async fn run(version: CeleryVersion, name: &str) {
    let (m, worker, _peer) = matrix(version, name).await;
    python_canvases_through_a_rust_worker(&m).await;
    builtins_on_a_rust_worker(&m).await;
    rust_canvases_through_a_python_worker(&m).await;
    chord_over_mixed_workers(&m, version).await;
    let _ = (&m.rust, &m.python);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canvas_matrix_against_celery_5_4() {
    run(CeleryVersion::V5_4, "canvas-54").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canvas_matrix_against_celery_5_7() {
    run(CeleryVersion::V5_7, "canvas-57").await;
}
