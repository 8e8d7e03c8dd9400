"""Celery 5.4's own beat (PersistentScheduler, a shelve file) with N entries due every
minute, for celeriac's beat_scheduler benchmark. Run by the benchmark with
`celery -A celery_beat beat`; BENCH_BROKER, BENCH_QUEUE and BENCH_ENTRIES come from it."""

import os

from celery import Celery
from celery.schedules import crontab

app = Celery("celery_beat", broker=os.environ["BENCH_BROKER"])
app.conf.beat_max_loop_interval = 1
app.conf.beat_schedule = {
    f"due-{index:05d}": {
        "task": "demo.noop",
        "schedule": crontab(),
        "options": {"queue": os.environ["BENCH_QUEUE"]},
    }
    for index in range(int(os.environ["BENCH_ENTRIES"]))
}
