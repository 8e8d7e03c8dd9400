//! [`RedisBackend`]: Celery's Redis result backend.
//!
//! A write is one script: read the stored state, skip the write when it is already SUCCESS
//! (Celery's guard against a duplicate execution overwriting a success), else `SET … EX` and
//! `PUBLISH` the document. Celery does the same with `GET` then `MULTI SETEX PUBLISH EXEC`.

mod chord;

pub use chord::ChordPart;

use super::BackendError;
use crate::broker::Keys;
use crate::protocol::ResultMeta;
use futures::StreamExt;
use std::sync::LazyLock;
use std::time::Duration;

static STORE: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r#"
local current = redis.call('GET', KEYS[1])
if current then
  local ok, document = pcall(cjson.decode, current)
  if ok and type(document) == 'table' and document['status'] == 'SUCCESS' then return 0 end
end
local ttl = tonumber(ARGV[2])
if ttl and ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
"#,
    )
});

/// Celery's Redis result backend.
#[derive(Clone)]
pub struct RedisBackend {
    connection: crate::broker::Link,
    result_expires: Option<Duration>,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RedisBackend")
            .field("result_expires", &self.result_expires)
            .finish_non_exhaustive()
    }
}

fn redis_error(command: &'static str) -> impl FnOnce(::redis::RedisError) -> BackendError {
    move |source| BackendError::Redis { command, source }
}

impl RedisBackend {
    /// Connects to the backend at `url`; results live `result_expires` (None = forever).
    pub async fn connect(
        url: &str,
        result_expires: Option<Duration>,
    ) -> Result<RedisBackend, BackendError> {
        RedisBackend::open(url, result_expires, None).await
    }

    /// Connects to the backend at `url`, retrying at start-up as the broker does
    /// (`broker_connection_retry_on_startup`, `_max_retries`, `_timeout` in `options`), with
    /// the TLS options in `options.ssl` (`redis_backend_use_ssl`), the password file and, for
    /// a `sentinel://` URL, `options.sentinel` (`result_backend_transport_options`).
    pub(crate) async fn connect_at_startup(
        url: &str,
        result_expires: Option<Duration>,
        options: &crate::broker::BrokerOptions,
    ) -> Result<RedisBackend, BackendError> {
        RedisBackend::open(url, result_expires, Some(options)).await
    }

    /// One attempt (`retry` None), or the start-up policy of `retry`, with its TLS, password
    /// and Sentinel options.
    async fn open(
        url: &str,
        result_expires: Option<Duration>,
        retry: Option<&crate::broker::BrokerOptions>,
    ) -> Result<RedisBackend, BackendError> {
        let once = crate::broker::BrokerOptions {
            connection_retry_on_startup: false,
            ..crate::broker::BrokerOptions::default()
        };
        let connection =
            crate::broker::open_link(url, retry.unwrap_or(&once), "result backend").await?;
        Ok(RedisBackend {
            connection,
            result_expires,
        })
    }

    /// Stores a task's state. Returns false when the write was skipped because the task had
    /// already succeeded.
    pub async fn store(&self, meta: &ResultMeta) -> Result<bool, BackendError> {
        let ttl = self
            .result_expires
            .map(|ttl| ttl.as_secs().max(1))
            .unwrap_or(0);
        let mut connection = self.connection.clone();
        let written: i64 = STORE
            .key(Keys::task_meta(&meta.task_id))
            .arg(meta.to_json())
            .arg(ttl)
            .invoke_async(&mut connection)
            .await
            .map_err(redis_error("store result script"))?;
        Ok(written == 1)
    }

    /// The stored state of a task; None means PENDING (unknown or not yet stored).
    pub async fn get(&self, task_id: &str) -> Result<Option<ResultMeta>, BackendError> {
        let mut connection = self.connection.clone();
        let raw: Option<Vec<u8>> = ::redis::cmd("GET")
            .arg(Keys::task_meta(task_id))
            .query_async(&mut connection)
            .await
            .map_err(redis_error("GET result"))?;
        raw.map(|raw| {
            ResultMeta::from_json(&raw).map_err(|source| BackendError::InvalidDocument {
                task_id: task_id.to_owned(),
                source,
            })
        })
        .transpose()
    }

    /// One page of a `SCAN` over every stored result: the cursor to continue from (0 when the
    /// scan is complete) and the documents found. `count` is Redis's hint of keys per page, so
    /// memory stays bounded however many results are stored. Documents that are not Celery's
    /// result JSON (custom states, other serializers) are skipped with a warning; keys that
    /// expire between `SCAN` and `MGET` are simply absent.
    pub async fn scan_results(
        &self,
        cursor: u64,
        count: usize,
    ) -> Result<(u64, Vec<ResultMeta>), BackendError> {
        let mut connection = self.connection.clone();
        let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(Keys::task_meta_pattern())
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(&mut connection)
            .await
            .map_err(redis_error("SCAN results"))?;
        if keys.is_empty() {
            return Ok((next, Vec::new()));
        }
        let values: Vec<Option<Vec<u8>>> = ::redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut connection)
            .await
            .map_err(redis_error("MGET results"))?;
        Ok((next, documents(&keys, values)))
    }

    /// The stored results of `task_ids` (one `MGET`), skipping the ones not stored and the
    /// ones that are not Celery's JSON document (warned).
    pub async fn get_many(&self, task_ids: &[String]) -> Result<Vec<ResultMeta>, BackendError> {
        if task_ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = task_ids.iter().map(|id| Keys::task_meta(id)).collect();
        let mut connection = self.connection.clone();
        let values: Vec<Option<Vec<u8>>> = ::redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut connection)
            .await
            .map_err(redis_error("MGET results"))?;
        Ok(documents(&keys, values))
    }

    /// Deletes a stored result (`AsyncResult.forget()`).
    pub async fn forget(&self, task_id: &str) -> Result<(), BackendError> {
        let mut connection = self.connection.clone();
        ::redis::cmd("DEL")
            .arg(Keys::task_meta(task_id))
            .query_async::<i64>(&mut connection)
            .await
            .map_err(redis_error("DEL result"))?;
        Ok(())
    }

    /// Waits until the task reaches a ready state (SUCCESS, FAILURE, REVOKED) or `timeout`
    /// passes. Subscribes first, then reads, so a result written in between is not missed
    /// (wire doc §6.5).
    pub async fn wait_ready(
        &self,
        task_id: &str,
        timeout: Duration,
    ) -> Result<ResultMeta, BackendError> {
        let channel = Keys::task_meta(task_id);
        let mut pubsub = self
            .connection
            .client()
            .get_async_pubsub()
            .await
            .map_err(redis_error("SUBSCRIBE"))?;
        pubsub
            .subscribe(&channel)
            .await
            .map_err(redis_error("SUBSCRIBE"))?;
        if let Some(meta) = self.get(task_id).await? {
            if meta.status.is_ready() {
                return Ok(meta);
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut messages = pubsub.on_message();
        loop {
            let next = tokio::time::timeout_at(deadline, messages.next()).await;
            match next {
                Err(_) => {
                    return Err(BackendError::Timeout {
                        task_id: task_id.to_owned(),
                        seconds: timeout.as_secs_f64(),
                    })
                }
                // The connection closed: fall back to polling the key until the deadline.
                Ok(None) => return self.poll_ready(task_id, deadline, timeout).await,
                Ok(Some(message)) => {
                    let payload: Vec<u8> = message.get_payload().unwrap_or_default();
                    if let Ok(meta) = ResultMeta::from_json(&payload) {
                        if meta.status.is_ready() {
                            return Ok(meta);
                        }
                    }
                }
            }
        }
    }

    async fn poll_ready(
        &self,
        task_id: &str,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<ResultMeta, BackendError> {
        loop {
            if let Some(meta) = self.get(task_id).await? {
                if meta.status.is_ready() {
                    return Ok(meta);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BackendError::Timeout {
                    task_id: task_id.to_owned(),
                    seconds: timeout.as_secs_f64(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The result documents of an `MGET` of `keys`: absent keys skipped, documents that are not
/// Celery's result JSON (custom states, other serializers) skipped with a warning.
fn documents(keys: &[String], values: Vec<Option<Vec<u8>>>) -> Vec<ResultMeta> {
    let mut documents = Vec::with_capacity(values.len());
    for (key, value) in keys.iter().zip(values) {
        let Some(raw) = value else { continue };
        match ResultMeta::from_json(&raw) {
            Ok(meta) => documents.push(meta),
            Err(error) => {
                tracing::warn!(key = %key, error = %error, "skipping a result that is not Celery's JSON document");
            }
        }
    }
    documents
}
