//! Integration tests against real Redis and real Celery.
//!
//! One binary for the whole crate (matklad's "Delete Cargo Integration Tests"); each module
//! covers one area. Run `scripts/python-venv.sh` first for the Python peer.

mod acl;
mod all_parts;
mod bad_input;
mod beat_interop;
mod beat_lease;
mod beat_namespace;
mod beat_scheduler;
mod beat_store;
mod beat_support;
mod canvas_interop;
mod control;
mod control_client;
mod control_runtime;
mod crontab_interop;
mod db_migrate;
mod db_prefix;
mod django_beat;
mod django_results;
mod events;
mod guarantees;
mod history;
mod history_recorder;
mod history_sources;
mod history_stats;
mod history_workflow;
mod interop;
mod lifecycle;
mod monitor;
mod sentinel;
mod solar_interop;
mod sqlalchemy_results;
mod startup;
mod support;
mod testkit_selftest;
mod tidy;
mod tls;
mod typed_task;
mod worker;
