//! Integration tests of the stock `celeriac` binary, which has no tasks of its own, against
//! real Redis and real Python Celery. The command line over an app with tasks is tested in
//! `examples/shop/tests`.

mod django_cli;
mod redis_access;
mod stock_serve;
mod support;
