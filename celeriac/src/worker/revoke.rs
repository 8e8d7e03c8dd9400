//! The revoked set: task ids this worker must not run.
//!
//! Celery keeps revokes in each worker's memory only, so a worker started after a revoke runs
//! the task anyway. Ours are also written to Redis (a sorted set scored by expiry, 3 hours like
//! Celery's `REVOKE_EXPIRES`), and a worker loads them at start and every few seconds.

use super::Shared;
use crate::clock;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How long a revoke lasts (Celery's `CELERY_WORKER_REVOKE_EXPIRES` default).
pub(crate) const REVOKE_EXPIRES: Duration = Duration::from_secs(10_800);

/// Task id → epoch second the revoke expires.
#[derive(Debug, Default)]
pub(crate) struct Revoked {
    ids: Mutex<HashMap<String, f64>>,
}

impl Revoked {
    pub(crate) fn contains(&self, task_id: &str) -> bool {
        let now = clock::epoch_now();
        self.ids
            .lock()
            .map(|ids| ids.get(task_id).is_some_and(|until| *until > now))
            .unwrap_or(false)
    }

    pub(crate) fn insert(&self, task_id: &str, until: f64) {
        if let Ok(mut ids) = self.ids.lock() {
            ids.insert(task_id.to_owned(), until);
        }
    }

    /// Every id with the epoch second its revoke expires (expired ones included).
    pub(crate) fn entries(&self) -> Vec<(String, f64)> {
        self.ids
            .lock()
            .map(|ids| ids.iter().map(|(id, until)| (id.clone(), *until)).collect())
            .unwrap_or_default()
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        let now = clock::epoch_now();
        self.ids
            .lock()
            .map(|ids| {
                ids.iter()
                    .filter(|(_, until)| **until > now)
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Revokes `task_ids` here and in Redis, so workers started later honour them too.
pub(crate) async fn revoke(shared: &Shared, task_ids: &[String]) {
    let until = clock::epoch_now() + REVOKE_EXPIRES.as_secs_f64();
    for task_id in task_ids {
        shared.revoked.insert(task_id, until);
    }
    if let Err(error) = shared.broker.persist_revokes(task_ids, until).await {
        tracing::warn!(%error, "could not persist revokes; they hold on this worker only");
    }
}

/// Loads the persisted revokes now and every 5 s (revokes sent while this worker was down, or
/// received by another worker).
pub(crate) async fn sync(shared: std::sync::Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        load(&shared).await;
    }
}

/// Loads the persisted revokes into memory.
pub(crate) async fn load(shared: &Shared) {
    match shared.broker.revokes().await {
        Ok(revokes) => {
            for (task_id, until) in revokes {
                shared.revoked.insert(&task_id, until);
            }
        }
        Err(error) => tracing::debug!(%error, "could not load revokes"),
    }
}
