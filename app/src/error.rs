//! [`ApiError`]: what a server function reports to the browser when it fails.
//!
//! It is serializable so that the browser receives the same variant the server produced.
//! Engine errors (Redis, SQL) are mapped to a variant here under `ssr` and never cross the wire.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// An error returned by a server function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    /// The server function machinery failed: the request did not arrive, the server could not
    /// decode it, or the answer could not be decoded.
    #[error("server function call failed: {message}")]
    ServerFn {
        /// The transport-level description from `server_fn`.
        message: String,
    },
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        ApiError::ServerFn {
            message: value.to_string(),
        }
    }
}
