//! Stub: filled in by the engine work.
