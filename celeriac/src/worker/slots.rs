//! [`Slots`]: a semaphore whose size changes while permits are out, for the pool
//! (`concurrency`) and the prefetch limit, which `pool_grow` and `pool_shrink` resize at run
//! time.
//!
//! Growing adds permits at once. Shrinking forgets the permits that are free now and records
//! the rest as a debt: each [`Slot`] dropped while a debt is owed is forgotten instead of
//! returned, so running tasks finish and the pool shrinks as they do (Celery's "pool will
//! shrink"). Invariant: free permits + slots held = size + debt.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A resizable set of slots. Held in an `Arc`: each [`Slot`] keeps one to settle the debt.
#[derive(Debug)]
pub(crate) struct Slots {
    semaphore: Arc<Semaphore>,
    /// The size asked for; resizes are serialized by this lock.
    size: Mutex<usize>,
    /// Permits still to forget as slots come back.
    debt: AtomicUsize,
}

/// One slot taken; returned (or forgotten, while a shrink is owed) on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    slots: Arc<Slots>,
}

impl Slots {
    pub(crate) fn new(size: usize) -> Arc<Slots> {
        Arc::new(Slots {
            semaphore: Arc::new(Semaphore::new(size)),
            size: Mutex::new(size),
            debt: AtomicUsize::new(0),
        })
    }

    /// Waits for a free slot.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Slot {
        let permit = self.semaphore.clone().acquire_owned().await.ok();
        Slot {
            permit,
            slots: self.clone(),
        }
    }

    /// A free slot now, if there is one.
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<Slot> {
        let permit = self.semaphore.clone().try_acquire_owned().ok()?;
        Some(Slot {
            permit: Some(permit),
            slots: self.clone(),
        })
    }

    /// The size asked for (the live concurrency or prefetch limit).
    pub(crate) fn size(&self) -> usize {
        self.size.lock().map(|size| *size).unwrap_or(0)
    }

    /// Slots taken now.
    pub(crate) fn in_use(&self) -> usize {
        let size = self.size();
        (size + self.debt.load(Ordering::Acquire))
            .saturating_sub(self.semaphore.available_permits())
    }

    /// Changes the size; a shrink below the slots in use completes as they are returned.
    pub(crate) fn resize(&self, new_size: usize) {
        let Ok(mut size) = self.size.lock() else {
            return;
        };
        if new_size > *size {
            let added = new_size - *size;
            let paid = take_up_to(&self.debt, added);
            self.semaphore.add_permits(added - paid);
        } else if new_size < *size {
            let removed = *size - new_size;
            let forgotten = self.semaphore.forget_permits(removed);
            self.debt.fetch_add(removed - forgotten, Ordering::AcqRel);
        }
        *size = new_size;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            if take_up_to(&self.slots.debt, 1) == 1 {
                permit.forget();
            }
        }
    }
}

/// Takes up to `wanted` from `counter` atomically; returns how much was taken.
fn take_up_to(counter: &AtomicUsize, wanted: usize) -> usize {
    let mut taken = 0;
    let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |owed| {
        taken = owed.min(wanted);
        Some(owed - taken)
    });
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_at_once_and_shrinks_as_slots_come_back() {
        let slots = Slots::new(1);
        let first = slots.try_acquire().unwrap();
        assert!(slots.try_acquire().is_none());
        slots.resize(3);
        let second = slots.try_acquire().unwrap();
        let third = slots.try_acquire().unwrap();
        assert_eq!(slots.in_use(), 3);
        // Every slot is out: the shrink is owed and paid as slots come back.
        slots.resize(1);
        assert_eq!(slots.size(), 1);
        drop(first);
        assert!(slots.try_acquire().is_none());
        drop(second);
        assert!(slots.try_acquire().is_none());
        assert_eq!(slots.in_use(), 1);
        drop(third);
        let again = slots.try_acquire().unwrap();
        assert!(slots.try_acquire().is_none());
        drop(again);
        assert_eq!(slots.in_use(), 0);
    }

    #[test]
    fn a_grow_pays_an_owed_shrink_first() {
        let slots = Slots::new(2);
        let first = slots.try_acquire().unwrap();
        let second = slots.try_acquire().unwrap();
        slots.resize(1);
        slots.resize(2);
        assert!(slots.try_acquire().is_none(), "both slots are still out");
        drop(first);
        let third = slots.try_acquire().unwrap();
        assert!(slots.try_acquire().is_none());
        drop(second);
        drop(third);
        let all: Vec<_> = std::iter::from_fn(|| slots.try_acquire()).collect();
        assert_eq!(all.len(), 2);
    }
}
