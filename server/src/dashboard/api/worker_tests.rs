//! The worker detail and its actions over a real socket, against an in-process worker on the
//! test's private Redis prefix (the app of `tests.rs`, with `viewer`, `tester` (operator) and
//! `admin` users).

use axum::http::StatusCode;
use celeriac::auth::audit::AuditLog;
use celeriac::testkit::eventually;
use serde_json::{json, Value};

use super::tests::{spawn_app, TestApp, WAIT};

/// The queue names `GET /api/worker/{node}` lists.
async fn consumed_queues(app: &TestApp, node: &str) -> Vec<String> {
    let (status, detail) = app.json("GET", &format!("/api/worker/{node}")).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    detail["active_queues"]
        .as_array()
        .map(|queues| {
            queues
                .iter()
                .filter_map(|queue| queue["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /api/worker/{node}` once the node answers it.
async fn live_detail(app: &TestApp, node: &str) -> Value {
    eventually(WAIT, "the worker's detail with its replies", || async {
        let (status, detail) = app.json("GET", &format!("/api/worker/{node}")).await;
        (status == StatusCode::OK && detail["replied"] == json!(true)).then_some(detail)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_detail_and_operator_actions_reach_the_worker_and_are_audited() {
    let app = spawn_app("dash-worker").await;
    let node = "detail-worker@test";
    let _worker = app.start_worker(node).await;

    let detail = live_detail(&app, node).await;
    assert_eq!(detail["name"], json!(node));
    assert_eq!(detail["pool_size"], json!(2), "{detail}");
    assert!(detail["registered"]
        .as_array()
        .unwrap()
        .contains(&json!("demo.add")));
    assert!(detail["active"].is_array() && detail["scheduled"].is_array());
    // The page's model reads the real answer.
    let model: app::model::WorkerDetail = serde_json::from_value(detail.clone()).unwrap();
    assert_eq!(model.pool_size, Some(2));
    assert!(model.registered.unwrap().contains(&"demo.add".to_owned()));
    assert_eq!(consumed_queues(&app, node).await, vec![app.queue.clone()]);

    // Add a consumer, see it listed, cancel it, see it gone.
    let extra = format!("{}-extra", app.queue);
    let (status, added) = app
        .json(
            "POST",
            &format!("/api/worker/{node}/add_consumer?queue={extra}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    assert_eq!(added["message"], json!(format!("add consumer {extra}")));
    eventually(WAIT, "the added queue listed", || async {
        consumed_queues(&app, node)
            .await
            .contains(&extra)
            .then_some(())
    })
    .await;
    let (status, cancelled) = app
        .json(
            "POST",
            &format!("/api/worker/queue/cancel-consumer/{node}?queue={extra}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    eventually(WAIT, "the cancelled queue gone", || async {
        (!consumed_queues(&app, node).await.contains(&extra)).then_some(())
    })
    .await;

    // The pool, ours and Flower's paths.
    let (status, grown) = app
        .json("POST", &format!("/api/worker/{node}/pool_grow?n=1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{grown}");
    assert_eq!(grown["reply"], json!({"ok": "pool will grow"}));
    assert_eq!(live_detail(&app, node).await["pool_size"], json!(3));
    let (status, shrunk) = app
        .json("POST", &format!("/api/worker/pool/shrink/{node}?n=1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{shrunk}");
    assert_eq!(live_detail(&app, node).await["pool_size"], json!(2));
    let (status, _) = app
        .json("POST", &format!("/api/worker/{node}/pool_grow?n=zero"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Limits per task; the worker's own error comes back as 422 with its text.
    let (status, limited) = app
        .json(
            "POST",
            &format!("/api/worker/{node}/rate_limit?task=demo.add&value=10/m"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{limited}");
    let (status, refused) = app
        .json(
            "POST",
            &format!("/api/task/rate-limit/demo.nothing?workername={node}&ratelimit=1/s"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("unknown task"),
        "{refused}"
    );
    let (status, timed) = app
        .json(
            "POST",
            &format!("/api/worker/{node}/time_limit?task=demo.add&soft=5&hard=10"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{timed}");
    let (status, _) = app
        .json(
            "POST",
            &format!("/api/task/timeout/demo.add?workername={node}&soft=-1"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Viewers read but do not act; operators do not shut workers down; GET changes nothing.
    let (status, _) = app
        .json_as("viewer", "GET", &format!("/api/worker/{node}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .json_as(
            "viewer",
            "POST",
            &format!("/api/worker/{node}/add_consumer?queue=x"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .json_as(
            "viewer",
            "POST",
            &format!("/api/worker/pool/grow/{node}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .json("POST", &format!("/api/worker/{node}/shutdown"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .json("GET", &format!("/api/worker/{node}/pool_grow"))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    // Unknown nodes are a 404, quickly.
    let (status, unknown) = app.json("GET", "/api/worker/nobody@nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
    let (status, _) = app
        .json("POST", "/api/worker/nobody@nowhere/pool_grow")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let audit = AuditLog::new(app.monitoring.history.database().clone())
        .recent(50)
        .await
        .unwrap();
    let actions: Vec<(&str, &str, &str)> = audit
        .iter()
        .map(|entry| {
            (
                entry.actor.as_str(),
                entry.action.as_str(),
                entry.target.as_str(),
            )
        })
        .collect();
    for action in [
        "worker.add_consumer",
        "worker.cancel_consumer",
        "worker.pool_grow",
        "worker.pool_shrink",
        "worker.rate_limit",
        "worker.time_limit",
    ] {
        assert!(
            actions.contains(&("tester", action, node)),
            "{action} missing in {actions:?}"
        );
    }
    // Refused and forbidden attempts are not written as done.
    assert_eq!(
        actions
            .iter()
            .filter(|(_, action, _)| *action == "worker.rate_limit")
            .count(),
        1,
        "{actions:?}"
    );
    assert!(!actions.iter().any(|(actor, _, _)| *actor == "viewer"));

    // The server-rendered detail page lists the queue.
    let page = app.text(&format!("/workers/{node}")).await;
    assert!(page.contains(r#"data-testid="worker-queue""#), "{page}");
    assert!(page.contains(&app.queue), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_shuts_a_worker_down_and_its_detail_then_says_offline() {
    let app = spawn_app("dash-shutdown").await;
    let node = "shutdown-worker@test";
    let _worker = app.start_worker(node).await;
    live_detail(&app, node).await;

    let (status, answer) = app
        .json_as(
            "admin",
            "POST",
            &format!("/api/worker/shutdown/{node}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["message"], json!("Shutting down!"));

    // Gone: the detail answers at once from the heartbeats, and actions say it did not reply.
    let detail = eventually(WAIT, "the worker offline in its detail", || async {
        let (status, detail) = app.json("GET", &format!("/api/worker/{node}")).await;
        (status == StatusCode::OK && detail["heartbeat"]["alive"] == json!(false)).then_some(detail)
    })
    .await;
    assert_eq!(detail["replied"], json!(false), "{detail}");
    let model: app::model::WorkerDetail = serde_json::from_value(detail.clone()).unwrap();
    assert!(model.active_queues.is_none() && model.pool_size.is_none());
    let started = std::time::Instant::now();
    let (status, answer) = app
        .json("POST", &format!("/api/worker/{node}/pool_grow"))
        .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    let audit = AuditLog::new(app.monitoring.history.database().clone())
        .recent(10)
        .await
        .unwrap();
    assert!(audit.iter().any(|entry| entry.actor == "admin"
        && entry.action == "worker.shutdown"
        && entry.target == node));
}
