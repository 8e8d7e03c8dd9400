//! Property tests for the task-message codec, the in-tree companion of `fuzz/` (the cargo-fuzz
//! target, which needs a nightly-flagged build and so does not run in CI).
//!
//! 1. No input makes the decoder panic: arbitrary bytes, JSON-ish text, and kombu-shaped
//!    envelopes whose headers and body hold arbitrary JSON.
//! 2. Every valid message survives `to_envelope` → JSON text → `Envelope::from_json` →
//!    `TaskMessage::decode`, except that `argsrepr`/`kwargsrepr` get filled in and
//!    `eta`/`expires` are cut to microseconds, the precision of the wire.
//! 3. `decode_typed` never panics and is idempotent on its output.
//!
//! Case counts keep the whole file well under ten seconds in a debug build.

use super::*;
use crate::protocol::content::{decode_typed, has_reserved_shape};
use chrono::SubsecRound;
use proptest::prelude::*;

/// Property names the `Properties` struct reads itself; an extra property must not use one.
const KNOWN_PROPERTIES: &[&str] = &[
    "correlation_id",
    "reply_to",
    "delivery_mode",
    "delivery_info",
    "priority",
    "body_encoding",
    "delivery_tag",
    "expiration",
];

fn short_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_.]{0,12}",
        "\\PC{0,8}",
        any::<String>().prop_map(|text| text.chars().take(8).collect()),
    ]
}

fn non_blank_text() -> impl Strategy<Value = String> {
    short_text().prop_filter("Celery refuses blank task names and ids", |text| {
        !text.trim().is_empty()
    })
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |number| number.is_finite())
            .prop_map(Value::from),
        short_text().prop_map(Value::String),
    ]
}

/// Arbitrary JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((short_text(), inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// Arbitrary JSON with kombu typed values (`{"__type__", "__value__"}`) mixed in.
fn typed_json_value() -> impl Strategy<Value = Value> {
    let type_name = prop_oneof![
        Just("uuid".to_owned()),
        Just("base64".to_owned()),
        Just("bytes".to_owned()),
        Just("decimal".to_owned()),
        Just("datetime".to_owned()),
        short_text(),
    ];
    json_leaf().prop_recursive(4, 32, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((short_text(), inner.clone()), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            (type_name.clone(), inner.clone())
                .prop_map(|(name, value)| json!({"__type__": name, "__value__": value})),
            (inner.clone(), inner.clone())
                .prop_map(|(name, value)| json!({"__type__": name, "__value__": value})),
            "[0-9a-f]{32}".prop_map(|hex| json!({"__type__": "uuid", "__value__": {"hex": hex}})),
            "[A-Za-z0-9+/]{0,8}={0,2}"
                .prop_map(|text| json!({"__type__": "base64", "__value__": text})),
        ]
    })
}

fn json_map(keys: impl Strategy<Value = String>) -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((keys, json_value()), 0..4).prop_map(|pairs| pairs.into_iter().collect())
}

/// Any instant chrono can represent, nanoseconds included.
fn time() -> impl Strategy<Value = DateTime<Utc>> {
    (
        DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(),
        0..1_000_000_000u32,
    )
        .prop_filter_map("inside chrono's range", |(seconds, nanoseconds)| {
            DateTime::from_timestamp(seconds, nanoseconds)
        })
}

fn time_limit() -> impl Strategy<Value = Option<f64>> {
    prop::option::of(prop_oneof![
        (0u32..100_000).prop_map(f64::from),
        (0.0..1.0e9f64),
    ])
}

prop_compose! {
    fn task_headers()(
        (lang, task, id, shadow, group, group_index, retries)
            in (
                prop::option::of(short_text()),
                non_blank_text(),
                non_blank_text(),
                prop::option::of(short_text()),
                prop::option::of(short_text()),
                prop::option::of(any::<i64>()),
                any::<u32>(),
            ),
        (eta, expires, hard, soft, root_id, parent_id)
            in (
                prop::option::of(time()),
                prop::option::of(time()),
                time_limit(),
                time_limit(),
                prop::option::of(short_text()),
                prop::option::of(short_text()),
            ),
        (argsrepr, kwargsrepr, origin, ignore_result, replaced_task_nesting)
            in (
                prop::option::of(short_text()),
                prop::option::of(short_text()),
                prop::option::of(short_text()),
                any::<bool>(),
                any::<i64>(),
            ),
        (stamped_headers, stamps, extra)
            in (
                json_value(),
                json_map(short_text()),
                json_map(short_text().prop_filter("not one of Celery's headers", |key| {
                    !KNOWN_HEADERS.contains(&key.as_str())
                })),
            ),
    ) -> TaskHeaders {
        TaskHeaders {
            lang,
            task,
            id: TaskId(id),
            shadow,
            eta,
            expires,
            group,
            group_index,
            retries,
            timelimit: (hard, soft),
            root_id,
            parent_id,
            argsrepr,
            kwargsrepr,
            origin,
            ignore_result,
            replaced_task_nesting,
            stamped_headers,
            stamps,
            extra,
        }
    }
}

prop_compose! {
    fn task_message()(
        headers in task_headers(),
        args in prop::collection::vec(json_value(), 0..4),
        kwargs in json_map(short_text()),
        embed in prop::collection::vec(json_value(), 4),
        extra_properties in json_map(short_text().prop_filter("not a kombu property", |key| {
            !KNOWN_PROPERTIES.contains(&key.as_str())
        })),
    ) -> TaskMessage {
        let mut embed = embed.into_iter();
        let mut next = || embed.next().unwrap_or(Value::Null);
        TaskMessage {
            headers,
            args,
            kwargs,
            embed: Embed { callbacks: next(), errbacks: next(), chain: next(), chord: next() },
            extra_properties,
        }
    }
}

fn publish_target() -> impl Strategy<Value = PublishTarget> {
    (short_text(), short_text(), any::<u8>(), short_text()).prop_map(
        |(exchange, routing_key, priority, reply_to)| PublishTarget {
            exchange,
            routing_key,
            priority,
            reply_to,
        },
    )
}

/// A kombu-shaped envelope whose headers and body are arbitrary, as JSON text.
fn envelope_text() -> impl Strategy<Value = String> {
    let header_key = prop_oneof![
        prop::sample::select(KNOWN_HEADERS).prop_map(str::to_owned),
        short_text(),
    ];
    let body = prop_oneof![
        json_value(),
        (json_value(), json_value(), json_value())
            .prop_map(|(args, kwargs, embed)| { json!([args, kwargs, embed]) }),
        json_map(
            prop::sample::select(&["task", "id", "args", "kwargs", "eta", "retries"][..])
                .prop_map(str::to_owned)
        )
        .prop_map(Value::Object),
    ];
    (
        prop::collection::vec((header_key, json_value()), 0..8),
        body,
        any::<bool>(),
        prop::option::of(prop_oneof![
            Just("application/json".to_owned()),
            short_text()
        ]),
        json_value(),
    )
        .prop_map(|(headers, body, base64, content_type, priority)| {
            let headers: Map<String, Value> = headers.into_iter().collect();
            let (body, body_encoding) = if base64 {
                (Envelope::encode_body(&body), json!("base64"))
            } else {
                (body.to_string(), Value::Null)
            };
            json!({
                "body": body,
                "content-type": content_type,
                "headers": headers,
                "properties": {
                    "body_encoding": body_encoding,
                    "priority": priority,
                    "delivery_tag": "tag",
                    "delivery_info": {"exchange": "", "routing_key": "celery"},
                },
            })
            .to_string()
        })
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

/// Decodes bytes the way the worker's strategy does, touching every derived field.
fn decode_like_the_worker(raw: &[u8]) {
    if let Ok(envelope) = Envelope::from_json(raw) {
        let _ = envelope.priority();
        let _ = envelope.to_json();
        if let Ok(message) = TaskMessage::decode(&envelope) {
            let _ = message.headers_json();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..256)) {
        decode_like_the_worker(&raw);
    }

    #[test]
    fn json_ish_text_never_panics(text in "[\\[\\]{}\",:0-9a-z_\\-.+ ]{0,96}") {
        decode_like_the_worker(text.as_bytes());
    }

    #[test]
    fn kombu_shaped_envelopes_never_panic(text in envelope_text()) {
        decode_like_the_worker(text.as_bytes());
    }

    #[test]
    fn valid_messages_round_trip(
        message in task_message()
            .prop_filter("kombu would read these as typed values", |message| {
                !message.args.iter().any(has_reserved_shape)
                    && !message.kwargs.values().any(has_reserved_shape)
            }),
        target in publish_target(),
        now in time(),
    ) {
        let envelope = message.to_envelope(&target, "tag".to_owned(), now);
        let text = envelope.to_json();
        let reparsed = Envelope::from_json(text.as_bytes()).map_err(|error| {
            TestCaseError::fail(format!("{error}: {text}"))
        })?;
        prop_assert_eq!(&reparsed, &envelope);
        prop_assert_eq!(reparsed.priority(), target.priority.min(9));
        let decoded = TaskMessage::decode(&reparsed).map_err(|error| {
            TestCaseError::fail(format!("{error}: {text}"))
        })?;
        prop_assert_eq!(decoded, as_encoded(message));
    }

    #[test]
    fn decode_typed_is_idempotent(value in typed_json_value()) {
        let decoded = decode_typed(value);
        prop_assert_eq!(decode_typed(decoded.clone()), decoded);
    }
}
