//! Read-only commands (`celery inspect ...`), and `hello`, mingle's exchange of revokes and
//! clocks between workers.

use super::super::revoke::{self, REVOKE_EXPIRES};
use super::super::state::{Held, Phase};
use super::super::{rusage, Shared};
use super::task_ids;
use crate::clock;
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;
use std::time::Instant;

pub(super) fn registered(shared: &Shared) -> Value {
    // Celery lists the application's tasks, not its `celery.*` built-ins (`builtins=False`).
    let names: Vec<&str> = shared
        .registry
        .names()
        .filter(|name| !name.starts_with("celery."))
        .collect();
    json!(names)
}

/// Celery's `stats`: `total` counts task starts by name, `pool` and `prefetch_count` show the
/// live sizes (after `pool_grow`/`pool_shrink`), `rusage` this process's resource usage.
pub(super) fn stats(shared: &Shared, started: Instant) -> Value {
    json!({
        "total": shared.counters.totals(),
        "pid": std::process::id(),
        "clock": shared.events.tick().to_string(),
        "uptime": started.elapsed().as_secs(),
        "pool": {
            "implementation": "celeriac:tokio",
            "max-concurrency": shared.pool.size(),
            "processes": [std::process::id()],
            "max-tasks-per-child": "N/A",
            "put-guarded-by-semaphore": false,
            "timeouts": [
                shared.config.task_soft_time_limit.unwrap_or(0.0),
                shared.config.task_time_limit.unwrap_or(0.0),
            ],
            "writes": {},
        },
        "broker": broker_info(&shared.config.broker_url),
        "prefetch_count": shared.prefetch.size(),
        "processed": shared.counters.processed.load(Ordering::Relaxed),
        "rusage": rusage::rusage(),
        // Ours, not Celery's: the outcomes the worker had to settle out of order.
        "celeriac": {
            "dead_lettered": shared.counters.dead_lettered.load(Ordering::Relaxed),
            "acked_before_result": shared.counters.acked_before_result.load(Ordering::Relaxed),
            "results_waiting": shared.counters.results_waiting.load(Ordering::Relaxed),
        },
    })
}

pub(super) fn conf(shared: &Shared) -> Value {
    json!({
        "broker_url": redact(&shared.config.broker_url),
        "task_default_queue": shared.config.task_default_queue,
        "task_acks_late": shared.config.task_acks_late,
        "worker_prefetch_multiplier": shared.config.worker_prefetch_multiplier,
        "worker_concurrency": shared.pool.size(),
        "worker_send_task_events": shared.events.task_events(),
    })
}

/// The queues consumed now, as kombu's `Queue.as_dict()` prints them.
pub(super) fn active_queues(shared: &Shared) -> Value {
    let queues: Vec<Value> = shared
        .queues
        .list()
        .into_iter()
        .map(|queue| {
            json!({
                "name": queue.name,
                "exchange": {"name": queue.exchange, "type": queue.exchange_type, "arguments": null,
                             "durable": true, "passive": false, "auto_delete": false,
                             "delivery_mode": null, "no_declare": false},
                "routing_key": queue.routing_key,
                "queue_arguments": null, "binding_arguments": null, "consumer_arguments": null,
                "durable": true, "exclusive": false, "auto_delete": false, "no_ack": false,
                "alias": null, "bindings": [], "no_declare": null, "expires": null,
                "message_ttl": null, "max_length": null, "max_length_bytes": null,
                "max_priority": null,
            })
        })
        .collect();
    Value::Array(queues)
}

pub(super) fn active(shared: &Shared) -> Value {
    json!(infos(shared, Phase::Active))
}

pub(super) fn reserved(shared: &Shared) -> Value {
    json!(infos(shared, Phase::Reserved))
}

pub(super) fn scheduled(shared: &Shared) -> Value {
    json!(shared
        .in_flight
        .listing(Phase::Scheduled)
        .into_iter()
        .map(|held| json!({"eta": held.eta, "priority": 6, "request": request_info(shared, &held)}))
        .collect::<Vec<_>>())
}

pub(super) fn query_task(shared: &Shared, arguments: &Map<String, Value>) -> Value {
    let mut found = Map::new();
    for id in task_ids(arguments, "ids") {
        if let Some(held) = shared.in_flight.find(&id) {
            let info = request_info(shared, &held);
            let state = match held.phase {
                Phase::Active => "active",
                Phase::Reserved => "reserved",
                Phase::Scheduled => "scheduled",
            };
            found.insert(id, json!([state, info]));
        }
    }
    Value::Object(found)
}

/// Mingle: a starting worker sends its revokes and asks for ours. Celery merges theirs and
/// answers `{"revoked": {id: [inserted, id]}, "clock": N}` (the values of its `LimitedSet`),
/// and answers its own `hello` with nothing (`null`).
///
/// The timestamps Celery sends are `time.monotonic()` of the sender, meaningless here, so a
/// merged revoke lasts [`REVOKE_EXPIRES`] from now; ours go out as the epoch second the revoke
/// was made, which a Python worker accepts (it only needs a float).
pub(super) async fn hello(shared: &Shared, arguments: &Map<String, Value>) -> Value {
    let from_node = arguments
        .get("from_node")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if from_node == shared.options.node_name {
        return Value::Null;
    }
    tracing::info!(from_node, "sync with {from_node}");
    if let Some(Value::Object(theirs)) = arguments.get("revoked") {
        let ids: Vec<String> = theirs.keys().cloned().collect();
        revoke::revoke(shared, &ids).await;
    }
    let now = clock::epoch_now();
    let ours: Map<String, Value> = shared
        .revoked
        .entries()
        .into_iter()
        .filter(|(_, until)| *until > now)
        .map(|(id, until)| {
            let inserted = until - REVOKE_EXPIRES.as_secs_f64();
            (id.clone(), json!([inserted, id]))
        })
        .collect();
    json!({"revoked": ours, "clock": shared.events.tick()})
}

/// kombu's `Connection.info()` for a Redis URL, as `stats` reports it under `broker`; Flower's
/// broker tab and `celery inspect stats` read these fields. Never the password: the reply goes
/// to anyone on the broker.
fn broker_info(url: &str) -> Value {
    let (scheme, rest) = url.split_once("://").unwrap_or(("redis", url));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    let userid = userinfo
        .map(|userinfo| userinfo.split(':').next().unwrap_or_default())
        .filter(|user| !user.is_empty());
    let (hostname, port) = match host_port.rsplit_once(':') {
        // `[::1]` alone has colons but no port.
        Some((host, port)) if !port.ends_with(']') => (host, port.parse::<u16>().ok()),
        _ => (host_port, None),
    };
    let virtual_host = path
        .split('?')
        .next()
        .filter(|db| !db.is_empty())
        .unwrap_or("0");
    json!({
        "hostname": if hostname.is_empty() { "localhost" } else { hostname },
        "userid": userid,
        "virtual_host": virtual_host,
        "port": port.unwrap_or(6379),
        "insist": false,
        "ssl": scheme == "rediss",
        "transport": "redis",
        "connect_timeout": 4,
        "transport_options": {},
        "login_method": null,
        "uri_prefix": null,
        "heartbeat": 120.0,
        "failover_strategy": "round-robin",
        "alternates": [],
    })
}

/// A broker URL without its password, for replies anyone on the broker can read.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

fn infos(shared: &Shared, phase: Phase) -> Vec<Value> {
    shared
        .in_flight
        .listing(phase)
        .into_iter()
        .map(|held| request_info(shared, &held))
        .collect()
}

/// Celery's `Request.info()`: what `inspect active/reserved/scheduled` report of a request,
/// built only when a monitor asks.
fn request_info(shared: &Shared, held: &Held) -> Value {
    let request = &held.request;
    let message = &request.message;
    let headers = &message.headers;
    json!({
        "id": headers.id.0,
        "name": headers.task,
        "args": message.args,
        "kwargs": message.kwargs,
        "type": headers.task,
        "hostname": shared.options.node_name,
        "time_start": held.time_start,
        "acknowledged": false,
        "delivery_info": {
            "exchange": "",
            "routing_key": request.delivery.queue,
            "priority": request.priority,
            "redelivered": request.redelivered,
        },
        "worker_pid": std::process::id(),
        "argsrepr": message.args_repr(),
        "kwargsrepr": message.kwargs_repr(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_info_has_kombus_fields_and_never_the_password() {
        let info = broker_info("redis://:s3cret@10.0.0.5:6390/3");
        assert_eq!(info["hostname"], "10.0.0.5");
        assert_eq!(info["port"], 6390);
        assert_eq!(info["virtual_host"], "3");
        assert_eq!(info["userid"], Value::Null);
        assert_eq!(info["ssl"], false);
        assert_eq!(info["transport"], "redis");
        assert!(!info.to_string().contains("s3cret"), "{info}");

        let info = broker_info("rediss://ops:pw@cache.internal");
        assert_eq!(info["hostname"], "cache.internal");
        assert_eq!(info["port"], 6379);
        assert_eq!(info["virtual_host"], "0");
        assert_eq!(info["userid"], "ops");
        assert_eq!(info["ssl"], true);
        assert!(!info.to_string().contains("pw"), "{info}");

        // The same keys as real Celery 5.4's reply
        // (../shared/celery-captures/control_cli_output.txt).
        let info = broker_info("redis://127.0.0.1:6390/0");
        let mut keys: Vec<&str> = info
            .as_object()
            .map(|object| object.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        let mut expected = vec![
            "hostname",
            "userid",
            "virtual_host",
            "port",
            "insist",
            "ssl",
            "transport",
            "connect_timeout",
            "transport_options",
            "login_method",
            "uri_prefix",
            "heartbeat",
            "failover_strategy",
            "alternates",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
    }
}
