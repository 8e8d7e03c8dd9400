//! [`ErrorType`]: the Rust type a task failure came from, and the Python exception name it is
//! stored under.
//!
//! Two names for one failure, for two audiences. `exc_type` is what Celery, Flower and Python
//! callers see, so common std errors take the name of the Python exception they correspond to
//! (`std::io::Error` is `OSError`). The Rust type is what a Rust team means when it writes
//! `autoretry_for = [std::io::Error]`; it is matched by [`std::any::TypeId`], so a
//! `serde_json::Error` can never be retried by a rule written for IO errors, whatever the two are
//! called on the wire.

use std::any::{type_name, TypeId};

/// The Rust type of a task's error, so `autoretry_for` can match by type rather than by the
/// `exc_type` text another error type might also produce.
///
/// Equality and hashing use the type's identity only. The name is kept as a function rather
/// than a `&str` so the value stays 24 bytes: it rides in every [`super::TaskError`], and a
/// `Result<_, TaskError>` over 128 bytes trips clippy's `result_large_err` in users' code.
#[derive(Clone, Copy)]
pub struct ErrorType {
    id: TypeId,
    name: fn() -> &'static str,
}

impl ErrorType {
    /// The error type `E`, e.g. `ErrorType::of::<std::io::Error>()`.
    pub fn of<E: 'static>() -> Self {
        ErrorType {
            id: TypeId::of::<E>(),
            name: type_name::<E>,
        }
    }

    /// The type's path as `std::any::type_name` spells it, for logs and debugging only: the
    /// spelling is not guaranteed stable, so matching uses the type's identity instead.
    pub fn name(&self) -> &'static str {
        (self.name)()
    }

    /// True when this is the type `E`.
    pub fn is<E: 'static>(&self) -> bool {
        self.id == TypeId::of::<E>()
    }
}

impl PartialEq for ErrorType {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for ErrorType {}

impl std::hash::Hash for ErrorType {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl std::fmt::Debug for ErrorType {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_tuple("ErrorType")
            .field(&self.name())
            .finish()
    }
}

/// Python builtins that std (and serde_json, tokio) errors correspond to. Parse errors are
/// `ValueError` because Python's `int("x")`, `float("x")` and `json.loads("x")` raise it
/// (`json.JSONDecodeError` is a `ValueError`); every `std::io::Error` is `OSError`, not the
/// subclass its kind suggests, so that a Python-side `autoretry_for=(OSError,)` and a Rust-side
/// `autoretry_for(["OSError"])` (exact text) both match it.
fn python_builtin<E: 'static>() -> Option<&'static str> {
    let id = TypeId::of::<E>();
    let table: [(TypeId, &'static str); 11] = [
        (TypeId::of::<std::io::Error>(), "OSError"),
        (TypeId::of::<std::num::ParseIntError>(), "ValueError"),
        (TypeId::of::<std::num::ParseFloatError>(), "ValueError"),
        (TypeId::of::<std::str::ParseBoolError>(), "ValueError"),
        (TypeId::of::<std::char::ParseCharError>(), "ValueError"),
        (TypeId::of::<std::net::AddrParseError>(), "ValueError"),
        (TypeId::of::<std::str::Utf8Error>(), "ValueError"),
        (TypeId::of::<std::string::FromUtf8Error>(), "ValueError"),
        (TypeId::of::<serde_json::Error>(), "ValueError"),
        (TypeId::of::<std::num::TryFromIntError>(), "OverflowError"),
        (TypeId::of::<tokio::time::error::Elapsed>(), "TimeoutError"),
    ];
    table
        .iter()
        .find(|(type_id, _)| *type_id == id)
        .map(|(_, name)| *name)
}

/// The `exc_type` a failure of Rust type `E` is stored under: the Python builtin it corresponds
/// to, else the type's own name without its module path or generic arguments
/// (`shop::MailError<std::io::Error>` is `MailError`).
pub(crate) fn exc_type_of<E: 'static>() -> &'static str {
    if let Some(builtin) = python_builtin::<E>() {
        return builtin;
    }
    let full_name = type_name::<E>();
    let without_generics = full_name.split('<').next().unwrap_or(full_name);
    without_generics
        .rsplit("::")
        .next()
        .unwrap_or(without_generics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct MailError<E>(E);

    #[test]
    fn std_errors_take_python_names_and_others_their_own() {
        assert_eq!(exc_type_of::<std::io::Error>(), "OSError");
        assert_eq!(exc_type_of::<std::num::ParseIntError>(), "ValueError");
        assert_eq!(exc_type_of::<std::num::ParseFloatError>(), "ValueError");
        assert_eq!(exc_type_of::<serde_json::Error>(), "ValueError");
        assert_eq!(exc_type_of::<tokio::time::error::Elapsed>(), "TimeoutError");
        assert_eq!(exc_type_of::<std::fmt::Error>(), "Error");
        assert_eq!(exc_type_of::<MailError<std::io::Error>>(), "MailError");
    }

    #[test]
    fn types_match_by_identity_not_by_name() {
        let io = ErrorType::of::<std::io::Error>();
        assert!(io.is::<std::io::Error>());
        assert!(!io.is::<std::fmt::Error>());
        assert_ne!(io, ErrorType::of::<serde_json::Error>());
        assert!(io.name().ends_with("io::error::Error"), "{}", io.name());
    }

    #[test]
    fn a_result_of_task_error_stays_under_clippys_large_error_threshold() {
        assert_eq!(std::mem::size_of::<Option<ErrorType>>(), 24);
        assert!(std::mem::size_of::<crate::task::TaskError>() <= 128);
    }
}
