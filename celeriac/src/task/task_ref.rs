//! [`TaskRef`]: a typed handle on a task by name, and [`TaskArgs`], the argument tuples it
//! accepts.
//!
//! The handle carries the task's argument tuple and its return type in its type, so the
//! compiler checks a send against the task (`#[celeriac::task]` generates the handle from the
//! function itself) and the result comes back typed. Argument lists are tuples only: Celery's
//! `args` is a tuple, and accepting any `Serialize` type used to spread a `Vec` into as many
//! arguments as it had elements.

use serde_json::Value;
use std::marker::PhantomData;

/// A typed handle on a task by name: `TaskRef<(i64, i64), i64>` sends two `i64`s and reads
/// back an `i64`. The result type defaults to [`serde_json::Value`].
///
/// ```
/// use celeriac::producer::TaskRef;
///
/// const ADD: TaskRef<(i64, i64), i64> = TaskRef::new("demo.add");
/// const INVOICE: TaskRef<(i64,)> = TaskRef::new("orders.send_invoice_email").with_queue("email");
/// assert_eq!(ADD.name(), "demo.add");
/// assert_eq!(INVOICE.queue(), Some("email"));
/// ```
///
/// An argument list that is not a tuple does not compile, so a `Vec` can never be spread into
/// several arguments:
///
/// ```compile_fail,E0277
/// use celeriac::producer::TaskRef;
/// const TOTAL: TaskRef<Vec<i64>> = TaskRef::new("shapes.total");
/// ```
///
/// Nor does a send whose arguments do not match the handle's:
///
/// ```compile_fail,E0308
/// use celeriac::producer::{Producer, TaskRef};
/// const ADD: TaskRef<(i64, i64), i64> = TaskRef::new("demo.add");
/// async fn send(producer: &Producer) -> Result<(), celeriac::Error> {
///     producer.delay(&ADD, ("x", 2)).await?;
///     Ok(())
/// }
/// ```
///
/// ```compile_fail,E0308
/// use celeriac::producer::{Producer, TaskRef};
/// const TOTAL: TaskRef<(Vec<i64>,)> = TaskRef::new("shapes.total");
/// async fn send(producer: &Producer) -> Result<(), celeriac::Error> {
///     producer.delay(&TOTAL, vec![1, 2, 3]).await?;
///     Ok(())
/// }
/// ```
///
/// The same sends, written right, compile:
///
/// ```
/// use celeriac::producer::{Producer, TaskRef};
/// const ADD: TaskRef<(i64, i64), i64> = TaskRef::new("demo.add");
/// const TOTAL: TaskRef<(Vec<i64>,)> = TaskRef::new("shapes.total");
/// async fn send(producer: &Producer) -> Result<(), celeriac::Error> {
///     producer.delay(&ADD, (1, 2)).await?;
///     producer.delay(&TOTAL, (vec![1, 2, 3],)).await?;
///     Ok(())
/// }
/// ```
pub struct TaskRef<Args, R = Value> {
    name: &'static str,
    queue: Option<&'static str>,
    signature: PhantomData<fn(Args) -> R>,
}

impl<Args: TaskArgs, R> TaskRef<Args, R> {
    /// A handle on the task registered as `name`. `Args` must be a tuple (`()`, `(A,)`,
    /// `(A, B)`, … up to 12 elements).
    pub const fn new(name: &'static str) -> Self {
        TaskRef {
            name,
            queue: None,
            signature: PhantomData,
        }
    }

    /// Sends to `queue` unless a call names another (Celery's `Task.queue`), so the queue
    /// lives with the task instead of in every producer's `task_routes`.
    pub const fn with_queue(self, queue: &'static str) -> Self {
        TaskRef {
            name: self.name,
            queue: Some(queue),
            signature: PhantomData,
        }
    }
}

impl<Args, R> TaskRef<Args, R> {
    /// The task's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The task's own queue, if it has one: it wins over `task_routes` and loses to
    /// `SendOptions::queue`, as in Celery.
    pub fn queue(&self) -> Option<&'static str> {
        self.queue
    }
}

impl<Args, R> Clone for TaskRef<Args, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Args, R> Copy for TaskRef<Args, R> {}

impl<Args, R> std::fmt::Debug for TaskRef<Args, R> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TaskRef")
            .field("name", &self.name)
            .field("queue", &self.queue)
            .field("args", &std::any::type_name::<Args>())
            .field("result", &std::any::type_name::<R>())
            .finish()
    }
}

mod sealed {
    /// Keeps [`super::TaskArgs`] to the tuples below: anything else would have to decide how it
    /// maps onto Celery's positional `args`, which is exactly the ambiguity the trait removes.
    pub trait Sealed {}
}

/// The argument list of a task: `()` or a tuple of up to 12 elements, each one positional
/// argument. Sealed, so that no other type can be mistaken for an argument list.
pub trait TaskArgs: sealed::Sealed {
    /// The number of positional arguments.
    const ARITY: usize;
}

macro_rules! impl_task_args {
    ($arity:expr; $($element:ident),*) => {
        impl<$($element,)*> sealed::Sealed for ($($element,)*) {}
        impl<$($element,)*> TaskArgs for ($($element,)*) {
            const ARITY: usize = $arity;
        }
    };
}

impl_task_args!(0;);
impl_task_args!(1; A1);
impl_task_args!(2; A1, A2);
impl_task_args!(3; A1, A2, A3);
impl_task_args!(4; A1, A2, A3, A4);
impl_task_args!(5; A1, A2, A3, A4, A5);
impl_task_args!(6; A1, A2, A3, A4, A5, A6);
impl_task_args!(7; A1, A2, A3, A4, A5, A6, A7);
impl_task_args!(8; A1, A2, A3, A4, A5, A6, A7, A8);
impl_task_args!(9; A1, A2, A3, A4, A5, A6, A7, A8, A9);
impl_task_args!(10; A1, A2, A3, A4, A5, A6, A7, A8, A9, A10);
impl_task_args!(11; A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11);
impl_task_args!(12; A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12);

/// The positional `args` of a send: a tuple serializes as a JSON array (the unit tuple as
/// `null`), one element per argument.
pub(crate) fn positional_args<Args: TaskArgs + serde::Serialize>(
    args: Args,
) -> Result<Vec<Value>, serde_json::Error> {
    Ok(match serde_json::to_value(args)? {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        single => vec![single],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tuples_become_positional_arguments() {
        assert_eq!(positional_args(()).unwrap(), Vec::<Value>::new());
        assert_eq!(positional_args((1,)).unwrap(), vec![json!(1)]);
        assert_eq!(
            positional_args((vec![1, 2, 3],)).unwrap(),
            vec![json!([1, 2, 3])]
        );
        assert_eq!(
            positional_args(("a", 2, None::<i64>)).unwrap(),
            vec![json!("a"), json!(2), json!(null)]
        );
        assert_eq!(<(i64, String) as TaskArgs>::ARITY, 2);
    }

    #[test]
    fn handles_are_const_and_carry_their_queue() {
        const INVOICE: TaskRef<(i64,), String> =
            TaskRef::new("orders.send_invoice_email").with_queue("email");
        let copy = INVOICE;
        assert_eq!(copy.name(), "orders.send_invoice_email");
        assert_eq!(INVOICE.queue(), Some("email"));
        assert_eq!(TaskRef::<()>::new("demo.noop").queue(), None);
        assert!(format!("{INVOICE:?}").contains("email"));
    }
}
