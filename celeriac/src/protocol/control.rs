//! Remote control (Celery's pidbox): broadcast commands and the replies workers send back.
//!
//! A client publishes `{method, arguments, destination, pattern, matcher, ticket, reply_to}` on
//! the fanout exchange `celery.pidbox` (PUB/SUB channel `/<db>.celery.pidbox`). Each worker the
//! command is for answers `{<node name>: <result>}` with headers `{ticket, clock}` to the
//! exchange `reply.celery.pidbox`, routed through the binding table to the client's reply list
//! (wire doc §5). Results are `{"ok": text}`, `{"error": text}` or plain data for inspections.
//!
//! Both ends live here: [`ControlRequest::decode`] and [`reply_envelope`] for the worker,
//! [`ControlRequest::to_envelope`] and [`ControlReply::decode`] for the client.

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

    /// The broadcast envelope, as kombu's `Mailbox._broadcast` publishes it: headers `clock`
    /// (the sender's Lamport clock) and `expires` (epoch seconds; workers do not check it),
    /// `ticket` and `reply_to` only when a reply is wanted.
    pub fn to_envelope(&self, clock: u64, expires: f64, delivery_tag: String) -> Envelope {
        let mut body = Map::new();
        body.insert("method".into(), json!(self.method));
        body.insert("arguments".into(), Value::Object(self.arguments.clone()));
        body.insert("destination".into(), json!(self.destination));
        let (pattern, matcher) = match &self.pattern {
            Some((pattern, matcher)) => (json!(pattern), json!(matcher)),
            None => (Value::Null, Value::Null),
        };
        body.insert("pattern".into(), pattern);
        body.insert("matcher".into(), matcher);
        if let (Some(ticket), Some((exchange, routing_key))) = (&self.ticket, &self.reply_to) {
            body.insert("ticket".into(), json!(ticket));
            body.insert(
                "reply_to".into(),
                json!({"exchange": exchange, "routing_key": routing_key}),
            );
        }
        let mut headers = Map::new();
        headers.insert("clock".into(), json!(clock));
        headers.insert("expires".into(), json!(expires));
        Envelope {
            body: Envelope::encode_body(&Value::Object(body)),
            content_encoding: Some("utf-8".into()),
            content_type: Some("application/json".into()),
            headers,
            properties: Properties {
                correlation_id: None,
                reply_to: None,
                delivery_mode: Some(2),
                delivery_info: DeliveryInfo {
                    exchange: CONTROL_EXCHANGE.into(),
                    routing_key: String::new(),
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

/// Celery's reply to a command that worked: `{"ok": text}`.
pub fn ok_reply(text: impl Into<String>) -> Value {
    let mut reply = Map::new();
    reply.insert("ok".into(), Value::String(text.into()));
    Value::Object(reply)
}

/// Celery's reply to a command that failed: `{"error": text}`, the text usually a Python repr
/// of the exception, as `celery control` prints it.
pub fn error_reply(text: impl Into<String>) -> Value {
    let mut reply = Map::new();
    reply.insert("error".into(), Value::String(text.into()));
    Value::Object(reply)
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

/// A decoded reply: one worker's answer to one ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlReply {
    /// The ticket of the broadcast it answers (header `ticket`).
    pub ticket: Option<String>,
    /// The replying worker's Lamport clock (header `clock`).
    pub clock: Option<u64>,
    /// `{node name: result}`; one entry in every reply Celery sends.
    pub results: Map<String, Value>,
}

impl ControlReply {
    /// Decodes a reply envelope taken from a reply queue.
    pub fn decode(envelope: &Envelope) -> Result<ControlReply, ProtocolError> {
        let Value::Object(results) = envelope.body_json()? else {
            return Err(ProtocolError::InvalidBody {
                reason: "control reply body is not an object".to_owned(),
            });
        };
        Ok(ControlReply {
            ticket: envelope
                .headers
                .get("ticket")
                .and_then(Value::as_str)
                .map(str::to_owned),
            clock: envelope.headers.get("clock").and_then(Value::as_u64),
            results,
        })
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

    #[test]
    fn a_broadcast_round_trips_and_matches_the_captured_ping() {
        let request = ControlRequest {
            method: "ping".into(),
            arguments: Map::new(),
            destination: None,
            pattern: None,
            ticket: Some("481b3b3f-5cb1-48bc-8e07-866da682b7c8".into()),
            reply_to: Some((REPLY_EXCHANGE.into(), "07c963c0".into())),
        };
        let envelope = request.to_envelope(1, 1795487596.4281905, "tag".into());
        // The body Celery 5.4's `celery inspect ping` sent (capture `ctl_ping`).
        assert_eq!(
            envelope.body_json().unwrap(),
            json!({"method": "ping", "arguments": {}, "destination": null, "pattern": null,
                   "matcher": null, "ticket": "481b3b3f-5cb1-48bc-8e07-866da682b7c8",
                   "reply_to": {"exchange": "reply.celery.pidbox", "routing_key": "07c963c0"}})
        );
        assert_eq!(envelope.properties.delivery_info.exchange, "celery.pidbox");
        assert_eq!(envelope.headers["clock"], json!(1));
        assert_eq!(ControlRequest::decode(&envelope).unwrap(), request);

        let cast = ControlRequest {
            ticket: None,
            reply_to: None,
            destination: Some(vec!["w1@vm".into()]),
            ..request
        };
        let body = cast.to_envelope(2, 0.0, "tag".into()).body_json().unwrap();
        assert!(body.get("ticket").is_none() && body.get("reply_to").is_none());
        assert_eq!(body["destination"], json!(["w1@vm"]));

        let reply = reply_envelope(
            "w1@vm",
            json!({"ok": "pong"}),
            "481b",
            3,
            "07c963c0",
            "t".into(),
        );
        let decoded = ControlReply::decode(&reply).unwrap();
        assert_eq!(decoded.ticket.as_deref(), Some("481b"));
        assert_eq!(decoded.clock, Some(3));
        assert_eq!(decoded.results["w1@vm"], json!({"ok": "pong"}));
    }
}
