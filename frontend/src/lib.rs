//! The WASM hydrate entry.
