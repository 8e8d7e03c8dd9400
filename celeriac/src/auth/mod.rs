//! The dashboard's accounts in SQL (the `database_url` database, migration `*_dashboard.sql`):
//! users and their roles, the rows behind login sessions, and the audit log.
//!
//! The engine stores and lists; it never hashes passwords or speaks HTTP. The server computes
//! the argon2id hashes, adapts [`sessions::SessionRows`] to its session middleware and decides
//! what each [`Role`] may do.
//!
//! # Layout
//! - [`users`]: [`users::UserStore`], accounts with a role and a password hash.
//! - [`sessions`]: [`sessions::SessionRows`], opaque session records with an expiry.
//! - [`audit`]: [`audit::AuditLog`], who did what to what, when and from where.

pub mod audit;
pub mod sessions;
pub mod users;

use crate::db::DatabaseError;

/// What a dashboard user may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// Also acts on tasks: retry, revoke, terminate, bulk actions.
    Operator,
    /// Also edits schedules and users and shuts workers down.
    Admin,
}

impl Role {
    /// The name stored in the database and typed on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = AuthStoreError;

    fn from_str(name: &str) -> Result<Role, AuthStoreError> {
        match name {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(AuthStoreError::UnknownRole {
                role: name.to_owned(),
            }),
        }
    }
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthStoreError {
    /// Not one of viewer, operator, admin.
    #[error("unknown role {role:?} (expected viewer, operator or admin)")]
    UnknownRole {
        /// The name given or stored.
        role: String,
    },
    /// A user with this name exists already.
    #[error("a user named {name:?} exists already")]
    UserExists {
        /// The name.
        name: String,
    },
    /// No user has this name.
    #[error("no user named {name:?}")]
    NoSuchUser {
        /// The name.
        name: String,
    },
    /// A user name that is empty, too long or has control characters or `:` (Basic auth
    /// cannot carry it).
    #[error("invalid user name {name:?} (1-64 characters, no ':' or control characters)")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
}

/// Milliseconds since the Unix epoch, the unit of every time column of these tables.
fn epoch_millis(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_epoch_millis(millis: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default()
}
