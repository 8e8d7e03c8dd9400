//! The `#[task(...)]` arguments, parsed and checked at compile time.
//!
//! Every mistake is a compile error with the span of the key or value at fault: an unknown or
//! repeated key, a value of the wrong kind, a rate limit Celery would not parse, a negative
//! time limit. What passes here cannot fail at run time.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{bracketed, Expr, ExprLit, ExprPath, Lit, LitBool, LitInt, LitStr, Path, Token, Type};

/// The keys `#[task]` accepts, named in the error for an unknown one.
const KEYS: &str = "name, queue, max_retries, autoretry_for, dont_autoretry_for, retry_backoff, \
    retry_backoff_max, retry_jitter, default_retry_delay, soft_time_limit, time_limit, \
    rate_limit, acks_late, ignore_result, crate";

/// Everything `#[task(...)]` said; `None` means "Celery's default".
pub(crate) struct TaskAttributes {
    pub(crate) name: Option<LitStr>,
    pub(crate) queue: Option<LitStr>,
    pub(crate) max_retries: Option<MaxRetries>,
    pub(crate) autoretry_for: Option<Vec<ErrorMatcher>>,
    pub(crate) dont_autoretry_for: Option<Vec<ErrorMatcher>>,
    pub(crate) retry_backoff: Option<f64>,
    pub(crate) retry_backoff_max: Option<u64>,
    pub(crate) retry_jitter: Option<bool>,
    pub(crate) default_retry_delay: Option<Seconds>,
    pub(crate) soft_time_limit: Option<Seconds>,
    pub(crate) time_limit: Option<Seconds>,
    pub(crate) rate_limit: Option<LitStr>,
    pub(crate) acks_late: Option<bool>,
    pub(crate) ignore_result: Option<bool>,
    pub(crate) crate_path: Option<Path>,
}

/// `max_retries = N` or `max_retries = None` (retry forever).
pub(crate) enum MaxRetries {
    Limit(u32),
    Forever,
}

/// One entry of `autoretry_for = [...]`: a Rust error type, or a Python exception name as a
/// string for failures that carry no Rust type.
pub(crate) enum ErrorMatcher {
    ByType(Box<Type>),
    ByName(LitStr),
}

impl Parse for ErrorMatcher {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(LitStr) {
            Ok(ErrorMatcher::ByName(input.parse()?))
        } else {
            Ok(ErrorMatcher::ByType(Box::new(input.parse()?)))
        }
    }
}

/// A duration written as seconds, split at compile time so the generated code builds it with
/// `Duration::new` and cannot panic.
#[derive(Clone, Copy)]
pub(crate) struct Seconds {
    pub(crate) seconds: u64,
    pub(crate) nanoseconds: u32,
}

impl TaskAttributes {
    pub(crate) fn new() -> Self {
        TaskAttributes {
            name: None,
            queue: None,
            max_retries: None,
            autoretry_for: None,
            dont_autoretry_for: None,
            retry_backoff: None,
            retry_backoff_max: None,
            retry_jitter: None,
            default_retry_delay: None,
            soft_time_limit: None,
            time_limit: None,
            rate_limit: None,
            acks_late: None,
            ignore_result: None,
            crate_path: None,
        }
    }

    /// Parses one `key = value`; used with `syn::meta::parser`.
    pub(crate) fn parse_one(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        let key = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        match key.as_str() {
            "name" => {
                let name: LitStr = meta.value()?.parse()?;
                if name.value().trim().is_empty() {
                    return Err(syn::Error::new(
                        name.span(),
                        "the task name cannot be empty",
                    ));
                }
                set(&meta, &mut self.name, name)
            }
            "queue" => {
                let queue: LitStr = meta.value()?.parse()?;
                if queue.value().trim().is_empty() {
                    return Err(syn::Error::new(
                        queue.span(),
                        "the queue name cannot be empty",
                    ));
                }
                set(&meta, &mut self.queue, queue)
            }
            "max_retries" => {
                let value = parse_max_retries(meta.value()?.parse()?)?;
                set(&meta, &mut self.max_retries, value)
            }
            "autoretry_for" => {
                let matchers = parse_matchers(&meta)?;
                set(&meta, &mut self.autoretry_for, matchers)
            }
            "dont_autoretry_for" => {
                let matchers = parse_matchers(&meta)?;
                set(&meta, &mut self.dont_autoretry_for, matchers)
            }
            "retry_backoff" => {
                let factor = parse_backoff(meta.value()?.parse()?)?;
                set(&meta, &mut self.retry_backoff, factor)
            }
            "retry_backoff_max" => {
                let seconds: LitInt = meta.value()?.parse()?;
                let seconds = seconds.base10_parse::<u64>()?;
                set(&meta, &mut self.retry_backoff_max, seconds)
            }
            "retry_jitter" => {
                let jitter: LitBool = meta.value()?.parse()?;
                set(&meta, &mut self.retry_jitter, jitter.value)
            }
            "acks_late" => {
                let acks_late: LitBool = meta.value()?.parse()?;
                set(&meta, &mut self.acks_late, acks_late.value)
            }
            "ignore_result" => {
                let ignore: LitBool = meta.value()?.parse()?;
                set(&meta, &mut self.ignore_result, ignore.value)
            }
            "default_retry_delay" => {
                let delay = parse_seconds(meta.value()?.parse()?, true)?;
                set(&meta, &mut self.default_retry_delay, delay)
            }
            "soft_time_limit" => {
                let limit = parse_seconds(meta.value()?.parse()?, false)?;
                set(&meta, &mut self.soft_time_limit, limit)
            }
            "time_limit" => {
                let limit = parse_seconds(meta.value()?.parse()?, false)?;
                set(&meta, &mut self.time_limit, limit)
            }
            "rate_limit" => {
                let rate: LitStr = meta.value()?.parse()?;
                check_rate_limit(&rate)?;
                set(&meta, &mut self.rate_limit, rate)
            }
            "crate" => {
                let path: LitStr = meta.value()?.parse()?;
                let path: Path = path.parse()?;
                set(&meta, &mut self.crate_path, path)
            }
            _ => Err(meta.error(format!(
                "unknown task option `{}`; expected one of: {KEYS}",
                path_text(&meta.path)
            ))),
        }
    }
}

/// Stores a value, refusing a second one for the same key.
fn set<T>(meta: &ParseNestedMeta<'_>, slot: &mut Option<T>, value: T) -> syn::Result<()> {
    if slot.is_some() {
        return Err(meta.error(format!(
            "task option `{}` is given twice",
            path_text(&meta.path)
        )));
    }
    *slot = Some(value);
    Ok(())
}

fn path_text(path: &Path) -> String {
    path.segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

fn parse_max_retries(value: Expr) -> syn::Result<MaxRetries> {
    match &value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(limit),
            ..
        }) => Ok(MaxRetries::Limit(limit.base10_parse()?)),
        Expr::Path(ExprPath { path, .. }) if path.is_ident("None") => Ok(MaxRetries::Forever),
        _ => Err(syn::Error::new_spanned(
            value,
            "expected a number of retries, or `None` to retry forever",
        )),
    }
}

fn parse_matchers(meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<ErrorMatcher>> {
    let value = meta.value()?;
    if !value.peek(syn::token::Bracket) {
        return Err(value.error(
            "expected a list of error types, e.g. `[std::io::Error]` (or Python exception names \
             as strings, e.g. `[\"OSError\"]`)",
        ));
    }
    let content;
    bracketed!(content in value);
    let matchers = Punctuated::<ErrorMatcher, Token![,]>::parse_terminated(&content)?;
    Ok(matchers.into_iter().collect())
}

/// `true` is Celery's factor 1, `false` is off, a number is the factor.
fn parse_backoff(value: Lit) -> syn::Result<f64> {
    let factor = match &value {
        Lit::Bool(flag) => return Ok(if flag.value { 1.0 } else { 0.0 }),
        Lit::Int(number) => number.base10_parse::<f64>()?,
        Lit::Float(number) => number.base10_parse::<f64>()?,
        _ => {
            return Err(syn::Error::new_spanned(
                value,
                "expected `true`, `false` or a backoff factor in seconds",
            ))
        }
    };
    if !factor.is_finite() || factor < 0.0 {
        return Err(syn::Error::new_spanned(
            value,
            "the backoff factor must be finite and not negative",
        ));
    }
    Ok(factor)
}

/// Seconds as an integer or float literal; zero only where `zero_allowed` (a retry delay, not
/// a time limit, which would stop every run at once).
fn parse_seconds(value: Lit, zero_allowed: bool) -> syn::Result<Seconds> {
    let seconds = match &value {
        Lit::Int(number) => number.base10_parse::<f64>()?,
        Lit::Float(number) => number.base10_parse::<f64>()?,
        _ => {
            return Err(syn::Error::new_spanned(
                value,
                "expected a number of seconds",
            ))
        }
    };
    // Ten thousand years: beyond any meaningful limit, and far inside `u64` seconds.
    let valid = seconds.is_finite()
        && seconds < 3.2e11
        && (seconds > 0.0 || (zero_allowed && seconds == 0.0));
    if !valid {
        return Err(syn::Error::new_spanned(
            value,
            if zero_allowed {
                "expected a finite, non-negative number of seconds"
            } else {
                "expected a finite number of seconds greater than zero"
            },
        ));
    }
    let whole = seconds.trunc();
    let nanoseconds = ((seconds - whole) * 1e9).round().min(999_999_999.0);
    Ok(Seconds {
        seconds: whole as u64,
        nanoseconds: nanoseconds as u32,
    })
}

/// Celery's rate limit text: a number of tasks, optionally `/s`, `/m` or `/h`; the same rule as
/// the worker's parser, so a bad limit fails the build instead of being ignored at run time.
fn check_rate_limit(rate: &LitStr) -> syn::Result<()> {
    let text = rate.value();
    if text.is_empty() {
        return Ok(());
    }
    let (number, unit) = text.split_once('/').unwrap_or((&text, ""));
    if !matches!(unit, "" | "s" | "m" | "h") {
        return Err(syn::Error::new(
            rate.span(),
            "the rate limit's unit must be s, m or h, e.g. \"10/m\"",
        ));
    }
    match number.trim().parse::<f64>() {
        Ok(count) if count.is_finite() && count >= 0.0 => Ok(()),
        _ => Err(syn::Error::new(
            rate.span(),
            "expected a rate limit such as \"10/m\": a non-negative number of tasks per s, m or h",
        )),
    }
}

/// The default path to the runtime crate, as users depend on it.
pub(crate) fn default_crate_path() -> Path {
    let mut path = Path::from(syn::Ident::new("celeriac", Span::call_site()));
    path.leading_colon = Some(Token![::](Span::call_site()));
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<TaskAttributes> {
        let mut attributes = TaskAttributes::new();
        let parser = syn::meta::parser(|meta| attributes.parse_one(meta));
        syn::parse::Parser::parse2(parser, tokens)?;
        Ok(attributes)
    }

    fn error(tokens: proc_macro2::TokenStream) -> String {
        match parse(tokens) {
            Ok(_) => String::from("no error"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn every_option_parses() {
        let attributes = parse(quote::quote!(
            name = "orders.send_invoice_email",
            queue = "email",
            max_retries = 5,
            autoretry_for = [std::io::Error, "OSError"],
            dont_autoretry_for = [],
            retry_backoff = true,
            retry_backoff_max = 600,
            retry_jitter = false,
            default_retry_delay = 2.5,
            soft_time_limit = 240,
            time_limit = 300,
            rate_limit = "10/m",
            acks_late = true,
            ignore_result = false,
            crate = "::celeriac"
        ))
        .expect("valid options");
        assert_eq!(
            attributes.name.map(|name| name.value()).as_deref(),
            Some("orders.send_invoice_email")
        );
        assert!(matches!(attributes.max_retries, Some(MaxRetries::Limit(5))));
        assert_eq!(attributes.autoretry_for.map(|list| list.len()), Some(2));
        assert_eq!(attributes.retry_backoff, Some(1.0));
        let delay = attributes.default_retry_delay.expect("set");
        assert_eq!((delay.seconds, delay.nanoseconds), (2, 500_000_000));
        assert_eq!(attributes.retry_jitter, Some(false));
        let forever = parse(quote::quote!(name = "x", max_retries = None)).expect("valid");
        assert!(matches!(forever.max_retries, Some(MaxRetries::Forever)));
        let factor = parse(quote::quote!(name = "x", retry_backoff = 3)).expect("valid");
        assert_eq!(factor.retry_backoff, Some(3.0));
    }

    #[test]
    fn mistakes_are_compile_errors() {
        assert!(error(quote::quote!(nmae = "x")).starts_with("unknown task option `nmae`"));
        assert_eq!(
            error(quote::quote!(name = "x", name = "y")),
            "task option `name` is given twice"
        );
        assert!(error(quote::quote!(rate_limit = "10/d")).contains("unit"));
        assert!(error(quote::quote!(rate_limit = "ten/m")).contains("rate limit"));
        assert!(error(quote::quote!(time_limit = 0)).contains("greater than zero"));
        assert!(error(quote::quote!(max_retries = "5")).contains("number of retries"));
        assert!(error(quote::quote!(autoretry_for = std::io::Error)).contains("list"));
        assert!(error(quote::quote!(name = "")).contains("empty"));
    }
}
