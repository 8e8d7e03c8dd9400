"""Celery's own solar schedule, for Rust tests that compare our run times with it.

Reads one JSON object on stdin and prints one JSON object on stdout:

    {"next": [{"event": NAME, "latitude": TEXT, "longitude": TEXT, "last_run_at": ISO}, ...]}
    -> {"next": [ISO or {"error": TEXT}, ...]}

Each run time is `last_run_at` plus Celery's `solar.remaining_estimate(last_run_at)` with a
fixed `now`, in UTC: what beat would wait for after a run at `last_run_at`. Coordinates are
passed as django-celery-beat passes them, Decimals.
"""

import datetime
import decimal
import json
import sys

from celery import Celery
from celery.schedules import solar

app = Celery("solar_check", set_as_current=False)
app.conf.timezone = "UTC"
app.conf.enable_utc = True

NOW = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)


def next_run(request):
    schedule = solar(
        request["event"],
        decimal.Decimal(request["latitude"]),
        decimal.Decimal(request["longitude"]),
        app=app,
        nowfun=lambda: NOW,
    )
    last_run_at = datetime.datetime.fromisoformat(request["last_run_at"])
    try:
        remaining = schedule.remaining_estimate(last_run_at)
    except Exception as exception:  # noqa: BLE001 - Celery 5.4's polar fallback raises TypeError
        return {"error": f"{type(exception).__name__}: {exception}"}
    return (NOW + remaining).isoformat()


def main():
    request = json.load(sys.stdin)
    json.dump({"next": [next_run(item) for item in request.get("next", [])]}, sys.stdout)


if __name__ == "__main__":
    main()
