"""The Python Celery peer of Celeriac's interop tests.

Configured only from environment variables, so a Rust test can point it at its own
Redis server and key prefix:

- PEER_BROKER_URL          broker URL (required), e.g. redis://127.0.0.1:6390/0
- PEER_RESULT_BACKEND      result backend URL, e.g. redis://127.0.0.1:6390/1; empty or unset
                           turns results off (the drain benchmark's "results off" runs)
- PEER_KEYPREFIX           kombu transport option `global_keyprefix` (may be empty); the result
                           backend is not prefixed (task ids are unique anyway)
- PEER_VISIBILITY_TIMEOUT  kombu `visibility_timeout` in seconds (default 3600)
- PEER_RESULT_EXTENDED     "1" turns on `result_extended`
- PEER_ACKS_LATE           "1" turns on `task_acks_late`
- PEER_ROUTES              JSON `task_routes`, e.g. {"py.*": {"queue": "py-1"}} (canvas tests)
- PEER_SSL_CA              a CA file: `rediss://` URLs are verified against it
                           (`broker_use_ssl`, `redis_backend_use_ssl`; tls.rs)

Run a worker with `python -m celery -A peer worker` from this directory.
"""

import json
import os
import ssl
import time

import redis
from celery import Celery

KEYPREFIX = os.environ.get("PEER_KEYPREFIX", "")

app = Celery("peer")
app.conf.update(
    broker_url=os.environ["PEER_BROKER_URL"],
    result_backend=os.environ.get("PEER_RESULT_BACKEND") or None,
    broker_transport_options={
        "global_keyprefix": KEYPREFIX,
        "visibility_timeout": float(os.environ.get("PEER_VISIBILITY_TIMEOUT", "3600")),
    },
    result_extended=os.environ.get("PEER_RESULT_EXTENDED") == "1",
    task_acks_late=os.environ.get("PEER_ACKS_LATE") == "1",
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_default_queue="celery",
    broker_connection_retry_on_startup=True,
    task_routes=json.loads(os.environ.get("PEER_ROUTES") or "{}"),
)


SSL_CA = os.environ.get("PEER_SSL_CA")
SSL_OPTIONS = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": SSL_CA} if SSL_CA else None
if SSL_OPTIONS:
    app.conf.broker_use_ssl = SSL_OPTIONS
    app.conf.redis_backend_use_ssl = SSL_OPTIONS


def broker_redis():
    """A plain redis-py client on the broker database (keys are prefixed by hand)."""
    return redis.Redis.from_url(app.conf.broker_url, **(SSL_OPTIONS or {}))


@app.task(name="demo.add")
def add(x, y):
    return x + y


@app.task(name="demo.noop")
def noop():
    """Does nothing; the drain benchmark's task."""
    return None


@app.task(name="demo.sleep")
def sleep(seconds):
    time.sleep(seconds)
    return seconds


@app.task(name="demo.fail")
def fail(message):
    raise ValueError(message)


@app.task(name="demo.fail_until")
def fail_until(until):
    if time.time() < until:
        raise ConnectionError(f"the dependency is down until {until}")
    return "ok"


@app.task(name="demo.echo")
def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


@app.task(name="demo.flaky", bind=True)
def flaky(self, times):
    """Fails `times` times (retrying itself after 1 s), then returns the attempt count."""
    attempts = broker_redis().incr(f"{KEYPREFIX}flaky:{self.request.id}")
    if attempts <= times:
        raise self.retry(
            exc=RuntimeError(f"flaky attempt {attempts} of {times}"),
            countdown=1,
            max_retries=None,
        )
    return attempts


@app.task(name="demo.record")
def record(token):
    """Appends `token` to the list `<PEER_KEYPREFIX>record`, so tests can see this worker ran."""
    broker_redis().rpush(f"{KEYPREFIX}record", token)
    return token


def multiply(x, y):
    return x * y


def counted_sum(name):
    """A chord body that counts its calls under `<PEER_KEYPREFIX>calls:<name>`, so a test can
    tell it fired exactly once."""

    def tsum(numbers):
        broker_redis().incr(f"{KEYPREFIX}calls:{name}")
        return sum(numbers)

    return tsum


# `demo.*` as the Rust demo has them, and `py.*`: the Python steps of the canvas tests, routed to
# the Python worker's queue.
for prefix in ("demo", "py"):
    app.task(name=f"{prefix}.mul")(multiply)
    app.task(name=f"{prefix}.tsum")(counted_sum(f"{prefix}.tsum"))


@app.task(name="py.errback")
def py_errback(task_id):
    """An old-style errback: records the id of the task that failed."""
    broker_redis().rpush(f"{KEYPREFIX}errbacks", task_id)
    return task_id


@app.task(name="py.retry_once", bind=True)
def py_retry_once(self, x):
    if self.request.retries == 0:
        raise self.retry(countdown=0.2)
    return x
