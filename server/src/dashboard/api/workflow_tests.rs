//! The task page's workflow section over a real socket (issue 14): a chain's first step lists
//! the step it sent, a chord member lists its group and the chord's other members, against an
//! in-process worker on the test's private Redis prefix (the app of `tests.rs`).

use axum::http::StatusCode;
use celeriac::canvas::{chain, chord, Signature};
use celeriac::testkit::eventually;
use serde_json::{json, Value};

use super::tests::{spawn_app, WAIT};

fn add(x: i64, y: i64) -> Signature {
    Signature::new("demo.add").args(vec![json!(x), json!(y)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_page_shows_its_chain_children_and_its_chord() {
    let app = spawn_app("dash-workflow").await;
    let _worker = app.start_worker("workflow@test").await;
    let producer = app.producer().await;
    let queue = json!(app.queue);
    let first = add(1, 1)
        .option("queue", queue.clone())
        .option("task_id", json!("chain-first"));
    let second = Signature::new("demo.mul")
        .args(vec![json!(3)])
        .option("queue", queue.clone());
    let sent = producer
        .apply_signature(chain([first, second]))
        .await
        .unwrap();
    let last_id = sent.id().to_owned();
    let info = eventually(
        WAIT,
        "the chain's first step listing the step it sent",
        || async {
            let (status, info) = app.json("GET", "/api/task/info/chain-first").await;
            (status == StatusCode::OK
                && info["children"]
                    .as_array()
                    .is_some_and(|children| !children.is_empty()))
            .then_some(info)
        },
    )
    .await;
    assert_eq!(info["children"][0], json!(last_id), "Flower's ids: {info}");
    assert_eq!(info["child_tasks"][0]["task_id"], json!(last_id), "{info}");
    assert_eq!(info["child_tasks"][0]["name"], json!("demo.mul"), "{info}");
    let typed: app::model::TaskInfo = serde_json::from_value(info).unwrap();
    assert_eq!(typed.children[0].task_id, last_id);
    // Flower's task list carries the same ids (read for the whole list at once), and the
    // step names its parent and root.
    let (status, tasks) = app.json("GET", "/api/tasks").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        tasks["chain-first"]["children"],
        json!([last_id]),
        "{tasks}"
    );
    if let Some(step) = tasks.get(&last_id) {
        assert_eq!(step["parent"], json!("chain-first"), "{step}");
        assert_eq!(step["root"], json!("chain-first"), "{step}");
        assert_eq!(step["children"], json!([]), "{step}");
    }
    // The server-rendered page has the section, linking the step it sent.
    let page = app.text("/tasks/chain-first").await;
    assert!(
        page.contains(r#"data-testid="workflow-children""#),
        "{page}"
    );
    assert!(page.contains(&last_id[..8]), "{page}");

    let header: Vec<Signature> = (0..3)
        .map(|index| {
            add(index, index)
                .option("queue", queue.clone())
                .option("task_id", json!(format!("member-{index}")))
        })
        .collect();
    let body = Signature::new("demo.tsum").option("queue", queue);
    producer.apply_signature(chord(header, body)).await.unwrap();
    let info: Value = eventually(
        WAIT,
        "a chord member listing the chord's three members",
        || async {
            let (_, info) = app.json("GET", "/api/task/info/member-1").await;
            (info["group"].as_array().map(Vec::len) == Some(3)).then_some(info)
        },
    )
    .await;
    assert!(info["group_id"].is_string(), "{info}");
    let members: Vec<&str> = info["group"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|member| member["task_id"].as_str())
        .collect();
    for index in 0..3 {
        assert!(
            members.contains(&format!("member-{index}").as_str()),
            "{info}"
        );
    }
    // Fired: its keys are gone, so no progress is shown any more.
    assert_eq!(info["chord"], Value::Null, "{info}");

    // While a member still runs, a finished member's page shows how far the chord is.
    let slow = Signature::new("demo.sleep")
        .args(vec![json!(3)])
        .option("queue", json!(app.queue));
    let quick = add(1, 1)
        .option("queue", json!(app.queue))
        .option("task_id", json!("quick-member"));
    let body = Signature::new("demo.echo")
        .option("queue", json!(app.queue))
        .option("task_id", json!("slow-chord-body"));
    producer
        .apply_signature(chord([slow, quick], body))
        .await
        .unwrap();
    let info = eventually(
        WAIT,
        "the chord's progress on the quick member's page",
        || async {
            let (_, info) = app.json("GET", "/api/task/info/quick-member").await;
            info["chord"].is_object().then_some(info)
        },
    )
    .await;
    assert_eq!(info["chord"], json!({"done": 1, "size": 2}), "{info}");
    assert_eq!(
        info["chord_body"]["task_id"],
        json!("slow-chord-body"),
        "{info}"
    );
    let page = app.text("/tasks/quick-member").await;
    assert!(page.contains("1 of 2 header tasks done"), "{page}");
    assert!(page.contains(r#"data-testid="chord-body""#), "{page}");
}
