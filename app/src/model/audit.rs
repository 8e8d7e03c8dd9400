//! The JSON of `GET /api/audit?limit=N` (admins only): who did what, when, from where.

use serde::{Deserialize, Serialize};

/// One audit log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When (RFC 3339).
    pub at: String,
    /// The user name.
    pub actor: String,
    /// What: `login`, `task.retry`, `task.bulk_retry`, `task.revoke`...
    pub action: String,
    /// On what (a task id, a filter); may be empty.
    pub target: String,
    /// The client address.
    pub address: String,
}
