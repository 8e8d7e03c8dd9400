//! The only place Redis key names of the broker and the result backend are spelled out.
//!
//! The names follow kombu's Redis transport exactly (wire doc §0, §3), so Python and Rust
//! workers share queues, the in-flight record and the restore lock. `global_keyprefix` is put in
//! front of every broker key as kombu does; result keys are not prefixed (Celery's backend has
//! its own, separate prefix option, which we do not support yet).

/// kombu's default separator for priority lists and binding members (`\x06\x16`).
pub const SEP: &str = "\x06\x16";

/// Builds broker key names under one `global_keyprefix`.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    priority_steps: Vec<u8>,
    database: i64,
    /// The `<namespace>.` part of beat's keys, or empty.
    beat_namespace: String,
}

impl Keys {
    /// Keys under `prefix` (may be empty) with kombu's `priority_steps`.
    pub fn new(prefix: impl Into<String>, priority_steps: Vec<u8>) -> Self {
        let mut priority_steps = if priority_steps.is_empty() {
            vec![0]
        } else {
            priority_steps
        };
        priority_steps.sort_unstable();
        Keys {
            database: 0,
            prefix: prefix.into(),
            priority_steps,
            beat_namespace: String::new(),
        }
    }

    /// The same names for the broker's database `database`, which fanout channel names carry
    /// because Redis PUB/SUB is not scoped by database.
    pub fn with_database(mut self, database: i64) -> Self {
        self.database = database;
        self
    }

    /// The same names with beat's keys under `namespace` (`Config::beat_namespace`):
    /// `celeriac.beat.<namespace>.leader` and so on, so that separate setups sharing a Redis and
    /// a prefix each elect their own leader. Empty keeps `celeriac.beat.leader`.
    pub fn with_beat_namespace(mut self, namespace: impl Into<String>) -> Self {
        let namespace = namespace.into();
        self.beat_namespace = if namespace.is_empty() {
            namespace
        } else {
            format!("{namespace}.")
        };
        self
    }

    /// The PUB/SUB channel of fanout exchange `exchange` for `routing_key`, as kombu names it:
    /// `/<db>.<exchange>/<routing_key>` (no `/<routing_key>` when it is empty), prefixed.
    pub fn fanout_channel(&self, exchange: &str, routing_key: &str) -> String {
        if routing_key.is_empty() {
            format!("{}/{}.{}", self.prefix, self.database, exchange)
        } else {
            format!(
                "{}/{}.{}/{}",
                self.prefix, self.database, exchange, routing_key
            )
        }
    }

    /// The PSUBSCRIBE pattern for every routing key of fanout exchange `exchange`:
    /// `/<db>.<exchange>/*`, as kombu's receivers subscribe (binding key `#` → glob `*`), with
    /// any glob character in the prefix escaped so it matches only itself.
    pub fn fanout_pattern(&self, exchange: &str) -> String {
        let mut pattern = String::with_capacity(self.prefix.len() + exchange.len() + 8);
        for character in self.prefix.chars() {
            if matches!(character, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(character);
        }
        pattern.push_str(&format!("/{}.{}/*", self.database, exchange));
        pattern
    }

    /// The key prefix (`global_keyprefix`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The priority steps, lowest (served first) first.
    pub fn priority_steps(&self) -> &[u8] {
        &self.priority_steps
    }

    /// The step a priority falls in: the largest step not above it (kombu's `_get_queue_for_priority`).
    pub fn step_for(&self, priority: u8) -> u8 {
        let priority = priority.min(9);
        self.priority_steps
            .iter()
            .copied()
            .filter(|step| *step <= priority)
            .max()
            .unwrap_or(0)
    }

    /// The list holding `queue`'s messages of one priority step: `Q`, `Q\x06\x163`, ...
    pub fn queue_bucket(&self, queue: &str, step: u8) -> String {
        if step == 0 {
            format!("{}{}", self.prefix, queue)
        } else {
            format!("{}{}{}{}", self.prefix, queue, SEP, step)
        }
    }

    /// The list a message of `priority` is pushed to.
    pub fn queue_for_priority(&self, queue: &str, priority: u8) -> String {
        self.queue_bucket(queue, self.step_for(priority))
    }

    /// Every bucket of `queue`, highest priority (lowest number) first.
    pub fn queue_buckets(&self, queue: &str) -> Vec<String> {
        self.priority_steps
            .iter()
            .map(|step| self.queue_bucket(queue, *step))
            .collect()
    }

    /// HASH delivery_tag → `[envelope, exchange, routing_key]` of messages handed out, not acked.
    pub fn unacked(&self) -> String {
        format!("{}unacked", self.prefix)
    }

    /// ZSET delivery_tag → epoch of delivery; the visibility-timeout sweep reads it.
    pub fn unacked_index(&self) -> String {
        format!("{}unacked_index", self.prefix)
    }

    /// The lock that makes one consumer at a time run the restore sweep.
    pub fn unacked_mutex(&self) -> String {
        format!("{}unacked_mutex", self.prefix)
    }

    /// SET of bindings of `exchange`: members `routing_key SEP pattern SEP queue`.
    pub fn binding(&self, exchange: &str) -> String {
        format!("{}_kombu.binding.{}", self.prefix, exchange)
    }

    /// A binding member as kombu writes it.
    pub fn binding_member(routing_key: &str, pattern: &str, queue: &str) -> String {
        format!("{routing_key}{SEP}{pattern}{SEP}{queue}")
    }

    /// The queue a control client's replies are routed to: `<oid>.reply.celery.pidbox` (the
    /// reply exchange's name after the client's id), bound under routing key `<oid>`.
    pub fn reply_queue(oid: &str, reply_exchange: &str) -> String {
        format!("{oid}.{reply_exchange}")
    }

    /// LIST of messages that could not be processed, newest first, each with its reason.
    /// Not a kombu key: Celery drops such messages, we keep them.
    pub fn dead_letter(&self) -> String {
        format!("{}celeriac.dead_letter", self.prefix)
    }

    /// HASH delivery_tag → how many times our consumers took the message without acking it,
    /// for the poison-message limit. Not a kombu key.
    pub fn deliveries(&self) -> String {
        format!("{}celeriac.deliveries", self.prefix)
    }

    /// STRING holding what one consumer's last fetch handed out, so that a fetch whose reply
    /// was lost can be taken back (see `scripts::FETCH`). Expires with the visibility timeout,
    /// when the restore sweep takes over. Not a kombu key.
    pub fn fetch_journal(&self, consumer: &str) -> String {
        format!("{}celeriac.fetched.{}", self.prefix, consumer)
    }

    /// STRING that marks a unique task as enqueued and not yet finished (idempotent enqueue).
    /// Not a kombu key.
    pub fn pending(&self, task_id: &str) -> String {
        format!("{}celeriac.pending.{}", self.prefix, task_id)
    }

    /// STRING: the workflow (`{callbacks, errbacks, chain}` of the message) of a task that
    /// failed on a Celeriac worker, so the dashboard's Retry sends it along. Not a kombu key.
    pub fn workflow(&self, task_id: &str) -> String {
        format!("{}celeriac.workflow.{}", self.prefix, task_id)
    }

    /// ZSET task id → epoch seconds until which it stays revoked: revokes outlive the workers
    /// that received them. Not a kombu key (Celery keeps revokes in worker memory).
    pub fn revoked(&self) -> String {
        format!("{}celeriac.revoked", self.prefix)
    }

    /// STRING `<fencing token>|<owner>` with a TTL: the beat that holds it is the one that fires.
    /// Not a kombu key (Celery runs exactly one beat and has no lease).
    pub fn beat_leader(&self) -> String {
        format!("{}celeriac.beat.{}leader", self.prefix, self.beat_namespace)
    }

    /// Counter that hands out beat fencing tokens; it only grows, so an older leader's token is
    /// always smaller than its successor's.
    pub fn beat_fence(&self) -> String {
        format!("{}celeriac.beat.{}fence", self.prefix, self.beat_namespace)
    }

    /// HASH schedule name → the latest fire time (epoch ms) that was enqueued for it: the
    /// per-slot claim that makes a second enqueue of one slot impossible.
    pub fn beat_claims(&self) -> String {
        format!("{}celeriac.beat.{}claims", self.prefix, self.beat_namespace)
    }

    /// PUB/SUB channel on which schedule edits are announced, so beats resync at once.
    pub fn beat_changes(&self) -> String {
        format!(
            "{}celeriac.beat.{}changes",
            self.prefix, self.beat_namespace
        )
    }

    /// The result-backend key (and PUB/SUB channel) of a task.
    pub fn task_meta(task_id: &str) -> String {
        format!("celery-task-meta-{task_id}")
    }

    /// The result-backend keys of chord `group_id`'s join, as Celery's Redis backend names
    /// them (`celery-taskset-meta-<gid>` + suffix): `.j` the header results, `.t` the size
    /// adjustment, `.s` the size, `.d` the (task id, index) pairs counted, `.c` the claim on
    /// firing the body (the last two since Celery 5.7). The bare key holds a saved GroupResult.
    pub fn chord(group_id: &str) -> ChordKeys {
        let base = format!("celery-taskset-meta-{group_id}");
        ChordKeys {
            results: format!("{base}.j"),
            adjustment: format!("{base}.t"),
            size: format!("{base}.s"),
            counted: format!("{base}.d"),
            claim: format!("{base}.c"),
            group: base,
        }
    }

    /// The `SCAN … MATCH` pattern of every result-backend key.
    pub fn task_meta_pattern() -> &'static str {
        "celery-task-meta-*"
    }
}

/// The keys of one chord's join (see [`Keys::chord`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChordKeys {
    /// `.j`: a ZSET (by group index) or LIST of `[1, id, state, result]` entries.
    pub results: String,
    /// `.t`: how many members were added to the chord after it was sent.
    pub adjustment: String,
    /// `.s`: the chord size, written as the last header member is sent.
    pub size: String,
    /// `.d`: `<task id>:<index>` of each member counted, so a redelivered one counts once.
    pub counted: String,
    /// `.c`: the token of the worker firing the body, then `done`.
    pub claim: String,
    /// The saved GroupResult of a header with nested groups.
    pub group: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_kombu() {
        let keys = Keys::new("", vec![0, 3, 6, 9]);
        assert_eq!(keys.queue_for_priority("celery", 0), "celery");
        assert_eq!(keys.queue_for_priority("celery", 5), "celery\x06\x163");
        assert_eq!(keys.queue_for_priority("celery", 9), "celery\x06\x169");
        assert_eq!(keys.queue_for_priority("celery", 200), "celery\x06\x169");
        assert_eq!(
            Keys::binding_member("celery", "", "celery"),
            "celery\x06\x16\x06\x16celery"
        );
        let prefixed = Keys::new("p:", vec![0, 3, 6, 9]);
        assert_eq!(prefixed.unacked(), "p:unacked");
        assert_eq!(prefixed.binding("celery"), "p:_kombu.binding.celery");
        assert_eq!(prefixed.queue_buckets("q").len(), 4);
        assert_eq!(
            Keys::reply_queue("07c963c0", "reply.celery.pidbox"),
            "07c963c0.reply.celery.pidbox"
        );
        let events = Keys::new("", vec![0]).with_database(2);
        assert_eq!(
            events.fanout_channel("celeryev", "task.multi"),
            "/2.celeryev/task.multi"
        );
        assert_eq!(
            events.fanout_channel("celery.pidbox", ""),
            "/2.celery.pidbox"
        );
        assert_eq!(events.fanout_pattern("celeryev"), "/2.celeryev/*");
        assert_eq!(prefixed.beat_leader(), "p:celeriac.beat.leader");
        let namespaced = Keys::new("p:", vec![0]).with_beat_namespace("db-0123456789ab");
        assert_eq!(
            namespaced.beat_leader(),
            "p:celeriac.beat.db-0123456789ab.leader"
        );
        assert_eq!(
            namespaced.beat_fence(),
            "p:celeriac.beat.db-0123456789ab.fence"
        );
        assert_eq!(
            namespaced.beat_claims(),
            "p:celeriac.beat.db-0123456789ab.claims"
        );
        assert_eq!(
            namespaced.beat_changes(),
            "p:celeriac.beat.db-0123456789ab.changes"
        );
        let odd = Keys::new("t[1]*:", vec![0]);
        assert_eq!(odd.fanout_pattern("celeryev"), "t\\[1\\]\\*:/0.celeryev/*");
    }
}
