//! The server's version: the smallest server function, proving that the browser can reach
//! the server through `leptos_axum`'s server function routes.

use leptos::prelude::*;

use crate::error::ApiError;

/// The version of the server that answered, as `celeriac X.Y.Z`.
#[server]
pub async fn server_version() -> Result<String, ApiError> {
    Ok(format!("celeriac {}", env!("CARGO_PKG_VERSION")))
}
