//! [`DashboardOptions`]: the dashboard's address, assets and URL prefix.
//!
//! The environment variable names are the ones `cargo leptos` sets (`LEPTOS_SITE_ROOT`,
//! `LEPTOS_SITE_ADDR`), so `cargo leptos watch` and `scripts/build-site.sh` runs agree.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// Where the dashboard listens when neither the caller nor `LEPTOS_SITE_ADDR` says otherwise.
const DEFAULT_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 3000);

/// How to run the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardOptions {
    /// The socket address to listen on; port 0 picks a free port (logged at start-up).
    pub addr: SocketAddr,
    /// A built site on disk to serve (`pkg/` with the JS, WASM and CSS, plus the files of
    /// `public/`); `None` serves the bundle embedded in this library, or `target/site` when
    /// it was built without one.
    pub site_root: Option<PathBuf>,
    /// A path prefix such as `/tasks` for running behind a reverse proxy; `""` for none.
    /// Normalised by [`normalize_url_prefix`]: a leading `/`, no trailing `/`.
    pub url_prefix: String,
    /// Proxies whose `X-Forwarded-For/-Proto/-Host` are believed; from anyone else those
    /// headers are ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// Proxy authentication: the user named by a header a trusted proxy sets after it
    /// authenticated the request (nginx `auth_basic` or `auth_request`), instead of the
    /// dashboard's own login; `None` for the dashboard's login only.
    pub proxy_auth: Option<ProxyAuth>,
}

/// Who a request is when a trusted proxy authenticated it (see
/// [`DashboardOptions::proxy_auth`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAuth {
    /// The header naming the user, e.g. `X-Remote-User`. Believed from trusted proxies only;
    /// the proxy must set it on every request (overwriting what the client sent).
    pub header: String,
    /// The role of a proxied user who has no dashboard account; one who has keeps theirs.
    pub role: celeriac::auth::Role,
}

/// `tasks/`, `/tasks/` and `/tasks` all mean `/tasks`; `/` and `""` mean no prefix.
pub fn normalize_url_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim().trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

impl DashboardOptions {
    /// Options from the environment: `addr`, else `LEPTOS_SITE_ADDR`, else `127.0.0.1:3000`;
    /// the site root `LEPTOS_SITE_ROOT`, else the embedded bundle; no URL prefix.
    ///
    /// An unparsable `LEPTOS_SITE_ADDR` is logged and replaced by the default.
    pub fn from_env(addr: Option<SocketAddr>) -> Self {
        let addr = addr.unwrap_or_else(addr_from_env);
        let site_root = std::env::var_os("LEPTOS_SITE_ROOT")
            .filter(|site_root| !site_root.is_empty())
            .map(PathBuf::from);
        DashboardOptions {
            addr,
            site_root,
            url_prefix: String::new(),
            trusted_proxies: Vec::new(),
            proxy_auth: None,
        }
    }
}

fn addr_from_env() -> SocketAddr {
    let Ok(configured_addr) = std::env::var("LEPTOS_SITE_ADDR") else {
        return DEFAULT_ADDR;
    };
    match configured_addr.parse() {
        Ok(addr) => addr,
        Err(parse_error) => {
            tracing::warn!(
                value = %configured_addr,
                error = %parse_error,
                default = %DEFAULT_ADDR,
                "LEPTOS_SITE_ADDR is not a socket address; using the default"
            );
            DEFAULT_ADDR
        }
    }
}
