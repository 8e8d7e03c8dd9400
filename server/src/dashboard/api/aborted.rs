//! Celery's `ABORTED` state (`celery.contrib.abortable`), which Flower's
//! `POST /api/task/abort/{id}` writes to the result backend and an `AbortableTask` polls.
//!
//! The engine's `TaskState` does not model custom states (a result document in one is
//! unreadable to it), so the dashboard writes and reads this one state itself, on the Redis
//! result backend only: the same document and key Celery's `AbortableAsyncResult.abort()`
//! writes (`celery-task-meta-<id>`, `status: ABORTED`, the backend's expiry, published on the
//! key's channel), and like Celery it leaves a task that already succeeded alone.

use celeriac::broker::Keys;
use celeriac::config::Config;
use serde_json::json;

/// Sets `ABORTED` unless the task already succeeded; 1 when written, 0 when left alone.
const ABORT_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  local ok, document = pcall(cjson.decode, current)
  if ok and type(document) == 'table' and document['status'] == 'SUCCESS' then
    return 0
  end
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
";

/// The Redis result backend, for the `ABORTED` state only.
#[derive(Debug, Clone)]
pub(crate) struct AbortStore {
    client: redis::Client,
    /// `result_expires` in whole seconds; 0 keeps the document forever.
    expires: u64,
}

impl AbortStore {
    /// The store over `config`'s result backend; `None` when it is not Redis (abort then
    /// answers 503, as Flower does without a backend that can abort).
    pub(crate) fn from_config(config: &Config) -> Option<AbortStore> {
        let url = config.result_backend.as_deref()?;
        if !["redis://", "rediss://", "unix://", "redis+unix://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            return None;
        }
        match celeriac::broker::redis_client(
            url,
            config.redis_backend_use_ssl.as_ref(),
            config.redis_backend_password_file.as_deref(),
        ) {
            Ok(client) => Some(AbortStore {
                client,
                expires: config
                    .result_expires
                    .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
                    .map_or(0, |seconds| seconds.ceil() as u64),
            }),
            Err(error) => {
                tracing::warn!(%error, "the result backend URL does not open; task abort is off");
                None
            }
        }
    }

    /// Marks `task_id` aborted; false when it had already succeeded.
    pub(crate) async fn abort(&self, task_id: &str) -> Result<bool, redis::RedisError> {
        let document = json!({
            "status": "ABORTED",
            "result": null,
            "traceback": null,
            "children": [],
            "date_done": null,
            "task_id": task_id,
        });
        let mut connection = self.client.get_multiplexed_async_connection().await?;
        let written: i64 = redis::Script::new(ABORT_SCRIPT)
            .key(Keys::task_meta(task_id))
            .arg(document.to_string())
            .arg(self.expires)
            .invoke_async(&mut connection)
            .await?;
        Ok(written == 1)
    }

    /// The `status` of `task_id`'s stored document as written (a custom state the engine cannot
    /// read, such as `ABORTED`); `None` when nothing readable is stored.
    pub(crate) async fn raw_state(
        &self,
        task_id: &str,
    ) -> Result<Option<String>, redis::RedisError> {
        let mut connection = self.client.get_multiplexed_async_connection().await?;
        let raw: Option<Vec<u8>> = redis::cmd("GET")
            .arg(Keys::task_meta(task_id))
            .query_async(&mut connection)
            .await?;
        Ok(raw
            .and_then(|raw| serde_json::from_slice::<serde_json::Value>(&raw).ok())
            .and_then(|document| document.get("status")?.as_str().map(str::to_owned)))
    }
}
