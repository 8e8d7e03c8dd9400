//! `orders.*`: the slow work an order produces, moved off the request cycle.

use celeriac::task::{Task, TaskContext, TaskError};
use rand::Rng;
use serde_json::{json, Value};
use std::time::Duration;

pub(super) fn tasks() -> Vec<Task> {
    vec![
        // The SMTP relay fails now and then; Celery's answer is autoretry with exponential
        // backoff and full jitter, at most 5 retries.
        Task::with_context("orders.send_invoice_email", send_invoice_email)
            .arg_names(["order_id"])
            .autoretry_for(["SMTPError"])
            .retry_backoff(1.0)
            .retry_backoff_max(60)
            .retry_jitter(true)
            .max_retries(Some(5)),
        Task::with_context("orders.render_pdf", render_pdf).arg_names(["order_id"]),
    ]
}

async fn send_invoice_email(context: TaskContext, order_id: i64) -> Result<Value, TaskError> {
    // A simulated SMTP relay: a third of the attempts get a transient error.
    let transient_failure = rand::thread_rng().gen_bool(1.0 / 3.0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    if transient_failure {
        return Err(TaskError::new(
            "SMTPError",
            format!("421 service not available (order {order_id})"),
        ));
    }
    Ok(json!({
        "order_id": order_id,
        "sent_to": format!("customer-{order_id}@example.com"),
        "attempts": context.retries() + 1,
    }))
}

async fn render_pdf(context: TaskContext, order_id: i64) -> Result<Value, TaskError> {
    let pages = 1 + order_id.rem_euclid(5);
    for page in 0..pages {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(400)) => {}
            _ = context.soft_time_limit() => {
                return Err(TaskError::new("SoftTimeLimitExceeded", format!("stopped after {page} of {pages} pages")));
            }
        }
    }
    Ok(json!({"order_id": order_id, "pages": pages, "file": format!("invoices/{order_id}.pdf")}))
}
