//! Every URL the dashboard builds goes through here, so serving it under a prefix (a reverse
//! proxy's `/celeriac`) is one change: provide [`crate::UrlPrefix`] as context (the server
//! and the hydrate entry do).
//!
//! The prefix is read from context where a component is built; handlers and async blocks get
//! the finished strings (or an [`crate::client::Api`]) captured, because outside a component
//! there may be no reactive owner to read context from.

/// The prefix in context without a trailing slash, or none.
pub fn prefix() -> String {
    crate::use_url_prefix().trim_end_matches('/').to_owned()
}

/// A page's URL: `page("/tasks")` is `/tasks` at the root, `/celeriac/tasks` under a prefix.
pub fn page(path: &str) -> String {
    format!("{}{path}", prefix())
}

/// The overview's URL: the prefix itself (`/celeriac`), or `/` at the root; the server
/// redirects `/celeriac/` there, so links never take that detour.
pub fn home() -> String {
    let prefix = prefix();
    if prefix.is_empty() {
        "/".to_owned()
    } else {
        prefix
    }
}

/// The options to pass `use_navigate()` a URL built here.
///
/// Leptos' `navigate` puts the router's base in front of an absolute path (links don't), so
/// under a prefix `/tasks/failed` would become `/tasks/tasks/failed`; without resolving, the
/// URL is taken as it is, the same one a link would use.
pub fn navigate_options() -> leptos_router::NavigateOptions {
    leptos_router::NavigateOptions {
        resolve: false,
        ..Default::default()
    }
}

/// A task's detail page.
pub fn task(task_id: &str) -> String {
    page(&format!("/tasks/{}", encode(task_id)))
}

/// A worker's detail page.
pub fn worker(name: &str) -> String {
    page(&format!("/workers/{}", encode(name)))
}

/// Percent-encodes a query value or path segment (RFC 3986 unreserved characters stay).
pub fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `?key=value&...` from the pairs whose value is not empty (empty when none are left).
pub fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(key, value)| format!("{key}={}", encode(value.trim())))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}
