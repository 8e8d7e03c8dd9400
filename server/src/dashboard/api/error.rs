//! [`AppError`]: how an API handler fails. Bad input is a 4xx with a message that helps the
//! caller and is not logged; anything else is logged with its whole source chain and the
//! caller gets a generic 500 (axum's `AppError` pattern), so internals never leak.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A failed API request.
#[derive(Debug)]
pub(crate) enum AppError {
    /// 400: the request itself is wrong (a bad filter, cursor or parameter).
    BadRequest(String),
    /// 403: refused by the worker or the configuration (Flower's status for a pool action a
    /// worker refuses).
    Forbidden(String),
    /// 404: no such task or worker.
    NotFound(String),
    /// 409: the request conflicts with what is known (a task name is not known).
    Conflict(String),
    /// 422: understood, but cannot be done (a task's arguments are unknown, a worker
    /// answered a control command with an error).
    Unprocessable(String),
    /// 503: the server is not set up for it (no result backend).
    Unavailable(String),
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
            AppError::Forbidden(message) => (StatusCode::FORBIDDEN, message),
            AppError::NotFound(message) => (StatusCode::NOT_FOUND, message),
            AppError::Conflict(message) => (StatusCode::CONFLICT, message),
            AppError::Unprocessable(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
            AppError::Unavailable(message) => (StatusCode::SERVICE_UNAVAILABLE, message),
            AppError::NoReply(message) => (StatusCode::GATEWAY_TIMEOUT, message),
            AppError::Internal(error) => {
                let chain = celeriac::error::chain(&*error);
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

/// The longest plain-text rejection turned into JSON; longer ones are cut.
const REJECTION_LIMIT: usize = 4 * 1024;

/// Turns axum's plain-text rejections (a query string, JSON body or path that does not parse:
/// `Failed to deserialize query string: ...`) into the API's `{"error": ...}`, so every 4xx of
/// the API has the shape the README promises and a client needs one error parser.
pub(crate) async fn json_rejections(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let plain_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|content_type| content_type.starts_with("text/plain"));
    if !response.status().is_client_error() || !plain_text {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, REJECTION_LIMIT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => "the request was refused".to_owned(),
    };
    (parts.status, Json(json!({ "error": text }))).into_response()
}
