//! Decoding events as receivers see them: real captures from Celery 5.4, our own dispatcher's
//! output, `task.multi` lists, and garbage that must be counted, never panic.

use super::{decode_events, envelope, event, Event, EventKind, EventSource, TASK_MULTI};
use crate::protocol::ProtocolError;
use serde_json::{json, Map, Value};

fn raw(body: &Value, routing_key: &str) -> Vec<u8> {
    envelope(body, "w1@vm", routing_key, "tag".into())
        .to_json()
        .into_bytes()
}

fn decode(raw: &[u8]) -> Result<(Vec<Event>, usize), ProtocolError> {
    let mut out = Vec::new();
    let skipped = decode_events(raw, &mut Vec::new(), &mut out)?;
    Ok((out, skipped))
}

#[test]
fn captured_events_decode_to_typed_events_and_back() {
    let captured = include_str!("../../../tests/fixtures/events/events_examples.json");
    let captured: Map<String, Value> = serde_json::from_str(captured).unwrap();
    let mut checked = 0;
    for (name, example) in captured
        .iter()
        .filter(|(name, _)| !name.starts_with("control"))
    {
        let original = &example["event"];
        let (events, skipped) = decode(&raw(original, "x")).unwrap();
        assert_eq!((events.len(), skipped), (1, 0), "{name}");
        let decoded = &events[0];
        assert_eq!(decoded.kind.as_str(), original["type"].as_str().unwrap());
        assert_eq!(decoded.hostname, original["hostname"].as_str().unwrap());
        assert_eq!(decoded.clock, original["clock"].as_u64().unwrap());
        assert_eq!(decoded.timestamp, original["timestamp"].as_f64().unwrap());
        assert_eq!(&decoded.to_json(), original, "{name} re-serializes exactly");
        checked += 1;
    }
    assert!(checked >= 10, "checked {checked}");
}

#[test]
fn task_multi_lists_keep_their_order() {
    let source = EventSource {
        hostname: "w1@vm".into(),
        pid: 7,
        utcoffset: -2,
    };
    let mut fields = Map::new();
    fields.insert("uuid".into(), json!("id-1"));
    let events: Vec<Value> = ["task-received", "task-started", "task-succeeded"]
        .iter()
        .enumerate()
        .map(|(index, kind)| {
            event(
                &source,
                kind,
                index as u64 + 1,
                10.0 + index as f64,
                fields.clone(),
            )
        })
        .collect();
    let (decoded, skipped) = decode(&raw(&Value::Array(events), TASK_MULTI)).unwrap();
    assert_eq!(skipped, 0);
    let kinds: Vec<_> = decoded.iter().map(|event| event.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            EventKind::TaskReceived,
            EventKind::TaskStarted,
            EventKind::TaskSucceeded
        ]
    );
    assert_eq!(decoded[2].utcoffset, -2);
    assert_eq!(decoded[2].pid, 7);
    assert_eq!(decoded[2].uuid(), Some("id-1"));
}

#[test]
fn garbage_is_an_error_or_skipped_never_a_panic() {
    let good =
        json!({"type": "task-started", "uuid": "a", "hostname": "w", "timestamp": 1.5, "clock": 3});
    let mixed = json!([good, 5, "text", null, [1, 2], {"no": "type"}, {"type": 7}]);
    let (events, skipped) = decode(&raw(&mixed, TASK_MULTI)).unwrap();
    assert_eq!((events.len(), skipped), (1, 6));
    let (events, skipped) = decode(&raw(&json!({"uuid": "x"}), "task.started")).unwrap();
    assert_eq!((events.len(), skipped), (0, 1));
    // Python 5.7 sends utcoffset as a float; a float clock and a huge pid are tolerated.
    let odd = json!({"type": "worker-heartbeat", "utcoffset": -1.0, "clock": 4.0, "pid": 1e12, "timestamp": "x"});
    let (events, _) = decode(&raw(&odd, "worker.heartbeat")).unwrap();
    assert_eq!(
        (events[0].utcoffset, events[0].clock, events[0].pid),
        (-1, 4, u32::MAX)
    );
    assert_eq!(events[0].timestamp, 0.0);
    for bad in [
        &b"not json"[..],
        br#"{"body": "!!!", "content-type": "application/json", "properties": {"body_encoding": "base64"}}"#,
        br#"{"body": "e30=", "content-type": "application/x-python-serialize", "properties": {"body_encoding": "base64"}}"#,
        br#"{"body": "WzEsMg", "content-type": "application/json", "properties": {"body_encoding": "base64"}}"#,
        br#"{"body": "\"text\"", "content-type": "application/json", "properties": {}}"#,
        br#"{"body": "[{\"type\": \"task-sent\"", "content-type": "application/json", "properties": {}}"#,
        br#"[]"#,
    ] {
        let mut out = Vec::new();
        assert!(
            decode_events(bad, &mut Vec::new(), &mut out).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
        assert!(out.is_empty(), "a bad message appends nothing");
    }
    // A verbatim (not base64) body is read as kombu would.
    let verbatim = br#"{"body": "{\"type\": \"task-sent\", \"uuid\": \"v\"}", "content-type": "application/json", "properties": {}}"#;
    assert_eq!(decode(verbatim).unwrap().0[0].uuid(), Some("v"));
}
