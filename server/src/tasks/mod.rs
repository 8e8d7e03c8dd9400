//! The tasks built into the `celeriac` binary: the seed's story (invoices, PDFs, carts) and
//! small `demo.*` tasks the tests and the README use.
//!
//! They mirror what a Celery project would define, so `celeriac call orders.render_pdf` and a
//! Python `send_task("orders.render_pdf", ...)` do the same thing.

mod carts;
mod orders;

use celeriac::config::BeatScheduleEntry;
use celeriac::routing::{Route, TaskRoutes};
use celeriac::task::Registry;
use std::collections::BTreeMap;

/// Every built-in task.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    for task in orders::tasks()
        .into_iter()
        .chain(carts::tasks())
        .chain(celeriac::demo::tasks())
    {
        registry.register(task);
    }
    if std::env::var_os("CELERIAC_CHAOS_TRUTH").is_some() {
        for task in celeriac::demo::chaos_tasks() {
            registry.register(task);
        }
    }
    registry
}

/// The routes the seed uses when the configuration names none: invoices go to `email`, PDFs
/// to `render`.
pub fn default_routes() -> TaskRoutes {
    TaskRoutes::new(vec![
        (
            "orders.send_invoice_email".to_owned(),
            Route::queue("email"),
        ),
        ("orders.render_pdf".to_owned(), Route::queue("render")),
    ])
    .expect("the built-in routes are plain task names")
}

/// The demo's periodic tasks, used by `celeriac serve` when the configuration has no
/// `beat_schedule`: expired carts are cleaned up every five minutes.
pub fn demo_beat_schedule() -> BTreeMap<String, BeatScheduleEntry> {
    let cleanup = BeatScheduleEntry {
        task: "carts.cleanup_expired_carts".to_owned(),
        schedule: serde_json::Value::from("5m"),
        args: Vec::new(),
        kwargs: serde_json::Map::new(),
        options: Default::default(),
        timezone: None,
    };
    BTreeMap::from([("carts.cleanup_expired_carts".to_owned(), cleanup)])
}
