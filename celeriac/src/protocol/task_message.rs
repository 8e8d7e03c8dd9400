//! Celery's task message, protocol v2 (`[args, kwargs, embed]` body plus headers), with
//! decoding of protocol v1 messages (everything in a dict body) as Celery 5 still accepts them.
//!
//! Decoding is lenient where Python Celery is lenient (missing optional headers, naive ISO
//! times, `null` embed) and strict where a Python worker would crash (wire doc §2.7): a message
//! without `task`/`id`, a body that is not a 3-element array, or a payload that is not JSON is an
//! error the worker turns into a dead letter. Encoding always writes Celery's full header set,
//! in Celery's key order, so a Python worker sees exactly what a Python producer would send.

use super::content::has_reserved_shape;
use super::envelope::{DeliveryInfo, Envelope, Properties};
use super::time::{format_iso, parse_iso};
use super::ProtocolError;
use crate::types::{python_args_repr, python_repr, TaskId};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// The protocol-2 headers of a task message.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskHeaders {
    /// The producer's language (`py` for Python; we write `rs`).
    pub lang: Option<String>,
    /// The registered task name.
    pub task: String,
    /// The task id; retries keep it.
    pub id: TaskId,
    /// An alternative display name.
    pub shadow: Option<String>,
    /// Not before this time (countdown is converted to an eta by the producer).
    pub eta: Option<DateTime<Utc>>,
    /// After this time the task is revoked as expired instead of run.
    pub expires: Option<DateTime<Utc>>,
    /// Group id for group and chord members.
    pub group: Option<String>,
    /// Position in the group.
    pub group_index: Option<i64>,
    /// How many times the task was retried before this delivery.
    pub retries: u32,
    /// `(hard, soft)` time limits in seconds; hard comes first on the wire.
    pub timelimit: (Option<f64>, Option<f64>),
    /// The first task of the workflow.
    pub root_id: Option<String>,
    /// The task that sent this one.
    pub parent_id: Option<String>,
    /// Python `repr` of args, for logs and events.
    pub argsrepr: Option<String>,
    /// Python `repr` of kwargs, for logs and events.
    pub kwargsrepr: Option<String>,
    /// The producer's node name, e.g. `gen1234@host`.
    pub origin: Option<String>,
    /// Do not store the result.
    pub ignore_result: bool,
    /// Depth of `Task.replace()` nesting.
    pub replaced_task_nesting: i64,
    /// Names of stamp headers (Celery's stamping API), `null` when none.
    pub stamped_headers: Value,
    /// Stamp values.
    pub stamps: Map<String, Value>,
    /// Every other header (user headers such as `periodic_task_name`, and `redelivered`).
    pub extra: Map<String, Value>,
}

/// The workflow part of the body: links, error links, chain and chord, kept as Celery's
/// signature dicts so they survive a round trip untouched.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Embed {
    /// Signatures to call with the result on success (`link`).
    pub callbacks: Value,
    /// Signatures to call on failure (`link_error`).
    pub errbacks: Value,
    /// The rest of a chain, in reverse order.
    pub chain: Value,
    /// The chord body signature.
    pub chord: Value,
}

impl Embed {
    /// Whether the message asks for nothing after it.
    pub fn is_empty(&self) -> bool {
        [&self.callbacks, &self.errbacks, &self.chain, &self.chord]
            .iter()
            .all(|part| part.is_null() || part.as_array().is_some_and(Vec::is_empty))
    }

    /// The embed as the body carries it: `{callbacks, errbacks, chain, chord}`.
    pub fn to_value(&self) -> Value {
        json!({
            "callbacks": self.callbacks,
            "errbacks": self.errbacks,
            "chain": self.chain,
            "chord": self.chord,
        })
    }

    /// Reads an embed written by [`Embed::to_value`] (missing parts are null).
    pub fn from_value(value: &Value) -> Embed {
        let part = |name: &str| value.get(name).cloned().unwrap_or(Value::Null);
        Embed {
            callbacks: part("callbacks"),
            errbacks: part("errbacks"),
            chain: part("chain"),
            chord: part("chord"),
        }
    }
}

/// A decoded task message.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskMessage {
    /// Protocol-2 headers (synthesized from the body for protocol-1 messages).
    pub headers: TaskHeaders,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Map<String, Value>,
    /// Workflow signatures.
    pub embed: Embed,
    /// Properties beyond kombu's standard set (Celery's retries add `origin`), kept so a
    /// message re-encodes as it came.
    pub extra_properties: Map<String, Value>,
}

/// Where and how a message is published.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishTarget {
    /// The exchange; `""` for the anonymous exchange Celery uses for direct queues.
    pub exchange: String,
    /// The queue name when the exchange is anonymous.
    pub routing_key: String,
    /// 0..=9 (kombu clamps).
    pub priority: u8,
    /// The producer's reply queue id.
    pub reply_to: String,
}

impl TaskMessage {
    /// A protocol-2 message for `task` with Celery's defaults for every header.
    pub fn new(
        task: impl Into<String>,
        id: TaskId,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Self {
        let root_id = Some(id.0.clone());
        TaskMessage {
            headers: TaskHeaders {
                lang: Some("py".to_owned()),
                task: task.into(),
                id,
                shadow: None,
                eta: None,
                expires: None,
                group: None,
                group_index: None,
                retries: 0,
                timelimit: (None, None),
                root_id,
                parent_id: None,
                argsrepr: None,
                kwargsrepr: None,
                origin: None,
                ignore_result: false,
                replaced_task_nesting: 0,
                stamped_headers: Value::Null,
                stamps: Map::new(),
                extra: Map::new(),
            },
            args,
            kwargs,
            embed: Embed::default(),
            extra_properties: Map::new(),
        }
    }

    /// Decodes a task message from its envelope (protocol v2, or v1 when `task` is not a header).
    pub fn decode(envelope: &Envelope) -> Result<TaskMessage, ProtocolError> {
        let body = envelope.body_json()?;
        let mut message = if envelope.headers.contains_key("task") {
            decode_v2(&envelope.headers, body)?
        } else {
            decode_v1(body)?
        };
        message.extra_properties = envelope.properties.extra.clone();
        Ok(message)
    }

    /// The body `[args, kwargs, embed]` as JSON.
    pub fn body(&self) -> Value {
        Value::Array(vec![
            Value::Array(self.args.clone()),
            Value::Object(self.kwargs.clone()),
            self.embed.to_value(),
        ])
    }

    /// The `argsrepr` header, or Python's repr of the arguments when the producer sent none.
    pub fn args_repr(&self) -> String {
        self.headers
            .argsrepr
            .clone()
            .unwrap_or_else(|| python_args_repr(&self.args))
    }

    /// The `kwargsrepr` header, or Python's repr of the keyword arguments.
    pub fn kwargs_repr(&self) -> String {
        self.headers
            .kwargsrepr
            .clone()
            .unwrap_or_else(|| python_repr(&Value::Object(self.kwargs.clone())))
    }

    /// The headers as Celery writes them, in Celery's key order, user headers last.
    pub fn headers_json(&self) -> Map<String, Value> {
        let headers = &self.headers;
        let mut map = Map::new();
        map.insert("lang".into(), json!(headers.lang));
        map.insert("task".into(), json!(headers.task));
        map.insert("id".into(), json!(headers.id.0));
        map.insert("shadow".into(), json!(headers.shadow));
        map.insert("eta".into(), json!(headers.eta.map(format_iso)));
        map.insert("expires".into(), json!(headers.expires.map(format_iso)));
        map.insert("group".into(), json!(headers.group));
        map.insert("group_index".into(), json!(headers.group_index));
        map.insert("retries".into(), json!(headers.retries));
        map.insert(
            "timelimit".into(),
            json!([headers.timelimit.0, headers.timelimit.1]),
        );
        map.insert("root_id".into(), json!(headers.root_id));
        map.insert("parent_id".into(), json!(headers.parent_id));
        let argsrepr = self.args_repr();
        let kwargsrepr = self.kwargs_repr();
        map.insert("argsrepr".into(), json!(argsrepr));
        map.insert("kwargsrepr".into(), json!(kwargsrepr));
        map.insert("origin".into(), json!(headers.origin));
        map.insert("ignore_result".into(), json!(headers.ignore_result));
        map.insert(
            "replaced_task_nesting".into(),
            json!(headers.replaced_task_nesting),
        );
        map.insert("stamped_headers".into(), headers.stamped_headers.clone());
        map.insert("stamps".into(), Value::Object(headers.stamps.clone()));
        for (key, value) in &headers.extra {
            map.insert(key.clone(), value.clone());
        }
        map
    }

    /// Checks every rule that keeps a Python worker alive (wire doc §2.7) before we publish.
    pub fn validate_for_publish(&self) -> Result<(), ProtocolError> {
        let refuse = |reason: String| Err(ProtocolError::Unpublishable { reason });
        if self.headers.task.trim().is_empty() {
            return refuse("the task name is empty".into());
        }
        if self.headers.id.0.trim().is_empty() {
            return refuse("the task id is empty".into());
        }
        for (name, limit) in [
            ("hard", self.headers.timelimit.0),
            ("soft", self.headers.timelimit.1),
        ] {
            if let Some(seconds) = limit {
                if !seconds.is_finite() || seconds <= 0.0 {
                    return refuse(format!(
                        "the {name} time limit {seconds} is not a positive number"
                    ));
                }
            }
        }
        if self.args.iter().any(has_reserved_shape) || self.kwargs.values().any(has_reserved_shape)
        {
            return refuse(
                "an argument is an object with exactly the keys __type__ and __value__, \
                 which Python's kombu would decode as a typed value"
                    .into(),
            );
        }
        for reserved in ["task", "id", "retries", "eta", "expires", "timelimit"] {
            if self.headers.extra.contains_key(reserved) {
                return refuse(format!(
                    "extra header {reserved:?} would override Celery's own"
                ));
            }
        }
        Ok(())
    }

    /// Builds the kombu envelope for publishing, with a fresh delivery tag.
    pub fn to_envelope(
        &self,
        target: &PublishTarget,
        delivery_tag: String,
        now: DateTime<Utc>,
    ) -> Envelope {
        let expiration = self.headers.expires.map(|expires| {
            let milliseconds = (expires - now).num_milliseconds().max(0);
            milliseconds.to_string()
        });
        Envelope {
            body: Envelope::encode_body(&self.body()),
            content_encoding: Some("utf-8".to_owned()),
            content_type: Some("application/json".to_owned()),
            headers: self.headers_json(),
            properties: Properties {
                correlation_id: Some(self.headers.id.0.clone()),
                reply_to: Some(target.reply_to.clone()),
                delivery_mode: Some(2),
                delivery_info: DeliveryInfo {
                    exchange: target.exchange.clone(),
                    routing_key: target.routing_key.clone(),
                    redelivered: None,
                },
                priority: Some(i64::from(target.priority.min(9))),
                body_encoding: Some("base64".to_owned()),
                delivery_tag,
                expiration,
                extra: self.extra_properties.clone(),
            },
        }
    }
}

fn decode_v2(headers: &Map<String, Value>, body: Value) -> Result<TaskMessage, ProtocolError> {
    let Value::Array(parts) = body else {
        return Err(ProtocolError::InvalidBody {
            reason: "body is not a JSON array".into(),
        });
    };
    if parts.len() != 3 {
        return Err(ProtocolError::InvalidBody {
            reason: format!(
                "body must be [args, kwargs, embed], got {} elements",
                parts.len()
            ),
        });
    }
    let mut parts = parts.into_iter();
    let args = parse_args(parts.next().unwrap_or(Value::Null))?;
    let kwargs = parse_kwargs(parts.next().unwrap_or(Value::Null))?;
    let embed = parse_embed(parts.next().unwrap_or(Value::Null))?;
    let task = required_string(headers, "task")?;
    let id = required_string(headers, "id")?;
    let mut extra = Map::new();
    for (key, value) in headers {
        if !KNOWN_HEADERS.contains(&key.as_str()) {
            extra.insert(key.clone(), value.clone());
        }
    }
    let task_headers = TaskHeaders {
        lang: optional_string(headers, "lang"),
        task,
        id: TaskId(id),
        shadow: optional_string(headers, "shadow"),
        eta: optional_time(headers, "eta")?,
        expires: optional_time(headers, "expires")?,
        group: optional_string(headers, "group"),
        group_index: headers.get("group_index").and_then(Value::as_i64),
        retries: retries(headers.get("retries"))?,
        timelimit: timelimit(headers.get("timelimit"))?,
        root_id: optional_string(headers, "root_id"),
        parent_id: optional_string(headers, "parent_id"),
        argsrepr: optional_string(headers, "argsrepr"),
        kwargsrepr: optional_string(headers, "kwargsrepr"),
        origin: optional_string(headers, "origin"),
        ignore_result: match headers.get("ignore_result") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(flag)) => *flag,
            Some(_) => {
                return Err(ProtocolError::InvalidHeader {
                    name: "ignore_result",
                    reason: "expected a boolean".into(),
                })
            }
        },
        replaced_task_nesting: headers
            .get("replaced_task_nesting")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        stamped_headers: headers
            .get("stamped_headers")
            .cloned()
            .unwrap_or(Value::Null),
        stamps: headers
            .get("stamps")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        extra,
    };
    Ok(TaskMessage {
        headers: task_headers,
        args,
        kwargs,
        embed,
        extra_properties: Map::new(),
    })
}

/// Protocol 1: `{"task", "id", "args", "kwargs", "retries", "eta", "expires", "timelimit",
/// "taskset", "callbacks", "errbacks", "chord", "utc"}` all in the body.
fn decode_v1(body: Value) -> Result<TaskMessage, ProtocolError> {
    let Value::Object(fields) = body else {
        return Err(ProtocolError::MissingHeader { name: "task" });
    };
    let task = required_string(&fields, "task")?;
    let id = required_string(&fields, "id")?;
    let args = parse_args(fields.get("args").cloned().unwrap_or(Value::Null))?;
    let kwargs = parse_kwargs(fields.get("kwargs").cloned().unwrap_or(Value::Null))?;
    let mut message = TaskMessage::new(task, TaskId(id), args, kwargs);
    message.headers.lang = None;
    message.headers.root_id = None;
    message.headers.retries = retries(fields.get("retries"))?;
    message.headers.eta = optional_time(&fields, "eta")?;
    message.headers.expires = optional_time(&fields, "expires")?;
    message.headers.timelimit = timelimit(fields.get("timelimit"))?;
    message.headers.group = optional_string(&fields, "taskset");
    message.embed.callbacks = fields.get("callbacks").cloned().unwrap_or(Value::Null);
    message.embed.errbacks = fields.get("errbacks").cloned().unwrap_or(Value::Null);
    message.embed.chord = fields.get("chord").cloned().unwrap_or(Value::Null);
    Ok(message)
}

const KNOWN_HEADERS: &[&str] = &[
    "lang",
    "task",
    "id",
    "shadow",
    "eta",
    "expires",
    "group",
    "group_index",
    "retries",
    "timelimit",
    "root_id",
    "parent_id",
    "argsrepr",
    "kwargsrepr",
    "origin",
    "ignore_result",
    "replaced_task_nesting",
    "stamped_headers",
    "stamps",
];

fn parse_args(value: Value) -> Result<Vec<Value>, ProtocolError> {
    match value {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        _ => Err(ProtocolError::InvalidBody {
            reason: "args is not a JSON array".into(),
        }),
    }
}

fn parse_kwargs(value: Value) -> Result<Map<String, Value>, ProtocolError> {
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err(ProtocolError::InvalidBody {
            reason: "kwargs is not a JSON object".into(),
        }),
    }
}

fn parse_embed(value: Value) -> Result<Embed, ProtocolError> {
    match value {
        Value::Null => Ok(Embed::default()),
        Value::Object(map) => Ok(Embed {
            callbacks: map.get("callbacks").cloned().unwrap_or(Value::Null),
            errbacks: map.get("errbacks").cloned().unwrap_or(Value::Null),
            chain: map.get("chain").cloned().unwrap_or(Value::Null),
            chord: map.get("chord").cloned().unwrap_or(Value::Null),
        }),
        _ => Err(ProtocolError::InvalidBody {
            reason: "embed is not a JSON object".into(),
        }),
    }
}

fn required_string(map: &Map<String, Value>, name: &'static str) -> Result<String, ProtocolError> {
    match map.get(name) {
        None | Some(Value::Null) => Err(ProtocolError::MissingHeader { name }),
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.clone()),
        Some(Value::String(_)) => Err(ProtocolError::InvalidHeader {
            name,
            reason: "empty string".into(),
        }),
        Some(_) => Err(ProtocolError::InvalidHeader {
            name,
            reason: "expected a string".into(),
        }),
    }
}

fn optional_string(map: &Map<String, Value>, name: &str) -> Option<String> {
    match map.get(name) {
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    }
}

fn optional_time(
    map: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<DateTime<Utc>>, ProtocolError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => {
            parse_iso(text)
                .map(Some)
                .ok_or_else(|| ProtocolError::InvalidHeader {
                    name,
                    reason: format!("{text:?} is not an ISO-8601 time"),
                })
        }
        Some(_) => Err(ProtocolError::InvalidHeader {
            name,
            reason: "expected an ISO-8601 string".into(),
        }),
    }
}

fn retries(value: Option<&Value>) -> Result<u32, ProtocolError> {
    match value {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(number)) => number
            .as_u64()
            .and_then(|count| u32::try_from(count).ok())
            .ok_or(ProtocolError::InvalidHeader {
                name: "retries",
                reason: format!("{number} is not a non-negative integer"),
            }),
        Some(_) => Err(ProtocolError::InvalidHeader {
            name: "retries",
            reason: "expected an integer".into(),
        }),
    }
}

fn timelimit(value: Option<&Value>) -> Result<(Option<f64>, Option<f64>), ProtocolError> {
    let invalid = |reason: &str| ProtocolError::InvalidHeader {
        name: "timelimit",
        reason: reason.into(),
    };
    match value {
        None | Some(Value::Null) => Ok((None, None)),
        Some(Value::Array(items)) if items.len() == 2 => {
            let limit = |item: &Value| match item {
                Value::Null => Ok(None),
                Value::Number(number) => match number.as_f64() {
                    Some(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok(Some(seconds)),
                    _ => Err(invalid("limits must be non-negative numbers")),
                },
                _ => Err(invalid("limits must be numbers or null")),
            };
            Ok((limit(&items[0])?, limit(&items[1])?))
        }
        Some(_) => Err(invalid("expected [hard, soft]")),
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
