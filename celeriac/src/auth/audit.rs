//! [`AuditLog`]: an append-only record of who did what to what, when and from which address:
//! logins (also failed ones) and logouts now, task and schedule actions as the dashboard gains
//! them.

use super::{epoch_millis, from_epoch_millis, AuthStoreError};
use crate::db::{Database, DatabaseError};
use crate::with_pool;
use chrono::{DateTime, Utc};

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who: the user name (for a failed login, the name tried).
    pub actor: String,
    /// What, as a short verb phrase such as `login`, `login_failed`, `logout`, `task.revoke`.
    pub action: String,
    /// On what (a task id, a schedule name); empty when nothing.
    pub target: String,
    /// The client's address.
    pub address: String,
}

/// The `celeriac_dashboard_audit` table. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct AuditLog {
    database: Database,
}

impl AuditLog {
    /// The log over an open (migrated) database.
    pub fn new(database: Database) -> Self {
        AuditLog { database }
    }

    /// Appends one entry stamped with the current time.
    pub async fn append(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        address: &str,
    ) -> Result<(), AuthStoreError> {
        let dialect = self.database.dialect();
        let sql = format!(
            "INSERT INTO celeriac_dashboard_audit (at, actor, action, target, address) \
             VALUES ({}, {}, {}, {}, {})",
            dialect.placeholder(1),
            dialect.placeholder(2),
            dialect.placeholder(3),
            dialect.placeholder(4),
            dialect.placeholder(5)
        );
        let now = epoch_millis(crate::clock::now());
        with_pool!(&self.database, |pool| sqlx::query(&sql)
            .bind(now)
            .bind(actor)
            .bind(action)
            .bind(target)
            .bind(address)
            .execute(pool)
            .await
            .map_err(DatabaseError::query("append audit entry"))?
            .rows_affected());
        Ok(())
    }

    /// The newest `limit` entries, newest first.
    pub async fn recent(&self, limit: u32) -> Result<Vec<AuditEntry>, AuthStoreError> {
        let sql = format!(
            "SELECT at, actor, action, target, address FROM celeriac_dashboard_audit \
             ORDER BY id DESC LIMIT {}",
            self.database.dialect().placeholder(1)
        );
        let rows: Vec<(i64, String, String, String, String)> = with_pool!(&self.database, |pool| {
            sqlx::query_as(&sql)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(DatabaseError::query("list audit entries"))?
        });
        Ok(rows
            .into_iter()
            .map(|(at, actor, action, target, address)| AuditEntry {
                at: from_epoch_millis(at),
                actor,
                action,
                target,
                address,
            })
            .collect())
    }
}
