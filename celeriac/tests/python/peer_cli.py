"""Command-line access to the Python Celery peer for Rust tests.

Uses the same PEER_* environment variables as peer.py and prints exactly one JSON line
on stdout:

    send NAME [--args JSON] [--kwargs JSON] [--queue Q] [--countdown S] [--eta ISO]
              [--expires S] [--priority N] [--task-id ID]   -> {"task_id": ...}
    result ID [--timeout S]      -> {"status", "result", "traceback", "retries", "date_done"}
                                    or {"status": "TIMEOUT", "last_status": ...}
    meta ID                      -> app.backend.get_task_meta(ID), made JSON-able
    restore                      -> one kombu visibility-timeout restore sweep: {"restored": true}
    events --seconds S           -> listens with Celery's own event receiver and State (what
                                    Flower uses) for S seconds: {"events": [types], "workers":
                                    {name: {alive, processed, active}}, "tasks": {id: {state, ...}}};
                                    an event of type `peer-probe` is not recorded but sets the key
                                    `<PEER_KEYPREFIX>events-ready`, so a test knows it listens
    canvas SPEC [--timeout S]    -> builds a chain/group/chord from the JSON SPEC (see `build`),
                                    applies it with Celery's own canvas and waits:
                                    {"id", "status", "result"} (a group: "results", a list)
    fetch_unacked QUEUE [--timeout S]
                                 -> takes one message without acking it, prints
                                    {"delivery_tag", "task_id"} and exits abruptly, leaving a
                                    Python-side orphan in the `unacked` hash
"""

import argparse
import datetime
import json
import os
import sys
import time

from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult

from peer import KEYPREFIX, app, broker_redis


def exception_json(exception):
    return {
        "exc_type": type(exception).__name__,
        "exc_module": type(exception).__module__,
        "message": str(exception),
        "args": [to_json(arg) for arg in exception.args],
    }


def to_json(value):
    """Turns what Celery decoded (exceptions, datetimes, tuples) back into plain JSON values."""
    if isinstance(value, BaseException):
        return exception_json(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def emit(document):
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


def send(options):
    task_options = {
        "args": json.loads(options.args),
        "kwargs": json.loads(options.kwargs),
        "queue": options.queue,
        "countdown": options.countdown,
        "expires": options.expires,
        "priority": options.priority,
        "task_id": options.task_id,
    }
    if options.eta is not None:
        task_options["eta"] = datetime.datetime.fromisoformat(options.eta)
    task_options = {key: value for key, value in task_options.items() if value is not None}
    async_result = app.send_task(options.name, **task_options)
    emit({"task_id": async_result.id})


def result(options):
    async_result = AsyncResult(options.task_id, app=app)
    try:
        value = async_result.get(timeout=options.timeout, propagate=False)
    except CeleryTimeoutError:
        emit({"status": "TIMEOUT", "last_status": async_result.state})
        return
    meta = app.backend.get_task_meta(options.task_id)
    emit(
        {
            "status": async_result.state,
            "result": to_json(value),
            "traceback": async_result.traceback,
            "retries": meta.get("retries"),
            "date_done": to_json(meta.get("date_done")),
        }
    )


def meta(options):
    emit(to_json(app.backend.get_task_meta(options.task_id)))


def restore(_options):
    # kombu's own sweep (QoS.restore_visible takes the unacked_mutex lock). A fresh channel's
    # throttle counter lets the first call through; num=None means no restore limit, as in
    # a worker with the default unacked_restore_limit.
    with app.connection_for_write() as connection:
        connection.default_channel.qos.restore_visible(num=None)
    emit({"restored": True})


def fetch_unacked(options):
    connection = app.connection_for_read()
    channel = connection.default_channel
    deadline = time.monotonic() + options.timeout
    message = None
    while message is None and time.monotonic() < deadline:
        message = channel.basic_get(options.queue, no_ack=False)
        if message is None:
            time.sleep(0.05)
    if message is None:
        sys.stderr.write(f"fetch_unacked: no message in queue {options.queue!r}\n")
        sys.exit(2)
    emit({"delivery_tag": message.delivery_tag, "task_id": message.headers.get("id")})
    # No ack and no channel close: closing would restore the message (restore_at_shutdown).
    os._exit(0)


def events(options):
    import threading

    state = app.events.State()
    seen = []

    def on_event(event):
        if event["type"] == "peer-probe":
            broker_redis().set(f"{KEYPREFIX}events-ready", "1")
            return
        seen.append(event["type"])
        state.event(event)

    def listen():
        with app.connection() as connection:
            receiver = app.events.Receiver(connection, handlers={"*": on_event})
            receiver.capture(limit=None, timeout=None, wakeup=False)

    threading.Thread(target=listen, daemon=True).start()
    time.sleep(options.seconds)
    workers = {
        name: {"alive": worker.alive, "processed": worker.processed, "active": worker.active}
        for name, worker in state.workers.items()
    }
    tasks = {
        task_id: {
            "state": task.state,
            "name": task.name,
            "result": task.result,
            "exception": task.exception,
            "retries": task.retries,
            "worker": task.worker.hostname if task.worker else None,
        }
        for task_id, task in state.tasks.items()
    }
    emit({"events": seen, "workers": workers, "tasks": tasks})
    sys.stdout.flush()
    os._exit(0)


def build(spec):
    """{"task", "args", "kwargs", "immutable", "options", "link": [spec], "link_error": [spec]},
    {"chain": [spec]}, {"group": [spec]}, {"chord": [spec], "body": spec},
    {"starmap": spec, "it": [...]} or {"chunks": spec, "it": [...], "n": N}."""
    from celery import chain, chord, group
    from celery.canvas import chunks, xstarmap

    if "chain" in spec:
        signature = chain(*[build(step) for step in spec["chain"]])
    elif "group" in spec:
        signature = group([build(member) for member in spec["group"]])
    elif "chord" in spec:
        signature = chord([build(member) for member in spec["chord"]], build(spec["body"]))
    elif "starmap" in spec:
        signature = xstarmap(build(spec["starmap"]), spec["it"])
    elif "chunks" in spec:
        signature = chunks(build(spec["chunks"]), spec["it"], spec["n"])
    else:
        signature = app.signature(
            spec["task"],
            args=spec.get("args", []),
            kwargs=spec.get("kwargs", {}),
            immutable=spec.get("immutable", False),
            **spec.get("options", {}),
        )
    for callback in spec.get("link", []):
        signature.link(build(callback))
    for errback in spec.get("link_error", []):
        signature.link_error(build(errback))
    return signature


def canvas(options):
    from celery.result import GroupResult

    spec = json.loads(options.spec)
    applied = build(spec).apply_async(**spec.get("apply", {}))
    if isinstance(applied, GroupResult):
        try:
            values = applied.get(timeout=options.timeout, propagate=False)
        except CeleryTimeoutError:
            emit({"id": applied.id, "status": "TIMEOUT"})
            return
        emit({"id": applied.id, "status": "GROUP", "results": to_json(values)})
        return
    try:
        value = applied.get(timeout=options.timeout, propagate=False)
    except CeleryTimeoutError:
        emit({"id": applied.id, "status": "TIMEOUT", "last_status": applied.state})
        return
    emit({"id": applied.id, "status": applied.state, "result": to_json(value)})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    send_parser = commands.add_parser("send")
    send_parser.add_argument("name")
    send_parser.add_argument("--args", default="[]")
    send_parser.add_argument("--kwargs", default="{}")
    send_parser.add_argument("--queue")
    send_parser.add_argument("--countdown", type=float)
    send_parser.add_argument("--eta")
    send_parser.add_argument("--expires", type=float)
    send_parser.add_argument("--priority", type=int)
    send_parser.add_argument("--task-id")
    send_parser.set_defaults(handler=send)

    result_parser = commands.add_parser("result")
    result_parser.add_argument("task_id")
    result_parser.add_argument("--timeout", type=float, default=10.0)
    result_parser.set_defaults(handler=result)

    meta_parser = commands.add_parser("meta")
    meta_parser.add_argument("task_id")
    meta_parser.set_defaults(handler=meta)

    restore_parser = commands.add_parser("restore")
    restore_parser.set_defaults(handler=restore)

    events_parser = commands.add_parser("events")
    events_parser.add_argument("--seconds", type=float, default=5.0)
    events_parser.set_defaults(handler=events)

    canvas_parser = commands.add_parser("canvas")
    canvas_parser.add_argument("spec")
    canvas_parser.add_argument("--timeout", type=float, default=30.0)
    canvas_parser.set_defaults(handler=canvas)

    fetch_parser = commands.add_parser("fetch_unacked")
    fetch_parser.add_argument("queue")
    fetch_parser.add_argument("--timeout", type=float, default=10.0)
    fetch_parser.set_defaults(handler=fetch_unacked)

    options = parser.parse_args()
    options.handler(options)


if __name__ == "__main__":
    main()
