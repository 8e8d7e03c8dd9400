//! The leader's in-memory schedule: every entry by name, and a heap of wake-up times, soonest
//! first.
//!
//! Each entry has at most one live heap item: scheduling an entry gives it a fresh token, and
//! a popped item whose token is not the entry's current one (the entry was edited, deleted,
//! or rescheduled since) is dropped. So edits never leave duplicate wake-ups behind, and the
//! heap holds at most one live item per entry plus the stale ones not yet popped.

use super::store::StoredTask;
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

#[derive(Debug)]
struct Entry {
    stored: StoredTask,
    /// The token of the entry's live heap item; 0 when it has none.
    token: u64,
}

/// Entries and their wake-up heap.
#[derive(Debug, Default)]
pub(super) struct Entries {
    by_name: HashMap<Arc<str>, Entry>,
    /// (wake-up in epoch ms, token, name), soonest first.
    heap: BinaryHeap<Reverse<(i64, u64, Arc<str>)>>,
    next_token: u64,
}

impl Entries {
    pub(super) fn clear(&mut self) {
        self.by_name.clear();
        self.heap.clear();
    }

    pub(super) fn len(&self) -> usize {
        self.by_name.len()
    }

    pub(super) fn get(&self, name: &str) -> Option<&StoredTask> {
        self.by_name.get(name).map(|entry| &entry.stored)
    }

    pub(super) fn get_mut(&mut self, name: &str) -> Option<&mut StoredTask> {
        self.by_name.get_mut(name).map(|entry| &mut entry.stored)
    }

    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(|name| &**name)
    }

    pub(super) fn versions(&self) -> impl Iterator<Item = i64> + '_ {
        self.by_name.values().map(|entry| entry.stored.version)
    }

    /// Tracks `stored` (replacing what was tracked under its name), unscheduled.
    pub(super) fn put(&mut self, stored: StoredTask) {
        let name: Arc<str> = Arc::from(stored.task.name.as_str());
        self.by_name.insert(name, Entry { stored, token: 0 });
    }

    pub(super) fn remove(&mut self, name: &str) -> bool {
        self.by_name.remove(name).is_some()
    }

    /// Wakes the entry at `at` (replacing its previous wake-up), or never if `None`.
    pub(super) fn schedule(&mut self, name: &str, at: Option<DateTime<Utc>>) {
        let Some(key) = self.by_name.get_key_value(name).map(|(key, _)| key.clone()) else {
            return;
        };
        self.next_token += 1;
        let token = match at {
            Some(at) => {
                let token = self.next_token;
                self.heap.push(Reverse((ceil_millis(at), token, key)));
                token
            }
            None => 0,
        };
        if let Some(entry) = self.by_name.get_mut(name) {
            entry.token = token;
        }
    }

    /// Wakes the entry at the next look, whatever the clock says (it is due now).
    pub(super) fn schedule_now(&mut self, name: &str) {
        self.schedule(name, DateTime::<Utc>::from_timestamp_millis(0));
    }

    /// The next live wake-up, dropping stale items on the way.
    pub(super) fn next_wake(&mut self) -> Option<i64> {
        while let Some(Reverse((at, token, name))) = self.heap.peek() {
            if self.is_live(name, *token) {
                return Some(*at);
            }
            self.heap.pop();
        }
        None
    }

    /// The next entry due at or before `now_ms`, unscheduled.
    pub(super) fn pop_due(&mut self, now_ms: i64) -> Option<Arc<str>> {
        if self.next_wake()? > now_ms {
            return None;
        }
        let Reverse((_, _, name)) = self.heap.pop()?;
        if let Some(entry) = self.by_name.get_mut(&*name) {
            entry.token = 0;
        }
        Some(name)
    }

    fn is_live(&self, name: &str, token: u64) -> bool {
        token != 0
            && self
                .by_name
                .get(name)
                .is_some_and(|entry| entry.token == token)
    }
}

/// The millisecond at or after `at`: an entry woken then is due (its slot may have a
/// sub-millisecond part; rounding down would wake it just before the slot, find it not due,
/// and wake it at the same millisecond again).
fn ceil_millis(at: DateTime<Utc>) -> i64 {
    let millis = at.timestamp_millis();
    if at.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
        millis
    } else {
        millis + 1
    }
}
