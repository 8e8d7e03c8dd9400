//! How settings are read from a TOML file and `CELERIAC_*` variables and merged into a
//! [`Config`].
//!
//! Both sources are turned into one JSON object keyed by setting name (JSON keeps the file's
//! table order, which `task_routes` depends on), then deserialized in one go. Each setting has a
//! [`Kind`] that says how an environment value is read and which type a file value must have, so
//! errors name the setting and say what was expected.
//!
//! Invariant: [`SETTINGS`] lists exactly the fields of [`Config`]; a unit test checks it.

use super::{invalid, quoted, Config, ConfigError};
use serde_json::{Map, Value};
use std::path::Path;

/// The prefix of variables that override settings.
const ENV_PREFIX: &str = "CELERIAC_";

/// The shape of a top-level setting, which decides how an environment value is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    /// Text taken as is.
    Text,
    /// Text, or empty for `None`.
    OptionalText,
    /// A boolean.
    Bool,
    /// A whole number up to the maximum, optionally absent.
    Integer { maximum: u64, optional: bool },
    /// A number, optionally absent.
    Number { optional: bool },
    /// A table, given as a JSON object in the environment.
    Table,
}

/// Every top-level setting with its kind; the order follows [`Config`].
pub(super) const SETTINGS: [(&str, Kind); 45] = [
    ("broker_url", Kind::Text),
    ("result_backend", Kind::OptionalText),
    ("broker_use_ssl", Kind::Table),
    ("redis_backend_use_ssl", Kind::Table),
    ("broker_password_file", Kind::OptionalText),
    ("redis_backend_password_file", Kind::OptionalText),
    ("result_backend_transport_options", Kind::Table),
    ("task_default_queue", Kind::Text),
    ("task_acks_late", Kind::Bool),
    ("task_acks_on_failure_or_timeout", Kind::Bool),
    ("task_reject_on_worker_lost", Kind::Bool),
    ("task_ignore_result", Kind::Bool),
    ("task_track_started", Kind::Bool),
    (
        "task_default_priority",
        Kind::Integer {
            maximum: u8::MAX as u64,
            optional: true,
        },
    ),
    ("task_time_limit", Kind::Number { optional: true }),
    ("task_soft_time_limit", Kind::Number { optional: true }),
    ("task_default_rate_limit", Kind::OptionalText),
    ("task_routes", Kind::Table),
    ("result_expires", Kind::Number { optional: true }),
    ("result_extended", Kind::Bool),
    ("result_chord_ordered", Kind::Bool),
    ("timezone", Kind::Text),
    ("enable_utc", Kind::Bool),
    (
        "worker_prefetch_multiplier",
        Kind::Integer {
            maximum: u32::MAX as u64,
            optional: false,
        },
    ),
    (
        "worker_concurrency",
        Kind::Integer {
            maximum: u32::MAX as u64,
            optional: true,
        },
    ),
    (
        "worker_soft_shutdown_timeout",
        Kind::Number { optional: false },
    ),
    (
        "worker_max_deliveries",
        Kind::Integer {
            maximum: u32::MAX as u64,
            optional: false,
        },
    ),
    (
        "worker_max_message_size",
        Kind::Integer {
            maximum: u64::MAX,
            optional: false,
        },
    ),
    ("worker_send_task_events", Kind::Bool),
    ("task_send_sent_event", Kind::Bool),
    ("broker_transport_options", Kind::Table),
    ("broker_connection_retry_on_startup", Kind::Bool),
    (
        "broker_connection_max_retries",
        Kind::Integer {
            maximum: u32::MAX as u64,
            optional: false,
        },
    ),
    (
        "broker_connection_timeout",
        Kind::Number { optional: false },
    ),
    ("database_url", Kind::Text),
    ("history_retention", Kind::Number { optional: true }),
    (
        "history_max_rows",
        Kind::Integer {
            maximum: u64::MAX,
            optional: true,
        },
    ),
    ("beat_schedule", Kind::Table),
    ("beat_max_loop_interval", Kind::Number { optional: false }),
    ("beat_lease_timeout", Kind::Number { optional: false }),
    ("beat_catch_up", Kind::Text),
    ("beat_namespace", Kind::OptionalText),
    ("beat_scheduler", Kind::OptionalText),
    ("beat_sync_every", Kind::Number { optional: false }),
    ("dashboard_bulk_retry_rate", Kind::Text),
];
/// Merges the file's settings and then the environment's into one JSON object, checking each
/// value's kind on the way.
pub(super) fn merge(
    file: Option<(&Path, &str)>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Map<String, Value>, ConfigError> {
    let mut settings = Map::new();
    if let Some((path, text)) = file {
        // Deserializing straight into JSON keeps the TOML table order, which task_routes needs.
        let document: Map<String, Value> =
            toml::from_str(text).map_err(|source| ConfigError::ParseFile {
                path: path.to_path_buf(),
                source,
            })?;
        for (name, value) in document {
            let kind = kind_of(&name).ok_or_else(|| ConfigError::UnknownSetting {
                name: name.clone(),
                path: path.to_path_buf(),
            })?;
            check_file_value(&name, kind, &value)?;
            settings.insert(name, value);
        }
    }
    for (key, text) in env {
        let Some(name) = key.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some((name, kind)) = SETTINGS
            .iter()
            .find(|(setting, _)| setting.to_ascii_uppercase() == name)
        else {
            continue;
        };
        let value = env_value(name, *kind, &text)?;
        match (settings.get_mut(*name), value) {
            // A table from the environment updates the file's table key by key.
            (Some(Value::Object(file_table)), Value::Object(env_table)) => {
                file_table.extend(env_table);
            }
            (_, value) => {
                settings.insert((*name).to_owned(), value);
            }
        }
    }
    Ok(settings)
}

/// The kind of a top-level setting, or `None` if there is no such setting.
fn kind_of(name: &str) -> Option<Kind> {
    SETTINGS
        .iter()
        .find(|(setting, _)| *setting == name)
        .map(|(_, kind)| *kind)
}

/// Checks a file value's type, so that errors name the setting in Celeriac's words.
fn check_file_value(name: &str, kind: Kind, value: &Value) -> Result<(), ConfigError> {
    let fits = match (kind, value) {
        (Kind::Text | Kind::OptionalText, Value::String(_)) => true,
        (Kind::Bool, Value::Bool(_)) => true,
        (Kind::Integer { maximum, .. }, Value::Number(number)) => {
            number.as_u64().is_some_and(|integer| integer <= maximum)
        }
        (Kind::Number { .. }, Value::Number(_)) => true,
        (Kind::Table, Value::Object(_)) => true,
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(invalid(name, &value.to_string(), expectation(kind)))
    }
}

/// Reads an environment value according to the setting's kind.
fn env_value(name: &str, kind: Kind, text: &str) -> Result<Value, ConfigError> {
    let trimmed = text.trim();
    let absent = trimmed.is_empty() || matches!(trimmed, "null" | "none" | "None");
    let value = match kind {
        Kind::Text => Some(Value::String(text.to_owned())),
        Kind::OptionalText if text.is_empty() => Some(Value::Null),
        Kind::OptionalText => Some(Value::String(text.to_owned())),
        Kind::Bool => parse_bool(trimmed).map(Value::Bool),
        Kind::Integer { optional: true, .. } | Kind::Number { optional: true } if absent => {
            Some(Value::Null)
        }
        Kind::Integer { maximum, .. } => serde_json::from_str::<Value>(trimmed)
            .ok()
            .filter(|value| value.as_u64().is_some_and(|integer| integer <= maximum)),
        Kind::Number { .. } => serde_json::from_str::<Value>(trimmed)
            .ok()
            .filter(Value::is_number),
        Kind::Table => serde_json::from_str::<Value>(trimmed)
            .ok()
            .filter(Value::is_object),
    };
    value.ok_or_else(|| invalid(name, &quoted(text), expectation(kind)))
}

/// Deserializes the merged settings; on failure, finds the setting at fault so the error names it.
pub(super) fn deserialize_settings(settings: Map<String, Value>) -> Result<Config, ConfigError> {
    let whole_error = match serde_json::from_value::<Config>(Value::Object(settings.clone())) {
        Ok(config) => return Ok(config),
        Err(error) => error,
    };
    for (name, value) in settings {
        let single = Map::from_iter([(name.clone(), value.clone())]);
        if let Err(error) = serde_json::from_value::<Config>(Value::Object(single)) {
            return Err(invalid(&name, &value.to_string(), &error.to_string()));
        }
    }
    Err(invalid("config", "{…}", &whole_error.to_string()))
}

/// Celery-style boolean text (`celery.utils.serialization.strtobool` plus `on/off`).
fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "y" | "t" => Some(true),
        "false" | "no" | "off" | "0" | "n" | "f" => Some(false),
        _ => None,
    }
}

/// What a setting of this kind must look like, for error messages.
fn expectation(kind: Kind) -> &'static str {
    match kind {
        Kind::Text | Kind::OptionalText => "expected text",
        Kind::Bool => "expected a boolean (true/false, yes/no, on/off, 1/0)",
        Kind::Integer { maximum, .. } if maximum == u64::from(u8::MAX) => {
            "expected an integer from 0 to 255"
        }
        Kind::Integer { .. } => "expected an integer",
        Kind::Number { .. } => "expected a number",
        Kind::Table => "expected a table (a JSON object in the environment)",
    }
}
