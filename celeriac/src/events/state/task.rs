//! [`TaskRecord`]: what the events said about one task, merged so that the order and the
//! number of times they arrive do not matter.
//!
//! Events travel over PUB/SUB from many processes, so a receiver sees them late, twice (a
//! restarted publisher), out of order (`task.multi` batches from two workers) or not at all.
//! Celery's `State` orders states by `celery.states.precedence` but lets RETRY override
//! anything, so a late `task-retried` turns a finished task back to RETRY. Here the state is the
//! maximum of a total order over events (a join, so any order of the same events gives the same
//! state, and a repeat changes nothing):
//!
//! | class | events | ordered by |
//! |---|---|---|
//! | 2, ready | `task-succeeded` > `task-failed` > `task-revoked` | Celery's precedence; a ready state never goes back |
//! | 1, running | `task-received`, `-started`, `-rejected`, `-retried` | sender timestamp, then started > received, retried > rejected > started on a tie |
//! | 0, sent | `task-sent` | timestamp; a producer's clock never outranks a worker's event |
//!
//! A retried task runs again, so among running states the newest wins: retried, then
//! received and started of the next attempt. Each field is merged by the same kind of rule
//! (the newest attempt's arguments, a failure's exception over a retry's), so the fields too are
//! independent of arrival order.

use super::table::TaskKey;
use super::Limits;
use crate::protocol::event::{Event, EventKind};
use crate::types::TaskState;
use std::cmp::Ordering;
use std::sync::Arc;

/// Where a task event sits in the state order (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Precedence {
    class: u8,
    time: f64,
    rank: u8,
}

impl Precedence {
    pub(crate) fn of(kind: &EventKind, timestamp: f64) -> Option<Precedence> {
        let (class, rank) = match kind {
            EventKind::TaskSent => (0, 0),
            EventKind::TaskReceived => (1, 1),
            EventKind::TaskStarted => (1, 2),
            EventKind::TaskRejected => (1, 3),
            EventKind::TaskRetried => (1, 4),
            EventKind::TaskRevoked => (2, 1),
            EventKind::TaskFailed => (2, 2),
            EventKind::TaskSucceeded => (2, 3),
            _ => return None,
        };
        let time = if class == 2 || !timestamp.is_finite() {
            0.0
        } else {
            timestamp
        };
        Some(Precedence { class, time, rank })
    }

    fn cmp(&self, other: &Precedence) -> Ordering {
        self.class
            .cmp(&other.class)
            .then(self.time.total_cmp(&other.time))
            .then(self.rank.cmp(&other.rank))
    }
}

/// Index of each task event kind in per-kind arrays (timestamps, counters).
pub(crate) const KIND_COUNT: usize = 8;

/// The task event kinds in counter order, for names and snapshots.
pub(crate) const KINDS: [EventKind; KIND_COUNT] = [
    EventKind::TaskSent,
    EventKind::TaskReceived,
    EventKind::TaskStarted,
    EventKind::TaskSucceeded,
    EventKind::TaskFailed,
    EventKind::TaskRetried,
    EventKind::TaskRevoked,
    EventKind::TaskRejected,
];

pub(crate) fn kind_index(kind: &EventKind) -> Option<usize> {
    KINDS.iter().position(|known| known == kind)
}

/// Flags of `task-revoked` and `task-rejected`.
pub(crate) const TERMINATED: u8 = 1;
pub(crate) const EXPIRED: u8 = 2;
pub(crate) const REQUEUED: u8 = 4;

/// How many event fingerprints a task keeps to recognise repeats; a task with more events
/// (many retries) forgets the oldest, which only matters if one of those is repeated.
const FINGERPRINTS: usize = 24;

/// One retained task.
#[derive(Debug)]
pub(crate) struct TaskRecord {
    pub(crate) key: TaskKey,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) state: TaskState,
    precedence: Option<Precedence>,
    /// The node of the event that set the state (task-sent excluded).
    pub(crate) worker: Option<Arc<str>>,
    worker_precedence: Option<Precedence>,
    /// The producer's node, from `task-sent`.
    pub(crate) client: Option<Arc<str>>,
    /// `routing_key` of `task-sent`: the queue, for the default exchange.
    pub(crate) routing_key: Option<Arc<str>>,
    /// Newest sender timestamp per kind (`KINDS` order); NaN for never.
    pub(crate) times: [f64; KIND_COUNT],
    /// Seconds the body ran, from `task-succeeded`; NaN when unknown.
    pub(crate) runtime: f64,
    pub(crate) retries: u32,
    identity_time: f64,
    pub(crate) args: Option<Box<str>>,
    pub(crate) kwargs: Option<Box<str>>,
    pub(crate) eta: Option<Box<str>>,
    pub(crate) expires: Option<Box<str>>,
    pub(crate) parent_id: Option<TaskKey>,
    pub(crate) root_id: Option<TaskKey>,
    pub(crate) result: Option<Box<str>>,
    result_time: f64,
    pub(crate) exception: Option<Box<str>>,
    pub(crate) traceback: Option<Box<str>>,
    exception_precedence: Option<(u8, f64)>,
    pub(crate) flags: u8,
    /// Fingerprints of the events applied (low 4 bits: the kind index), to drop repeats and to
    /// count the events under the task's name once it is known.
    pub(crate) applied: Vec<u64>,
    /// Whether the applied events were counted under the name.
    pub(crate) counted: bool,
    /// The state version of the last change.
    pub(crate) version: u64,
}

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// A repeat of an event already applied: nothing changed.
    Repeat,
    /// Applied; `learned_name` when this event told the task's name for the first time.
    Merged { learned_name: bool },
}

impl TaskRecord {
    pub(crate) fn new(key: TaskKey) -> TaskRecord {
        TaskRecord {
            key,
            name: None,
            state: TaskState::Pending,
            precedence: None,
            worker: None,
            worker_precedence: None,
            client: None,
            routing_key: None,
            times: [f64::NAN; KIND_COUNT],
            runtime: f64::NAN,
            retries: 0,
            identity_time: f64::NAN,
            args: None,
            kwargs: None,
            eta: None,
            expires: None,
            parent_id: None,
            root_id: None,
            result: None,
            result_time: f64::NAN,
            exception: None,
            traceback: None,
            exception_precedence: None,
            flags: 0,
            applied: Vec::new(),
            counted: false,
            version: 0,
        }
    }

    /// Merges one task event; `fingerprint` identifies it (see [`super::fingerprint`]),
    /// `intern` shares node and task names between records.
    pub(crate) fn apply(
        &mut self,
        event: &Event,
        fingerprint: u64,
        limits: &Limits,
        intern: &mut dyn FnMut(&str) -> Arc<str>,
    ) -> Applied {
        if self.applied.contains(&fingerprint) {
            return Applied::Repeat;
        }
        if self.applied.len() >= FINGERPRINTS {
            self.applied.remove(0);
        }
        self.applied.push(fingerprint);
        let timestamp = if event.timestamp.is_finite() {
            event.timestamp
        } else {
            0.0
        };
        if let Some(index) = kind_index(&event.kind) {
            let time = &mut self.times[index];
            if time.is_nan() || timestamp > *time {
                *time = timestamp;
            }
        }
        if let Some(precedence) = Precedence::of(&event.kind, timestamp) {
            let newer = |current: Option<Precedence>| {
                current.is_none_or(|current| precedence.cmp(&current) != Ordering::Less)
            };
            if newer(self.precedence) {
                self.precedence = Some(precedence);
                if let Some(state) = event.kind.task_state() {
                    self.state = state;
                }
            }
            if event.kind != EventKind::TaskSent && newer(self.worker_precedence) {
                self.worker_precedence = Some(precedence);
                self.worker = Some(intern(&event.hostname));
            }
        }
        let had_name = self.name.is_some();
        match event.kind {
            EventKind::TaskSent => {
                self.client = Some(intern(&event.hostname));
                if let Some(routing_key) = event.str_field("routing_key") {
                    self.routing_key = Some(intern(routing_key));
                }
                self.merge_identity(event, timestamp, limits, intern);
            }
            EventKind::TaskReceived => self.merge_identity(event, timestamp, limits, intern),
            EventKind::TaskSucceeded
                if self.result_time.is_nan() || timestamp >= self.result_time =>
            {
                self.result_time = timestamp;
                self.result = event
                    .str_field("result")
                    .map(|text| clip(text, limits.repr));
                self.runtime = event.f64_field("runtime").unwrap_or(f64::NAN);
            }
            EventKind::TaskFailed | EventKind::TaskRetried => {
                let class = u8::from(event.kind == EventKind::TaskFailed);
                let key = (class, timestamp);
                let newer = self
                    .exception_precedence
                    .is_none_or(|(old_class, old_time)| {
                        class > old_class || (class == old_class && timestamp >= old_time)
                    });
                if newer {
                    self.exception_precedence = Some(key);
                    self.exception = event
                        .str_field("exception")
                        .map(|text| clip(text, limits.repr));
                    self.traceback = event
                        .str_field("traceback")
                        .map(|text| clip(text, limits.traceback));
                }
            }
            EventKind::TaskRevoked => {
                if event.bool_field("terminated") == Some(true) {
                    self.flags |= TERMINATED;
                }
                if event.bool_field("expired") == Some(true) {
                    self.flags |= EXPIRED;
                }
            }
            EventKind::TaskRejected if event.bool_field("requeue") == Some(true) => {
                self.flags |= REQUEUED;
            }
            _ => {}
        }
        Applied::Merged {
            learned_name: !had_name && self.name.is_some(),
        }
    }

    /// `task-sent` and `task-received` describe the call; the newest attempt (most retries,
    /// then latest) wins, and the name and lineage are the same for every attempt.
    fn merge_identity(
        &mut self,
        event: &Event,
        timestamp: f64,
        limits: &Limits,
        intern: &mut dyn FnMut(&str) -> Arc<str>,
    ) {
        if self.name.is_none() {
            self.name = event.str_field("name").map(&mut *intern);
        }
        if self.parent_id.is_none() {
            self.parent_id = event.str_field("parent_id").map(TaskKey::parse);
        }
        if self.root_id.is_none() {
            self.root_id = event.str_field("root_id").map(TaskKey::parse);
        }
        let retries = event
            .u64_field("retries")
            .map_or(0, |retries| u32::try_from(retries).unwrap_or(u32::MAX));
        let newer = self.identity_time.is_nan()
            || retries > self.retries
            || (retries == self.retries && timestamp >= self.identity_time);
        if !newer {
            return;
        }
        self.retries = retries;
        self.identity_time = timestamp;
        let text = |name: &str| event.str_field(name).map(|text| clip(text, limits.repr));
        self.args = text("args");
        self.kwargs = text("kwargs");
        self.eta = text("eta");
        self.expires = text("expires");
    }

    /// Heap bytes this record owns (shared names and nodes are counted once, elsewhere).
    pub(crate) fn heap_bytes(&self) -> usize {
        let text = |text: &Option<Box<str>>| text.as_ref().map_or(0, |text| text.len());
        let key = |key: &Option<TaskKey>| key.as_ref().map_or(0, TaskKey::heap_bytes);
        self.key.heap_bytes()
            + text(&self.args)
            + text(&self.kwargs)
            + text(&self.eta)
            + text(&self.expires)
            + text(&self.result)
            + text(&self.exception)
            + text(&self.traceback)
            + key(&self.parent_id)
            + key(&self.root_id)
            + self.applied.capacity() * std::mem::size_of::<u64>()
    }
}

/// `text` cut to at most `limit` bytes on a character boundary, marked with `…` when cut.
pub(crate) fn clip(text: &str, limit: usize) -> Box<str> {
    let Some(end) = crate::events::weight::cut_point(text, limit) else {
        return text.into();
    };
    let mut clipped = String::with_capacity(end + '…'.len_utf8());
    clipped.push_str(&text[..end]);
    clipped.push('…');
    clipped.into_boxed_str()
}
