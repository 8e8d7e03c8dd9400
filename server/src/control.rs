//! `celeriac inspect` and `celeriac control`: the engine's remote-control client behind a
//! command line that reads like Celery's.
//!
//! Human output follows `celery inspect`/`celery control`: one `->  <node>: OK` (or `ERROR`)
//! line per worker with the reply indented under it, and for `inspect` a closing
//! `N nodes online.`. `--json` prints one object, node name → reply, for scripts (Celery's
//! `control --json` prints a list of one-node objects instead). No reply at all prints Celery's
//! `Error: No nodes replied within time constraint` and exits 1.

use crate::cli::{BroadcastArgs, ControlArgs, ControlCommand, InspectArgs, InspectCommand};
use anyhow::Context;
use celeriac::config::Config;
use celeriac::control::{BroadcastOptions, Control, Inspect, Replies};
use serde_json::Value;
use std::time::Duration;

/// `celeriac inspect <command>`.
pub async fn inspect(config: Config, args: &InspectArgs) -> anyhow::Result<bool> {
    let control = connect(&config).await?;
    let options = broadcast_options(&args.broadcast)?;
    let replies = match &args.command {
        InspectCommand::Ping => control.ping(&options).await?,
        InspectCommand::Active => control.inspect(Inspect::Active, &options).await?,
        InspectCommand::Reserved => control.inspect(Inspect::Reserved, &options).await?,
        InspectCommand::Scheduled => control.inspect(Inspect::Scheduled, &options).await?,
        InspectCommand::Stats => control.inspect(Inspect::Stats, &options).await?,
        InspectCommand::Registered => control.inspect(Inspect::Registered, &options).await?,
        InspectCommand::ActiveQueues => control.inspect(Inspect::ActiveQueues, &options).await?,
        InspectCommand::Revoked => control.inspect(Inspect::Revoked, &options).await?,
        InspectCommand::Conf => control.inspect(Inspect::Conf, &options).await?,
        InspectCommand::QueryTask { ids } => {
            control
                .inspect(Inspect::QueryTask(ids.clone()), &options)
                .await?
        }
    };
    Ok(report(&replies, args.broadcast.json, true))
}

/// `celeriac control <command>`.
pub async fn control(config: Config, args: &ControlArgs) -> anyhow::Result<bool> {
    let control = connect(&config).await?;
    let options = broadcast_options(&args.broadcast)?;
    let replies = match &args.command {
        ControlCommand::Revoke {
            ids,
            terminate,
            signal,
        } => {
            control
                .revoke(ids, *terminate, Some(signal), &options)
                .await?
        }
        ControlCommand::RateLimit { name, rate } => {
            control.rate_limit(name, rate, &options).await?
        }
        ControlCommand::TimeLimit { name, soft, hard } => {
            let soft = Some(seconds("soft", *soft)?);
            let hard = hard.map(|hard| seconds("hard", hard)).transpose()?;
            control.time_limit(name, soft, hard, &options).await?
        }
        ControlCommand::PoolGrow { n } => control.pool_grow(*n, &options).await?,
        ControlCommand::PoolShrink { n } => control.pool_shrink(*n, &options).await?,
        ControlCommand::Autoscale { max, min } => control.autoscale(*max, *min, &options).await?,
        ControlCommand::AddConsumer {
            queue,
            exchange,
            routing_key,
        } => {
            control
                .add_consumer(queue, exchange.as_deref(), routing_key.as_deref(), &options)
                .await?
        }
        ControlCommand::CancelConsumer { queue } => {
            control.cancel_consumer(queue, &options).await?
        }
        ControlCommand::EnableEvents => control.enable_events(&options).await?,
        ControlCommand::DisableEvents => control.disable_events(&options).await?,
        ControlCommand::Shutdown => {
            // Workers do not answer `shutdown`; like `celery control shutdown`, print nothing.
            control.shutdown(&options).await?;
            return Ok(true);
        }
    };
    Ok(report(&replies, args.broadcast.json, false))
}

async fn connect(config: &Config) -> anyhow::Result<Control> {
    Control::connect(config)
        .await
        .context("connecting to the broker")
}

fn broadcast_options(args: &BroadcastArgs) -> anyhow::Result<BroadcastOptions> {
    let mut options = BroadcastOptions::default().timeout(seconds("--timeout", args.timeout)?);
    if !args.destination.is_empty() {
        options = options.to(args
            .destination
            .iter()
            .map(|node| node.trim())
            .filter(|node| !node.is_empty()));
    }
    Ok(options)
}

fn seconds(option: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("{option} must be a non-negative number of seconds"))
}

/// Prints the replies; false (exit 1) when no worker replied.
fn report(replies: &Replies, json: bool, count_nodes: bool) -> bool {
    if replies.is_empty() {
        eprintln!("Error: No nodes replied within time constraint");
        return false;
    }
    if json {
        println!("{}", serde_json::json!(replies));
        return true;
    }
    for (node, reply) in replies {
        let (status, body) = pretty(reply);
        println!("->  {node}: {status}");
        println!("{}", indent(&body, 4));
    }
    if count_nodes {
        let count = replies.len();
        println!(
            "\n{count} {} online.",
            if count == 1 { "node" } else { "nodes" }
        );
    }
    true
}

/// Celery's `CLIContext.pretty`: a status word and the reply as text.
fn pretty(reply: &Value) -> (&'static str, String) {
    match reply {
        Value::Array(items) if items.is_empty() => ("OK", "- empty -".to_owned()),
        Value::Array(items) => {
            let lines: Vec<String> = items
                .iter()
                .map(|item| format!("* {}", plain(item)))
                .collect();
            ("OK", lines.join("\n"))
        }
        Value::Object(object) if object.contains_key("ok") => {
            ("OK", indent(&pretty(&object["ok"]).1, 4))
        }
        Value::Object(object) if object.contains_key("error") => {
            ("ERROR", indent(&pretty(&object["error"]).1, 4))
        }
        Value::Object(_) => (
            "OK",
            serde_json::to_string_pretty(reply).unwrap_or_else(|_| reply.to_string()),
        ),
        other => ("OK", plain(other)),
    }
}

/// A string as itself, anything else as compact JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn indent(text: &str, spaces: usize) -> String {
    let padding = " ".repeat(spaces);
    text.lines()
        .map(|line| format!("{padding}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replies_print_as_celery_prints_them() {
        let (status, body) = pretty(&json!({"ok": "pong"}));
        assert_eq!((status, indent(&body, 4).as_str()), ("OK", "        pong"));
        let (status, body) = pretty(&json!({"error": "ValueError('Autoscale not enabled')"}));
        assert_eq!(status, "ERROR");
        assert_eq!(body, "    ValueError('Autoscale not enabled')");
        assert_eq!(pretty(&json!([])).1, "- empty -");
        assert_eq!(
            pretty(&json!(["demo.add", "demo.sleep"])).1,
            "* demo.add\n* demo.sleep"
        );
    }
}
