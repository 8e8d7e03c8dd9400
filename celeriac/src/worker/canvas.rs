//! What a run's message asks to happen after it (Celery's `trace.py` and the Redis backend's
//! `on_chord_part_return`), called from [`super::settle`]:
//!
//! - **Success**: the `link` callbacks get the result prepended (one callback alone; several
//!   wrapped in one new group), then the next `chain` step (the last element: the chain is
//!   embedded reversed) gets the result and the rest of the chain. Both carry this task as
//!   `parent_id` and its root as `root_id`. What was sent becomes the stored `children`.
//! - **Failure**: the rest of the chain is stored as FAILURE with the same error (the steps
//!   never run), and the errbacks are sent as one new group with this task's id as argument
//!   (Celery's old errback signature, the one it uses for any errback it cannot inspect).
//! - **Any final state** of a chord header member (success, failure, revoke) joins the chord;
//!   the member that completes it fires the body with the header's results, or stores a
//!   `ChordError` on the body when one member failed.

use super::request::Request;
use super::result_write::write;
use super::Shared;
use crate::backend::{ChordJoin, ChordPart, ResultBackend};
use crate::canvas::{self, Sent};
use crate::protocol::signature::{chord_part, parse_chord_part, signatures, Signature};
use crate::protocol::time::format_iso;
use crate::protocol::ResultMeta;
use crate::types::{ExceptionInfo, TaskState};
use serde_json::{json, Map, Value};

/// Whether the message is a chord header member: it is acked only after it joined, so a worker
/// killed mid-header cannot lose a part of the chord.
pub(crate) fn in_chord(request: &Request) -> bool {
    !request.message.embed.chord.is_null() && request.message.headers.group.is_some()
}

/// The options of everything this run sends: it is their parent, its root their root.
fn sent_by(request: &Request) -> Map<String, Value> {
    let headers = &request.message.headers;
    let mut options = Map::new();
    options.insert("parent_id".into(), json!(headers.id.as_str()));
    options.insert(
        "root_id".into(),
        json!(headers.root_id.as_deref().unwrap_or(headers.id.as_str())),
    );
    options
}

/// Sends `signature`. While Redis is unreachable it tries again (the run's message is held
/// meanwhile when it is acked late), until the shutdown's grace period runs out; any other
/// failure, or that one, is logged with what was not sent, and the run goes on.
async fn send(
    shared: &Shared,
    request: &Request,
    what: &str,
    signature: Signature,
    partial: Vec<Value>,
    options: Map<String, Value>,
) -> Option<Sent> {
    let task = signature.task.clone();
    let mut pause = std::time::Duration::from_millis(100);
    loop {
        let attempt = canvas::apply(
            &shared.producer,
            signature.clone(),
            partial.clone(),
            options.clone(),
        )
        .await;
        let error = match attempt {
            Ok(sent) => return Some(sent),
            Err(error) => error,
        };
        if !error.is_unreachable() || *shared.aborting.borrow() {
            tracing::error!(task_id = %request.id(), task_name = %request.name(), sending = %task, error = %crate::error::chain(&error), "WORKFLOW STEP NOT SENT: could not send the {what} of this task");
            return None;
        }
        tracing::warn!(task_id = %request.id(), sending = %task, error = %crate::error::chain(&error), "could not send the {what} of this task yet; trying again");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(2));
    }
}

/// Reads a signature list of the embed; an unreadable one is logged (the workflow stops there).
fn embedded(request: &Request, what: &str, value: &Value) -> Vec<Signature> {
    signatures(value).unwrap_or_else(|error| {
        tracing::error!(task_id = %request.id(), %error, "WORKFLOW STEP NOT SENT: the message's {what} is not a list of signatures");
        Vec::new()
    })
}

/// Sends the callbacks and the next chain step of a run that returned `value`; their
/// `children` entries for the stored result.
pub(crate) async fn after_success(shared: &Shared, request: &Request, value: &Value) -> Vec<Value> {
    let embed = &request.message.embed;
    let mut calls: Vec<(&str, Signature, Map<String, Value>)> = Vec::new();
    let mut callbacks = embedded(request, "link callbacks", &embed.callbacks);
    if callbacks.len() == 1 {
        let callback = callbacks.remove(0);
        calls.push(("link callback", callback, sent_by(request)));
    } else if !callbacks.is_empty() {
        // Celery sends group callbacks each on their own and wraps all others in one group.
        let (groups, others): (Vec<_>, Vec<_>) = callbacks
            .into_iter()
            .partition(|callback| callback.subtask_type.as_deref() == Some("group"));
        for callback in groups {
            calls.push(("link callback", callback, sent_by(request)));
        }
        if !others.is_empty() {
            calls.push(("link callbacks", canvas::group(others), sent_by(request)));
        }
    }
    let mut chain = embedded(request, "chain", &embed.chain);
    if let Some(next) = chain.pop() {
        let mut options = sent_by(request);
        let rest: Vec<Value> = chain.iter().map(Signature::to_value).collect();
        options.insert("chain".into(), Value::Array(rest));
        calls.push(("next chain step", next, options));
    }
    let mut children = Vec::with_capacity(calls.len());
    for (what, signature, options) in calls {
        let sent = send(
            shared,
            request,
            what,
            signature,
            vec![value.clone()],
            options,
        )
        .await;
        children.extend(sent.as_ref().map(Sent::child));
    }
    children
}

/// Fails the rest of the workflow of a run that failed with `exception`: its chord part, the
/// rest of its chain, its errbacks.
pub(crate) async fn after_failure(
    shared: &Shared,
    request: &Request,
    exception: &ExceptionInfo,
    traceback: &str,
) {
    let embed = &request.message.embed;
    join_chord(shared, request, TaskState::Failure, &json!(exception)).await;
    remember_workflow(shared, request).await;
    for step in embedded(request, "chain", &embed.chain) {
        fail_step(shared, request, &step, exception, traceback).await;
    }
    let errbacks = embedded(request, "errbacks", &embed.errbacks);
    if !errbacks.is_empty() {
        let failed_id = json!(request.id());
        let options = sent_by(request);
        send(
            shared,
            request,
            "errbacks",
            canvas::group(errbacks),
            vec![failed_id],
            options,
        )
        .await;
    }
}

/// Keeps what a failed message asked after it (callbacks, errbacks, the rest of its chain),
/// for as long as its result, so the dashboard's Retry of this task continues the workflow as
/// Celery's `Task.retry` would (it sends the message again with its workflow). Not the chord:
/// a chord whose member failed has failed, and a new run cannot rejoin it.
async fn remember_workflow(shared: &Shared, request: &Request) {
    let mut workflow = request.message.embed.clone();
    workflow.chord = Value::Null;
    if workflow.is_empty() {
        return;
    }
    let ttl = shared
        .config
        .result_expires()
        .unwrap_or(std::time::Duration::from_secs(86_400));
    let embed = workflow.to_value().to_string();
    if let Err(error) = shared
        .broker
        .remember_workflow(request.id(), &embed, ttl)
        .await
    {
        tracing::warn!(task_id = %request.id(), %error, "could not keep the failed task's workflow; a retry from the dashboard will run the task alone");
    }
}

/// A chain step that will never run: FAILURE stored under its frozen id (so whoever waits on
/// the chain's result sees the error), and its chord joined as failed.
async fn fail_step(
    shared: &Shared,
    request: &Request,
    step: &Signature,
    exception: &ExceptionInfo,
    traceback: &str,
) {
    let Some(task_id) = step.task_id() else {
        return;
    };
    let done = format_iso(crate::clock::now());
    let mut meta = ResultMeta::failure(task_id, exception, traceback.to_owned(), done);
    meta.group_id = step.option_str("group_id").map(str::to_owned);
    write(shared, &meta).await;
    if let (Some(group_id), Some(body)) = (step.option_str("group_id"), step.options.get("chord")) {
        let part = Part {
            group_id,
            task_id,
            group_index: step.options.get("group_index").and_then(Value::as_i64),
            body,
        };
        // Boxed: a chord that fails fails its body's chain, which may join another chord.
        Box::pin(join(
            shared,
            request,
            part,
            TaskState::Failure,
            &json!(exception),
        ))
        .await;
    }
}

/// One header member's place in its chord.
struct Part<'a> {
    group_id: &'a str,
    task_id: &'a str,
    group_index: Option<i64>,
    body: &'a Value,
}

/// Joins the chord of a header member that ended in `state` with `result`.
pub(crate) async fn join_chord(
    shared: &Shared,
    request: &Request,
    state: TaskState,
    result: &Value,
) {
    let headers = &request.message.headers;
    let (Some(group_id), false) = (&headers.group, request.message.embed.chord.is_null()) else {
        return;
    };
    let part = Part {
        group_id,
        task_id: headers.id.as_str(),
        group_index: headers.group_index,
        body: &request.message.embed.chord,
    };
    join(shared, request, part, state, result).await;
}

async fn join(
    shared: &Shared,
    request: &Request,
    part: Part<'_>,
    state: TaskState,
    result: &Value,
) {
    let Some(backend) = &shared.backend else {
        tracing::error!(task_id = %part.task_id, group_id = %part.group_id, "CHORD STALLED: this worker has no result backend to join the chord in");
        return;
    };
    let backend = match backend {
        ResultBackend::Redis(backend) => backend,
        ResultBackend::Django(backend) => {
            return join_django(shared, request, &part, backend).await
        }
        ResultBackend::SqlAlchemy(_) => {
            tracing::error!(task_id = %part.task_id, group_id = %part.group_id, "CHORD STALLED: chords are not joined on the SQLAlchemy result backend (Celery polls with celery.chord_unlock, which Celeriac does not run); use a redis:// or django-db result backend");
            return;
        }
    };
    let entry = chord_part(part.task_id, state.as_str(), result);
    let ordered = shared.config.result_chord_ordered;
    let joined = backend
        .chord_part_return(
            part.group_id,
            part.task_id,
            part.group_index,
            &entry,
            ordered,
        )
        .await;
    match joined {
        Ok(ChordPart::Complete { token }) => {
            let outcomes = redis_outcomes(backend, part.group_id, ordered).await;
            fire(shared, request, &part, outcomes).await;
            if let Err(error) = backend.chord_fired(part.group_id, &token).await {
                tracing::warn!(group_id = %part.group_id, %error, "could not clear a fired chord's data; it expires by itself");
            }
        }
        Ok(ChordPart::AlreadyFired) => {
            tracing::info!(task_id = %part.task_id, group_id = %part.group_id, "chord already fired; this header result came late and changes nothing");
        }
        Ok(ChordPart::Waiting { .. } | ChordPart::ClaimedElsewhere) => {}
        Err(error) => {
            tracing::error!(task_id = %part.task_id, group_id = %part.group_id, error = %crate::error::chain(&error), "CHORD MAY STALL: could not add this header result to the chord");
        }
    }
}

/// The django-db join: django-celery-results' counter, then the members' rows.
async fn join_django(
    shared: &Shared,
    request: &Request,
    part: &Part<'_>,
    backend: &crate::backend::DjangoBackend,
) {
    match backend.chord_part_return(part.group_id).await {
        Ok(ChordJoin::Waiting) => {}
        Ok(ChordJoin::Unknown) => {
            tracing::warn!(task_id = %part.task_id, group_id = %part.group_id, "no chord counter for this group (already fired, or never created); its body is not sent from here");
        }
        Ok(ChordJoin::Complete { members }) => {
            let outcomes = match backend.get_many(&members).await {
                Ok(found) => {
                    let mut by_id: std::collections::HashMap<String, ResultMeta> = found
                        .into_iter()
                        .map(|meta| (meta.task_id.clone(), meta))
                        .collect();
                    Ok(members
                        .iter()
                        .map(|id| match by_id.remove(id) {
                            Some(meta) => {
                                (id.clone(), meta.status.as_str().to_owned(), meta.result)
                            }
                            None => (id.clone(), "PENDING".to_owned(), Value::Null),
                        })
                        .collect())
                }
                Err(error) => Err(format!("Join error: {error}")),
            };
            fire(shared, request, part, outcomes).await;
        }
        Err(error) => {
            tracing::error!(task_id = %part.task_id, group_id = %part.group_id, error = %crate::error::chain(&error), "CHORD MAY STALL: could not count this header member in the chord counter");
        }
    }
}

/// The header's outcomes from the Redis join, in the order the body gets them: (task id,
/// state, result) per member, or why they cannot be read.
async fn redis_outcomes(
    backend: &crate::backend::RedisBackend,
    group_id: &str,
    ordered: bool,
) -> Result<Vec<(String, String, Value)>, String> {
    match backend.chord_results(group_id, ordered).await {
        Ok(Some(entries)) => entries
            .iter()
            .map(|raw| parse_chord_part(raw).map_err(|error| format!("Join error: {error}")))
            .collect(),
        Ok(None) => Err(
            "Join error: the header holds nested group results, which Celeriac does not join"
                .to_owned(),
        ),
        Err(error) => Err(format!("Join error: {error}")),
    }
}

/// Fires the body of a complete chord: called with the header's results, or failed with
/// `ChordError` naming the first member that failed (or one not finished, as Celery's join
/// would time out on it).
async fn fire(
    shared: &Shared,
    request: &Request,
    part: &Part<'_>,
    outcomes: Result<Vec<(String, String, Value)>, String>,
) {
    let body = match Signature::from_value(part.body) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(group_id = %part.group_id, %error, "CHORD BODY NOT SENT: the chord body is not a signature");
            return;
        }
    };
    let outcomes = match outcomes {
        Ok(outcomes) => outcomes,
        Err(reason) => return chord_error(shared, request, part.group_id, &body, &reason).await,
    };
    let mut results = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        match outcome {
            (_, state, result) if state == "SUCCESS" => results.push(result),
            (task_id, state, _) if state == "PENDING" || state == "STARTED" => {
                let reason = format!("Join error: dependency {task_id} has not finished ({state})");
                return chord_error(shared, request, part.group_id, &body, &reason).await;
            }
            (task_id, _, result) => {
                let repr = serde_json::from_value::<ExceptionInfo>(result.clone())
                    .map(|exception| exception.repr())
                    .unwrap_or_else(|_| crate::types::python_repr(&result));
                let reason = format!("Dependency {task_id} raised {repr}");
                return chord_error(shared, request, part.group_id, &body, &reason).await;
            }
        }
    }
    // Celery sends the body with `delay`: its own `parent_id`/`root_id` options win, else the
    // member that completed the chord is its parent and that member's root its root.
    let mut options = Map::new();
    if body.option_str("parent_id").is_none() {
        options.insert("parent_id".into(), json!(part.task_id));
    }
    if body.option_str("root_id").is_none() {
        let headers = &request.message.headers;
        let root = headers.root_id.as_deref().unwrap_or(part.task_id);
        options.insert("root_id".into(), json!(root));
    }
    tracing::info!(group_id = %part.group_id, body = %body.task, results = results.len(), "chord complete; sending its body");
    send(
        shared,
        request,
        "chord body",
        body,
        vec![Value::Array(results)],
        options,
    )
    .await;
}

/// A chord whose header failed: the body's errbacks get the body's id, the body is stored as
/// FAILURE with `ChordError(reason)`, and so is the rest of the body's chain.
async fn chord_error(
    shared: &Shared,
    request: &Request,
    group_id: &str,
    body: &Signature,
    reason: &str,
) {
    let body_id = body
        .task_id()
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    tracing::error!(group_id, body_id = %body_id, reason, "chord failed; storing ChordError on its body");
    let exception = ExceptionInfo::new("ChordError", reason).in_module("celery.exceptions");
    let traceback = format!("Traceback (most recent call last):\n  chord {group_id}\ncelery.exceptions.ChordError: {reason}");
    let done = format_iso(crate::clock::now());
    let meta = ResultMeta::failure(&body_id, &exception, traceback.clone(), done);
    write(shared, &meta).await;
    if let Some(errbacks) = body.options.get("link_error") {
        let errbacks = embedded(request, "chord body errbacks", errbacks);
        if !errbacks.is_empty() {
            let mut options = Map::new();
            options.insert("parent_id".into(), json!(body_id));
            options.insert("root_id".into(), json!(body_id));
            send(
                shared,
                request,
                "chord body errbacks",
                canvas::group(errbacks),
                vec![json!(body_id)],
                options,
            )
            .await;
        }
    }
    if let Some(chain) = body.options.get("chain") {
        for step in embedded(request, "chord body chain", chain) {
            fail_step(shared, request, &step, &exception, &traceback).await;
        }
    }
    if let Some(backend) = shared.backend.as_ref().and_then(ResultBackend::as_redis) {
        if let Err(error) = backend.chord_errored(group_id).await {
            tracing::warn!(group_id, %error, "could not clear a failed chord's size");
        }
    }
}
