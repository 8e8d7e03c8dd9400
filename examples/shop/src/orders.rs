//! `orders.*`: the slow work an order produces, moved off the request cycle.

use celeriac::prelude::*;
use rand::Rng;
use serde_json::{json, Value};
use std::time::Duration;

pub(crate) fn tasks() -> Vec<Task> {
    vec![send_invoice_email::task(), render_pdf::task()]
}

/// The SMTP relay's transient refusal; Celery's answer is autoretry with exponential backoff
/// and full jitter, at most 5 retries. Named as Python's `smtplib` would, so a Python
/// `autoretry_for` and a monitor read the same name.
#[derive(Debug)]
pub struct SMTPError(String);

impl std::fmt::Display for SMTPError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for SMTPError {}

/// Mails an order's invoice through a simulated relay that refuses a third of the attempts.
#[task(
    name = "orders.send_invoice_email",
    queue = "email",
    autoretry_for = [SMTPError],
    retry_backoff = 1.0,
    retry_backoff_max = 60,
    retry_jitter = true,
    max_retries = 5
)]
pub async fn send_invoice_email(context: TaskContext, order_id: i64) -> Result<Value, SMTPError> {
    let transient_failure = rand::thread_rng().gen_bool(1.0 / 3.0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    if transient_failure {
        return Err(SMTPError(format!(
            "421 service not available (order {order_id})"
        )));
    }
    Ok(json!({
        "order_id": order_id,
        "sent_to": format!("customer-{order_id}@example.com"),
        "attempts": context.retries() + 1,
    }))
}

/// Renders an order's PDF page by page, stopping cleanly at its soft time limit.
#[task(name = "orders.render_pdf", queue = "render")]
pub async fn render_pdf(context: TaskContext, order_id: i64) -> Result<Value, TaskError> {
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
