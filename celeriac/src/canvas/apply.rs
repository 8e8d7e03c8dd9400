//! Sending a signature as Celery's `Signature.apply_async` does, for any shape: one message
//! for a task, the first step (carrying the rest, reversed) for a chain, one message per member
//! for a group, and for a chord the header members (each carrying the body) with the chord's
//! size written just before the last one. Workers call it for callbacks, chain steps, chord
//! bodies and errbacks; Rust producers call it through [`crate::Producer::apply_signature`].

use super::Sent;
use crate::backend::{BackendError, ResultBackend};
use crate::producer::Producer;
use crate::protocol::signature::{Shape, Signature};
use crate::protocol::ProtocolError;
use crate::{clock, Error};
use futures::future::BoxFuture;
use serde_json::{Map, Value};

/// Options that go to the first step of a chain (`parent_id`, `root_id`, …) and those that
/// go to its last (a chain that is a group or chord member is joined by its last step).
const TO_LAST_STEP: [&str; 5] = ["group_id", "group_index", "chord", "link", "task_id"];

fn refused(reason: String) -> Error {
    Error::Protocol(ProtocolError::Unpublishable { reason })
}

/// Sends `signature` with the parent's result (or a failed task's id) `partial` prepended
/// unless it is immutable, and the call's `options` over its own.
pub(crate) fn apply<'a>(
    producer: &'a Producer,
    signature: Signature,
    partial: Vec<Value>,
    options: Map<String, Value>,
) -> BoxFuture<'a, Result<Sent, Error>> {
    Box::pin(async move {
        let mut signature = signature;
        for (name, value) in options {
            signature.set_option(&name, value);
        }
        match signature.shape()? {
            Shape::Task => send_task(producer, signature, partial).await,
            Shape::Chain(steps) => send_chain(producer, signature, steps, partial).await,
            Shape::Group(members) => send_group(producer, &signature, members, partial).await,
            Shape::Chord { header, body } => {
                let group_id = header_group_id(&signature, &header);
                send_chord(producer, &signature, group_id, header, *body, partial).await
            }
            Shape::Chunks { task, items, size } => {
                let members = items
                    .chunks(size)
                    .map(|part| {
                        let mut kwargs = Map::new();
                        kwargs.insert("task".into(), task.to_value());
                        kwargs.insert("it".into(), Value::Array(part.to_vec()));
                        let mut starmap = Signature::new("celery.starmap").kwargs(kwargs);
                        starmap.subtask_type = Some("xstarmap".into());
                        starmap.immutable = true;
                        starmap.options = signature.options.clone();
                        starmap.options.remove("task_id");
                        starmap
                    })
                    .collect();
                send_group(producer, &signature, members, Vec::new()).await
            }
        }
    })
}

async fn send_task(
    producer: &Producer,
    signature: Signature,
    partial: Vec<Value>,
) -> Result<Sent, Error> {
    let task_id = signature
        .task_id()
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let args = signature.merged_args(&partial);
    let message = signature.to_message(&task_id, args, clock::now())?;
    let queue = signature
        .option_str("queue")
        .or_else(|| signature.option_str("routing_key"));
    let priority = signature
        .options
        .get("priority")
        .and_then(Value::as_u64)
        .map(|priority| priority.min(9) as u8);
    // `celery.map`/`starmap` go where the task they map goes (Celery's `route_name`).
    let route_name = signature
        .kwargs
        .get("task")
        .and_then(|task| task.get("task"))
        .and_then(Value::as_str)
        .filter(|_| signature.subtask_type.is_some());
    producer
        .send_message(message, queue, priority, route_name)
        .await?;
    Ok(Sent::Task(task_id))
}

/// Flattens nested chains and turns a group followed by more steps into a chord, as Celery's
/// `prepare_steps` does, then freezes every step's id.
fn chain_steps(steps: Vec<Signature>) -> Result<Vec<Signature>, Error> {
    let mut flat = Vec::new();
    let mut pending = steps;
    pending.reverse();
    while let Some(step) = pending.pop() {
        match step.shape()? {
            Shape::Chain(inner) if step.options.is_empty() => {
                pending.extend(inner.into_iter().rev());
            }
            Shape::Group(members) if !pending.is_empty() => {
                let body = pending.pop().unwrap_or_default();
                flat.push(super::chord(members, body));
            }
            _ => flat.push(step),
        }
    }
    for step in &mut flat {
        if step.subtask_type.is_none() {
            step.set_default_option("task_id", Value::String(uuid::Uuid::new_v4().to_string()));
        }
    }
    Ok(flat)
}

async fn send_chain(
    producer: &Producer,
    chain: Signature,
    steps: Vec<Signature>,
    partial: Vec<Value>,
) -> Result<Sent, Error> {
    let mut steps = chain_steps(steps)?;
    if steps.is_empty() {
        return Err(refused("an empty chain".into()));
    }
    let mut first_options = Map::new();
    for (name, value) in &chain.options {
        if name == "link_error" {
            // The chain's errbacks go on every step: whichever fails calls them.
            for step in &mut steps {
                for errback in crate::protocol::signature::signatures(value)? {
                    *step = std::mem::take(step).link_error(errback);
                }
            }
        } else if TO_LAST_STEP.contains(&name.as_str()) {
            if let Some(last) = steps.last_mut() {
                if name == "link" {
                    for callback in crate::protocol::signature::signatures(value)? {
                        *last = std::mem::take(last).link(callback);
                    }
                } else {
                    last.options.insert(name.clone(), value.clone());
                }
            }
        } else if name != "chain" {
            first_options.insert(name.clone(), value.clone());
        }
    }
    let last_id = steps
        .last()
        .and_then(|last| last.task_id())
        .map(str::to_owned);
    let first = steps.remove(0);
    // The rest after the chain itself (a chain that is itself a step of an outer chain).
    let mut rest: Vec<Value> = chain
        .options
        .get("chain")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    rest.extend(steps.iter().rev().map(Signature::to_value));
    if !rest.is_empty() {
        first_options.insert("chain".into(), Value::Array(rest));
    }
    let sent = apply(producer, first, partial, first_options).await?;
    Ok(match (steps.is_empty(), last_id) {
        (false, Some(id)) => Sent::Task(id),
        _ => sent,
    })
}

/// Flattens nested groups (Celery unrolls them) and drops `task_id` from member options that
/// name the group.
fn group_members(members: Vec<Signature>) -> Result<Vec<Signature>, Error> {
    let mut flat = Vec::new();
    for member in members {
        match member.shape()? {
            Shape::Group(inner) => flat.extend(group_members(inner)?),
            _ => flat.push(member),
        }
    }
    Ok(flat)
}

async fn send_group(
    producer: &Producer,
    group: &Signature,
    members: Vec<Signature>,
    partial: Vec<Value>,
) -> Result<Sent, Error> {
    let group_id = group
        .task_id()
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let members = group_members(members)?;
    let mut sent = Vec::with_capacity(members.len());
    for (index, mut member) in members.into_iter().enumerate() {
        let mut options = shared_options(group);
        options.insert("group_index".into(), Value::from(index));
        member.set_default_option("group_id", Value::String(group_id.clone()));
        if index == 0 {
            if let Some(link) = group.options.get("link") {
                // Celery links a group's callback to its first member, immutable.
                for callback in crate::protocol::signature::signatures(link)? {
                    member = member.link(callback.immutable());
                }
            }
        }
        sent.push(apply(producer, member, partial.clone(), options).await?);
    }
    Ok(Sent::Group {
        id: group_id,
        members: sent,
    })
}

/// The options a group or chord passes to each member: everything but its own id, its
/// callbacks and its place in an outer group.
fn shared_options(parent: &Signature) -> Map<String, Value> {
    let mut options = parent.options.clone();
    for own in [
        "task_id",
        "link",
        "group_id",
        "group_index",
        "chord",
        "chain",
    ] {
        options.remove(own);
    }
    options
}

fn header_group_id(chord: &Signature, header: &[Signature]) -> String {
    chord
        .kwargs
        .get("header")
        .and_then(|header| header.get("options"))
        .and_then(|options| options.get("task_id"))
        .and_then(Value::as_str)
        .or_else(|| {
            header
                .first()
                .and_then(|first| first.option_str("group_id"))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// How many results a header member adds to its chord (Celery's `_chord._descend`).
fn chord_size(member: &Signature) -> Result<usize, Error> {
    Ok(match member.shape()? {
        Shape::Task | Shape::Chunks { .. } => 1,
        Shape::Group(members) => members.iter().map(chord_size).sum::<Result<_, _>>()?,
        Shape::Chain(steps) => match steps.last() {
            Some(last) => chord_size(last)?,
            None => 0,
        },
        Shape::Chord { body, .. } => chord_size(&body)?,
    })
}

async fn send_chord(
    producer: &Producer,
    chord: &Signature,
    group_id: String,
    header: Vec<Signature>,
    body: Signature,
    partial: Vec<Value>,
) -> Result<Sent, Error> {
    let mut body = body;
    // The chord's own id, callbacks and place in a workflow belong to its body.
    let body_id = chord
        .task_id()
        .or_else(|| body.task_id())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    body.options
        .insert("task_id".into(), Value::String(body_id.clone()));
    for name in [
        "chain",
        "link",
        "link_error",
        "group_id",
        "group_index",
        "chord",
        "root_id",
    ] {
        if let Some(value) = chord.options.get(name) {
            body.set_option(name, value.clone());
        }
    }
    let header = group_members(header)?;
    if header.is_empty() {
        apply(producer, body, vec![Value::Array(Vec::new())], Map::new()).await?;
        return Ok(Sent::Task(body_id));
    }
    let backend = producer.backend().ok_or_else(|| {
        refused("a chord needs a result backend to join its header; none is configured".into())
    })?;
    let size = header.iter().map(chord_size).sum::<Result<usize, _>>()?;
    let mut header = header;
    if let ResultBackend::SqlAlchemy(_) = backend {
        return Err(BackendError::ChordUnsupported {
            backend: backend.kind(),
            group_id: group_id.clone(),
            reason: "Celery joins chords there with its polling celery.chord_unlock task, which \
                     Celeriac does not run; use a redis:// or django-db result backend",
        }
        .into());
    }
    if let ResultBackend::Django(django) = backend {
        // django-celery-results counts the header in a row made before any member runs, one
        // result tuple per member: plain tasks only.
        let mut members = Vec::with_capacity(header.len());
        for member in &mut header {
            if !matches!(member.shape()?, Shape::Task) {
                return Err(BackendError::ChordUnsupported {
                    backend: backend.kind(),
                    group_id: group_id.clone(),
                    reason: "its header members must be plain tasks (nested groups, chains and \
                             chords need a redis:// result backend)",
                }
                .into());
            }
            let id = member
                .task_id()
                .map(str::to_owned)
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            member
                .options
                .insert("task_id".into(), Value::String(id.clone()));
            members.push(id);
        }
        django.apply_chord(&group_id, &members, size).await?;
    }
    let body_value = body.to_value();
    let last = header.len() - 1;
    for (index, member) in header.into_iter().enumerate() {
        let mut options = shared_options(chord);
        options.insert("group_index".into(), Value::from(index));
        options.insert("chord".into(), body_value.clone());
        let mut member = member;
        // Every member joins this chord, whatever group its own options named.
        member
            .options
            .insert("group_id".into(), Value::String(group_id.clone()));
        if index == last {
            if let ResultBackend::Redis(redis) = backend {
                redis.set_chord_size(&group_id, size).await?;
            }
        }
        apply(producer, member, partial.clone(), options).await?;
    }
    Ok(Sent::Task(body_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canvas::{chain, chord, group};

    fn task(name: &str) -> Signature {
        Signature::new(name)
    }

    #[test]
    fn a_group_followed_by_a_step_becomes_a_chord_and_every_task_step_gets_an_id() {
        let steps = chain_steps(vec![
            task("a"),
            chain([task("b"), group([task("c"), task("d")])]),
            task("e"),
        ])
        .unwrap();
        let shapes: Vec<Option<&str>> = steps
            .iter()
            .map(|step| step.subtask_type.as_deref())
            .collect();
        assert_eq!(shapes, vec![None, None, Some("chord")]);
        assert!(steps[0].task_id().is_some() && steps[1].task_id().is_some());
        match steps[2].shape().unwrap() {
            Shape::Chord { header, body } => {
                assert_eq!(header.len(), 2);
                assert_eq!(body.task, "e");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chord_size_counts_what_each_member_adds() {
        assert_eq!(chord_size(&task("a")).unwrap(), 1);
        assert_eq!(chord_size(&group([task("a"), task("b")])).unwrap(), 2);
        assert_eq!(
            chord_size(&chain([task("a"), group([task("b"), task("c")])])).unwrap(),
            2
        );
        assert_eq!(
            chord_size(&chord([task("a"), task("b")], task("c"))).unwrap(),
            1
        );
    }
}
