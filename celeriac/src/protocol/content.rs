//! kombu's typed JSON: the `{"__type__": ..., "__value__": ...}` convention.
//!
//! Since kombu 5.3 Python producers encode `datetime`, `date`, `time`, `Decimal`, `UUID` and
//! `bytes` inside args, kwargs and results as two-key objects, and decode *any* object whose key
//! set is exactly `{"__type__", "__value__"}` back into a Python value. Rust tasks see those
//! values in their plain JSON form (an ISO string for a datetime, a string for a Decimal), and a
//! Rust producer must never send a plain object of that shape, or Python would misread it.

use base64::Engine;
use serde_json::{Map, Value};

const TYPE_KEY: &str = "__type__";
const VALUE_KEY: &str = "__value__";

/// Replaces every kombu typed value in `value` by its plain JSON form, recursively.
///
/// Objects are decoded inside out, as Python's `json.loads(object_hook=...)` calls kombu's hook
/// on the innermost object first: a typed value nested in another's `__value__` is decoded
/// before the outer one. The output therefore holds no typed value, and decoding it again
/// changes nothing.
pub fn decode_typed(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(decode_typed).collect()),
        Value::Object(map) => {
            let mut map: Map<String, Value> = map
                .into_iter()
                .map(|(key, item)| (key, decode_typed(item)))
                .collect();
            if is_typed_object(&map) {
                let type_name = map
                    .get(TYPE_KEY)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let inner = map.remove(VALUE_KEY).unwrap_or(Value::Null);
                decode_one(&type_name, inner)
            } else {
                Value::Object(map)
            }
        }
        other => other,
    }
}

/// True when `value` contains a plain object that Python would mistake for a typed value.
pub fn has_reserved_shape(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().any(has_reserved_shape),
        Value::Object(map) => is_typed_object(map) || map.values().any(has_reserved_shape),
        _ => false,
    }
}

fn is_typed_object(map: &Map<String, Value>) -> bool {
    map.len() == 2 && map.contains_key(VALUE_KEY) && map.get(TYPE_KEY).is_some_and(Value::is_string)
}

fn decode_one(type_name: &str, inner: Value) -> Value {
    match (type_name, inner) {
        ("uuid", Value::Object(fields)) => match fields.get("hex").and_then(Value::as_str) {
            Some(hex) => Value::String(hyphenate_uuid(hex)),
            None => Value::Object(fields),
        },
        ("base64", Value::String(text)) => {
            match base64::engine::general_purpose::STANDARD.decode(text.as_bytes()) {
                Ok(bytes) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
                Err(_) => Value::String(text),
            }
        }
        (_, inner) => inner,
    }
}

fn hyphenate_uuid(hex: &str) -> String {
    if hex.len() == 32 && hex.is_ascii() {
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    } else {
        hex.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_values_become_plain_json() {
        let encoded = json!([
            {"__type__": "datetime", "__value__": "2024-01-01T00:00:00+00:00"},
            {"__type__": "decimal", "__value__": "1.50"},
            {"__type__": "uuid", "__value__": {"hex": "0123456789abcdef0123456789abcdef"}},
            {"nested": {"__type__": "bytes", "__value__": "abc"}},
            {"__type__": "x", "__value__": 1, "third": true}
        ]);
        assert_eq!(
            decode_typed(encoded),
            json!([
                "2024-01-01T00:00:00+00:00",
                "1.50",
                "01234567-89ab-cdef-0123-456789abcdef",
                {"nested": "abc"},
                {"__type__": "x", "__value__": 1, "third": true}
            ])
        );
    }

    #[test]
    fn nested_typed_values_decode_inside_out_like_kombu() {
        // Found by the `decode_typed_is_idempotent` property: decoding only the outer object left
        // the inner typed value in the output, so a second pass changed it again.
        let nested = json!({"__type__": "uuid", "__value__": {
            "__type__": "uuid",
            "__value__": {"hex": "a0aa0a000a0aa00a0aaa00a0a0a0000a"}
        }});
        let decoded = decode_typed(nested);
        assert_eq!(decoded, json!("a0aa0a00-0a0a-a00a-0aaa-00a0a0a0000a"));
        assert_eq!(decode_typed(decoded.clone()), decoded);
        // An inner typed value can also supply the outer one's type name, as in Python.
        let named_by_inner = json!({
            "__type__": {"__type__": "bytes", "__value__": "decimal"},
            "__value__": "1.5"
        });
        assert_eq!(decode_typed(named_by_inner), json!("1.5"));
    }

    #[test]
    fn reserved_shape_is_detected_anywhere() {
        assert!(has_reserved_shape(
            &json!([1, {"a": {"__type__": "t", "__value__": 2}}])
        ));
        assert!(!has_reserved_shape(&json!({"__type__": "t"})));
    }
}
