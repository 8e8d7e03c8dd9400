//! [`Event`]: one decoded Celery event, and [`decode_events`], which reads the events out of a
//! raw kombu envelope from the `celeryev` fanout.
//!
//! Receivers see untrusted bytes, so decoding never panics and tolerates what it can: a
//! `task.multi` list with one bad element yields the good ones and counts the bad one; a
//! missing `clock`, `pid` or `utcoffset` reads as 0 (Celery's receiver fills a missing clock
//! from its own); `utcoffset` may be an int (Celery 5.4) or a float (5.7). Only the envelope
//! fields decoding needs are parsed (body, content type, body encoding), borrowed from the raw
//! bytes, so a batch of 24 events costs one envelope parse, one base64 decode and one JSON pass.

use super::kind::EventKind;
use crate::protocol::ProtocolError;
use base64::Engine;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// One Celery event, decoded.
///
/// The fields every event carries (wire doc §4.2) are typed; the type-specific ones (`uuid`,
/// `name`, `result`, `runtime`, `freq`, `processed`, …, §4.3) stay in [`Event::fields`] in wire
/// order, exactly as sent, so a consumer that stores events (the SQL history) loses nothing.
/// Serializes back to Celery's wire layout (`hostname, utcoffset, pid, clock, <fields>,
/// timestamp, type`).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The `type`, e.g. [`EventKind::TaskSucceeded`].
    pub kind: EventKind,
    /// Node name of the sender (`w1@host`; producers are `gen<pid>@host`).
    pub hostname: String,
    /// The sender's Lamport clock (meaningless for `task-sent`: producers do not sync clocks).
    pub clock: u64,
    /// Epoch seconds at sending, by the sender's clock.
    pub timestamp: f64,
    /// The sender's UTC offset in hours, negated as Python's `time.timezone // 3600`.
    pub utcoffset: i64,
    /// The sender's main process id.
    pub pid: u32,
    /// Every other field, in wire order.
    pub fields: Map<String, Value>,
}

impl Event {
    /// An event with no type-specific fields (add them to [`Event::fields`]).
    pub fn new(kind: EventKind, hostname: impl Into<String>, clock: u64, timestamp: f64) -> Event {
        Event {
            kind,
            hostname: hostname.into(),
            clock,
            timestamp,
            utcoffset: 0,
            pid: 0,
            fields: Map::new(),
        }
    }

    /// The task id of a task event (`uuid`).
    pub fn uuid(&self) -> Option<&str> {
        self.str_field("uuid")
    }

    /// A text field, `None` when absent, null or not text.
    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    /// A numeric field as a float (ints accepted).
    pub fn f64_field(&self, name: &str) -> Option<f64> {
        self.fields.get(name).and_then(Value::as_f64)
    }

    /// A non-negative integer field (a float with no fraction accepted, as Python may send).
    pub fn u64_field(&self, name: &str) -> Option<u64> {
        let value = self.fields.get(name)?;
        value.as_u64().or_else(|| {
            value
                .as_f64()
                .filter(|number| number.fract() == 0.0 && *number >= 0.0)
                .map(|number| number as u64)
        })
    }

    /// A boolean field.
    pub fn bool_field(&self, name: &str) -> Option<bool> {
        self.fields.get(name).and_then(Value::as_bool)
    }

    /// The event as Celery's JSON object.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("an event is plain JSON and always serializes")
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len() + 6))?;
        map.serialize_entry("hostname", &self.hostname)?;
        map.serialize_entry("utcoffset", &self.utcoffset)?;
        map.serialize_entry("pid", &self.pid)?;
        map.serialize_entry("clock", &self.clock)?;
        for (key, value) in &self.fields {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry("timestamp", &self.timestamp)?;
        map.serialize_entry("type", self.kind.as_str())?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(EventVisitor)?
            .ok_or_else(|| de::Error::missing_field("type"))
    }
}

/// Reads one event object; `None` when it has no text `type` (not an event).
struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Option<Event>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a Celery event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut kind = None;
        let mut event = Event::new(EventKind::TaskSent, String::new(), 0, 0.0);
        while let Some(key) = access.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "type" => {
                    kind = access.next_value::<Value>()?.as_str().map(EventKind::parse);
                }
                "hostname" => {
                    if let Value::String(hostname) = access.next_value::<Value>()? {
                        event.hostname = hostname;
                    }
                }
                "clock" => event.clock = as_u64(&access.next_value::<Value>()?),
                "pid" => {
                    event.pid =
                        u32::try_from(as_u64(&access.next_value::<Value>()?)).unwrap_or(u32::MAX)
                }
                "timestamp" => {
                    event.timestamp = access.next_value::<Value>()?.as_f64().unwrap_or(0.0)
                }
                "utcoffset" => {
                    let offset = access.next_value::<Value>()?.as_f64().unwrap_or(0.0);
                    event.utcoffset = if offset.is_finite() {
                        offset.round() as i64
                    } else {
                        0
                    };
                }
                _ => {
                    let value = access.next_value::<Value>()?;
                    event.fields.insert(key.into_owned(), value);
                }
            }
        }
        Ok(kind.map(|kind| Event { kind, ..event }))
    }
}

fn as_u64(value: &Value) -> u64 {
    value
        .as_u64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|number| number.is_finite() && *number >= 0.0)
                .map(|number| number as u64)
        })
        .unwrap_or(0)
}

/// One element of a `task.multi` list: an event, or anything else (skipped and counted).
struct ElementSeed;

impl<'de> DeserializeSeed<'de> for ElementSeed {
    type Value = Option<Event>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(ElementVisitor)
    }
}

struct ElementVisitor;

macro_rules! not_an_event {
    ($($method:ident: $type:ty),*) => {
        $(fn $method<E: de::Error>(self, _value: $type) -> Result<Self::Value, E> {
            Ok(None)
        })*
    };
}

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = Option<Event>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Self::Value, A::Error> {
        EventVisitor.visit_map(access)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        while access.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    not_an_event!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
}

/// The body: one event, or a list of them (`task.multi`), appended to `out`.
struct BodySeed<'a> {
    out: &'a mut Vec<Event>,
    skipped: &'a mut usize,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an event object or a list of them")
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<(), A::Error> {
        match EventVisitor.visit_map(access)? {
            Some(event) => self.out.push(event),
            None => *self.skipped += 1,
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        while let Some(element) = access.next_element_seed(ElementSeed)? {
            match element {
                Some(event) => self.out.push(event),
                None => *self.skipped += 1,
            }
        }
        Ok(())
    }
}

/// The parts of kombu's envelope that decoding an event needs, borrowed from the raw bytes.
#[derive(Deserialize)]
struct EventEnvelope<'a> {
    #[serde(borrow)]
    body: Cow<'a, str>,
    #[serde(rename = "content-type", default, borrow)]
    content_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    properties: EventProperties<'a>,
}

#[derive(Deserialize, Default)]
struct EventProperties<'a> {
    #[serde(default, borrow)]
    body_encoding: Option<Cow<'a, str>>,
}

/// Decodes the events of one raw envelope from the `celeryev` fanout and appends them to
/// `out`; `scratch` is reused for the base64-decoded body. Returns how many objects were not
/// events (no `type`) or list elements not objects, all skipped; an envelope or body that is not
/// JSON of that shape is an error and appends nothing.
pub fn decode_events(
    raw: &[u8],
    scratch: &mut Vec<u8>,
    out: &mut Vec<Event>,
) -> Result<usize, ProtocolError> {
    let envelope: EventEnvelope<'_> =
        serde_json::from_slice(raw).map_err(|error| ProtocolError::InvalidEnvelope {
            reason: error.to_string(),
        })?;
    match envelope.content_type.as_deref() {
        Some("application/json") => {}
        other => {
            return Err(ProtocolError::UnsupportedContentType {
                content_type: other.unwrap_or_default().to_owned(),
            })
        }
    }
    let body: &[u8] = match envelope.properties.body_encoding.as_deref() {
        Some("base64") => {
            scratch.clear();
            base64::engine::general_purpose::STANDARD
                .decode_vec(envelope.body.as_bytes(), scratch)
                .map_err(|_| ProtocolError::InvalidBase64)?;
            scratch
        }
        _ => envelope.body.as_bytes(),
    };
    let mut skipped = 0;
    let before = out.len();
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = BodySeed {
        out: &mut *out,
        skipped: &mut skipped,
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end());
    if let Err(error) = parsed {
        // A body cut off half-way may have yielded some events already; a message is all or
        // nothing, so a consumer never sees half a batch it cannot account for.
        out.truncate(before);
        return Err(ProtocolError::InvalidBody {
            reason: error.to_string(),
        });
    }
    Ok(skipped)
}
