//! Remote control from Rust: Celery's `app.control` and `app.control.inspect()`, reaching
//! Python and Rust workers alike.
//!
//! # The reply path
//! 1. [`Control::broadcast`] binds a fresh reply queue `<oid>.reply.celery.pidbox` in the
//!    binding table of `reply.celery.pidbox` (without that binding every worker's reply is
//!    dropped, wire doc §5.2).
//! 2. It publishes `{method, arguments, destination, pattern, matcher, ticket, reply_to}` on
//!    the `celery.pidbox` fanout (PUB/SUB), which every running worker's mailbox receives.
//! 3. Each addressed worker `LPUSH`es `{node: result}` with header `ticket` to the reply queue
//!    (for Rust workers see `worker::control`); the client `BRPOP`s, keeps replies carrying its
//!    ticket, and stops at the timeout or after `limit` replies (by default the number of
//!    destinations, as kombu does).
//! 4. It unbinds and deletes the reply queue.
//!
//! Results are Celery's: `{"ok": text}`, `{"error": text}`, or data for inspections, returned
//! as [`Replies`] (node name → result). No reply at all is an empty map, not an error: a
//! broadcast cannot tell "no workers" from "workers too slow".
//!
//! # Example
//! ```no_run
//! # async fn example() -> Result<(), celeriac::Error> {
//! use celeriac::config::Config;
//! use celeriac::control::{BroadcastOptions, Control, Inspect};
//! use std::time::Duration;
//!
//! let control = Control::connect(&Config::default()).await?;
//! let everyone = BroadcastOptions::default().timeout(Duration::from_secs(1));
//! for (node, reply) in control.ping(&everyone).await? {
//!     println!("{node}: {reply}");
//! }
//! let one = BroadcastOptions::default().to(["w1@example"]);
//! let active = control.inspect(Inspect::Active, &one).await?;
//! control.revoke(&["d9078da5-9915-40a0-bfa1-392c7bde42ed"], true, None, &one).await?;
//! # let _ = active;
//! # Ok(())
//! # }
//! ```

mod client;
mod commands;

pub use client::{BroadcastOptions, Control, Replies};
pub use commands::Inspect;

use crate::broker::BrokerError;

/// Why a control broadcast failed. Workers that do not answer are not an error (see the
/// module docs); only the broker failing is.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The broadcast could not be published, or the reply queue could not be declared or read.
    #[error("remote control over the broker failed")]
    Broker(#[from] BrokerError),
}
