//! What the task's `async fn` signature tells the macro: whether it takes a `TaskContext`
//! first, its named parameters (the task's positional arguments, which keyword arguments bind
//! to by name) and the type it returns on success.

use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type};

/// The most parameters a task can have: the longest tuple `TaskArgs` and `Handler` cover.
const MAX_PARAMETERS: usize = 12;

/// One parameter after the optional context.
pub(crate) struct Parameter {
    pub(crate) name: Ident,
    pub(crate) ty: Type,
}

/// The parts of the signature the generated code needs.
pub(crate) struct TaskSignature {
    pub(crate) takes_context: bool,
    pub(crate) parameters: Vec<Parameter>,
    /// `T` of a `Result<T, E>` return (any type named `Result`, so aliases such as
    /// `anyhow::Result<T>` count); `None` when the return type is something else, and the
    /// result is then read back as JSON.
    pub(crate) result_type: Option<Type>,
}

impl TaskSignature {
    /// Reads the signature, refusing what cannot be a task: a sync, generic, variadic or method
    /// fn, a parameter without a plain name, more than 12 parameters.
    pub(crate) fn read(function: &ItemFn) -> syn::Result<TaskSignature> {
        let signature = &function.sig;
        if signature.asyncness.is_none() {
            return Err(syn::Error::new(
                signature.fn_token.span,
                "a task must be an `async fn`",
            ));
        }
        if !signature.generics.params.is_empty() || signature.generics.where_clause.is_some() {
            return Err(syn::Error::new_spanned(
                &signature.generics,
                "a task cannot be generic: its argument and result types are fixed by the name \
                 it is sent under",
            ));
        }
        if let Some(variadic) = &signature.variadic {
            return Err(syn::Error::new_spanned(
                variadic,
                "a task cannot be variadic; use `Task::raw` for `*args, **kwargs`",
            ));
        }
        let mut inputs = signature.inputs.iter().peekable();
        let takes_context = match inputs.peek() {
            Some(FnArg::Typed(first)) => is_task_context(&first.ty),
            _ => false,
        };
        if takes_context {
            inputs.next();
        }
        let mut parameters = Vec::new();
        for input in inputs {
            let typed = match input {
                FnArg::Receiver(receiver) => {
                    return Err(syn::Error::new_spanned(
                        receiver,
                        "a task is a free function, not a method",
                    ))
                }
                FnArg::Typed(typed) => typed,
            };
            let Pat::Ident(binding) = typed.pat.as_ref() else {
                return Err(syn::Error::new_spanned(
                    &typed.pat,
                    "task parameters need plain names: keyword arguments bind to them by name",
                ));
            };
            if binding.subpat.is_some() || binding.by_ref.is_some() {
                return Err(syn::Error::new_spanned(
                    binding,
                    "task parameters need plain names: keyword arguments bind to them by name",
                ));
            }
            if is_task_context(&typed.ty) {
                return Err(syn::Error::new_spanned(
                    &typed.ty,
                    "the `TaskContext` must be the first parameter",
                ));
            }
            parameters.push(Parameter {
                name: binding.ident.clone(),
                ty: (*typed.ty).clone(),
            });
        }
        if parameters.len() > MAX_PARAMETERS {
            return Err(syn::Error::new(
                signature.inputs.span(),
                format!("a task takes at most {MAX_PARAMETERS} arguments besides its context"),
            ));
        }
        Ok(TaskSignature {
            takes_context,
            parameters,
            result_type: success_type(&signature.output),
        })
    }
}

/// True for `TaskContext` under any path (`celeriac::task::TaskContext`, or imported).
fn is_task_context(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => {
            path.qself.is_none()
                && path.path.segments.last().is_some_and(|segment| {
                    segment.ident == "TaskContext" && segment.arguments.is_none()
                })
        }
        _ => false,
    }
}

/// `T` of `Result<T, …>`.
fn success_type(output: &ReturnType) -> Option<Type> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    let Type::Path(path) = ty.as_ref() else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    match arguments.args.first()? {
        GenericArgument::Type(success) => Some(success.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(tokens: proc_macro2::TokenStream) -> syn::Result<TaskSignature> {
        TaskSignature::read(&syn::parse2(tokens)?)
    }

    fn error(tokens: proc_macro2::TokenStream) -> String {
        match read(tokens) {
            Ok(_) => String::from("no error"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn reads_context_parameters_and_result() {
        let signature = read(quote::quote! {
            async fn send(context: TaskContext, order_id: i64, mut to: String)
                -> Result<Invoice, std::io::Error> { todo() }
        })
        .expect("a task");
        assert!(signature.takes_context);
        let names: Vec<String> = signature
            .parameters
            .iter()
            .map(|parameter| parameter.name.to_string())
            .collect();
        assert_eq!(names, ["order_id", "to"]);
        let result = signature.result_type.expect("typed");
        assert_eq!(quote::quote!(#result).to_string(), "Invoice");
        let untyped = read(quote::quote! { async fn noop() -> Outcome { todo() } }).expect("ok");
        assert!(!untyped.takes_context && untyped.result_type.is_none());
        let aliased = read(quote::quote! { async fn n() -> anyhow::Result<u64> { todo() } });
        assert!(aliased.expect("ok").result_type.is_some());
    }

    #[test]
    fn refuses_what_cannot_be_a_task() {
        assert!(error(quote::quote! { fn f() {} }).contains("async fn"));
        assert!(error(quote::quote! { async fn f<T>(x: T) {} }).contains("generic"));
        assert!(error(quote::quote! { async fn f((a, b): (i64, i64)) {} }).contains("names"));
        assert!(error(quote::quote! { async fn f(x: i64, c: TaskContext) {} }).contains("first"));
    }
}
