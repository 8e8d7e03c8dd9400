//! [`SqlSessionStore`]: tower-sessions' store over the engine's `celeriac_dashboard_session`
//! table, so sessions survive restarts, are shared by every replica using the same database,
//! and end for real at logout.

use async_trait::async_trait;
use celeriac::auth::sessions::SessionRows;
use chrono::{DateTime, Utc};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

/// Sessions in SQL.
#[derive(Debug, Clone)]
pub struct SqlSessionStore {
    rows: SessionRows,
}

impl SqlSessionStore {
    /// The store over `rows`.
    pub fn new(rows: SessionRows) -> Self {
        SqlSessionStore { rows }
    }
}

fn backend(error: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(error.to_string())
}

fn chrono_time(at: time::OffsetDateTime) -> DateTime<Utc> {
    let millis = at.unix_timestamp_nanos() / 1_000_000;
    DateTime::from_timestamp_millis(i64::try_from(millis).unwrap_or(i64::MAX)).unwrap_or_default()
}

fn encode(record: &Record) -> session_store::Result<String> {
    serde_json::to_string(&record.data)
        .map_err(|error| session_store::Error::Encode(error.to_string()))
}

#[async_trait]
impl SessionStore for SqlSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = encode(record)?;
        // A collision of 128 random bits is not expected, but a new id is cheap.
        while !self
            .rows
            .insert(
                &record.id.to_string(),
                &data,
                chrono_time(record.expiry_date),
            )
            .await
            .map_err(backend)?
        {
            record.id = Id::default();
        }
        Ok(())
    }

    /// Only ever updates: tower-sessions saves a session at the end of every request that
    /// touched it, so an upsert let a request still in flight at logout (or at a login's id
    /// rotation) re-create the session it had just lost. A session that is gone stays gone.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = encode(record)?;
        let id = record.id.to_string();
        let updated = self
            .rows
            .update(&id, &data, chrono_time(record.expiry_date))
            .await
            .map_err(backend)?;
        if !updated {
            tracing::debug!("a request saved a session that had ended; not re-created");
        }
        Ok(())
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let Some((data, expires_at)) = self
            .rows
            .load(&session_id.to_string(), celeriac::clock::now())
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let data = serde_json::from_str(&data)
            .map_err(|error| session_store::Error::Decode(error.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(expires_at.timestamp_millis()) * 1_000_000,
        )
        .map_err(|error| session_store::Error::Decode(error.to_string()))?;
        Ok(Some(Record {
            id: *session_id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        self.rows
            .delete(&session_id.to_string())
            .await
            .map_err(backend)
    }
}
