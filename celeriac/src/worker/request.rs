//! [`Request`]: a decoded task message this worker holds, and the decoding that makes one
//! (Celery's `worker/request.py`). Every other worker file reads the request; this one
//! depends on none of them.

use crate::broker::Delivery;
use crate::protocol::{Envelope, TaskMessage};

/// Characters of a result or exception repr in a log line, as in an event (Celery's
/// `resultrepr_maxsize`): the stored result keeps it whole.
pub(crate) const REPR_LOGGED: usize = crate::protocol::event::task_fields::REPR_MAX;

/// The longest task id or task name a dead-letter log line and FAILURE carry; a message whose
/// id or name is over four times this is refused as invalid.
const MAX_NAME_CHARS: usize = 256;

/// A decoded message this worker holds.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) delivery: Delivery,
    pub(crate) message: TaskMessage,
    pub(crate) priority: u8,
    pub(crate) redelivered: bool,
    /// When this worker decoded it, to tell whether it may have been restored meanwhile.
    pub(crate) fetched_at: std::time::Instant,
}

impl Request {
    /// The request `delivery` holds, or why it is not one (with the delivery back, to
    /// dead-letter). The delivery is moved in, not copied: its envelope may be megabytes.
    pub(crate) fn decode(delivery: Delivery) -> Result<Request, (String, Delivery)> {
        match decode_parts(&delivery) {
            Ok((message, priority, redelivered)) => Ok(Request {
                delivery,
                priority,
                redelivered,
                message,
                fetched_at: std::time::Instant::now(),
            }),
            Err(reason) => Err((reason, delivery)),
        }
    }

    /// The task id, as every log line and event names the run.
    pub(crate) fn id(&self) -> &str {
        self.message.headers.id.as_str()
    }

    /// The task name.
    pub(crate) fn name(&self) -> &str {
        &self.message.headers.task
    }
}

fn decode_parts(delivery: &Delivery) -> Result<(TaskMessage, u8, bool), String> {
    let envelope =
        Envelope::from_json(delivery.raw.as_bytes()).map_err(|error| error.to_string())?;
    let message = TaskMessage::decode(&envelope).map_err(|error| error.to_string())?;
    for (field, text) in [
        ("id", &message.headers.id.0),
        ("task", &message.headers.task),
    ] {
        // Every log line and event names the task by these; no real one is this long.
        if text.len() > MAX_NAME_CHARS * 4 {
            return Err(format!(
                "header {field} is {} bytes, longer than any task {field} ({} bytes at most)",
                text.len(),
                MAX_NAME_CHARS * 4
            ));
        }
    }
    Ok((message, envelope.priority(), envelope.redelivered()))
}

/// Best effort at the id and name of a message that failed to decode, so its FAILURE result
/// can be stored and the log line names it. An id longer than any real one is garbage: no
/// FAILURE is stored under a cut one. A name that long is cut; it still names the message in
/// the log without filling it.
pub(crate) fn identify(raw: &str) -> (Option<String>, Option<String>) {
    let (id, name) = crate::protocol::envelope::identify(raw);
    let id = id.filter(|id| id.len() <= MAX_NAME_CHARS * 4);
    let name = name.map(|name| truncate(&name, MAX_NAME_CHARS).to_owned());
    (id, name)
}

pub(crate) use crate::protocol::event::task_fields::truncate_chars as truncate;
