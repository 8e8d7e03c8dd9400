//! Request hardening for every dashboard response: who the client is (behind trusted proxies
//! only), cross-site request rejection, and the security headers with a per-request CSP nonce.
//!
//! Layers, outermost first (see `routes.rs`): [`client_context`] → [`security_headers`] →
//! [`reject_cross_site`] → sessions → login guard → handlers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rand::RngCore as _;

/// What the security layers know about a request, in its extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientContext {
    /// The client's address: the peer, or the forwarded client when the peer is a trusted
    /// proxy; `""` when unknown (in-process tests).
    pub address: String,
    /// True when the client spoke HTTPS to us or to a trusted proxy.
    pub https: bool,
    /// The host the client addressed (`Host`, or `X-Forwarded-Host` from a trusted proxy).
    pub host: Option<String>,
    /// True when the peer is a trusted proxy, whose authenticated-user header (proxy
    /// authentication) is believed.
    pub via_trusted_proxy: bool,
}

/// The nonce of this response's `Content-Security-Policy`, for inline scripts Leptos writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CspNonce(pub String);

/// The request's path with the URL prefix removed (`/tasks/login` → `/login`), in its
/// extensions; `None` inside means the path is outside the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelativePath(pub Option<String>);

/// Files served to anyone: the browser bundle and the files the site has (the icon the login
/// page needs too, `robots.txt`). Not `/favicon.ico`: the site has none, and a public path
/// that is missing would render the app's not-found page, shell and all, to anyone.
pub fn is_static_asset(relative_path: &str) -> bool {
    relative_path.starts_with("/pkg/") || matches!(relative_path, "/favicon.svg" | "/robots.txt")
}

/// What [`client_context`] needs: the URL prefix and the proxies whose `X-Forwarded-*`
/// headers are believed.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// `""` or `/tasks`.
    pub url_prefix: String,
    /// Proxy addresses.
    pub trusted_proxies: Arc<Vec<IpAddr>>,
}

impl SecurityConfig {
    fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.trusted_proxies
            .iter()
            .any(|trusted| canonical(*trusted) == address)
    }
}

fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Resolves the client's address, scheme and host, and marks the session cookie `Secure`
/// when the client used HTTPS.
pub async fn client_context(
    State(trusted): State<Arc<SecurityConfig>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    let headers = request.headers();
    let via_trusted_proxy = peer.is_some_and(|peer| trusted.contains(peer));
    let mut context = ClientContext {
        address: peer
            .map(|peer| canonical(peer).to_string())
            .unwrap_or_default(),
        https: false,
        host: header_text(headers, "host").map(str::to_owned),
        via_trusted_proxy,
    };
    if via_trusted_proxy {
        if let Some(forwarded_for) = header_text(headers, "x-forwarded-for") {
            if let Some(client) = forwarded_client(forwarded_for, &trusted) {
                context.address = canonical(client).to_string();
            }
        }
        context.https = header_text(headers, "x-forwarded-proto")
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
        if let Some(host) = header_text(headers, "x-forwarded-host") {
            context.host = Some(host.trim().to_owned());
        }
    }
    let https = context.https;
    let relative_path = relative_path(&trusted.url_prefix, request.uri().path());
    request.extensions_mut().insert(context);
    request.extensions_mut().insert(RelativePath(relative_path));
    let mut response = next.run(request).await;
    if https {
        mark_cookies_secure(response.headers_mut());
        // The proxy in front speaks TLS, so the browser may be told never to try plain HTTP.
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// The client named by a trusted proxy's `X-Forwarded-For`: walking from the right (the hop
/// our own proxy appended), the first address that is not one of our proxies. A hop may carry
/// a port (`203.0.113.9:443`, `[2001:db8::1]:443`, as some load balancers write it). A hop that
/// is no address at all (`unknown`, garbage) ends the walk with `None`, so the request counts as
/// the proxy's own: what lies left of it was written by someone we do not trust. When every hop
/// is one of our proxies, the leftmost is the client.
fn forwarded_client(forwarded_for: &str, trusted: &SecurityConfig) -> Option<IpAddr> {
    let mut leftmost = None;
    for hop in forwarded_for.split(',').rev() {
        let address = parse_hop(hop.trim())?;
        if !trusted.contains(address) {
            return Some(address);
        }
        leftmost = Some(address);
    }
    leftmost
}

/// `ip`, `ip:port`, `[v6]` or `[v6]:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(socket) = hop.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    hop.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<IpAddr>().ok())
}

/// `path` under `prefix` without it; `/tasks` alone is the root.
fn relative_path(prefix: &str, path: &str) -> Option<String> {
    if prefix.is_empty() {
        return Some(path.to_owned());
    }
    match path.strip_prefix(prefix) {
        Some("") => Some("/".to_owned()),
        Some(rest) if rest.starts_with('/') => Some(rest.to_owned()),
        _ => None,
    }
}

fn mark_cookies_secure(headers: &mut HeaderMap) {
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        let secured = match cookie.to_str() {
            Ok(text) if !text.to_ascii_lowercase().contains("; secure") => {
                HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(cookie)
            }
            _ => cookie,
        };
        headers.append(header::SET_COOKIE, secured);
    }
}

/// True for methods that may change state.
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses state-changing requests from other sites: `Sec-Fetch-Site: cross-site` (or
/// `same-site`, a sibling subdomain), or an `Origin` whose host is not the one addressed.
/// Requests without either header (curl, API clients) pass: they carry no ambient cookies an
/// attacker could borrow, and still need credentials.
pub async fn reject_cross_site(request: Request, next: Next) -> Response {
    if is_unsafe(request.method()) && is_cross_site(&request) {
        tracing::warn!(
            method = %request.method(),
            path = request.uri().path(),
            "cross-site request refused"
        );
        return (StatusCode::FORBIDDEN, "cross-site request refused\n").into_response();
    }
    next.run(request).await
}

fn is_cross_site(request: &Request) -> bool {
    let headers = request.headers();
    if let Some(site) = header_text(headers, "sec-fetch-site") {
        if matches!(site, "cross-site" | "same-site") {
            return true;
        }
    }
    let Some(origin) = header_text(headers, "origin") else {
        return false;
    };
    let host = request
        .extensions()
        .get::<ClientContext>()
        .and_then(|context| context.host.clone())
        .or_else(|| header_text(headers, "host").map(str::to_owned));
    // The scheme counts too, where it is known: `https://host` is another origin than
    // `http://host`. It is known when a trusted proxy says https, or when the request came
    // with no proxy's word at all (a direct connection is plain HTTP); behind a proxy that is
    // not trusted either scheme passes, as before. A cross-site page cannot add the header.
    let https = request
        .extensions()
        .get::<ClientContext>()
        .is_some_and(|context| context.https);
    let scheme = if https {
        Some("https")
    } else if headers.contains_key("x-forwarded-proto") {
        None
    } else {
        Some("http")
    };
    let origin = origin
        .split_once("://")
        .map(|(origin_scheme, rest)| (origin_scheme, rest.trim_end_matches('/')));
    match (origin, host) {
        (Some((origin_scheme, origin_host)), Some(host)) => {
            let other_scheme =
                scheme.is_some_and(|scheme| !origin_scheme.eq_ignore_ascii_case(scheme));
            other_scheme || !origin_host.eq_ignore_ascii_case(&host)
        }
        // `Origin: null` (sandboxed frames, some redirects) and hostless requests are refused.
        _ => true,
    }
}

/// A fresh 128-bit nonce, base64.
fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The policy for HTML pages: scripts only from us or carrying this response's nonce, WASM
/// compilation allowed, no inline styles or scripts otherwise, never framed.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Adds the security headers; HTML responses also get the CSP with the nonce the request
/// carried to the renderer, and nothing the dashboard answers is cached (pages and data are
/// per user).
pub async fn security_headers(mut request: Request, next: Next) -> Response {
    let nonce = new_nonce();
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let is_static = request
        .extensions()
        .get::<RelativePath>()
        .and_then(|path| path.0.as_deref())
        .is_some_and(is_static_asset);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|content_type| content_type.starts_with("text/html"));
    if is_html {
        if let Ok(policy) = HeaderValue::from_str(&content_security_policy(&nonce)) {
            headers.insert(header::CONTENT_SECURITY_POLICY, policy);
        }
    }
    if !is_static {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
