//! Fuzz target for everything a worker or result reader does with bytes it did not write.
//!
//! Arbitrary bytes go through the worker's decode path (`Envelope::from_json`, then
//! `TaskMessage::decode`, the priority bucket and the `redelivered` flags), through
//! `ResultMeta::from_json`, and as text through `parse_iso`. None of them may panic.
//!
//! Whatever decodes must survive our own encoder: `to_envelope` → JSON text → decode gives back
//! the same `TaskMessage`, except for the two things the encoder legitimately changes:
//! `argsrepr`/`kwargsrepr` are filled in when the producer left them out, and `eta`/`expires`
//! are written with microseconds, as Python's `isoformat()` does. kombu typed values in args and
//! kwargs must decode (`decode_typed`) to a value that decodes to itself again.

#![no_main]

use celeriac::protocol::content::decode_typed;
use celeriac::protocol::task_message::PublishTarget;
use celeriac::protocol::time::parse_iso;
use celeriac::protocol::{Envelope, ResultMeta, TaskMessage};
use celeriac::types::{python_args_repr, python_repr};
use chrono::{DateTime, SubsecRound, Utc};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let _ = ResultMeta::from_json(data).map(|meta| (meta.exception(), meta.to_json()));
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_iso(text);
    }
    let Ok(envelope) = Envelope::from_json(data) else {
        return;
    };
    let _ = envelope.priority();
    let _ = envelope.to_json();
    let Ok(message) = TaskMessage::decode(&envelope) else {
        return;
    };
    for value in message.args.iter().chain(message.kwargs.values()) {
        let decoded = decode_typed(value.clone());
        assert_eq!(
            decode_typed(decoded.clone()),
            decoded,
            "decode_typed is idempotent"
        );
    }
    check_round_trip(&envelope, message);
});

/// Re-encodes `message` as a producer would and checks that it decodes to the same message.
fn check_round_trip(envelope: &Envelope, message: TaskMessage) {
    let target = PublishTarget {
        exchange: envelope.properties.delivery_info.exchange.clone(),
        routing_key: envelope.properties.delivery_info.routing_key.clone(),
        priority: envelope.priority(),
        reply_to: envelope.properties.reply_to.clone().unwrap_or_default(),
    };
    let now = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("a fixed valid instant");
    let encoded = message.to_envelope(&target, "fuzz-delivery-tag".to_owned(), now);
    let text = encoded.to_json();
    let reparsed = Envelope::from_json(text.as_bytes())
        .unwrap_or_else(|error| panic!("our own envelope does not parse: {error}\n{text}"));
    assert_eq!(reparsed, encoded, "envelope JSON round trip");
    let decoded = TaskMessage::decode(&reparsed)
        .unwrap_or_else(|error| panic!("our own message does not decode: {error}\n{text}"));
    assert_eq!(decoded, as_encoded(message), "task message round trip");
}

/// `message` as the encoder writes it: reprs filled in, times cut to microseconds.
fn as_encoded(mut message: TaskMessage) -> TaskMessage {
    let headers = &mut message.headers;
    if headers.argsrepr.is_none() {
        headers.argsrepr = Some(python_args_repr(&message.args));
    }
    if headers.kwargsrepr.is_none() {
        headers.kwargsrepr = Some(python_repr(&Value::Object(message.kwargs.clone())));
    }
    headers.eta = headers.eta.map(|time| time.trunc_subsecs(6));
    headers.expires = headers.expires.map(|time| time.trunc_subsecs(6));
    message
}
