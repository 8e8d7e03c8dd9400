//! `celeriac events`: a live tail of the cluster's Celery events, one line per event, like
//! `celery events --dump` but readable at a glance; `--json` prints each event as Celery's JSON
//! object instead (one per line, for `jq`).
//!
//! A line is: UTC time (the sender's), type, node, then a summary of the type's fields: task
//! id, name and what changed (state, result, runtime, exception) for task events; active,
//! processed and load for worker events.

use crate::cli::EventsArgs;
use anyhow::Context;
use celeriac::broker::RedisBroker;
use celeriac::config::Config;
use celeriac::events::EventReceiver;
use celeriac::producer::broker_options;
use celeriac::protocol::event::{Event, EventGroup, EventKind};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;
use std::io::Write as _;

/// Runs until SIGTERM/SIGINT, or until `--limit` events were printed.
pub async fn events(config: Config, args: &EventsArgs) -> anyhow::Result<()> {
    let broker = RedisBroker::connect(&config.broker_url, broker_options(&config))
        .await
        .context("connecting to the broker")?;
    let mut receiver = EventReceiver::connect(&broker)
        .await
        .context("subscribing to the events")?;
    tracing::info!(broker = %celeriac::broker::redacted(&config.broker_url), "listening for events");
    let stop = celeriac::worker::shutdown::termination_signal();
    tokio::pin!(stop);
    let mut printed = 0u64;
    let mut batch = Vec::new();
    loop {
        batch.clear();
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = receiver.recv_batch(&mut batch) => {}
        }
        let mut out = std::io::stdout().lock();
        for event in &batch {
            let line = if args.json {
                event.to_json().to_string()
            } else {
                summary(event)
            };
            writeln!(out, "{line}").context("writing to stdout")?;
            printed += 1;
            if args.limit.is_some_and(|limit| printed >= limit) {
                out.flush().context("writing to stdout")?;
                return Ok(());
            }
        }
        out.flush().context("writing to stdout")?;
    }
}

/// One readable line for an event.
pub fn summary(event: &Event) -> String {
    let time = DateTime::<Utc>::from_timestamp_micros((event.timestamp * 1e6).round() as i64)
        .map(|time| time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| "-".to_owned());
    let mut line = format!("{time} {:<16} {}", event.kind.as_str(), event.hostname);
    match event.kind.group() {
        EventGroup::Task => {
            let _ = write!(line, " {}", event.uuid().unwrap_or("-"));
            if let Some(name) = event.str_field("name") {
                let _ = write!(line, " {name}");
            }
            if let Some(state) = event.kind.task_state() {
                let _ = write!(line, " {state}");
            }
            match event.kind {
                EventKind::TaskSent | EventKind::TaskReceived => {
                    for field in ["args", "kwargs"] {
                        if let Some(value) = event.str_field(field) {
                            let _ = write!(line, " {field}={value}");
                        }
                    }
                    if let Some(retries) = event.u64_field("retries").filter(|retries| *retries > 0)
                    {
                        let _ = write!(line, " retries={retries}");
                    }
                }
                EventKind::TaskSucceeded => {
                    if let Some(result) = event.str_field("result") {
                        let _ = write!(line, " result={result}");
                    }
                    if let Some(runtime) = event.f64_field("runtime") {
                        let _ = write!(line, " runtime={runtime:.4}s");
                    }
                }
                EventKind::TaskFailed | EventKind::TaskRetried => {
                    if let Some(exception) = event.str_field("exception") {
                        let _ = write!(line, " exception={exception}");
                    }
                }
                EventKind::TaskRevoked => {
                    for flag in ["terminated", "expired"] {
                        if event.bool_field(flag) == Some(true) {
                            let _ = write!(line, " {flag}");
                        }
                    }
                }
                _ => {}
            }
        }
        EventGroup::Worker => {
            for field in ["active", "processed"] {
                if let Some(value) = event.u64_field(field) {
                    let _ = write!(line, " {field}={value}");
                }
            }
            if let Some(load) = event.fields.get("loadavg") {
                let _ = write!(line, " loadavg={load}");
            }
        }
        EventGroup::Other => {}
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_summarise_each_kind() {
        let mut succeeded = Event::new(EventKind::TaskSucceeded, "w1@vm", 7, 1795487545.8249452);
        succeeded.fields.insert("uuid".into(), json!("ca95d4ed"));
        succeeded.fields.insert("result".into(), json!("5"));
        succeeded
            .fields
            .insert("runtime".into(), json!(0.015734944));
        assert_eq!(
            summary(&succeeded),
            "2026-11-24T02:32:25.824Z task-succeeded   w1@vm ca95d4ed SUCCESS result=5 runtime=0.0157s"
        );
        let mut heartbeat = Event::new(EventKind::WorkerHeartbeat, "w1@vm", 45, 1795487547.793888);
        heartbeat.fields.insert("active".into(), json!(0));
        heartbeat.fields.insert("processed".into(), json!(14));
        heartbeat
            .fields
            .insert("loadavg".into(), json!([3.05, 1.0, 0.36]));
        assert_eq!(
            summary(&heartbeat),
            "2026-11-24T02:32:27.793Z worker-heartbeat w1@vm active=0 processed=14 loadavg=[3.05,1.0,0.36]"
        );
        let mut received = Event::new(EventKind::TaskReceived, "w1@vm", 2, 0.0);
        received.fields.insert("uuid".into(), json!("id"));
        received.fields.insert("name".into(), json!("proj.add"));
        received.fields.insert("args".into(), json!("(2, 3)"));
        received.fields.insert("retries".into(), json!(1));
        assert_eq!(
            summary(&received),
            "1970-01-01T00:00:00.000Z task-received    w1@vm id proj.add RECEIVED args=(2, 3) retries=1"
        );
    }
}
