//! The broker: kombu's Redis transport, shared with Python Celery.
//!
//! A queue is up to four Redis lists (one per priority step). Producers `LPUSH` envelopes;
//! consumers take from the right end and record what they took in `unacked` until they ack.
//! Messages a consumer took and never acked become visible again after the visibility timeout
//! and are restored by whichever consumer (Python or Rust) sweeps first.

mod beat;
mod connect;
mod depth;
mod fanout;
mod fetch;
pub mod keys;
mod link;
mod publish;
mod redis;
mod reply_queue;
mod scripts;
mod sentinel;
mod sweep;
mod tls;

pub(crate) use self::connect::open_link;
pub(crate) use self::link::Link;
pub use self::redis::{BrokerOptions, DeadLetter, Fetched, RedisBroker};
pub use self::sentinel::{SentinelKwargs, SentinelOptions};
pub use beat::{FireOutcome, LeaderInfo, LeaseState, SlotFire};
pub use depth::{PriorityDepth, QueueDepth, UnackedDepth};
pub use keys::{ChordKeys, Keys};
pub use reply_queue::ReplyQueue;
pub use tls::{client as redis_client, redacted, ClientError, RedisSsl};

/// A message handed to this consumer and recorded in `unacked`, not yet acked.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The key of the in-flight record.
    pub delivery_tag: String,
    /// The queue it was taken from (without the key prefix or priority suffix).
    pub queue: String,
    /// The envelope exactly as it was stored.
    pub raw: String,
}

/// Why a broker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker URL does not parse, or its TLS options are wrong.
    #[error("invalid broker connection settings")]
    Client(#[from] ClientError),
    /// Redis refused a command or the connection failed. A refused command did not take
    /// effect; one whose connection failed may have run with its reply lost (the consumer
    /// reclaims such a fetch, see [`RedisBroker::reclaim_lost_fetch`]).
    #[error("redis command {command} failed")]
    Redis {
        /// Which operation.
        command: &'static str,
        /// What Redis said.
        #[source]
        source: ::redis::RedisError,
    },
    /// The broker could not be reached at start-up, after every attempt the configuration
    /// allows (`broker_connection_retry_on_startup`, `broker_connection_max_retries`).
    #[error("cannot reach the broker at {address} after {attempts} attempt(s){hint}")]
    Unreachable {
        /// `host:port` (never the password).
        address: String,
        /// Attempts made.
        attempts: u32,
        /// What to change, when the failure says (a TLS certificate problem); else empty.
        hint: String,
        /// The last attempt's failure.
        #[source]
        source: ::redis::RedisError,
    },
    /// A record in `unacked` is not kombu's `[envelope, exchange, routing_key]`.
    #[error("unacked record {delivery_tag:?} is malformed: {reason}")]
    MalformedRecord {
        /// The record's key.
        delivery_tag: String,
        /// What was wrong.
        reason: String,
    },
}

impl BrokerError {
    /// True when Redis could not be reached or cannot serve yet (see [`is_unreachable`]):
    /// worth trying again for as long as it takes.
    pub fn is_unreachable(&self) -> bool {
        match self {
            BrokerError::Redis { source, .. } => is_unreachable(source),
            BrokerError::Unreachable { .. } => true,
            _ => false,
        }
    }
}

/// True when Redis could not be reached (refused, dropped, timed out) or answered that it
/// cannot serve yet: `LOADING` while a restarted server reads its append-only file,
/// `MASTERDOWN`, `TRYAGAIN`, `CLUSTERDOWN`, and `READONLY` from a master demoted in a failover.
/// Unlike most errors Redis answers with (wrong type), waiting cures these.
pub(crate) fn is_unreachable(source: &::redis::RedisError) -> bool {
    use ::redis::{ErrorKind, ServerErrorKind};
    source.is_io_error()
        || source.is_connection_dropped()
        || source.is_connection_refusal()
        || source.is_timeout()
        || matches!(
            source.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::ReadOnly
            )
        )
}
