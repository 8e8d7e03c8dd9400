//! The Redis backend's native chord join (Celery's `RedisBackend.on_chord_part_return`), with
//! Celery 5.7's guarantees: each header member counts once however often it is redelivered
//! (`.d`), one worker claims firing the body (`.c`), and a `done` marker makes late duplicates
//! no-ops. Celery 5.4 workers in the same chord write the same `.j` entries and read the same
//! `.s`; they ignore `.d` and `.c`, so when one of them completes the chord it fires without a
//! claim, as 5.4 always does.

use super::{redis_error, RedisBackend};
use crate::backend::BackendError;
use crate::broker::Keys;
use std::sync::LazyLock;
use std::time::Duration;

/// How long a claim on firing the body holds before another member's return may take it over
/// (Celery: twice `result_chord_join_timeout`, at least 5 s).
const CLAIM_EXPIRES: Duration = Duration::from_secs(6);

/// How long the `done` marker outlives a fired chord (Celery: 300 s).
const DONE_EXPIRES: Duration = Duration::from_secs(300);

/// KEYS: .j .t .s .d .c. ARGV: counted member (`id:index`), entry, ordered (1/0), score,
/// expires (0 = none), claim token, claim seconds. Returns {ready, adjustment, size or -1,
/// claimed}; {-1, 0, 0, 0} when the chord already fired.
static PART_RETURN: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r#"
if redis.call('GET', KEYS[5]) == 'done' then return {-1, 0, 0, 0} end
local ordered = ARGV[3] == '1'
if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 0 then
  if ordered then redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2])
  else redis.call('RPUSH', KEYS[1], ARGV[2]) end
  redis.call('SADD', KEYS[4], ARGV[1])
end
local ready
if ordered then ready = redis.call('ZCOUNT', KEYS[1], '-inf', '+inf')
else ready = redis.call('LLEN', KEYS[1]) end
local expires = tonumber(ARGV[5])
if expires and expires > 0 then
  for i = 1, 4 do redis.call('EXPIRE', KEYS[i], expires) end
end
local adjustment = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local size = tonumber(redis.call('GET', KEYS[3]) or '')
local claimed = 0
if size and ready == size + adjustment then
  if redis.call('SET', KEYS[5], ARGV[6], 'NX', 'EX', ARGV[7]) then claimed = 1 end
end
return {ready, adjustment, size or -1, claimed}
"#,
    )
});

/// KEYS: .c .j .t .s .d. ARGV: claim token, done seconds. Clears a fired chord's data and
/// leaves the `done` marker, if the claim is still ours.
static CLEANUP: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('SET', KEYS[1], 'done', 'EX', ARGV[2])
return 1
"#,
    )
});

/// What one header member's return found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChordPart {
    /// The chord fired already; this was a late duplicate.
    AlreadyFired,
    /// Members still outstanding (or the size is not written yet).
    Waiting {
        /// Members counted so far.
        ready: i64,
    },
    /// Complete, and this caller holds the claim: it must fire the body, then
    /// [`RedisBackend::chord_fired`] with the token.
    Complete {
        /// The claim token.
        token: String,
    },
    /// Complete, but another worker claimed firing it.
    ClaimedElsewhere,
}

impl RedisBackend {
    fn ttl_seconds(&self) -> u64 {
        self.result_expires
            .map(|ttl| ttl.as_secs().max(1))
            .unwrap_or(0)
    }

    /// Writes chord `group_id`'s size, as the producer does just before publishing the last
    /// header member; clears an old claim first (a re-sent frozen chord is a new run).
    pub async fn set_chord_size(&self, group_id: &str, size: usize) -> Result<(), BackendError> {
        let keys = Keys::chord(group_id);
        let mut pipe = ::redis::pipe();
        pipe.atomic().cmd("DEL").arg(&keys.claim).ignore();
        match self.ttl_seconds() {
            0 => pipe.cmd("SET").arg(&keys.size).arg(size).ignore(),
            ttl => pipe
                .cmd("SET")
                .arg(&keys.size)
                .arg(size)
                .arg("EX")
                .arg(ttl)
                .ignore(),
        };
        let mut connection = self.connection.clone();
        pipe.query_async::<()>(&mut connection)
            .await
            .map_err(redis_error("set chord size"))
    }

    /// Adds one header member's outcome (`entry`, see `protocol::signature::chord_part`) to
    /// chord `group_id`'s join, counted once per (task id, group index).
    pub async fn chord_part_return(
        &self,
        group_id: &str,
        task_id: &str,
        group_index: Option<i64>,
        entry: &str,
        ordered: bool,
    ) -> Result<ChordPart, BackendError> {
        let keys = Keys::chord(group_id);
        let score = group_index.map_or_else(|| "+inf".to_owned(), |index| index.to_string());
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut connection = self.connection.clone();
        let (ready, adjustment, size, claimed): (i64, i64, i64, i64) = PART_RETURN
            .key(&keys.results)
            .key(&keys.adjustment)
            .key(&keys.size)
            .key(&keys.counted)
            .key(&keys.claim)
            .arg(format!("{task_id}:{score}"))
            .arg(entry)
            .arg(if ordered { "1" } else { "0" })
            .arg(&score)
            .arg(self.ttl_seconds())
            .arg(&token)
            .arg(CLAIM_EXPIRES.as_secs())
            .invoke_async(&mut connection)
            .await
            .map_err(redis_error("chord part return script"))?;
        Ok(match (ready, claimed) {
            (-1, _) => ChordPart::AlreadyFired,
            (_, 1) => ChordPart::Complete { token },
            (ready, _) => {
                let total = size + adjustment;
                if size >= 0 && ready == total {
                    ChordPart::ClaimedElsewhere
                } else {
                    ChordPart::Waiting { ready }
                }
            }
        })
    }

    /// The header results of chord `group_id`, in group-index order (ordered) or completion
    /// order; None when the header was saved as a GroupResult (nested groups), which is
    /// joined differently.
    pub async fn chord_results(
        &self,
        group_id: &str,
        ordered: bool,
    ) -> Result<Option<Vec<Vec<u8>>>, BackendError> {
        let keys = Keys::chord(group_id);
        let mut connection = self.connection.clone();
        let command = if ordered { "ZRANGE" } else { "LRANGE" };
        // One round trip: whether a GroupResult was saved, and the entries.
        let (saved, entries): (bool, Vec<Vec<u8>>) = ::redis::pipe()
            .cmd("EXISTS")
            .arg(&keys.group)
            .cmd(command)
            .arg(&keys.results)
            .arg(0)
            .arg(-1)
            .query_async(&mut connection)
            .await
            .map_err(redis_error("read chord results"))?;
        Ok((!saved).then_some(entries))
    }

    /// After the body was sent: clears the chord's data and marks it done, so a late duplicate
    /// of a header member changes nothing.
    pub async fn chord_fired(&self, group_id: &str, token: &str) -> Result<bool, BackendError> {
        let keys = Keys::chord(group_id);
        let mut connection = self.connection.clone();
        let cleaned: i64 = CLEANUP
            .key(&keys.claim)
            .key(&keys.results)
            .key(&keys.adjustment)
            .key(&keys.size)
            .key(&keys.counted)
            .arg(token)
            .arg(DONE_EXPIRES.as_secs())
            .invoke_async(&mut connection)
            .await
            .map_err(redis_error("chord cleanup script"))?;
        Ok(cleaned == 1)
    }

    /// After the chord failed (ChordError stored on the body): forgets its size, so a late
    /// duplicate cannot fail it again.
    pub async fn chord_errored(&self, group_id: &str) -> Result<(), BackendError> {
        let keys = Keys::chord(group_id);
        let mut connection = self.connection.clone();
        ::redis::cmd("DEL")
            .arg(&keys.size)
            .query_async::<i64>(&mut connection)
            .await
            .map_err(redis_error("DEL chord size"))?;
        Ok(())
    }

    /// How far chord `group_id` is: (header results in, chord size), while it waits; None
    /// when there is no such chord or it has fired (its keys are cleared then).
    pub async fn chord_progress(&self, group_id: &str) -> Result<Option<(u64, u64)>, BackendError> {
        let keys = Keys::chord(group_id);
        let mut connection = self.connection.clone();
        let (size, kind): (Option<u64>, String) = ::redis::pipe()
            .cmd("GET")
            .arg(&keys.size)
            .cmd("TYPE")
            .arg(&keys.results)
            .query_async(&mut connection)
            .await
            .map_err(redis_error("read chord progress"))?;
        let Some(size) = size else { return Ok(None) };
        let command = if kind == "list" { "LLEN" } else { "ZCARD" };
        let done: u64 = ::redis::cmd(command)
            .arg(&keys.results)
            .query_async(&mut connection)
            .await
            .map_err(redis_error("read chord progress"))?;
        Ok(Some((done, size)))
    }
}
