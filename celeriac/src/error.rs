//! The engine's top-level error, wrapping one error enum per boundary.

/// Every error the engine returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Placeholder until the boundaries exist.
    #[error("not yet built")]
    Unbuilt,
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
