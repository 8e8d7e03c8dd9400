//! Running a past task again: [`retry_task`] re-publishes its name and exact arguments as a
//! new task, linked to the old one.
//!
//! Where the arguments come from (in this order):
//! 1. the history row, which has them when a catch-up or an earlier look read an extended result
//!    (`result_extended = true`), or when the task was itself sent by `retry_task`;
//! 2. the result backend, read now (again only with `result_extended`).
//!
//! Events carry arguments only as Python reprs, truncated at 1024 characters and not always
//! reversible (`datetime(…)`, custom classes), so they are never used: a task known only from
//! events is refused with [`RetryError::ArgumentsUnknown`]. We chose not to record every
//! message our producer sends, because Python producers would still be missing and
//! `result_extended` covers both.
//!
//! The workflow: Celery cannot run a finished task again; the nearest it has is `Task.retry`,
//! which sends the same message again, its workflow included. So when a Celeriac worker ran
//! the failed task, which keeps the message's callbacks, errbacks and the rest of its chain for
//! `result_expires`, the re-run carries them and the chain goes on from there. A task that a
//! Python worker ran is re-run alone.
//!
//! The link: the new task gets a fresh id, the `celeriac_retry_of` header (Python workers
//! ignore unknown headers; Celery keeps them in `task.request`), and the history row of the
//! new task has `retried_from` set. The new task keeps the original's `parent_id` and,
//! when the original was part of a workflow, its `root_id`; a stand-alone task's re-run is its
//! own root, so it does not claim to belong to the old task's workflow.

use super::event::{TaskEvent, TaskEventKind};
use super::record::TaskRecord;
use super::{HistoryError, TaskHistory};
use crate::backend::{AsyncResult, BackendError};
use crate::producer::{Producer, SendOptions};
use serde_json::Value;

/// The workflow a Celeriac worker kept when `task_id` failed (its callbacks, errbacks and the
/// rest of its chain), so the re-run continues it; none when a Python worker ran it or the
/// task was not part of one.
async fn kept_workflow(producer: &Producer, task_id: &str) -> crate::protocol::Embed {
    match producer.broker().workflow(task_id).await {
        Ok(Some(text)) => serde_json::from_str::<Value>(&text)
            .map(|value| crate::protocol::Embed::from_value(&value))
            .unwrap_or_default(),
        Ok(None) => crate::protocol::Embed::default(),
        Err(error) => {
            tracing::warn!(task_id, %error, "could not read the failed task's workflow; running it alone");
            crate::protocol::Embed::default()
        }
    }
}

/// The header that names the task a message re-runs.
pub const RETRY_OF_HEADER: &str = "celeriac_retry_of";

/// Why a past task could not be run again.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// Neither the history nor the result backend knows the task.
    #[error("task {task_id} is unknown to the task history and the result backend")]
    UnknownTask {
        /// The task asked for.
        task_id: String,
    },
    /// The task's name is not known, so there is nothing to send.
    #[error("cannot retry task {task_id}: its task name is not known")]
    NameUnknown {
        /// The task asked for.
        task_id: String,
    },
    /// The exact arguments are not known (module docs).
    #[error("cannot retry task {task_id}: its original arguments are not known ({reason})")]
    ArgumentsUnknown {
        /// The task asked for.
        task_id: String,
        /// What is missing and how to get it.
        reason: String,
    },
    /// The history could not be read or written.
    #[error("cannot retry task {task_id}")]
    History {
        /// The task asked for.
        task_id: String,
        /// What failed.
        #[source]
        source: HistoryError,
    },
    /// The result backend could not be read.
    #[error("cannot read the result of task {task_id}")]
    Backend {
        /// The task asked for.
        task_id: String,
        /// What failed.
        #[source]
        source: BackendError,
    },
    /// The new message could not be published.
    #[error("cannot send the retry of task {task_id}")]
    Send {
        /// The task asked for.
        task_id: String,
        /// What failed.
        #[source]
        source: crate::Error,
    },
}

/// Why the argument reprs of `meta` (all django-db keeps) did not read back as values; None
/// when they did, or when there are none.
fn unreadable_reprs(meta: &crate::protocol::ResultMeta) -> Option<String> {
    use crate::protocol::python_literal::{parse_args, parse_kwargs};
    let args = meta.args_repr.as_deref().filter(|_| meta.args.is_none());
    let kwargs = meta
        .kwargs_repr
        .as_deref()
        .filter(|_| meta.kwargs.is_none());
    if let Some(Err(error)) = args.map(parse_args) {
        return Some(format!(
            "{error} of {args:?}",
            args = args.unwrap_or_default()
        ));
    }
    if let Some(Err(error)) = kwargs.map(parse_kwargs) {
        return Some(format!(
            "{error} of {kwargs:?}",
            kwargs = kwargs.unwrap_or_default()
        ));
    }
    None
}

/// Sends task `task_id` again, with its original name, arguments and queue, as a new task
/// (module docs); returns the new task's result handle.
pub async fn retry_task(
    history: &TaskHistory,
    producer: &Producer,
    task_id: &str,
) -> Result<AsyncResult, RetryError> {
    let history_error = |source| RetryError::History {
        task_id: task_id.to_owned(),
        source,
    };
    let mut original = history
        .task(task_id)
        .await
        .map_err(history_error)?
        .map(|detail| detail.task);
    let arguments_known = |record: &Option<TaskRecord>| {
        record
            .as_ref()
            .is_some_and(|record| record.name.is_some() && record.args.is_some())
    };
    // Why the backend's copy of the arguments (reprs, on django-db) did not read back.
    let mut unreadable_repr: Option<String> = None;
    if !arguments_known(&original) {
        if let Some(backend) = producer.backend() {
            let meta = backend
                .get(task_id)
                .await
                .map_err(|source| RetryError::Backend {
                    task_id: task_id.to_owned(),
                    source,
                })?;
            if let Some(meta) = meta {
                unreadable_repr = unreadable_reprs(&meta);
                history
                    .record_results(std::slice::from_ref(&meta))
                    .await
                    .map_err(history_error)?;
                let observed_at = crate::clock::now();
                match &mut original {
                    Some(record) => record.apply_result(&meta, observed_at),
                    None => original = Some(TaskRecord::from_result(&meta, observed_at)),
                }
            }
        }
    }
    let original = original.ok_or_else(|| RetryError::UnknownTask {
        task_id: task_id.to_owned(),
    })?;
    let name = original
        .name
        .clone()
        .ok_or_else(|| RetryError::NameUnknown {
            task_id: task_id.to_owned(),
        })?;
    let (Some(args), Some(kwargs)) = (original.args.clone(), original.kwargs.clone()) else {
        let reason = if let Some(why) = unreadable_repr {
            format!(
                "the result backend keeps them only as Celery's repr, which does not read back \
                 exactly: {why}"
            )
        } else if original.args_repr.is_some() {
            "only the truncated reprs carried by events are known; turn on result_extended so \
             results keep the exact arguments"
                .to_owned()
        } else {
            "no event or extended result recorded them; turn on result_extended".to_owned()
        };
        return Err(RetryError::ArgumentsUnknown {
            task_id: task_id.to_owned(),
            reason,
        });
    };
    let new_task_id = uuid::Uuid::new_v4().to_string();
    let root_id = match &original.root_id {
        Some(root_id) if root_id != &original.task_id => root_id.clone(),
        _ => new_task_id.clone(),
    };
    let options = SendOptions {
        task_id: Some(new_task_id.clone()),
        queue: original.queue.clone(),
        parent_id: original.parent_id.clone(),
        root_id: Some(root_id.clone()),
        workflow: kept_workflow(producer, task_id).await,
        ..SendOptions::new()
    }
    .header(RETRY_OF_HEADER, Value::String(task_id.to_owned()));
    let result = producer
        .send_task(&name, args.clone(), kwargs.clone(), options)
        .await
        .map_err(|source| RetryError::Send {
            task_id: task_id.to_owned(),
            source,
        })?;
    tracing::info!(task_id = %new_task_id, task_name = %name, retry_of = %task_id, "task sent again");
    let mut sent = TaskEvent::new(TaskEventKind::Sent, &new_task_id, "", crate::clock::now());
    sent.name = Some(name);
    sent.queue = original.queue.clone();
    sent.root_id = Some(root_id);
    sent.parent_id = original.parent_id.clone();
    history
        .upsert_with(&new_task_id, |stored| {
            let mut record = match stored {
                Some(mut record) => {
                    record.apply_event(&sent);
                    record
                }
                None => TaskRecord::from_event(&sent),
            };
            record.set_arguments(args, kwargs);
            record.retried_from = Some(task_id.to_owned());
            record
        })
        .await
        .map_err(history_error)?;
    Ok(result)
}
