//! Turns plain async fns into task handlers: binds the message's JSON arguments to the
//! function's typed parameters.
//!
//! Two traits, so that a function taking a [`TaskContext`] first can never be mistaken for one
//! whose first argument comes from the message: [`Handler`] for `Fn(A, B, …)`, and
//! [`ContextHandler`] for `Fn(TaskContext, A, B, …)`. A wrong argument count or type is an
//! [`ArgumentError`], which the worker treats as bad input (dead letter + FAILURE), never a crash.

use super::context::TaskContext;
use super::outcome::{IntoOutcome, Outcome};
use crate::protocol::content::decode_typed;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::future::Future;
use std::pin::Pin;

/// A boxed task-body future.
pub type BoxedRun = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The message's arguments did not fit the task's parameters (Python's `TypeError`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ArgumentError {
    /// Python-style text, e.g. `demo.add() takes 2 positional arguments but 3 were given`.
    pub message: String,
}

/// The raw arguments, for variadic tasks (`*args, **kwargs`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawArgs {
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Map<String, Value>,
}

/// A plain async fn usable as a task body. Implemented for `Fn(A1, …, An) -> Fut` up to 12
/// parameters (as many as [`super::TaskArgs`] has tuples), where every parameter is `DeserializeOwned`.
pub trait Handler<Params>: Clone + Send + Sync + 'static {
    /// The number of positional parameters.
    const ARITY: usize;
    /// Binds `args` (already merged with keyword arguments) and starts the body.
    fn start(&self, args: Vec<Value>) -> Result<BoxedRun, ArgumentError>;
}

/// An async fn taking a [`TaskContext`] first, then its arguments.
pub trait ContextHandler<Params>: Clone + Send + Sync + 'static {
    /// The number of positional parameters after the context.
    const ARITY: usize;
    /// Binds `args` and starts the body with `context`.
    fn start(&self, context: TaskContext, args: Vec<Value>) -> Result<BoxedRun, ArgumentError>;
}

pub(crate) fn bind<T: DeserializeOwned>(index: usize, value: Value) -> Result<T, ArgumentError> {
    serde_json::from_value(decode_typed(value)).map_err(|error| ArgumentError {
        message: format!("argument {} has the wrong type: {error}", index + 1),
    })
}

macro_rules! count {
    () => { 0 };
    ($head:ident $($tail:ident)*) => { 1 + count!($($tail)*) };
}

macro_rules! impl_handlers {
    ($($param:ident),*) => {
        impl<F, Fut, R, $($param,)*> Handler<($($param,)*)> for F
        where
            F: Fn($($param),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoOutcome,
            $($param: DeserializeOwned + Send + 'static,)*
        {
            const ARITY: usize = count!($($param)*);

            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn start(&self, args: Vec<Value>) -> Result<BoxedRun, ArgumentError> {
                let mut values = args.into_iter().enumerate();
                $(
                    let $param: $param = match values.next() {
                        Some((index, value)) => bind(index, value)?,
                        None => return Err(ArgumentError { message: "missing argument".into() }),
                    };
                )*
                let function = self.clone();
                Ok(Box::pin(async move { function($($param),*).await.into_outcome() }))
            }
        }

        impl<F, Fut, R, $($param,)*> ContextHandler<($($param,)*)> for F
        where
            F: Fn(TaskContext, $($param),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoOutcome,
            $($param: DeserializeOwned + Send + 'static,)*
        {
            const ARITY: usize = count!($($param)*);

            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn start(&self, context: TaskContext, args: Vec<Value>) -> Result<BoxedRun, ArgumentError> {
                let mut values = args.into_iter().enumerate();
                $(
                    let $param: $param = match values.next() {
                        Some((index, value)) => bind(index, value)?,
                        None => return Err(ArgumentError { message: "missing argument".into() }),
                    };
                )*
                let function = self.clone();
                Ok(Box::pin(async move { function(context, $($param),*).await.into_outcome() }))
            }
        }
    };
}

impl_handlers!();
impl_handlers!(A1);
impl_handlers!(A1, A2);
impl_handlers!(A1, A2, A3);
impl_handlers!(A1, A2, A3, A4);
impl_handlers!(A1, A2, A3, A4, A5);
impl_handlers!(A1, A2, A3, A4, A5, A6);
impl_handlers!(A1, A2, A3, A4, A5, A6, A7);
impl_handlers!(A1, A2, A3, A4, A5, A6, A7, A8);
impl_handlers!(A1, A2, A3, A4, A5, A6, A7, A8, A9);
impl_handlers!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10);
impl_handlers!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11);
impl_handlers!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12);
