//! [`SessionRows`]: the `celeriac_dashboard_session` table, opaque records (an id, a JSON
//! document, an expiry) behind the server's login sessions. Keeping them in SQL means a restart
//! does not log everyone out and logout really ends a session (the cookie alone proves nothing).

use super::{epoch_millis, AuthStoreError};
use crate::db::{Database, DatabaseError};
use crate::with_pool;
use chrono::{DateTime, Utc};

/// The `celeriac_dashboard_session` table. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct SessionRows {
    database: Database,
}

impl SessionRows {
    /// The table over an open (migrated) database.
    pub fn new(database: Database) -> Self {
        SessionRows { database }
    }

    /// Inserts a new session; false when the id is taken (the caller draws another).
    pub async fn insert(
        &self,
        id: &str,
        data: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, AuthStoreError> {
        let dialect = self.database.dialect();
        let sql = format!(
            "INSERT INTO celeriac_dashboard_session (id, data, expires_at) VALUES ({}, {}, {}) \
             ON CONFLICT (id) DO NOTHING",
            dialect.placeholder(1),
            dialect.placeholder(2),
            dialect.placeholder(3)
        );
        let inserted = with_pool!(&self.database, |pool| sqlx::query(&sql)
            .bind(id)
            .bind(data)
            .bind(epoch_millis(expires_at))
            .execute(pool)
            .await
            .map_err(DatabaseError::query("insert session"))?
            .rows_affected());
        Ok(inserted == 1)
    }

    /// Rewrites an existing session; false when there is none (it was deleted: a logout, a
    /// login's id rotation, an expiry sweep), and then nothing is written.
    ///
    /// Never an insert: a request that was in flight when its session ended must not bring
    /// the session back by saving it afterwards.
    pub async fn update(
        &self,
        id: &str,
        data: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, AuthStoreError> {
        let dialect = self.database.dialect();
        let sql = format!(
            "UPDATE celeriac_dashboard_session SET data = {p2}, expires_at = {p3} WHERE id = {p1}",
            p1 = dialect.placeholder(1),
            p2 = dialect.placeholder(2),
            p3 = dialect.placeholder(3)
        );
        let updated = with_pool!(&self.database, |pool| sqlx::query(&sql)
            .bind(id)
            .bind(data)
            .bind(epoch_millis(expires_at))
            .execute(pool)
            .await
            .map_err(DatabaseError::query("save session"))?
            .rows_affected());
        Ok(updated == 1)
    }

    /// The data of a session that has not expired at `now`.
    pub async fn load(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, DateTime<Utc>)>, AuthStoreError> {
        let dialect = self.database.dialect();
        let sql = format!(
            "SELECT data, expires_at FROM celeriac_dashboard_session \
             WHERE id = {} AND expires_at > {}",
            dialect.placeholder(1),
            dialect.placeholder(2)
        );
        let row: Option<(String, i64)> = with_pool!(&self.database, |pool| sqlx::query_as(&sql)
            .bind(id)
            .bind(epoch_millis(now))
            .fetch_optional(pool)
            .await
            .map_err(DatabaseError::query("load session"))?);
        Ok(row.map(|(data, expires_at)| (data, super::from_epoch_millis(expires_at))))
    }

    /// Ends a session.
    pub async fn delete(&self, id: &str) -> Result<(), AuthStoreError> {
        let sql = format!(
            "DELETE FROM celeriac_dashboard_session WHERE id = {}",
            self.database.dialect().placeholder(1)
        );
        with_pool!(&self.database, |pool| sqlx::query(&sql)
            .bind(id)
            .execute(pool)
            .await
            .map_err(DatabaseError::query("delete session"))?
            .rows_affected());
        Ok(())
    }

    /// Deletes the sessions expired at `now`; returns how many.
    pub async fn delete_expired(&self, now: DateTime<Utc>) -> Result<u64, AuthStoreError> {
        let sql = format!(
            "DELETE FROM celeriac_dashboard_session WHERE expires_at <= {}",
            self.database.dialect().placeholder(1)
        );
        let deleted = with_pool!(&self.database, |pool| sqlx::query(&sql)
            .bind(epoch_millis(now))
            .execute(pool)
            .await
            .map_err(DatabaseError::query("delete expired sessions"))?
            .rows_affected());
        Ok(deleted)
    }
}
