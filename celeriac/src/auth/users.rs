//! [`UserStore`]: dashboard accounts. There is no default account: the first one is made with
//! `celeriac user add`, so a fresh install never answers to a known password.

use super::{epoch_millis, from_epoch_millis, AuthStoreError, Role};
use crate::db::{Database, DatabaseError};
use crate::with_pool;
use chrono::{DateTime, Utc};

/// One account as listed (no hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
}

/// What a login needs to check a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user's role.
    pub role: Role,
    /// The PHC string of the password hash.
    pub password_hash: String,
}

/// The `celeriac_dashboard_user` table. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct UserStore {
    database: Database,
}

impl UserStore {
    /// The store over an open (migrated) database.
    pub fn new(database: Database) -> Self {
        UserStore { database }
    }

    /// Adds an account; `password_hash` is already hashed by the caller.
    pub async fn add(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<(), AuthStoreError> {
        validate_name(name)?;
        let dialect = self.database.dialect();
        let sql = format!(
            "INSERT INTO celeriac_dashboard_user (name, role, password_hash, created_at) \
             VALUES ({}, {}, {}, {}) ON CONFLICT (name) DO NOTHING",
            dialect.placeholder(1),
            dialect.placeholder(2),
            dialect.placeholder(3),
            dialect.placeholder(4)
        );
        let now = epoch_millis(crate::clock::now());
        let inserted = with_pool!(&self.database, |pool| sqlx::query(&sql)
            .bind(name)
            .bind(role.as_str())
            .bind(password_hash)
            .bind(now)
            .execute(pool)
            .await
            .map_err(DatabaseError::query("add user"))?
            .rows_affected());
        if inserted == 0 {
            return Err(AuthStoreError::UserExists {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Every account, by name.
    pub async fn list(&self) -> Result<Vec<User>, AuthStoreError> {
        let sql = "SELECT name, role, created_at FROM celeriac_dashboard_user ORDER BY name";
        let rows: Vec<(String, String, i64)> =
            with_pool!(&self.database, |pool| sqlx::query_as(sql)
                .fetch_all(pool)
                .await
                .map_err(DatabaseError::query("list users"))?);
        rows.into_iter()
            .map(|(name, role, created_at)| {
                Ok(User {
                    name,
                    role: role.parse()?,
                    created_at: from_epoch_millis(created_at),
                })
            })
            .collect()
    }

    /// The role and hash of `name`, or `None` when there is no such user.
    pub async fn credentials(&self, name: &str) -> Result<Option<Credentials>, AuthStoreError> {
        let sql = format!(
            "SELECT role, password_hash FROM celeriac_dashboard_user WHERE name = {}",
            self.database.dialect().placeholder(1)
        );
        let row: Option<(String, String)> = with_pool!(&self.database, |pool| sqlx::query_as(&sql)
            .bind(name)
            .fetch_optional(pool)
            .await
            .map_err(DatabaseError::query("read user"))?);
        row.map(|(role, password_hash)| {
            Ok(Credentials {
                role: role.parse()?,
                password_hash,
            })
        })
        .transpose()
    }

    /// Replaces the password of `name` (hashed by the caller). Every session made with the old
    /// password ends at its next request: sessions are bound to the hash they logged in with.
    pub async fn set_password(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<(), AuthStoreError> {
        let sql = format!(
            "UPDATE celeriac_dashboard_user SET password_hash = {} WHERE name = {}",
            self.database.dialect().placeholder(1),
            self.database.dialect().placeholder(2)
        );
        let updated = with_pool!(&self.database, |pool| sqlx::query(&sql)
            .bind(password_hash)
            .bind(name)
            .execute(pool)
            .await
            .map_err(DatabaseError::query("set password"))?
            .rows_affected());
        if updated == 0 {
            return Err(AuthStoreError::NoSuchUser {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Deletes an account. Its open sessions stop working at their next request, because
    /// every request re-reads the role.
    pub async fn delete(&self, name: &str) -> Result<(), AuthStoreError> {
        let sql = format!(
            "DELETE FROM celeriac_dashboard_user WHERE name = {}",
            self.database.dialect().placeholder(1)
        );
        let deleted = with_pool!(&self.database, |pool| sqlx::query(&sql)
            .bind(name)
            .execute(pool)
            .await
            .map_err(DatabaseError::query("delete user"))?
            .rows_affected());
        if deleted == 0 {
            return Err(AuthStoreError::NoSuchUser {
                name: name.to_owned(),
            });
        }
        Ok(())
    }
}

/// The longest account name.
pub const MAX_NAME_CHARS: usize = 64;

fn validate_name(name: &str) -> Result<(), AuthStoreError> {
    let valid = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name
            .chars()
            .any(|character| character == ':' || character.is_control());
    if valid {
        Ok(())
    } else {
        Err(AuthStoreError::InvalidName {
            name: name.to_owned(),
        })
    }
}
