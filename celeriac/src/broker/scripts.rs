//! The Lua scripts that make broker state changes atomic.
//!
//! kombu pops with `BRPOP` and records the in-flight copy in a separate `MULTI`, so a consumer
//! that dies in between loses the message (wire doc §3.4). Our fetch pops and records in one
//! script: a message is always either in its queue or in `unacked`. The other scripts replace
//! kombu's `WATCH`/`MULTI` transactions with the same effect, so Python and Rust consumers can
//! work on the same keys.

use std::sync::LazyLock;

/// Pops up to `ARGV[2]` messages from the bucket lists (KEYS[4..], in priority order) and records
/// each in `unacked` (KEYS[1]) and `unacked_index` (KEYS[2]) in the same step. A message without
/// a delivery tag cannot be tracked, so it goes straight to the dead-letter list (KEYS[3]).
/// ARGV[1] = now (epoch seconds); ARGV[3..] = the queue name of each bucket.
/// Returns a flat list of `(kind, queue, raw)` triples; kind is the delivery tag, or `""` for a
/// dead-lettered message.
pub(crate) static FETCH: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local now = ARGV[1]
local limit = tonumber(ARGV[2])
local out = {}
local count = 0
for index = 4, #KEYS do
  local queue = ARGV[index - 1]
  while count < limit do
    local raw = redis.call('RPOP', KEYS[index])
    if not raw then break end
    count = count + 1
    local ok, envelope = pcall(cjson.decode, raw)
    local tag = nil
    local exchange = ''
    local routing_key = queue
    if ok and type(envelope) == 'table' and type(envelope['properties']) == 'table' then
      local properties = envelope['properties']
      if type(properties['delivery_tag']) == 'string' and properties['delivery_tag'] ~= '' then
        tag = properties['delivery_tag']
      end
      local info = properties['delivery_info']
      if type(info) == 'table' then
        if type(info['exchange']) == 'string' then exchange = info['exchange'] end
        if type(info['routing_key']) == 'string' then routing_key = info['routing_key'] end
      end
    end
    if tag then
      redis.call('ZADD', KEYS[2], now, tag)
      redis.call('HSET', KEYS[1], tag,
        '[' .. raw .. ', ' .. cjson.encode(exchange) .. ', ' .. cjson.encode(routing_key) .. ']')
      table.insert(out, tag)
    else
      local reason = 'message has no properties.delivery_tag (or is not a JSON object)'
      if not ok then reason = 'envelope is not valid JSON' end
      redis.call('LPUSH', KEYS[3], cjson.encode({reason = reason, queue = queue,
        dead_lettered_at = tonumber(now), message = raw}))
      table.insert(out, '')
    end
    table.insert(out, queue)
    table.insert(out, raw)
  end
  if count >= limit then break end
end
return out
"#,
    )
});

/// Takes a delivery out of `unacked`/`unacked_index` (KEYS[1], KEYS[2]) and pushes ARGV[3] to
/// the list KEYS[3], only if the record still exists and (when ARGV[2] is not empty) still holds
/// exactly ARGV[2]. ARGV[4] = `R` to push at the consuming end (restore), `L` for the back
/// (reject with requeue). Returns 1 when moved, 0 when the record was gone, -1 when it changed.
pub(crate) static RESTORE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
if ARGV[2] ~= '' and current ~= ARGV[2] then return -1 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[4] == 'R' then
  redis.call('RPUSH', KEYS[3], ARGV[3])
else
  redis.call('LPUSH', KEYS[3], ARGV[3])
end
return 1
"#,
    )
});

/// Moves a delivery from `unacked` (KEYS[1], KEYS[2]) to the dead-letter list KEYS[3] with the
/// entry ARGV[2]. Returns 1 when moved, 0 when the record was already gone (then nothing is
/// written: whoever took it will deliver it again).
pub(crate) static DEAD_LETTER: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
redis.call('ZREM', KEYS[2], ARGV[1])
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
if removed == 1 then redis.call('LPUSH', KEYS[3], ARGV[2]) end
return removed
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
