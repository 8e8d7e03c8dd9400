//! Stub: filled in by the engine work.

pub mod backoff;
pub mod node_name;
pub mod rate_limit;
