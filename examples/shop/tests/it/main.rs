//! Integration tests of the `celeriac` binary against real Redis and real Python Celery, and
//! the chaos suite that kills real worker processes, and real Flower watching our worker.

mod beat_chaos;
mod chaos;
mod chaos_support;
mod chord_chaos;
mod cli;
mod control_cli;
mod events_cli;
mod flower;
mod history_cli;
mod schedule_cli;
mod startup_chaos;
