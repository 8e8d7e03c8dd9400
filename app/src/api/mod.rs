//! Server functions: the only way the browser asks the server for data.
//!
//! Each `#[server]` function compiles to an HTTP client stub in the browser and to its real
//! body under `ssr`. They return [`crate::error::ApiError`] so errors keep their type on the wire.

pub mod version;
