//! [`TaskTable`]: the retained tasks, bounded, least recently updated evicted first (Celery's
//! `max_tasks_in_memory` LRU).
//!
//! Records live in a slab (`Vec`) linked into a recency list by index, so a touch and an
//! eviction are O(1) with no allocation; the map from task id to slot holds canonical UUIDs as
//! 16 bytes ([`TaskKey::Uuid`]) rather than 36-byte strings, which is most of what keeps a
//! retained task under 1 KB.

use super::task::TaskRecord;
use std::collections::HashMap;

const NIL: u32 = u32::MAX;

/// A task id as the table stores it: a canonical (lowercase, hyphenated) UUID as its 16 bytes,
/// anything else as text. Converting back gives the exact text that came in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum TaskKey {
    /// A canonical UUID.
    Uuid([u8; 16]),
    /// Any other id (Celery accepts any string as a task id).
    Text(Box<str>),
}

impl TaskKey {
    pub(crate) fn parse(id: &str) -> TaskKey {
        let canonical = id.len() == 36 && !id.bytes().any(|byte| byte.is_ascii_uppercase());
        match uuid::Uuid::try_parse(id) {
            Ok(parsed) if canonical => TaskKey::Uuid(parsed.into_bytes()),
            _ => TaskKey::Text(id.into()),
        }
    }

    pub(crate) fn to_text(&self) -> String {
        match self {
            TaskKey::Uuid(bytes) => uuid::Uuid::from_bytes(*bytes).hyphenated().to_string(),
            TaskKey::Text(text) => text.to_string(),
        }
    }

    /// Heap bytes owned beyond the key itself.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            TaskKey::Uuid(_) => 0,
            TaskKey::Text(text) => text.len(),
        }
    }
}

#[derive(Debug)]
struct Slot {
    record: Option<TaskRecord>,
    /// Towards the most recently updated.
    newer: u32,
    /// Towards the least recently updated.
    older: u32,
}

/// Retained tasks with LRU eviction.
#[derive(Debug)]
pub(crate) struct TaskTable {
    index: HashMap<TaskKey, u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    newest: u32,
    oldest: u32,
    capacity: usize,
}

impl TaskTable {
    pub(crate) fn new(capacity: usize) -> TaskTable {
        let capacity = capacity.max(1);
        TaskTable {
            index: HashMap::with_capacity(capacity.min(1 << 16)),
            slots: Vec::new(),
            free: Vec::new(),
            newest: NIL,
            oldest: NIL,
            capacity,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn get(&self, key: &TaskKey) -> Option<&TaskRecord> {
        let slot = *self.index.get(key)?;
        self.slots[slot as usize].record.as_ref()
    }

    /// The record of `key`, made the most recently updated; a new record when it was not
    /// retained, evicting the least recently updated one when the table is full (returned).
    pub(crate) fn touch(&mut self, key: TaskKey) -> (&mut TaskRecord, Option<TaskRecord>) {
        if let Some(&slot) = self.index.get(&key) {
            self.unlink(slot);
            self.link_newest(slot);
            let record = self.slots[slot as usize]
                .record
                .as_mut()
                .expect("an indexed slot holds a record");
            return (record, None);
        }
        let evicted = if self.index.len() >= self.capacity {
            self.evict_oldest()
        } else {
            None
        };
        let record = TaskRecord::new(key.clone());
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize].record = Some(record);
                slot
            }
            None => {
                self.slots.push(Slot {
                    record: Some(record),
                    newer: NIL,
                    older: NIL,
                });
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 retained tasks")
            }
        };
        self.index.insert(key, slot);
        self.link_newest(slot);
        let record = self.slots[slot as usize]
            .record
            .as_mut()
            .expect("the slot was just filled");
        (record, evicted)
    }

    fn evict_oldest(&mut self) -> Option<TaskRecord> {
        let slot = self.oldest;
        if slot == NIL {
            return None;
        }
        self.unlink(slot);
        self.free.push(slot);
        let record = self.slots[slot as usize].record.take()?;
        self.index.remove(&record.key);
        Some(record)
    }

    fn unlink(&mut self, slot: u32) {
        let (newer, older) = {
            let entry = &self.slots[slot as usize];
            (entry.newer, entry.older)
        };
        if newer == NIL {
            self.newest = older;
        } else {
            self.slots[newer as usize].older = older;
        }
        if older == NIL {
            self.oldest = newer;
        } else {
            self.slots[older as usize].newer = newer;
        }
        let entry = &mut self.slots[slot as usize];
        entry.newer = NIL;
        entry.older = NIL;
    }

    fn link_newest(&mut self, slot: u32) {
        let previous = self.newest;
        {
            let entry = &mut self.slots[slot as usize];
            entry.newer = NIL;
            entry.older = previous;
        }
        if previous == NIL {
            self.oldest = slot;
        } else {
            self.slots[previous as usize].newer = slot;
        }
        self.newest = slot;
    }

    /// Records from the most recently updated to the least.
    pub(crate) fn iter_newest_first(&self) -> impl Iterator<Item = &TaskRecord> + '_ {
        let mut cursor = self.newest;
        std::iter::from_fn(move || {
            if cursor == NIL {
                return None;
            }
            let slot = &self.slots[cursor as usize];
            cursor = slot.older;
            slot.record.as_ref()
        })
    }

    /// Bytes held by the table itself: slots, free list and the index (hashbrown stores one
    /// control byte per bucket beside each key/value pair, at up to 7/8 load).
    pub(crate) fn overhead_bytes(&self) -> usize {
        let slots = self.slots.capacity() * std::mem::size_of::<Slot>();
        let free = self.free.capacity() * std::mem::size_of::<u32>();
        let buckets = (self.index.capacity() * 8 / 7).next_power_of_two();
        let index = buckets * (std::mem::size_of::<(TaskKey, u32)>() + 1);
        slots + free + index
    }
}
