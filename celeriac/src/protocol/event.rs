//! Celery events (`celeryev` exchange): what monitors such as Flower and `celery events` read.
//!
//! | field | meaning |
//! |---|---|
//! | `hostname` | node name of the sender |
//! | `utcoffset` | the sender's UTC offset in hours, **negated** as Python's `time.timezone // 3600` |
//! | `pid` | the sender's process id |
//! | `clock` | the sender's Lamport clock |
//! | type-specific fields | e.g. `uuid`, `name`, `runtime`, `freq`, `processed` (wire doc §4.3) |
//! | `timestamp` | epoch seconds at sending |
//! | `type` | e.g. `task-succeeded`, `worker-heartbeat` |
//!
//! On Redis the exchange is fanout, so events travel over PUB/SUB on
//! `/<db>.celeryev/<routing key>`, the routing key being the type with `-` replaced by `.`.
//! Workers send task events batched as a JSON list on `task.multi`; receivers accept both.
//!
//! Building events is here ([`event`], [`envelope`]); reading them is [`Event`] and
//! [`decode_events`] (`typed`), with the type as [`EventKind`] (`kind`).

#[cfg(test)]
mod decode_tests;
mod kind;
pub mod task_fields;
mod typed;

pub use kind::{EventGroup, EventKind};
pub use typed::{decode_events, Event};

use super::envelope::{DeliveryInfo, Envelope, Properties};
use super::ProtocolError;
use serde_json::{Map, Value};

/// The events exchange.
pub const EVENT_EXCHANGE: &str = "celeryev";

/// The routing key Celery uses for batched task events.
pub const TASK_MULTI: &str = "task.multi";

/// What a worker's `worker-online`, `worker-heartbeat` and `worker-offline` events say of it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerPresence {
    /// Seconds between heartbeats (`freq`).
    pub frequency: f64,
    /// Tasks running now.
    pub active: usize,
    /// Task runs started since the worker started.
    pub processed: u64,
    /// The 1, 5 and 15 minute load averages.
    pub load_average: [f64; 3],
    /// `sw_ver`: the worker's version.
    pub version: &'static str,
}

impl WorkerPresence {
    /// The event's fields, as Celery sends them (`sw_ident` names the implementation).
    pub fn fields(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("freq".into(), Value::from(self.frequency));
        fields.insert("active".into(), Value::from(self.active));
        fields.insert("processed".into(), Value::from(self.processed));
        fields.insert(
            "loadavg".into(),
            Value::Array(
                self.load_average
                    .iter()
                    .map(|load| Value::from(*load))
                    .collect(),
            ),
        );
        fields.insert("sw_ident".into(), Value::from("celeriac"));
        fields.insert("sw_ver".into(), Value::from(self.version));
        fields.insert(
            "sw_sys".into(),
            Value::from(std::env::consts::OS.replace("linux", "Linux")),
        );
        fields
    }
}

/// The common part every event carries.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSource {
    /// Node name of the sender.
    pub hostname: String,
    /// Process id of the sender.
    pub pid: u32,
    /// Python's `time.timezone // 3600`: the local UTC offset in hours, negated.
    pub utcoffset: i64,
}

/// Builds one event as Celery orders its fields: `hostname, utcoffset, pid, clock, <fields>,
/// timestamp, type`.
pub fn event(
    source: &EventSource,
    kind: &str,
    clock: u64,
    timestamp: f64,
    fields: Map<String, Value>,
) -> Value {
    let mut event = Map::new();
    event.insert("hostname".into(), Value::String(source.hostname.clone()));
    event.insert("utcoffset".into(), Value::from(source.utcoffset));
    event.insert("pid".into(), Value::from(source.pid));
    event.insert("clock".into(), Value::from(clock));
    for (key, value) in fields {
        event.insert(key, value);
    }
    event.insert("timestamp".into(), Value::from(timestamp));
    event.insert("type".into(), Value::String(kind.to_owned()));
    Value::Object(event)
}

/// The routing key of an event type: `task-succeeded` → `task.succeeded`.
pub fn routing_key(kind: &str) -> String {
    kind.replace('-', ".")
}

/// The kombu envelope of an event body (one event, or a list for `task.multi`).
pub fn envelope(body: &Value, hostname: &str, routing_key: &str, delivery_tag: String) -> Envelope {
    let mut headers = Map::new();
    headers.insert("hostname".into(), Value::String(hostname.to_owned()));
    Envelope {
        body: Envelope::encode_body(body),
        content_encoding: Some("utf-8".into()),
        content_type: Some("application/json".into()),
        headers,
        properties: Properties {
            correlation_id: None,
            reply_to: None,
            delivery_mode: Some(1),
            delivery_info: DeliveryInfo {
                exchange: EVENT_EXCHANGE.into(),
                routing_key: routing_key.into(),
                redelivered: None,
            },
            priority: Some(0),
            body_encoding: Some("base64".into()),
            delivery_tag,
            expiration: None,
            extra: Map::new(),
        },
    }
}

/// The events in an envelope: one object, or each object of a `task.multi` list.
pub fn decode(envelope: &Envelope) -> Result<Vec<Map<String, Value>>, ProtocolError> {
    match envelope.body_json()? {
        Value::Object(event) => Ok(vec![event]),
        Value::Array(events) => Ok(events
            .into_iter()
            .filter_map(|event| match event {
                Value::Object(event) => Some(event),
                _ => None,
            })
            .collect()),
        _ => Err(ProtocolError::InvalidBody {
            reason: "an event is a JSON object or a list of them".into(),
        }),
    }
}

/// Python's `time.timezone // 3600` (or `altzone` in summer time) for a local offset east of
/// UTC in seconds: the offset negated, in whole hours, rounded down.
pub fn python_utcoffset(local_minus_utc_seconds: i64) -> i64 {
    (-local_minus_utc_seconds).div_euclid(3600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_look_like_celerys() {
        let source = EventSource {
            hostname: "w1@vm".into(),
            pid: 12579,
            utcoffset: 0,
        };
        let mut fields = Map::new();
        fields.insert("uuid".into(), json!("9e3b8caa"));
        let event = event(&source, "task-started", 61, 1795487562.72485, fields);
        let text = event.to_string();
        assert!(
            text.starts_with(
                r#"{"hostname":"w1@vm","utcoffset":0,"pid":12579,"clock":61,"uuid":"9e3b8caa""#
            ),
            "{text}"
        );
        assert!(text.ends_with(r#""type":"task-started"}"#));
        assert_eq!(routing_key("worker-heartbeat"), "worker.heartbeat");
        let envelope = envelope(&json!([event.clone()]), "w1@vm", TASK_MULTI, "tag".into());
        assert_eq!(
            decode(&envelope).unwrap(),
            vec![event.as_object().unwrap().clone()]
        );
    }

    #[test]
    fn utcoffset_has_pythons_sign() {
        assert_eq!(python_utcoffset(0), 0);
        assert_eq!(python_utcoffset(2 * 3600), -2);
        assert_eq!(python_utcoffset(-5 * 3600), 5);
        assert_eq!(
            python_utcoffset(5 * 3600 + 1800),
            -6,
            "India: -19800 // 3600 = -6 in Python"
        );
    }

    #[test]
    fn captured_celery_events_have_our_field_order() {
        let captured = include_str!("../../tests/fixtures/events/events_examples.json");
        let captured: Map<String, Value> = serde_json::from_str(captured).unwrap();
        let mut checked = 0;
        for (name, example) in captured
            .iter()
            .filter(|(name, _)| !name.starts_with("control"))
        {
            let Some(original) = example["event"].as_object() else {
                continue;
            };
            let source = EventSource {
                hostname: original["hostname"].as_str().unwrap().into(),
                pid: original["pid"].as_u64().unwrap() as u32,
                utcoffset: original["utcoffset"].as_i64().unwrap_or(0),
            };
            let fields: Map<String, Value> = original
                .iter()
                .filter(|(key, _)| {
                    !["hostname", "utcoffset", "pid", "clock", "timestamp", "type"]
                        .contains(&key.as_str())
                })
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            let rebuilt = event(
                &source,
                original["type"].as_str().unwrap(),
                original["clock"].as_u64().unwrap(),
                original["timestamp"].as_f64().unwrap(),
                fields,
            );
            let keys: Vec<&String> = rebuilt.as_object().unwrap().keys().collect();
            let expected: Vec<&String> = original.keys().collect();
            assert_eq!(keys, expected, "{name}");
            assert_eq!(&Value::Object(original.clone()), &rebuilt, "{name}");
            checked += 1;
        }
        assert!(checked >= 10, "checked {checked} event types");
    }
}
