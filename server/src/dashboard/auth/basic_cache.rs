//! [`BasicCache`]: Basic-auth credentials that were verified a moment ago.
//!
//! An API client sends its password with every request, and an argon2 verify costs tens of
//! milliseconds of a shared pool: a viewer on 32 connections took the login form from 25 to
//! 470 ms (issue 13, F14). So a verified pair is remembered for [`FRESH_FOR`], keyed by a
//! keyed hash of name and password (the password itself is never kept), together with the
//! credential it matched. A hit still reads the account, so a deleted account, a new password
//! or a new role counts at once; only the argon2 work is saved. The key is random per process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use blake2::digest::{FixedOutput, Update};
use blake2::Blake2b512;

/// How long a verified pair is trusted without verifying again.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(60);
/// Pairs remembered at most; past it the stale ones go, and if none is stale, all.
const MAX_ENTRIES: usize = 1_024;

/// See the module docs. Clones share the entries.
#[derive(Clone)]
pub(crate) struct BasicCache {
    key: Arc<[u8; 32]>,
    entries: Arc<Mutex<HashMap<[u8; 64], Verified>>>,
}

impl std::fmt::Debug for BasicCache {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("BasicCache").finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct Verified {
    credential: String,
    at: Instant,
}

impl Default for BasicCache {
    fn default() -> Self {
        BasicCache {
            key: Arc::new(rand::random()),
            entries: Arc::default(),
        }
    }
}

impl BasicCache {
    fn digest(&self, name: &str, password: &str) -> [u8; 64] {
        let mut hasher = Blake2b512::default();
        hasher.update(self.key.as_slice());
        hasher.update(&(name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(password.as_bytes());
        hasher.finalize_fixed().into()
    }

    /// The credential tag `name` with `password` was verified against within [`FRESH_FOR`].
    pub(crate) fn recall(&self, name: &str, password: &str) -> Option<String> {
        let digest = self.digest(name, password);
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&digest)
            .filter(|verified| verified.at.elapsed() < FRESH_FOR)
            .map(|verified| verified.credential.clone())
    }

    /// Remembers that `name` with `password` matched `credential` just now.
    pub(crate) fn remember(&self, name: &str, password: &str, credential: &str) {
        let digest = self.digest(name, password);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, verified| verified.at.elapsed() < FRESH_FOR);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            digest,
            Verified {
                credential: credential.to_owned(),
                at: Instant::now(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_name_and_password_are_recalled() {
        let cache = BasicCache::default();
        cache.remember("ada", "secret", "tag1");
        assert_eq!(cache.recall("ada", "secret").as_deref(), Some("tag1"));
        assert_eq!(cache.recall("ada", "secret2"), None);
        assert_eq!(cache.recall("ad", "asecret"), None);
        assert_eq!(BasicCache::default().recall("ada", "secret"), None);
    }
}
