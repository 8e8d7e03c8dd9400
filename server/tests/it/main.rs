//! Integration tests of the `celeriac` binary against real Redis and real Python Celery, and
//! the chaos suite that kills real worker processes.

mod chaos;
mod chaos_support;
mod cli;
mod events_cli;
