//! Integration tests of the `celeriac` binary against real Redis and real Python Celery.

mod cli;
