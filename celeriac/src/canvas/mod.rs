//! Canvas: chains, groups and chords of task calls, sent exactly as Celery sends them, so
//! Python workers run what a Rust producer or worker sends and the reverse.
//!
//! ```no_run
//! # async fn example(producer: celeriac::producer::Producer) -> Result<(), celeriac::Error> {
//! use celeriac::canvas::{chain, chord, group, Signature};
//! use serde_json::json;
//! let add = |x: i64, y: i64| Signature::new("demo.add").args(vec![json!(x), json!(y)]);
//! // (2 + 2) * 10, the second step a Python task given the first's result.
//! let sent = producer
//!     .apply_signature(chain([add(2, 2), Signature::new("py.mul").args(vec![json!(10)])]))
//!     .await?;
//! let product = sent.result(&producer).get(std::time::Duration::from_secs(10)).await?;
//! // The sum of five additions, once all five are in.
//! let header: Vec<_> = (0..5).map(|i| add(i, i)).collect();
//! producer.apply_signature(chord(header, Signature::new("py.tsum"))).await?;
//! # Ok(()) }
//! ```
//!
//! A signature is [`Signature`], Celery's dict; `.immutable()` is Celery's `.si()`. What a
//! worker does with the `link`, `link_error`, `chain` and `chord` of a message it ran is in
//! the worker's settle path; both use [`apply`] here.

mod apply;

pub(crate) use apply::apply;

use crate::backend::{AsyncResult, BackendError, ResultBackend};
use crate::protocol::signature::{child_of_group, child_of_task};
pub use crate::protocol::signature::{Shape, Signature};
use crate::protocol::ResultMeta;
use serde_json::{Map, Value};
use std::time::Duration;

/// Steps run one after another, each given the previous step's result (Celery's `chain`).
pub fn chain(steps: impl IntoIterator<Item = Signature>) -> Signature {
    canvas_type("celery.chain", "chain", steps)
}

/// Members run in parallel (Celery's `group`).
pub fn group(members: impl IntoIterator<Item = Signature>) -> Signature {
    canvas_type("celery.group", "group", members)
}

/// The header's members run in parallel; once all are done, `body` is called with the list of
/// their results, in header order (Celery's `chord`). Needs a result backend.
pub fn chord(header: impl IntoIterator<Item = Signature>, body: Signature) -> Signature {
    let mut kwargs = Map::new();
    kwargs.insert("header".into(), group(header).to_value());
    kwargs.insert("body".into(), body.to_value());
    kwargs.insert("kwargs".into(), Value::Object(Map::new()));
    let mut signature = Signature::new("celery.chord").kwargs(kwargs);
    signature.subtask_type = Some("chord".into());
    signature
}

fn canvas_type(
    task: &str,
    subtask_type: &str,
    tasks: impl IntoIterator<Item = Signature>,
) -> Signature {
    let tasks: Vec<Value> = tasks.into_iter().map(|task| task.to_value()).collect();
    let mut kwargs = Map::new();
    kwargs.insert("tasks".into(), Value::Array(tasks));
    let mut signature = Signature::new(task).kwargs(kwargs);
    signature.subtask_type = Some(subtask_type.into());
    signature
}

/// What sending a signature sent: one task whose result stands for the whole (a task, the last
/// step of a chain, a chord's body), or a group of them.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    /// The task whose result is the canvas's result.
    Task(String),
    /// A group: its id and what each member sent.
    Group {
        /// The group id (`group` header of each member).
        id: String,
        /// Each member, in order.
        members: Vec<Sent>,
    },
}

impl Sent {
    /// The `children` entry Celery stores for it in the sending task's result.
    pub fn child(&self) -> Value {
        match self {
            Sent::Task(id) => child_of_task(id),
            Sent::Group { id, members } => {
                child_of_group(id, members.iter().map(Sent::child).collect())
            }
        }
    }

    /// The id of the task or group.
    pub fn id(&self) -> &str {
        match self {
            Sent::Task(id) | Sent::Group { id, .. } => id,
        }
    }

    /// A handle on the result: one task's, or a group's members' in order.
    pub fn result(&self, producer: &crate::producer::Producer) -> GroupResult {
        let mut results = Vec::new();
        self.collect(producer.backend(), &mut results);
        GroupResult {
            id: self.id().to_owned(),
            results,
        }
    }

    fn collect(&self, backend: Option<&ResultBackend>, into: &mut Vec<AsyncResult>) {
        match self {
            Sent::Task(id) => into.push(AsyncResult::new(id.as_str().into(), backend.cloned())),
            Sent::Group { members, .. } => {
                for member in members {
                    member.collect(backend, into);
                }
            }
        }
    }
}

/// The results of a group (or of one task): Celery's `GroupResult`.
#[derive(Debug)]
pub struct GroupResult {
    /// The group id, or the task id for a single task.
    pub id: String,
    /// One handle per member, in group order.
    pub results: Vec<AsyncResult>,
}

impl GroupResult {
    /// Waits for every member to be ready and returns their documents in order; one task's
    /// result is a list of one.
    pub async fn get(&self, timeout: Duration) -> Result<Vec<ResultMeta>, BackendError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut metas = Vec::with_capacity(self.results.len());
        for result in &self.results {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            metas.push(result.get(left).await?);
        }
        Ok(metas)
    }
}

impl crate::producer::Producer {
    /// Sends a task, chain, group or chord signature (Celery's `sig.apply_async()`).
    pub async fn apply_signature(&self, signature: Signature) -> Result<Sent, crate::Error> {
        apply(self, signature, Vec::new(), Map::new()).await
    }
}
