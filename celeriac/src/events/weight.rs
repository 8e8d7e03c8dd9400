//! How much of an event the receiver keeps.
//!
//! Events are not authenticated: anything that can publish on the broker can send them, and
//! everything downstream keeps what it is given (the monitor's state, the history database,
//! the Prometheus labels, every SSE snapshot). So the receiver bounds each event once, where it
//! comes in, and nothing after it needs to:
//!
//! - reprs (`args`, `kwargs`, `result`, `exception`) are cut to [`MAX_REPR_BYTES`] and
//!   `traceback` to [`MAX_TRACEBACK_BYTES`]. Celery itself cuts `argsrepr`, `kwargsrepr` and
//!   the result repr at 1,024 characters; it does not cut tracebacks, so they get more room.
//! - every other text (the hostname, an unknown type, `name`, `uuid`, routing keys, versions,
//!   text nested in lists) is cut to [`MAX_LABEL_BYTES`]. Celery's own are far shorter: a task
//!   name is a dotted path, an id 36 bytes, a node name `name@host`.
//! - an event that still weighs more than [`MAX_EVENT_BYTES`] after that (a list of a million
//!   numbers, thousands of fields) is refused and counted by the receiver.
//!
//! A cut text ends with `…`, so a reader sees that it was cut.

use crate::protocol::event::{Event, EventKind};
use serde_json::Value;

/// Longest identifier or label kept, in bytes.
pub const MAX_LABEL_BYTES: usize = 256;
/// Longest `args`, `kwargs`, `result` or `exception` repr kept, in bytes.
pub const MAX_REPR_BYTES: usize = 8 * 1024;
/// Longest `traceback` kept, in bytes.
pub const MAX_TRACEBACK_BYTES: usize = 32 * 1024;
/// Heaviest event kept after cutting, in bytes (about its JSON size).
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// What [`bound`] did to an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bounded {
    /// Small enough as it came.
    Whole,
    /// Some text was cut.
    Cut,
    /// Too heavy even after cutting: drop it.
    Refused,
}

/// Cuts `event`'s texts to their limits and weighs what is left. See the module docs.
pub(crate) fn bound(event: &mut Event) -> Bounded {
    let mut cut = cut_text(&mut event.hostname, MAX_LABEL_BYTES);
    if let EventKind::Other(kind) = &mut event.kind {
        cut |= cut_text(kind, MAX_LABEL_BYTES);
    }
    let mut weight = event.hostname.len() + 64;
    for (key, value) in event.fields.iter_mut() {
        let limit = match key.as_str() {
            "args" | "kwargs" | "result" | "exception" => MAX_REPR_BYTES,
            "traceback" => MAX_TRACEBACK_BYTES,
            _ => MAX_LABEL_BYTES,
        };
        weight += key.len() + 4;
        weight += cut_value(value, limit, &mut cut);
        if weight > MAX_EVENT_BYTES {
            return Bounded::Refused;
        }
    }
    if cut {
        Bounded::Cut
    } else {
        Bounded::Whole
    }
}

/// Cuts the texts in `value` (at any depth) to `limit` and returns its weight, stopping as soon
/// as it passes [`MAX_EVENT_BYTES`] (the caller refuses the event then).
fn cut_value(value: &mut Value, limit: usize, cut: &mut bool) -> usize {
    match value {
        Value::String(text) => {
            *cut |= cut_text(text, limit);
            text.len() + 2
        }
        Value::Array(items) => {
            let mut weight = 2;
            for item in items {
                weight += cut_value(item, MAX_LABEL_BYTES, cut) + 1;
                if weight > MAX_EVENT_BYTES {
                    break;
                }
            }
            weight
        }
        Value::Object(fields) => {
            let mut weight = 2;
            for (key, item) in fields.iter_mut() {
                weight += key.len() + 4 + cut_value(item, MAX_LABEL_BYTES, cut);
                if weight > MAX_EVENT_BYTES {
                    break;
                }
            }
            weight
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
    }
}

/// Where `text` must end so that it and a `…` fit in `limit` bytes (on a character
/// boundary); `None` when it fits whole. Shared with the state's `clip`.
pub(crate) fn cut_point(text: &str, limit: usize) -> Option<usize> {
    if text.len() <= limit {
        return None;
    }
    let mut end = limit.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(end)
}

/// Cuts `text` at its [`cut_point`], ending it with `…`; true when it was cut.
fn cut_text(text: &mut String, limit: usize) -> bool {
    let Some(end) = cut_point(text, limit) else {
        return false;
    };
    text.truncate(end);
    text.push('…');
    text.shrink_to_fit();
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: EventKind, fields: Value) -> Event {
        let mut event = Event::new(kind, "w1@host", 1, 1.0);
        if let Value::Object(fields) = fields {
            event.fields = fields;
        }
        event
    }

    #[test]
    fn what_celery_sends_is_kept_whole() {
        let mut received = event(
            EventKind::TaskReceived,
            json!({"uuid": "6a1f6a4e-5d54-4a4e-9a5e-2b8b3f0c1d2e", "name": "shop.send_receipt",
                   "args": "(42,)", "kwargs": "{'to': 'ana@example.com'}", "retries": 0,
                   "eta": null, "root_id": "6a1f6a4e-5d54-4a4e-9a5e-2b8b3f0c1d2e"}),
        );
        let before = received.clone();
        assert_eq!(bound(&mut received), Bounded::Whole);
        assert_eq!(received, before);
        let mut heartbeat = event(
            EventKind::WorkerHeartbeat,
            json!({"freq": 2.0, "active": 3, "processed": 1200, "loadavg": [0.5, 0.4, 0.3],
                   "sw_ident": "py-celery", "sw_ver": "5.4.0", "sw_sys": "Linux"}),
        );
        assert_eq!(bound(&mut heartbeat), Bounded::Whole);
    }

    #[test]
    fn names_hostnames_and_reprs_are_cut_with_a_mark() {
        let mib = "x".repeat(1 << 20);
        let mut huge = event(
            EventKind::Other(mib.clone()),
            json!({"uuid": mib, "name": mib, "args": mib, "kwargs": mib, "traceback": mib}),
        );
        huge.hostname = "é".repeat(1 << 19);
        assert_eq!(bound(&mut huge), Bounded::Cut);
        assert!(huge.hostname.len() <= MAX_LABEL_BYTES && huge.hostname.ends_with('…'));
        assert!(matches!(&huge.kind, EventKind::Other(kind) if kind.len() <= MAX_LABEL_BYTES));
        assert!(huge
            .uuid()
            .is_some_and(|uuid| uuid.len() <= MAX_LABEL_BYTES));
        assert!(huge
            .str_field("args")
            .is_some_and(|args| args.len() <= MAX_REPR_BYTES && args.len() > MAX_LABEL_BYTES));
        assert!(huge
            .str_field("traceback")
            .is_some_and(|text| text.len() <= MAX_TRACEBACK_BYTES && text.ends_with('…')));
    }

    #[test]
    fn an_event_heavy_after_cutting_is_refused() {
        let mut numbers = event(
            EventKind::WorkerHeartbeat,
            json!({"loadavg": vec![1; 100_000]}),
        );
        assert_eq!(bound(&mut numbers), Bounded::Refused);
        let fields: serde_json::Map<String, Value> = (0..10_000)
            .map(|index| (format!("field{index}"), json!("some text here")))
            .collect();
        let mut wide = event(EventKind::TaskSucceeded, Value::Object(fields));
        assert_eq!(bound(&mut wide), Bounded::Refused);
    }
}
