//! Celery events: sent by our worker, and received and folded into a cluster model for
//! monitors (`celeriac events`, the dashboard).
//!
//! Worker events (`worker-online`, `worker-heartbeat` every 2 s, `worker-offline`) are always
//! sent, one message each. Task events (`task-received`, `-started`, `-succeeded`, `-failed`,
//! `-retried`, `-revoked`, `-rejected`) only with `worker_send_task_events` (`-E`), batched as a
//! list on `task.multi` like Celery's event loop does. The wire format is in
//! [`crate::protocol::event`].
//!
//! The receiving side, as a pipeline:
//!
//! ```text
//! Redis PSUBSCRIBE <prefix>/<db>.celeryev/*
//!   → EventReceiver (decode envelopes into Event batches; garbage counted; texts cut and
//!     overweight events refused, see `weight`)
//!   → EventStream (bounded; a full buffer drops the batch and counts it)
//!   → Monitor (ClusterState under a short lock; version on a watch channel; batches to
//!     subscribers such as the SQL history)
//! ```
//!
//! | event | fields the state reads |
//! |---|---|
//! | `task-sent` | `uuid`, `name`, `args`, `kwargs`, `retries`, `eta`, `expires`, `parent_id`, `root_id`, `routing_key` |
//! | `task-received` | `uuid`, `name`, `args`, `kwargs`, `retries`, `eta`, `expires`, `parent_id`, `root_id` |
//! | `task-started` | `uuid` |
//! | `task-succeeded` | `uuid`, `result`, `runtime` |
//! | `task-failed`, `task-retried` | `uuid`, `exception`, `traceback` |
//! | `task-revoked` | `uuid`, `terminated`, `expired` |
//! | `task-rejected` | `uuid`, `requeue` |
//! | `worker-*` | `freq`, `active`, `processed`, `loadavg`, `sw_ident`, `sw_ver`, `sw_sys` |

mod dispatcher;
mod monitor;
mod receiver;
pub mod state;
pub mod weight;

pub use dispatcher::EventDispatcher;
pub use monitor::{Monitor, MonitorOptions};
pub use receiver::{
    EventReceiver, EventStream, ReceiverError, ReceiverStats, ReceiverStatsSnapshot,
    MAX_BATCH_EVENTS,
};
pub use state::{ClusterState, StateOptions};
