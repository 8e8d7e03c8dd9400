//! `#[task]`: a Celeriac task from an `async fn`, with its options next to it and a typed
//! handle checked against its signature. Use it through `celeriac` (`celeriac::task` or
//! `celeriac::prelude::task`), which re-exports it under the default `macros` feature; the
//! generated code names `::celeriac`.
//!
//! # Layout
//! - `attributes`: the `#[task(...)]` keys, checked at compile time.
//! - `signature`: context, named parameters and success type read from the function.
//! - `expand`: the generated struct and its associated items.

mod attributes;
mod expand;
mod signature;

use proc_macro::TokenStream;

/// Turns an `async fn` into a Celery task: the name, queue and options sit on the function,
/// and a typed handle is generated from its signature, so sends are checked at compile time
/// and results come back typed.
///
/// ```
/// use celeriac::prelude::*;
/// use serde::{Deserialize, Serialize};
/// use std::time::Duration;
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// pub struct Invoice {
///     order_id: i64,
///     sent_to: String,
/// }
///
/// /// Mails the invoice of an order; IO failures (SMTP down) retry with backoff.
/// #[task(
///     name = "orders.send_invoice_email",
///     queue = "email",
///     max_retries = 5,
///     autoretry_for = [std::io::Error],
///     retry_backoff = true,
///     retry_backoff_max = 600,
///     soft_time_limit = 240,
///     time_limit = 300,
/// )]
/// pub async fn send_invoice_email(
///     context: TaskContext,
///     order_id: i64,
/// ) -> Result<Invoice, std::io::Error> {
///     let _attempt = context.retries();
///     Ok(Invoice { order_id, sent_to: format!("customer-{order_id}@example.com") })
/// }
///
/// #[task(name = "demo.add")]
/// async fn add(x: i64, y: i64) -> Result<i64, TaskError> {
///     Ok(x + y)
/// }
///
/// // The worker side: register the generated tasks.
/// let mut registry = Registry::new();
/// registry.register(send_invoice_email::task()).register(add::task());
/// let task = registry.get("orders.send_invoice_email").expect("registered");
/// assert_eq!(task.options().max_retries, Some(5));
/// assert_eq!(task.options().time_limit, Some(Duration::from_secs(300)));
/// assert_eq!(task.options().arg_names, ["order_id"]);
///
/// // The producer side: the handle is typed by the function, and carries the queue.
/// let handle: TaskRef<(i64,), Invoice> = send_invoice_email::handle();
/// assert_eq!(handle.name(), send_invoice_email::NAME);
/// assert_eq!(handle.queue(), Some("email"));
///
/// async fn invoice_for(
///     producer: &Producer,
///     order_id: i64,
/// ) -> Result<Invoice, Box<dyn std::error::Error>> {
///     let result = send_invoice_email::delay(producer, order_id).await?;
///     Ok(result.wait(Duration::from_secs(10)).await?)
/// }
///
/// // The function itself is unchanged and can be called (and tested) directly.
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// assert_eq!(runtime.block_on(add(2, 3)), Ok(5));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # What it generates
///
/// The function stays as written. Next to it comes a struct with the same name (a braced,
/// empty struct: it shares the name without clashing, since the function is a value and the
/// struct a type), whose associated items are:
///
/// | item | what for |
/// |---|---|
/// | `const NAME: &str` | the Celery task name |
/// | `fn task() -> Task` | the task for a worker's `Registry`, with every option below and the parameter names (so keyword arguments bind) |
/// | `const fn handle() -> TaskRef<(A, B, …), R>` | the typed handle: the parameters' types as a tuple, `R` from `Result<R, E>` |
/// | `async fn delay(producer, a, b, …) -> Result<AsyncResult<R>, Error>` | Celery's `delay` |
/// | `async fn apply_async(producer, (a, b, …), SendOptions) -> Result<AsyncResult<R>, Error>` | Celery's `apply_async` |
///
/// A first parameter of type `TaskContext` is the request context, not an argument. A return
/// type other than `Result<R, E>` (such as `Outcome`) gives an untyped handle whose result is
/// `serde_json::Value`. The struct, and every generated item, has the function's visibility.
///
/// # Options
///
/// | key | value | Celery |
/// |---|---|---|
/// | `name` (required) | `"orders.send_invoice_email"` | `name` |
/// | `queue` | `"email"`: the handle sends there unless a call names a queue; wins over `task_routes` | `queue` |
/// | `max_retries` | `5`, or `None` to retry forever (default 3) | `max_retries` |
/// | `autoretry_for` | `[std::io::Error, MyError]`, matched by Rust type; string entries (`"OSError"`) match `exc_type` | `autoretry_for` |
/// | `dont_autoretry_for` | as `autoretry_for`, and wins over it | `dont_autoretry_for` |
/// | `retry_backoff` | `true` (factor 1), `false`, or a factor in seconds | `retry_backoff` |
/// | `retry_backoff_max` | seconds (default 600) | `retry_backoff_max` |
/// | `retry_jitter` | `true` (default) or `false` | `retry_jitter` |
/// | `default_retry_delay` | seconds (default 180) | `default_retry_delay` |
/// | `soft_time_limit`, `time_limit` | seconds, integer or float | same |
/// | `rate_limit` | `"10/m"`, `"5/s"`, `"100/h"` | `rate_limit` |
/// | `acks_late`, `ignore_result` | `true` or `false` | same |
/// | `crate` | `"::path::to::celeriac"` when the crate is renamed | |
///
/// `autoretry_for` by type matches the type the error had when it became a failure: the
/// function's error type, or the type `?` converted into `TaskError`. An `std::io::Error`
/// wrapped in your own error enum is that enum; list the enum.
///
/// # Mistakes are compile errors
///
/// An unknown key, with its span:
///
/// ```compile_fail
/// use celeriac::prelude::*;
/// #[task(name = "demo.add", max_retires = 5)]
/// async fn add(x: i64, y: i64) -> Result<i64, TaskError> { Ok(x + y) }
/// ```
///
/// A send whose arguments do not match the function:
///
/// ```compile_fail,E0308
/// use celeriac::prelude::*;
/// #[task(name = "demo.double")]
/// async fn double(x: i64) -> Result<i64, TaskError> { Ok(2 * x) }
/// async fn send(producer: &Producer) -> Result<(), celeriac::Error> {
///     double::delay(producer, "x").await?;
///     Ok(())
/// }
/// ```
///
/// ```compile_fail,E0308
/// use celeriac::prelude::*;
/// #[task(name = "demo.total")]
/// async fn total(values: Vec<i64>) -> Result<i64, TaskError> { Ok(values.iter().sum()) }
/// async fn send(producer: &Producer) -> Result<(), celeriac::Error> {
///     total::apply_async(producer, vec![1, 2, 3], SendOptions::new()).await?;
///     Ok(())
/// }
/// ```
///
/// A result read as another type than the task returns:
///
/// ```compile_fail,E0308
/// use celeriac::prelude::*;
/// #[task(name = "demo.double")]
/// async fn double(x: i64) -> Result<i64, TaskError> { Ok(2 * x) }
/// async fn send(producer: &Producer) -> Result<String, Box<dyn std::error::Error>> {
///     let result = double::delay(producer, 2).await?;
///     let text: String = result.wait(std::time::Duration::from_secs(1)).await?;
///     Ok(text)
/// }
/// ```
///
/// A missing name, a sync function, a generic one:
///
/// ```compile_fail
/// use celeriac::prelude::*;
/// #[task(queue = "email")]
/// async fn add(x: i64, y: i64) -> Result<i64, TaskError> { Ok(x + y) }
/// ```
///
/// ```compile_fail
/// use celeriac::prelude::*;
/// #[task(name = "demo.add")]
/// fn add(x: i64, y: i64) -> Result<i64, TaskError> { Ok(x + y) }
/// ```
///
/// ```compile_fail
/// use celeriac::prelude::*;
/// #[task(name = "demo.first")]
/// async fn first<T: serde::de::DeserializeOwned>(items: Vec<T>) -> Result<(), TaskError> {
///     Ok(())
/// }
/// ```
///
/// The same sends, written right, compile:
///
/// ```
/// use celeriac::prelude::*;
/// #[task(name = "demo.double")]
/// async fn double(x: i64) -> Result<i64, TaskError> { Ok(2 * x) }
/// #[task(name = "demo.total")]
/// async fn total(values: Vec<i64>) -> Result<i64, TaskError> { Ok(values.iter().sum()) }
/// async fn send(producer: &Producer) -> Result<i64, Box<dyn std::error::Error>> {
///     total::apply_async(producer, (vec![1, 2, 3],), SendOptions::new()).await?;
///     let result = double::delay(producer, 2).await?;
///     let doubled: i64 = result.wait(std::time::Duration::from_secs(1)).await?;
///     Ok(doubled)
/// }
/// ```
#[proc_macro_attribute]
pub fn task(attribute: TokenStream, item: TokenStream) -> TokenStream {
    let original = proc_macro2::TokenStream::from(item.clone());
    let mut attributes = attributes::TaskAttributes::new();
    let parser = syn::meta::parser(|meta| attributes.parse_one(meta));
    let expanded = syn::parse::Parser::parse(parser, attribute)
        .and_then(|()| syn::parse::<syn::ItemFn>(item))
        .and_then(|function| {
            let signature = signature::TaskSignature::read(&function)?;
            expand::expand(attributes, function, signature)
        });
    match expanded {
        Ok(tokens) => tokens.into(),
        // The function is kept, so that a mistake in the attribute is reported once and not
        // again at every place the function is used.
        Err(error) => {
            let error = error.to_compile_error();
            quote::quote!(#error #original).into()
        }
    }
}
