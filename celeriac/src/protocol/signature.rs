//! Celery's signature dict (`{task, args, kwargs, options, subtask_type, immutable}`): a task
//! call not yet sent, as canvas carries it in `link`, `link_error`, `chain` and `chord` (wire
//! doc §2.4). Chains, groups and chords are signatures too, told apart by `subtask_type`.
//!
//! Only the shape lives here; sending one is [`crate::canvas`].

use super::{ProtocolError, TaskMessage};
use crate::types::TaskId;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// A task call, or a chain, group or chord of them, as Celery serializes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Signature {
    /// The task name (`celery.chain`, `celery.group`, `celery.chord` for the canvas types).
    pub task: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments (the members of a chain or group are `kwargs.tasks`).
    pub kwargs: Map<String, Value>,
    /// `apply_async` options: `task_id`, `queue`, `link`, `link_error`, `group_id`, …
    pub options: Map<String, Value>,
    /// `null`, `chain`, `group`, `chord`, `xmap`, `xstarmap` or `chunks`.
    pub subtask_type: Option<String>,
    /// An immutable signature (`.si()`) gets no parent result prepended.
    pub immutable: bool,
}

/// What a signature is, with its parts.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// One task message.
    Task,
    /// Steps run one after another, each given the previous result.
    Chain(Vec<Signature>),
    /// Members run in parallel.
    Group(Vec<Signature>),
    /// A group whose results, once all are in, are given to the body.
    Chord {
        /// The header members.
        header: Vec<Signature>,
        /// The body, called with the list of header results.
        body: Box<Signature>,
    },
    /// `celery.chunks`: a group of `celery.starmap` over parts of the iterable.
    Chunks {
        /// The task each item is applied to.
        task: Box<Signature>,
        /// The items (each a list of arguments).
        items: Vec<Value>,
        /// Items per chunk.
        size: usize,
    },
}

fn invalid(reason: impl Into<String>) -> ProtocolError {
    ProtocolError::InvalidBody {
        reason: format!("signature: {}", reason.into()),
    }
}

impl Signature {
    /// A call of task `name` with no arguments.
    pub fn new(name: impl Into<String>) -> Signature {
        Signature {
            task: name.into(),
            ..Signature::default()
        }
    }

    /// Reads a signature dict.
    pub fn from_value(value: &Value) -> Result<Signature, ProtocolError> {
        let map = value
            .as_object()
            .ok_or_else(|| invalid(format!("expected an object, got {value}")))?;
        let task = match map.get("task") {
            Some(Value::String(task)) => task.clone(),
            _ => return Err(invalid("`task` is missing or not a string")),
        };
        let args = match map.get("args") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(args)) => args.clone(),
            Some(other) => return Err(invalid(format!("`args` is not a list: {other}"))),
        };
        let object = |name: &str| match map.get(name) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(object)) => Ok(object.clone()),
            Some(other) => Err(invalid(format!("`{name}` is not an object: {other}"))),
        };
        Ok(Signature {
            task,
            args,
            kwargs: object("kwargs")?,
            options: object("options")?,
            subtask_type: map
                .get("subtask_type")
                .and_then(Value::as_str)
                .map(str::to_owned),
            immutable: map
                .get("immutable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// The signature dict, in Celery's key order.
    pub fn to_value(&self) -> Value {
        json!({
            "task": self.task,
            "args": self.args,
            "kwargs": self.kwargs,
            "options": self.options,
            "subtask_type": self.subtask_type,
            "immutable": self.immutable,
        })
    }

    /// What this signature is. An unknown `subtask_type` is refused: sending it as one message
    /// would lose the workflow it stands for.
    pub fn shape(&self) -> Result<Shape, ProtocolError> {
        match self.subtask_type.as_deref() {
            None | Some("xmap") | Some("xstarmap") => Ok(Shape::Task),
            Some("chain") => Ok(Shape::Chain(self.member_list("tasks")?)),
            Some("group") => Ok(Shape::Group(self.member_list("tasks")?)),
            Some("chord") => {
                let header = match self.kwargs.get("header") {
                    Some(Value::Object(_)) => {
                        let header = Signature::from_value(&self.kwargs["header"])?;
                        match header.shape()? {
                            Shape::Group(members) => members,
                            _ => vec![header],
                        }
                    }
                    Some(value) => signatures(value)?,
                    None => return Err(invalid("a chord without `kwargs.header`")),
                };
                let body = self
                    .kwargs
                    .get("body")
                    .ok_or_else(|| invalid("a chord without `kwargs.body`"))?;
                Ok(Shape::Chord {
                    header,
                    body: Box::new(Signature::from_value(body)?),
                })
            }
            Some("chunks") => {
                let task = self
                    .kwargs
                    .get("task")
                    .ok_or_else(|| invalid("chunks without `kwargs.task`"))?;
                let items = match self.kwargs.get("it") {
                    Some(Value::Array(items)) => items.clone(),
                    _ => return Err(invalid("chunks without a list `kwargs.it`")),
                };
                let size = self
                    .kwargs
                    .get("n")
                    .and_then(Value::as_u64)
                    .filter(|size| *size > 0)
                    .ok_or_else(|| invalid("chunks without a positive `kwargs.n`"))?;
                Ok(Shape::Chunks {
                    task: Box::new(Signature::from_value(task)?),
                    items,
                    size: size as usize,
                })
            }
            Some(other) => Err(invalid(format!("unknown subtask_type {other:?}"))),
        }
    }

    fn member_list(&self, name: &str) -> Result<Vec<Signature>, ProtocolError> {
        match self.kwargs.get(name) {
            Some(value) => signatures(value),
            None => Err(invalid(format!("{} without `kwargs.{name}`", self.task))),
        }
    }

    /// The frozen task id (`options.task_id`), when the producer set one.
    pub fn task_id(&self) -> Option<&str> {
        self.options.get("task_id").and_then(Value::as_str)
    }

    /// An option as text.
    pub fn option_str(&self, name: &str) -> Option<&str> {
        self.options.get(name).and_then(Value::as_str)
    }

    /// The arguments of a call with the parent's result (or failed task id) `partial`
    /// prepended, unless the signature is immutable (Celery's `Signature._merge`).
    pub fn merged_args(&self, partial: &[Value]) -> Vec<Value> {
        if self.immutable || partial.is_empty() {
            return self.args.clone();
        }
        partial.iter().chain(self.args.iter()).cloned().collect()
    }

    /// Sets an option unless the signature already has it (`group_id` and stamps are never
    /// overwritten in Celery; neither is a frozen `task_id`).
    pub fn set_default_option(&mut self, name: &str, value: Value) {
        if value.is_null() {
            return;
        }
        self.options.entry(name.to_owned()).or_insert(value);
    }

    /// Sets an option, replacing the signature's own (Celery's `apply_async(**options)`),
    /// except `group_id`, which keeps the signature's own.
    pub fn set_option(&mut self, name: &str, value: Value) {
        if value.is_null() {
            return;
        }
        if name == "group_id" && self.options.contains_key(name) {
            return;
        }
        self.options.insert(name.to_owned(), value);
    }

    /// Positional arguments (builder).
    pub fn args(mut self, args: Vec<Value>) -> Signature {
        self.args = args;
        self
    }

    /// Keyword arguments (builder).
    pub fn kwargs(mut self, kwargs: Map<String, Value>) -> Signature {
        self.kwargs = kwargs;
        self
    }

    /// Immutable: the parent's result is not prepended (Celery's `.si()`).
    pub fn immutable(mut self) -> Signature {
        self.immutable = true;
        self
    }

    /// Any `apply_async` option, e.g. `queue`, `countdown`, `priority` (builder).
    pub fn option(mut self, name: &str, value: Value) -> Signature {
        self.options.insert(name.to_owned(), value);
        self
    }

    /// Calls `callback` with this task's result when it succeeds (Celery's `link`).
    pub fn link(mut self, callback: Signature) -> Signature {
        push_option(&mut self.options, "link", callback.to_value());
        self
    }

    /// Calls `errback` with this task's id when it fails (Celery's `link_error`).
    pub fn link_error(mut self, errback: Signature) -> Signature {
        push_option(&mut self.options, "link_error", errback.to_value());
        self
    }
}

impl Signature {
    /// The task message this call sends, with id `task_id` and positional `args`: Celery's
    /// mapping of `apply_async` options to headers and embed (`app/amqp.py` `as_task_v2`).
    /// Routing options (`queue`, `priority`) are read by the sender, not here.
    pub fn to_message(
        &self,
        task_id: &str,
        args: Vec<Value>,
        now: DateTime<Utc>,
    ) -> Result<TaskMessage, ProtocolError> {
        let mut message = TaskMessage::new(
            self.task.clone(),
            TaskId(task_id.to_owned()),
            args,
            self.kwargs.clone(),
        );
        let options = &self.options;
        let text = |name: &str| options.get(name).and_then(Value::as_str).map(str::to_owned);
        let seconds = |name: &str| options.get(name).and_then(Value::as_f64);
        let headers = &mut message.headers;
        if let Some(root_id) = text("root_id") {
            headers.root_id = Some(root_id);
        }
        headers.parent_id = text("parent_id");
        headers.shadow = text("shadow");
        headers.group = text("group_id");
        headers.group_index = options.get("group_index").and_then(Value::as_i64);
        headers.ignore_result = options
            .get("ignore_result")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        headers.retries = options.get("retries").and_then(Value::as_u64).unwrap_or(0) as u32;
        headers.eta =
            match (text("eta"), seconds("countdown")) {
                (Some(eta), _) => Some(super::time::parse_iso(&eta).ok_or_else(|| {
                    invalid(format!("option eta {eta:?} is not an ISO 8601 time"))
                })?),
                (None, Some(countdown)) if countdown > 0.0 => {
                    Some(now + chrono::Duration::milliseconds((countdown * 1000.0) as i64))
                }
                _ => None,
            };
        headers.expires = match options.get("expires") {
            Some(Value::String(expires)) => {
                Some(super::time::parse_iso(expires).ok_or_else(|| {
                    invalid(format!(
                        "option expires {expires:?} is not an ISO 8601 time"
                    ))
                })?)
            }
            Some(Value::Number(seconds)) => seconds
                .as_f64()
                .map(|seconds| now + chrono::Duration::milliseconds((seconds * 1000.0) as i64)),
            _ => None,
        };
        headers.timelimit = (seconds("time_limit"), seconds("soft_time_limit"));
        if let Some(Value::Object(extra)) = options.get("headers") {
            for (name, value) in extra {
                headers.extra.insert(name.clone(), value.clone());
            }
        }
        if let Some(stamped) = options.get("stamped_headers") {
            headers.stamped_headers = stamped.clone();
        }
        let embed = &mut message.embed;
        embed.callbacks = list_option(options.get("link"));
        embed.errbacks = list_option(options.get("link_error"));
        embed.chain = options.get("chain").cloned().unwrap_or(Value::Null);
        embed.chord = options.get("chord").cloned().unwrap_or(Value::Null);
        Ok(message)
    }
}

/// `link`/`link_error` as the embed carries them: a list, or null.
fn list_option(value: Option<&Value>) -> Value {
    match value {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Array(list)) if list.is_empty() => Value::Null,
        Some(list @ Value::Array(_)) => list.clone(),
        Some(single) => Value::Array(vec![single.clone()]),
    }
}

fn push_option(options: &mut Map<String, Value>, name: &str, value: Value) {
    match options.get_mut(name) {
        Some(Value::Array(list)) => list.push(value),
        Some(single @ Value::Object(_)) => {
            let first = single.take();
            *single = Value::Array(vec![first, value]);
        }
        _ => {
            options.insert(name.to_owned(), Value::Array(vec![value]));
        }
    }
}

/// The signatures of an embed or option field: `null`, one dict, or a list of dicts.
pub fn signatures(value: &Value) -> Result<Vec<Signature>, ProtocolError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(Signature::from_value).collect(),
        Value::Object(_) => Ok(vec![Signature::from_value(value)?]),
        other => Err(invalid(format!("expected signatures, got {other}"))),
    }
}

/// The `children` entry of one sent task: `[[id, null], null]`.
pub fn child_of_task(task_id: &str) -> Value {
    json!([[task_id, null], null])
}

/// The `children` entry of a sent group: `[[gid, null], [member entries…]]`.
pub fn child_of_group(group_id: &str, members: Vec<Value>) -> Value {
    json!([[group_id, null], members])
}

/// One entry of a chord's `.j` list: `[1, task_id, state, result]`, Celery's encoding.
pub fn chord_part(task_id: &str, state: &str, result: &Value) -> String {
    json!([1, task_id, state, result]).to_string()
}

/// Reads a `.j` entry back: (task id, state, result).
pub fn parse_chord_part(raw: &[u8]) -> Result<(String, String, Value), ProtocolError> {
    let value: Value = serde_json::from_slice(raw).map_err(|error| ProtocolError::InvalidBody {
        reason: format!("chord part is not JSON (compressed results are not supported): {error}"),
    })?;
    match value.as_array().map(Vec::as_slice) {
        Some([_, Value::String(task_id), Value::String(state), result]) => {
            Ok((task_id.clone(), state.clone(), result.clone()))
        }
        _ => Err(invalid(format!("chord part of an unknown shape: {value}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_captured_chain_step_and_chord_body() {
        let step = json!({"task": "proj.mul", "args": [10], "kwargs": {}, "options": {"task_id": "b", "reply_to": "r"}, "subtask_type": null, "immutable": false});
        let signature = Signature::from_value(&step).unwrap();
        assert_eq!(signature.task_id(), Some("b"));
        assert_eq!(signature.shape().unwrap(), Shape::Task);
        assert_eq!(
            signature.merged_args(&[json!(4)]),
            vec![json!(4), json!(10)]
        );
        assert_eq!(
            signature.clone().immutable().merged_args(&[json!(4)]),
            vec![json!(10)]
        );
        assert_eq!(signature.to_value(), step);
    }

    #[test]
    fn tells_chains_groups_and_chords_apart() {
        let add = Signature::new("a").to_value();
        let chain = json!({"task": "celery.chain", "args": [], "kwargs": {"tasks": [add, add]}, "options": {}, "subtask_type": "chain", "immutable": false});
        assert!(
            matches!(Signature::from_value(&chain).unwrap().shape().unwrap(), Shape::Chain(steps) if steps.len() == 2)
        );
        let group = json!({"task": "celery.group", "args": [], "kwargs": {"tasks": [add]}, "options": {}, "subtask_type": "group", "immutable": false});
        let chord = json!({"task": "celery.chord", "args": [], "kwargs": {"header": group, "body": add, "kwargs": {}}, "options": {}, "subtask_type": "chord", "immutable": false});
        match Signature::from_value(&chord).unwrap().shape().unwrap() {
            Shape::Chord { header, body } => {
                assert_eq!(header.len(), 1);
                assert_eq!(body.task, "a");
            }
            other => panic!("{other:?}"),
        }
        let odd = json!({"task": "x", "subtask_type": "regroup"});
        assert!(Signature::from_value(&odd).unwrap().shape().is_err());
    }

    #[test]
    fn chord_parts_round_trip() {
        let raw = chord_part("t", "SUCCESS", &json!(4));
        assert_eq!(raw, r#"[1,"t","SUCCESS",4]"#);
        let (id, state, result) =
            parse_chord_part(br#"[1, "t", "FAILURE", {"exc_type": "ValueError"}]"#).unwrap();
        assert_eq!((id.as_str(), state.as_str()), ("t", "FAILURE"));
        assert_eq!(result["exc_type"], json!("ValueError"));
    }
}
