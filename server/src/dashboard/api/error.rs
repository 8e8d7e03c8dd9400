//! [`AppError`]: how an API handler fails. Bad input is a 4xx with a message that helps the
//! caller and is not logged; anything else is logged with its whole source chain and the
//! caller gets a generic 500 (axum's `AppError` pattern), so internals never leak.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A failed API request.
#[derive(Debug)]
pub(crate) enum AppError {
    /// 400: the request itself is wrong (a bad filter, cursor or parameter).
    BadRequest(String),
    /// 404: no such task or worker.
    NotFound(String),
    /// 409: the request conflicts with what is known (a task name is not known).
    Conflict(String),
    /// 422: understood, but cannot be done (a task's arguments are unknown, a worker
    /// answered a control command with an error).
    Unprocessable(String),
    /// 504: a worker did not answer a control command in time (offline, or too busy).
    NoReply(String),
    /// 500: something underneath failed; logged, never shown.
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    /// An internal failure from any error type.
    pub(crate) fn internal(error: impl std::error::Error + Send + Sync + 'static) -> AppError {
        AppError::Internal(Box::new(error))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            AppError::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            AppError::NotFound(message) => (StatusCode::NOT_FOUND, message),
            AppError::Conflict(message) => (StatusCode::CONFLICT, message),
            AppError::Unprocessable(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
            AppError::NoReply(message) => (StatusCode::GATEWAY_TIMEOUT, message),
            AppError::Internal(error) => {
                let mut chain = error.to_string();
                let mut source = error.source();
                while let Some(cause) = source {
                    chain.push_str(": ");
                    chain.push_str(&cause.to_string());
                    source = cause.source();
                }
                tracing::error!(error = %chain, "dashboard API request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log".to_owned(),
                )
            }
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}
