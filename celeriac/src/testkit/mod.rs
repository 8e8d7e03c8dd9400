//! Stub: test helpers.
