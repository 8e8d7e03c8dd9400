//! Remote control (Celery's pidbox): broadcast commands and the replies workers send back.
//!
//! A client publishes `{method, arguments, destination, pattern, matcher, ticket, reply_to}` on
//! the fanout exchange `celery.pidbox` (PUB/SUB channel `/<db>.celery.pidbox`). Each worker the
//! command is for answers `{<node name>: <result>}` with headers `{ticket, clock}` to the
//! exchange `reply.celery.pidbox`, routed through the binding table to the client's reply list
//! (wire doc §5). Results are `{"ok": text}`, `{"error": text}` or plain data for inspections.

use super::envelope::{DeliveryInfo, Envelope, Properties};
use super::ProtocolError;
use serde_json::{json, Map, Value};

/// The broadcast exchange of control commands.
pub const CONTROL_EXCHANGE: &str = "celery.pidbox";

/// The exchange replies are routed through.
pub const REPLY_EXCHANGE: &str = "reply.celery.pidbox";

/// A decoded control command.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlRequest {
    /// The command, e.g. `ping`.
    pub method: String,
    /// Its keyword arguments.
    pub arguments: Map<String, Value>,
    /// Node names it is for; None = every worker.
    pub destination: Option<Vec<String>>,
    /// A node-name pattern it is for, with `matcher` `glob` or `pcre`.
    pub pattern: Option<(String, String)>,
    /// Present when the client waits for a reply.
    pub ticket: Option<String>,
    /// Where the reply goes: (exchange, routing key).
    pub reply_to: Option<(String, String)>,
}

impl ControlRequest {
    /// Decodes a broadcast envelope.
    pub fn decode(envelope: &Envelope) -> Result<ControlRequest, ProtocolError> {
        let body = envelope.body_json()?;
        let invalid = |reason: &str| ProtocolError::InvalidBody {
            reason: reason.to_owned(),
        };
        let method = body["method"]
            .as_str()
            .ok_or_else(|| invalid("control command without a method"))?;
        let destination = match &body["destination"] {
            Value::Array(nodes) => Some(
                nodes
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            ),
            Value::String(node) => Some(vec![node.clone()]),
            _ => None,
        };
        let pattern = match (body["pattern"].as_str(), body["matcher"].as_str()) {
            (Some(pattern), Some(matcher)) => Some((pattern.to_owned(), matcher.to_owned())),
            _ => None,
        };
        let reply_to = match (
            body["reply_to"]["exchange"].as_str(),
            body["reply_to"]["routing_key"].as_str(),
        ) {
            (Some(exchange), Some(routing_key)) => {
                Some((exchange.to_owned(), routing_key.to_owned()))
            }
            _ => None,
        };
        Ok(ControlRequest {
            method: method.to_owned(),
            arguments: body["arguments"].as_object().cloned().unwrap_or_default(),
            destination,
            pattern,
            ticket: body["ticket"].as_str().map(str::to_owned),
            reply_to,
        })
    }

    /// Whether node `node_name` is addressed. Patterns with the `pcre` matcher are not supported
    /// (no regex engine here) and address nobody.
    pub fn is_for(&self, node_name: &str) -> bool {
        if let Some(nodes) = &self.destination {
            return nodes.iter().any(|node| node == node_name);
        }
        if let Some((pattern, matcher)) = &self.pattern {
            return matcher == "glob" && crate::routing::fnmatch(pattern, node_name);
        }
        true
    }
}

/// The envelope of `node_name`'s reply to ticket `ticket`, routed to `routing_key`.
pub fn reply_envelope(
    node_name: &str,
    result: Value,
    ticket: &str,
    clock: u64,
    routing_key: &str,
    delivery_tag: String,
) -> Envelope {
    let mut headers = Map::new();
    headers.insert("ticket".into(), json!(ticket));
    headers.insert("clock".into(), json!(clock));
    let mut body = Map::new();
    body.insert(node_name.to_owned(), result);
    Envelope {
        body: Envelope::encode_body(&Value::Object(body)),
        content_encoding: Some("utf-8".into()),
        content_type: Some("application/json".into()),
        headers,
        properties: Properties {
            correlation_id: None,
            reply_to: None,
            delivery_mode: Some(1),
            delivery_info: DeliveryInfo {
                exchange: REPLY_EXCHANGE.into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_cli_and_flower_bodies() {
        let body = json!({"method": "rate_limit", "arguments": {"task_name": "proj.add", "rate_limit": "20/m"},
            "destination": ["w1@vm"], "pattern": null, "matcher": null, "ticket": "01eb34c6",
            "reply_to": {"exchange": "reply.celery.pidbox", "routing_key": "59665c2d"}});
        let envelope = Envelope {
            body: Envelope::encode_body(&body),
            content_encoding: Some("utf-8".into()),
            content_type: Some("application/json".into()),
            headers: Map::new(),
            properties: serde_json::from_value(
                json!({"delivery_tag": "t", "body_encoding": "base64",
                "delivery_info": {"exchange": "celery.pidbox", "routing_key": ""}}),
            )
            .unwrap(),
        };
        let request = ControlRequest::decode(&envelope).unwrap();
        assert_eq!(request.method, "rate_limit");
        assert!(request.is_for("w1@vm"));
        assert!(!request.is_for("w2@vm"));
        assert_eq!(
            request.reply_to,
            Some(("reply.celery.pidbox".into(), "59665c2d".into()))
        );
        let glob = ControlRequest {
            destination: None,
            pattern: Some(("w*@vm".into(), "glob".into())),
            ..request
        };
        assert!(glob.is_for("w7@vm"));
        assert!(!glob.is_for("x@vm"));
    }
}
