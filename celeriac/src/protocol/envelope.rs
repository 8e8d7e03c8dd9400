//! The kombu envelope: the JSON document stored in a Redis list for every message.
//!
//! Task messages, events and control messages all travel in it. The payload sits in `body`,
//! base64-encoded when `properties.body_encoding` is `base64` (kombu's default) and verbatim
//! otherwise. `properties.delivery_tag` is the key of the in-flight record in `unacked`, and
//! `delivery_info` must carry both `exchange` and `routing_key`, or kombu's bookkeeping in a
//! Python worker raises `KeyError` and takes the whole worker down (wire doc §2.7 E/F).

use super::ProtocolError;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One kombu message as stored in Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The serialized payload, base64-encoded when `properties.body_encoding` says so.
    pub body: String,
    /// Charset of the serialized payload; `utf-8` for JSON.
    #[serde(
        rename = "content-encoding",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub content_encoding: Option<String>,
    /// MIME type of the serializer; only `application/json` is accepted.
    #[serde(
        rename = "content-type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub content_type: Option<String>,
    /// Application headers (Celery's protocol-2 header map for tasks).
    #[serde(default)]
    pub headers: Map<String, Value>,
    /// Transport properties.
    pub properties: Properties,
}

/// kombu's message properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Properties {
    /// The task id for task messages (used by the RPC backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The producer's reply queue id (used by the RPC backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// 2 for persistent messages; meaningless on Redis but written for AMQP parity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_mode: Option<u8>,
    /// Where the message was published.
    pub delivery_info: DeliveryInfo,
    /// 0..=9; on Redis a lower number is served first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// `base64` (kombu's default) or absent for a verbatim body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_encoding: Option<String>,
    /// Fresh UUID4 per publish: the key of the in-flight record in `unacked`.
    pub delivery_tag: String,
    /// Remaining lifetime in milliseconds as text, written when a task has `expires`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    /// Properties this version does not know, kept so a restore writes them back.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The exchange and routing key a message was published with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryInfo {
    /// `""` (the anonymous exchange) for every direct Celery queue.
    pub exchange: String,
    /// The queue name when the exchange is anonymous.
    pub routing_key: String,
    /// Set by kombu when the message was restored from `unacked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redelivered: Option<bool>,
}

impl Envelope {
    /// Parses an envelope as stored in a Redis list.
    pub fn from_json(raw: &[u8]) -> Result<Envelope, ProtocolError> {
        serde_json::from_slice(raw).map_err(|error| ProtocolError::InvalidEnvelope {
            reason: error.to_string(),
        })
    }

    /// Serializes the envelope for Redis.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an envelope is plain JSON and always serializes")
    }

    /// The payload bytes, decoded from base64 when the envelope says so.
    pub fn body_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        match self.properties.body_encoding.as_deref() {
            Some("base64") => base64::engine::general_purpose::STANDARD
                .decode(self.body.as_bytes())
                .map_err(|_| ProtocolError::InvalidBase64),
            _ => Ok(self.body.clone().into_bytes()),
        }
    }

    /// The payload parsed as JSON, refusing content types other than JSON like Celery's
    /// default `accept_content = ["json"]` does.
    pub fn body_json(&self) -> Result<Value, ProtocolError> {
        match self.content_type.as_deref() {
            Some("application/json") => {}
            Some(other) => {
                return Err(ProtocolError::UnsupportedContentType {
                    content_type: other.to_owned(),
                })
            }
            None => {
                return Err(ProtocolError::UnsupportedContentType {
                    content_type: String::new(),
                })
            }
        }
        let bytes = self.body_bytes()?;
        serde_json::from_slice(&bytes).map_err(|error| ProtocolError::InvalidBody {
            reason: error.to_string(),
        })
    }

    /// Encodes a JSON payload into `body` the way kombu does by default (base64).
    pub fn encode_body(payload: &Value) -> String {
        let text = serde_json::to_string(payload).expect("JSON values always serialize");
        base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
    }

    /// The priority bucket index this message belongs to, following kombu: clamp to 0..=9,
    /// then the largest step that is not above it.
    pub fn priority(&self) -> u8 {
        clamp_priority(self.properties.priority)
    }

    /// Whether the message was restored from `unacked` before: kombu marks
    /// `delivery_info.redelivered`, Celery's own restore marks the `redelivered` header.
    pub fn redelivered(&self) -> bool {
        self.properties.delivery_info.redelivered.unwrap_or(false)
            || self
                .headers
                .get("redelivered")
                .and_then(Value::as_bool)
                .unwrap_or(false)
    }
}

/// The `id` and `task` headers of raw envelope JSON that may not decode as a task message,
/// as far as they are strings; everything else is skipped, not built, so naming a huge message
/// costs no copy of it. The dead-letter path names a broken message by these.
pub fn identify(raw: &str) -> (Option<String>, Option<String>) {
    #[derive(Deserialize)]
    struct Named {
        #[serde(default)]
        headers: Ids,
    }
    #[derive(Deserialize, Default)]
    struct Ids {
        #[serde(default)]
        id: Option<Value>,
        #[serde(default)]
        task: Option<Value>,
    }
    let Ok(named) = serde_json::from_str::<Named>(raw) else {
        return (None, None);
    };
    let text = |value: Option<Value>| match value {
        Some(Value::String(text)) if !text.is_empty() => Some(text),
        _ => None,
    };
    (text(named.headers.id), text(named.headers.task))
}

/// Clamps a priority as kombu does: missing or negative → 0, above 9 → 9.
pub fn clamp_priority(priority: Option<i64>) -> u8 {
    priority.unwrap_or(0).clamp(0, 9) as u8
}

/// Marks a raw envelope as redelivered, as kombu's restore does, keeping everything else
/// (including fields this version does not know) exactly as it was.
pub fn mark_redelivered(envelope: &mut Value) {
    if let Some(headers) = envelope.get_mut("headers").and_then(Value::as_object_mut) {
        headers.insert("redelivered".to_owned(), Value::Bool(true));
    }
    if let Some(info) = envelope
        .get_mut("properties")
        .and_then(|properties| properties.get_mut("delivery_info"))
        .and_then(Value::as_object_mut)
    {
        info.insert("redelivered".to_owned(), Value::Bool(true));
    }
}
