"""Celery's own crontab, for Rust tests that compare our parser and run times with it.

Reads one JSON object on stdin and prints one JSON object on stdout:

    {"parse": [SPEC, ...], "next": [{"spec": SPEC, "last_run_at": ISO}, ...]}
    -> {"parse": [{"minute": [...], "hour": [...], "day_of_week": [...], "day_of_month": [...],
                   "month_of_year": [...]} or {"error": TEXT}, ...],
        "next": [ISO, ...]}

SPEC is {"minute", "hour", "day_of_week", "day_of_month", "month_of_year"} as strings.
Run times are Celery's `crontab.remaining_delta` added to `last_run_at`, in UTC (an app with
`timezone="UTC"`), so no DST is involved.
"""

import datetime
import json
import sys

from celery import Celery
from celery.schedules import crontab

FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")

app = Celery("crontab_check", set_as_current=False)
app.conf.timezone = "UTC"
app.conf.enable_utc = True


def expand(spec):
    try:
        schedule = crontab(app=app, **{field: spec[field] for field in FIELDS})
    except Exception as exception:  # noqa: BLE001 - every refusal is reported the same way
        return {"error": f"{type(exception).__name__}: {exception}"}
    return {field: sorted(getattr(schedule, field)) for field in FIELDS}


def next_run(spec, last_run_at_text):
    last_run_at = datetime.datetime.fromisoformat(last_run_at_text)
    schedule = crontab(
        app=app,
        nowfun=lambda: last_run_at,
        **{field: spec[field] for field in FIELDS},
    )
    start, delta, _now = schedule.remaining_delta(last_run_at)
    return (start + delta).astimezone(datetime.timezone.utc).isoformat()


def main():
    request = json.load(sys.stdin)
    answer = {
        "parse": [expand(spec) for spec in request.get("parse", [])],
        "next": [next_run(item["spec"], item["last_run_at"]) for item in request.get("next", [])],
    }
    json.dump(answer, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
