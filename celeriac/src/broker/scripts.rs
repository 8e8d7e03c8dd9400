//! The Lua scripts that make broker state changes atomic.
//!
//! kombu pops with `BRPOP` and records the in-flight copy in a separate `MULTI`, so a consumer
//! that dies in between loses the message (wire doc §3.4). Our fetch pops and records in one
//! script: a message is always either in its queue, in `unacked`, or in the dead-letter list.
//! The other scripts replace kombu's `WATCH`/`MULTI` transactions with the same effect, so
//! Python and Rust consumers can work on the same keys, and add two checks kombu lacks:
//! a consumer only settles a record that is still its own (a frozen worker's late ack does not
//! remove the redelivery another worker holds), and a message taken too many times without an
//! ack (a poison message that kills its worker) is dead-lettered instead of delivered again.

use std::sync::LazyLock;

/// Acknowledges the deliveries it is given, then pops up to `ARGV[2]` messages from the bucket
/// lists (KEYS[6..], in priority order) and records each in `unacked` (KEYS[1]) and
/// `unacked_index` (KEYS[2]) in the same step, counting the delivery in KEYS[4]. One round trip
/// settles the tasks that just finished and fetches the next ones.
///
/// ARGV[1] = now (epoch seconds); ARGV[2] = fetch limit; ARGV[3] = max deliveries (0 = no
/// limit); ARGV[4] = n, the number of acks; ARGV[5] = this fetch's sequence number and ARGV[6]
/// the journal's lifetime in seconds (see below); ARGV[7 .. 6+3n] = (delivery tag, length of
/// the fetched envelope, its last bytes) triples, acked only while the record still holds an
/// envelope of that length ending with those bytes (length `-1` = any owner; a restore changes
/// the envelope's length); then the queue name of each bucket key. Sending the tail instead of
/// the whole envelope keeps an ack small.
///
/// The journal KEYS[5] (one key per consumer) records what a fetch handed out, `[sequence, now,
/// then tag, envelope length, queue per delivery]`, so that a consumer whose reply was lost (Redis
/// killed after the script ran, the connection cut) can take those deliveries with [`RECLAIM`]
/// instead of leaving them in `unacked` until the visibility timeout. Only fetches that handed
/// something out write it.
///
/// A message without a delivery tag cannot be tracked, and one delivered more than ARGV[3]
/// times is a poison message: both go to the dead-letter list (KEYS[3]) instead.
/// The delivery tag and `delivery_info` are found with string patterns, taking the last match
/// (kombu and Celery write `properties` after `headers`); `cjson` is the fallback when that fails.
/// Returns `{acked, stale, then (kind, queue, raw) triples}`; kind is the delivery tag, or `""`
/// for a dead-lettered message.
pub(crate) static FETCH: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local now = ARGV[1]
local limit = tonumber(ARGV[2])
local max_deliveries = tonumber(ARGV[3])
local acks = tonumber(ARGV[4])
local acked, stale = 0, 0
for ack = 1, acks do
  local tag = ARGV[4 + 3 * ack]
  local length = tonumber(ARGV[5 + 3 * ack])
  local tail = ARGV[6 + 3 * ack]
  local record = redis.call('HGET', KEYS[1], tag)
  if record then
    local owned = length < 0 or (string.sub(record, length + 2, length + 2) == ','
      and string.sub(record, length + 2 - #tail, length + 1) == tail)
    if owned then
      redis.call('ZREM', KEYS[2], tag)
      redis.call('HDEL', KEYS[1], tag)
      -- Only redeliveries are counted (see below), so only they have a count to forget.
      if length < 0 or string.find(record, '"redelivered"', 1, true) then
        redis.call('HDEL', KEYS[4], tag)
      end
      acked = acked + 1
    else
      stale = stale + 1
    end
  end
end
local function last_string(text, key)
  local found = nil
  for value in string.gmatch(text, '"' .. key .. '"%s*:%s*"([^"\\]*)"') do found = value end
  return found
end
local out = {tostring(acked), tostring(stale)}
local journal = {ARGV[5], now}
local count = 0
local first_queue_arg = 6 + 3 * acks
for index = 6, #KEYS do
  local queue = ARGV[first_queue_arg + index - 5]
  while count < limit do
    local raw = redis.call('RPOP', KEYS[index])
    if not raw then break end
    count = count + 1
    -- kombu and Celery write `properties` last: search only from there.
    local properties_at = string.find(raw, '"properties"', 1, true)
    local tail = properties_at and string.sub(raw, properties_at) or raw
    local tag = last_string(tail, 'delivery_tag')
    local exchange = last_string(tail, 'exchange')
    local routing_key = last_string(tail, 'routing_key')
    local task_id = nil
    local ok = true
    if not (tag and exchange and routing_key) or string.sub(raw, 1, 1) ~= '{' then
      local decoded, envelope = pcall(cjson.decode, raw)
      ok = decoded
      tag, exchange, routing_key = nil, '', queue
      if decoded and type(envelope) == 'table' and type(envelope['properties']) == 'table' then
        local properties = envelope['properties']
        if type(properties['delivery_tag']) == 'string' and properties['delivery_tag'] ~= '' then
          tag = properties['delivery_tag']
        end
        local info = properties['delivery_info']
        if type(info) == 'table' then
          if type(info['exchange']) == 'string' then exchange = info['exchange'] end
          if type(info['routing_key']) == 'string' then routing_key = info['routing_key'] end
        end
        if type(envelope['headers']) == 'table' and type(envelope['headers']['id']) == 'string' then
          task_id = envelope['headers']['id']
        end
      end
    end
    local reason = nil
    if not tag or tag == '' then
      reason = 'message has no properties.delivery_tag (or is not a JSON object)'
      if not ok then reason = 'envelope is not valid JSON' end
    elseif string.find(tail, '"redelivered"', 1, true) then
      -- A first delivery is never counted (that saves two commands per task); a restored
      -- message carries `redelivered`, so deliveries = restores counted here + 1.
      local deliveries = redis.call('HINCRBY', KEYS[4], tag, 1) + 1
      if max_deliveries > 0 and deliveries > max_deliveries then
        redis.call('HDEL', KEYS[4], tag)
        reason = 'poison message: delivered ' .. (deliveries - 1) ..
          ' times and never acknowledged (its worker died each time)'
      end
    end
    if reason then
      if not task_id then task_id = last_string(raw, 'id') end
      redis.call('LPUSH', KEYS[3], cjson.encode({reason = reason, queue = queue, task_id = task_id,
        dead_lettered_at = tonumber(now), message = raw}))
      table.insert(out, '')
    else
      redis.call('ZADD', KEYS[2], now, tag)
      redis.call('HSET', KEYS[1], tag,
        '[' .. raw .. ', ' .. cjson.encode(exchange) .. ', ' .. cjson.encode(routing_key) .. ']')
      table.insert(out, tag)
      table.insert(journal, tag)
      table.insert(journal, #raw)
      table.insert(journal, queue)
    end
    table.insert(out, queue)
    table.insert(out, raw)
  end
  if count >= limit then break end
end
if #journal > 2 then
  redis.call('SET', KEYS[5], cjson.encode(journal), 'EX', ARGV[6])
end
return out
"#,
    )
});

/// Takes back what a consumer's last fetch handed out when its reply never arrived: reads the
/// journal KEYS[1] the fetch script wrote and, if it is the fetch numbered ARGV[1], returns each
/// delivery still recorded in `unacked` (KEYS[2]) as that fetch recorded it (its delivery time
/// in `unacked_index`, KEYS[3], unchanged, so neither a restore nor another consumer has touched
/// it), as `(tag, queue, raw)` triples. Another number means that fetch never ran (Redis was
/// already gone), and nothing is returned. The journal is left alone, since this reply can be
/// lost too: the consumer asks again until one arrives, and its next fetch replaces the journal.
pub(crate) static RECLAIM: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local journal = redis.call('GET', KEYS[1])
if not journal then return {} end
local ok, entry = pcall(cjson.decode, journal)
if not ok or type(entry) ~= 'table' or tostring(entry[1]) ~= ARGV[1] then return {} end
local fetched_at = tonumber(entry[2])
local out = {}
for index = 3, #entry - 2, 3 do
  local tag, length, queue = entry[index], tonumber(entry[index + 1]), entry[index + 2]
  local record = redis.call('HGET', KEYS[2], tag)
  local score = redis.call('ZSCORE', KEYS[3], tag)
  if record and score and tonumber(score) == fetched_at
    and string.sub(record, length + 2, length + 2) == ',' then
    table.insert(out, tag)
    table.insert(out, queue)
    table.insert(out, string.sub(record, 2, length + 1))
  end
end
return out
"#,
    )
});

/// The ownership check shared by the settle scripts: true when the record KEYS[1][ARGV[1]]
/// exists and matches ARGV[2]. ARGV[3] = `record` compares the whole record (the visibility
/// sweep read it); `envelope` compares the envelope we fetched with the start of the record,
/// which is how our fetch script wrote it. A restore changes the envelope (kombu sets
/// `redelivered`), so a consumer whose delivery was restored and handed to someone else no
/// longer matches.
const OWNERSHIP: &str = r#"
local function owned(record)
  if not record then return false end
  if ARGV[2] == '' then return true end
  if ARGV[3] == 'envelope' then
    return string.sub(record, 2, #ARGV[2] + 1) == ARGV[2]
  end
  return record == ARGV[2]
end
"#;

/// Acknowledges: deletes the record (KEYS[1], KEYS[2]) and its delivery count (KEYS[3]) only if
/// it is still ours. Returns 1 when acked, 0 when the record was gone, -1 when it belongs to a
/// newer delivery.
pub(crate) static ACK: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r#"{OWNERSHIP}
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return 0 end
if not owned(record) then return -1 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"#
    ))
});

/// Takes a delivery out of `unacked`/`unacked_index` (KEYS[1], KEYS[2]) and pushes ARGV[4] to
/// the list KEYS[3], only if the record is still ours. ARGV[5] = `R` to push at the consuming
/// end (restore), `L` for the back (reject with requeue). ARGV[6] = `graceful` when the delivery
/// ended without a crash, which takes it off the delivery count (KEYS[4]) so shutdowns do not
/// make a message look poisonous. Returns 1 when moved, 0 when the record was gone, -1 when it
/// belongs to a newer delivery.
pub(crate) static RESTORE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r#"{OWNERSHIP}
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
if not owned(record) then return -1 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[6] == 'graceful' then
  -- The next fetch counts this restore as a delivery; take it back, since nothing crashed.
  if redis.call('HINCRBY', KEYS[4], ARGV[1], -1) == 0 then redis.call('HDEL', KEYS[4], ARGV[1]) end
end
if ARGV[5] == 'R' then
  redis.call('RPUSH', KEYS[3], ARGV[4])
else
  redis.call('LPUSH', KEYS[3], ARGV[4])
end
return 1
"#
    ))
});

/// Moves a delivery from `unacked` (KEYS[1], KEYS[2]) to the dead-letter list KEYS[3] with the
/// entry ARGV[4], only if the record is still ours, and forgets its delivery count (KEYS[4]).
/// Returns 1 when moved, 0 when the record was gone, -1 when it belongs to a newer delivery.
pub(crate) static DEAD_LETTER: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r#"{OWNERSHIP}
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return 0 end
if not owned(record) then return -1 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[4])
return 1
"#
    ))
});

/// Publishes a unique task: sets the pending marker KEYS[1] (TTL ARGV[1] seconds) only if it is
/// not set, and pushes ARGV[2] to the list KEYS[2] in the same step. Returns 1 when published,
/// 0 when a task with that id is still pending.
pub(crate) static PUBLISH_UNIQUE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
return 1
"#,
    )
});

/// Deletes the lock KEYS[1] only if it still holds our token ARGV[1] (redis-py's Lock release).
pub(crate) static RELEASE_LOCK: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#,
    )
});

/// Takes or renews the beat leader lease. KEYS: lease, fence counter. ARGV: owner, TTL in ms,
/// the lease value this owner believes it holds (empty if none). Returns
/// `{held (1|0), lease value}`: a renewal only succeeds for the exact value held, so an owner
/// whose lease lapsed and was taken over learns it instead of extending someone else's.
pub(crate) static BEAT_LEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local current = redis.call('GET', KEYS[1])
if current then
  if current == ARGV[3] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, current}
  end
  return {0, current}
end
local token = redis.call('INCR', KEYS[2])
local value = tostring(token) .. '|' .. ARGV[1]
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {1, value}
"#,
    )
});

/// Enqueues a batch of beat firings only if the caller still holds the lease, each only if its
/// slot was not claimed before. KEYS: lease, claims hash, then one queue list per firing.
/// ARGV: lease value, claim (1|0; 0 only under the `beat_no_claim` failpoint, which neither
/// checks nor records claims), then per firing: schedule name, slot (epoch ms), envelope.
/// Returns `{-1}` when the lease is not ours (nothing pushed), else per firing `1, slot` when
/// enqueued or `0, claimed` when this or a later slot was already enqueued. One call per batch
/// instead of one per firing: the per-call overhead was most of the cost of 10,000 pushes.
pub(crate) static BEAT_FIRE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end
local out = {}
for index = 0, #KEYS - 3 do
  local schedule, slot = ARGV[3 + 3 * index], ARGV[4 + 3 * index]
  local code, claimed = 1, slot
  if ARGV[2] == '1' then
    local current = redis.call('HGET', KEYS[2], schedule)
    if current and tonumber(current) >= tonumber(slot) then
      code, claimed = 0, current
    else
      redis.call('HSET', KEYS[2], schedule, slot)
    end
  end
  if code == 1 then redis.call('LPUSH', KEYS[3 + index], ARGV[5 + 3 * index]) end
  out[#out + 1] = code
  out[#out + 1] = claimed
end
return out
"#,
    )
});
