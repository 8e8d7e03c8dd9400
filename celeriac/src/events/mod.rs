//! Celery events sent by our worker, so Flower, `celery events` and our own monitors see Rust
//! workers as they see Python ones.
//!
//! Worker events (`worker-online`, `worker-heartbeat` every 2 s, `worker-offline`) are always
//! sent, one message each. Task events (`task-received`, `-started`, `-succeeded`, `-failed`,
//! `-retried`, `-revoked`, `-rejected`) only with `worker_send_task_events` (`-E`), batched as a
//! list on `task.multi` like Celery's event loop does. The wire format is in
//! [`crate::protocol::event`].

mod dispatcher;

pub use dispatcher::EventDispatcher;
