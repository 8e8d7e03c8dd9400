//! Every byte that crosses a process: the kombu envelope, Celery's task message (protocol v2,
//! and v1 for decoding), kombu's typed JSON and the result-backend document.
//!
//! Architecture invariant: this module does no IO. The broker and backend hand it bytes and get
//! bytes back, so golden tests can run the whole codec against captures from real Celery.

pub mod content;
pub mod control;
pub mod envelope;
pub mod event;
pub mod python_literal;
pub mod result_meta;
pub mod signature;
pub mod task_message;
pub mod time;

pub use envelope::{DeliveryInfo, Envelope, Properties};
pub use result_meta::ResultMeta;
pub use signature::Signature;
pub use task_message::{Embed, TaskHeaders, TaskMessage};

/// Why bytes could not be read as, or written as, a Celery message.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The envelope is not a JSON object of kombu's shape.
    #[error("envelope is not valid kombu JSON: {reason}")]
    InvalidEnvelope {
        /// What the JSON parser or shape check said.
        reason: String,
    },
    /// The body's `body_encoding` is base64 but the text is not.
    #[error("body is not valid base64")]
    InvalidBase64,
    /// Only JSON payloads are accepted, like Celery's default `accept_content`.
    #[error("content type {content_type:?} is not accepted (only application/json)")]
    UnsupportedContentType {
        /// The envelope's `content-type`.
        content_type: String,
    },
    /// The payload is not the JSON Celery expects.
    #[error("body is not valid JSON: {reason}")]
    InvalidBody {
        /// What was wrong.
        reason: String,
    },
    /// A header Celery requires is missing.
    #[error("header {name:?} is missing")]
    MissingHeader {
        /// The header's name.
        name: &'static str,
    },
    /// A header has the wrong type or an unreadable value.
    #[error("header {name:?} is invalid: {reason}")]
    InvalidHeader {
        /// The header's name.
        name: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A property kombu requires is missing or invalid.
    #[error("property {name:?} is missing or invalid")]
    InvalidProperty {
        /// The property's name.
        name: &'static str,
    },
    /// A message we were about to publish would crash or confuse a Python worker.
    #[error("refusing to publish: {reason}")]
    Unpublishable {
        /// Which rule it broke.
        reason: String,
    },
}
