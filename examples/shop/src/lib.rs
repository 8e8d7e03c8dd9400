//! The Celeriac demo: an online shop whose slow work (invoice emails, PDF rendering, cart
//! clean-up) runs as tasks, built only on Celeriac's public API.
//!
//! Its binary, `shop`, is the whole product over these tasks: `shop serve` is the dashboard
//! with two embedded worker pools (`email@%h`: invoices, 8 at a time; `render@%h`: PDFs and the
//! default `celery` queue, 2 at a time) and beat sending `carts.cleanup_expired_carts` every
//! five minutes; `shop worker -Q email -c 8 -n email@%h` runs one pool on its own, and
//! `shop call orders.render_pdf --args '[42]' --wait` sends a task, as Python's
//! `send_task("orders.render_pdf", args=[42])` does.
//!
//! The `demo.*` tasks (`demo.add`, `demo.sleep`, `demo.fail_until`, ...) have exact behaviour
//! for the tests, the README and the browser suite.

pub mod carts;
pub mod orders;

use celeriac_server::App;

/// The shop: its tasks, their queues, its two worker pools and its periodic clean-up.
pub fn app() -> App {
    let app = App::new("shop")
        .tasks(orders::tasks())
        .tasks(carts::tasks())
        .tasks(celeriac::demo::tasks())
        .pool("email@%h", ["email"], Some(8))
        .pool("render@%h", ["render", "celery"], Some(2))
        .beat_every(
            "carts.cleanup_expired_carts",
            "carts.cleanup_expired_carts",
            "5m",
        );
    with_chaos_tasks(app)
}

/// The chaos suite's tasks, in test builds only (the `chaos` feature).
#[cfg(feature = "chaos")]
fn with_chaos_tasks(app: App) -> App {
    app.tasks(celeriac::demo::chaos_tasks())
}

#[cfg(not(feature = "chaos"))]
fn with_chaos_tasks(app: App) -> App {
    app
}
