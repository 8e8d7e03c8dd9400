//! [`Hasher`]: argon2id password hashing off the async threads, with a cap on how many hashes
//! run at once.
//!
//! Parameters are OWASP's minimum for argon2id (19 MiB, 2 passes, 1 lane): each hash costs
//! that much memory and tens of milliseconds of CPU, so an unbounded burst of logins (or Basic
//! auth requests) could exhaust memory; the semaphore makes them queue instead. Verifying an
//! unknown user's password runs against a dummy hash with the same parameters, so "no such
//! user" and "wrong password" take the same time.

use std::sync::Arc;

use anyhow::Context as _;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// OWASP: m = 19456 KiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19_456;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// How many hashes may run at once (each holds ~19 MiB while it runs).
const CONCURRENT_HASHES: usize = 4;

/// Hashes and verifies passwords; cloning shares the cap.
#[derive(Debug, Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    dummy_hash: Arc<str>,
    /// Verifications run, for the tests that show a cache saved them.
    verified: Arc<std::sync::atomic::AtomicU64>,
}

fn argon2() -> Argon2<'static> {
    // The constants are valid argon2 parameters, so this cannot fail.
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC string for `password` with a fresh salt (blocking; use [`Hasher::hash`] in async code).
pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|error| anyhow::anyhow!("hashing the password: {error}"))?;
    Ok(hash.to_string())
}

fn verify_blocking(password_hash: &str, password: &str) -> bool {
    match PasswordHash::new(password_hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(error) => {
            tracing::warn!(%error, "stored password hash is unreadable");
            false
        }
    }
}

impl Hasher {
    /// A hasher with a fresh dummy hash (computed once, here).
    pub fn new() -> anyhow::Result<Hasher> {
        let dummy_hash = hash_blocking("celeriac dummy password for unknown users")?;
        Ok(Hasher {
            permits: Arc::new(Semaphore::new(CONCURRENT_HASHES)),
            dummy_hash: dummy_hash.into(),
            verified: Arc::default(),
        })
    }

    /// How many passwords [`Hasher::verify`] has checked.
    #[cfg(test)]
    pub(crate) fn verifications(&self) -> u64 {
        self.verified.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Hashes `password` on the blocking pool.
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .context("hashing task")?
    }

    /// True when `password` matches `password_hash`; with `None` (no such user) it verifies
    /// against the dummy hash and returns false, taking the same time as a wrong password.
    pub async fn verify(&self, password_hash: Option<String>, password: String) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        self.verified
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let known = password_hash.is_some();
        let password_hash = password_hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let matched =
            tokio::task::spawn_blocking(move || verify_blocking(&password_hash, &password))
                .await
                .unwrap_or(false);
        known && matched
    }
}
