//! Dashboard authentication: users with roles, login sessions, Basic auth for API clients,
//! and the guard every route passes.
//!
//! # Layout
//! - [`password`]: argon2id hashing on the blocking pool, capped.
//! - [`store`]: tower-sessions' store over the engine's `celeriac_dashboard_session` table.
//! - [`throttle`]: failed-login budgets per account and per address.
//! - [`login`]: the login form (plain HTML, works without WASM) and logout.
//! - `basic_cache`: Basic-auth credentials verified in the last minute, so an API client does
//!   not pay (and make everyone pay) an argon2 verify per request.
//! - this file: [`AuthState`], the [`require_login`] middleware, [`HostLogin`] and its
//!   [`require_host_user`] middleware (a dashboard mounted behind its host app's login), and
//!   [`RequireRole`], the extractor handlers use to demand a role.
//!
//! Architecture Invariant: every route except static assets, `/login` and `/healthz` passes
//! [`require_login`] (or, mounted, [`require_host_user`]); a request without a valid session,
//! Basic credentials or host user never reaches a handler. Pages redirect to the login form, everything else (API, SSE, server functions)
//! gets 401. Roles are re-read from the database on every request, so deleting a user or
//! changing a role takes effect at once.

mod basic_cache;
pub mod login;
pub mod password;
pub mod store;
pub mod throttle;

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use celeriac::auth::audit::AuditLog;
use celeriac::auth::sessions::SessionRows;
use celeriac::auth::users::UserStore;
use celeriac::auth::Role;
use celeriac::db::Database;
use serde::{Deserialize, Serialize};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use super::security::{is_static_asset, ClientContext, RelativePath};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "celeriac_session";
/// The session key holding [`SessionUser`].
const SESSION_USER_KEY: &str = "user";

/// Session lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after login, used or not.
    pub absolute: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 60 * 60),
        }
    }
}

/// Everything the login handlers and the guard share; cloning shares it.
#[derive(Debug, Clone)]
pub struct AuthState {
    /// Accounts.
    pub users: UserStore,
    /// Who did what.
    pub audit: AuditLog,
    /// Password hashing.
    pub hasher: password::Hasher,
    /// Failed-login budgets.
    pub throttle: throttle::Throttle,
    /// Session lifetimes.
    pub limits: SessionLimits,
    /// `""` or `/tasks`: where redirects point.
    pub url_prefix: String,
    /// Users a trusted proxy authenticated (see `DashboardOptions::proxy_auth`).
    pub proxy_auth: Option<super::ProxyAuth>,
    sessions: SessionRows,
    /// Basic-auth pairs verified a moment ago.
    verified: basic_cache::BasicCache,
}

impl AuthState {
    /// The state over an open database.
    pub fn new(
        database: Database,
        limits: SessionLimits,
        url_prefix: String,
    ) -> anyhow::Result<Self> {
        Ok(AuthState {
            users: UserStore::new(database.clone()),
            audit: AuditLog::new(database.clone()),
            hasher: password::Hasher::new()?,
            throttle: throttle::Throttle::default(),
            limits,
            url_prefix,
            proxy_auth: None,
            sessions: SessionRows::new(database),
            verified: basic_cache::BasicCache::default(),
        })
    }

    /// The session layer: server-side store, cookie HttpOnly + SameSite=Strict on the prefix's
    /// path, idle expiry (the absolute one is checked by [`require_login`]). `Secure` is added
    /// per request by `security::client_context` when the client used HTTPS.
    pub fn session_layer(&self) -> SessionManagerLayer<store::SqlSessionStore> {
        let idle = time::Duration::try_from(self.limits.idle).unwrap_or(time::Duration::MINUTE);
        let path = if self.url_prefix.is_empty() {
            "/".to_owned()
        } else {
            self.url_prefix.clone()
        };
        SessionManagerLayer::new(store::SqlSessionStore::new(self.sessions.clone()))
            .with_name(SESSION_COOKIE)
            .with_http_only(true)
            .with_same_site(SameSite::Strict)
            .with_secure(false)
            .with_path(path)
            .with_expiry(Expiry::OnInactivity(idle))
            .with_always_save(true)
    }

    /// The session rows, for tests of the store.
    #[cfg(test)]
    pub(crate) fn sessions(&self) -> SessionRows {
        self.sessions.clone()
    }

    /// Deletes expired sessions every `every` until `shutdown`.
    pub async fn sweep_sessions(
        self,
        every: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = ticks.tick() => {
                    match self.sessions.delete_expired(celeriac::clock::now()).await {
                        Ok(0) => {}
                        Ok(deleted) => tracing::debug!(deleted, "expired dashboard sessions deleted"),
                        Err(error) => tracing::warn!(%error, "cannot delete expired sessions"),
                    }
                }
            }
        }
    }
}

/// What the session remembers about the logged-in user.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionUser {
    name: String,
    /// Milliseconds since the epoch, for the absolute expiry.
    login_at_ms: i64,
    /// [`credential_tag`] of the password the user logged in with: a new password, or the
    /// account deleted and added again, ends every session made with the old one. Sessions
    /// from before this field have none and end too.
    #[serde(default)]
    credential: String,
}

/// Which password hash a session was made with: the hash's last 16 characters (its digest,
/// salted, so a new password or a re-added account always differs). Only compared, never
/// used to verify anything.
pub(crate) fn credential_tag(password_hash: &str) -> String {
    let digest = password_hash.rsplit('$').next().unwrap_or(password_hash);
    let start = digest.len().saturating_sub(16);
    digest.get(start..).unwrap_or(digest).to_owned()
}

/// The authenticated user of a request: from the dashboard's own login, or what a
/// [`HostLogin`] says the host's user is. Handlers find it in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    /// The login name.
    pub name: String,
    /// The role, as stored now.
    pub role: Role,
}

/// Passes requests with a valid session or Basic credentials (adding [`AuthUser`]); answers
/// the others with a redirect to the login form (pages) or 401 (everything else).
pub async fn require_login(
    State(state): State<AuthState>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    let relative = match guarded_path(&request) {
        Guarded::Outside => return StatusCode::NOT_FOUND.into_response(),
        Guarded::Public => return next.run(request).await,
        Guarded::Path(relative) => relative,
    };
    let address = request
        .extensions()
        .get::<ClientContext>()
        .map(|context| context.address.clone())
        .unwrap_or_default();
    // A session wins over Basic credentials: behind nginx's `auth_basic`, the browser sends
    // the proxy's credentials with every request, and they must not undo a dashboard login.
    let proxied = proxied_name(&state, &request);
    let login = match proxied_user(&state, proxied).await {
        Some(login) => Some(login),
        None => match session_user(&state, &session).await {
            Some(login) => Some(login),
            None => match basic_credentials(request.headers()) {
                Some((name, password)) => basic_user(&state, name, password, &address).await,
                None => None,
            },
        },
    };
    match login {
        Some((user, check)) => {
            request.extensions_mut().insert(user);
            request.extensions_mut().insert(check);
            next.run(request).await
        }
        None => unauthenticated(&state, &request, &relative),
    }
}

/// The user a trusted proxy authenticated, named in its header (proxy authentication). The
/// header counts only from a trusted proxy, which sets it on every request; the user gets the
/// role of their dashboard account if they have one, else the configured default.
fn proxied_name(state: &AuthState, request: &Request) -> Option<String> {
    let proxy = state.proxy_auth.as_ref()?;
    let via_trusted_proxy = request
        .extensions()
        .get::<ClientContext>()
        .is_some_and(|context| context.via_trusted_proxy);
    if !via_trusted_proxy {
        return None;
    }
    let name = request
        .headers()
        .get(proxy.header.as_str())?
        .to_str()
        .ok()?
        .trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// [`proxied_name`]'s user with their role.
async fn proxied_user(state: &AuthState, name: Option<String>) -> Option<(AuthUser, LoginCheck)> {
    let name = name?;
    let proxy = state.proxy_auth.as_ref()?;
    let role = match state.users.credentials(&name).await {
        Ok(Some(credentials)) => credentials.role,
        Ok(None) => proxy.role,
        Err(error) => {
            tracing::error!(%error, "cannot read a proxied user's account");
            return None;
        }
    };
    let check = LoginCheck {
        state: state.clone(),
        session_id: None,
        name: name.clone(),
        credential: String::new(),
        proxied: true,
    };
    Some((AuthUser { name, role }, check))
}

/// How a [`HostLogin`] reads the host's user off a request.
type Identify = dyn Fn(&Parts) -> Option<AuthUser> + Send + Sync;

/// The host application's login, for a dashboard mounted in it (see
/// [`crate::dashboard::Dashboard`]): the host's own middleware authenticates the request
/// before it reaches the dashboard, and `identify` says who that is to the dashboard and with
/// which role. The dashboard's accounts, login form, sessions and Basic auth are not used.
#[derive(Clone)]
pub struct HostLogin {
    identify: Arc<Identify>,
    login_url: String,
    logout_url: Option<String>,
}

impl std::fmt::Debug for HostLogin {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("HostLogin")
            .field("login_url", &self.login_url)
            .field("logout_url", &self.logout_url)
            .finish_non_exhaustive()
    }
}

impl HostLogin {
    /// `identify` reads the host's user from the request (an extension its middleware set, a
    /// header its proxy set) and answers the dashboard user it is, or `None` for an anonymous
    /// request: pages then redirect to the login URL, everything else gets 401.
    pub fn new(identify: impl Fn(&Parts) -> Option<AuthUser> + Send + Sync + 'static) -> Self {
        HostLogin {
            identify: Arc::new(identify),
            login_url: "/login".to_owned(),
            logout_url: None,
        }
    }

    /// Where an anonymous visitor's page request is sent, with `?next=` the page it asked for
    /// (`/login` by default); the dashboard's own `<prefix>/login` leads here too.
    pub fn login_url(mut self, url: impl Into<String>) -> Self {
        self.login_url = url.into();
        self
    }

    /// The host's logout endpoint: the dashboard's "Log out" button (a POST to
    /// `<prefix>/logout`) is redirected there as a POST (307). Without one it leads to the
    /// login URL, and the host's session stays.
    pub fn logout_url(mut self, url: impl Into<String>) -> Self {
        self.logout_url = Some(url.into());
        self
    }

    /// The login URL with `next` (a path on this site) to come back to.
    fn login_location(&self, next: &str) -> String {
        let separator = if self.login_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{separator}next={}",
            self.login_url,
            login::percent_encode(next)
        )
    }

    /// `GET <prefix>/login` when mounted: logging in belongs to the host.
    pub(crate) fn to_login(&self) -> Response {
        Redirect::to(&self.login_url).into_response()
    }

    /// `POST <prefix>/logout` when mounted: so does logging out.
    pub(crate) fn to_logout(&self) -> Response {
        match &self.logout_url {
            Some(url) => Redirect::temporary(url).into_response(),
            None => Redirect::to(&self.login_url).into_response(),
        }
    }
}

/// [`require_login`] for a dashboard behind its host's login: passes requests whose user
/// [`HostLogin`]'s `identify` names (adding [`AuthUser`]); sends the others to the host's login
/// page (pages) or answers 401 (everything else).
pub async fn require_host_user(
    State(host): State<HostLogin>,
    request: Request,
    next: Next,
) -> Response {
    let relative = match guarded_path(&request) {
        Guarded::Outside => return StatusCode::NOT_FOUND.into_response(),
        Guarded::Public => return next.run(request).await,
        Guarded::Path(relative) => relative,
    };
    let (mut parts, body) = request.into_parts();
    match (host.identify)(&parts) {
        Some(user) => {
            parts.extensions.insert(user);
            next.run(Request::from_parts(parts, body)).await
        }
        None => {
            let request = Request::from_parts(parts, body);
            if is_page_request(&request, &relative) {
                let next = request
                    .uri()
                    .path_and_query()
                    .map(|path| path.as_str().to_owned())
                    .unwrap_or_default();
                Redirect::to(&host.login_location(&next)).into_response()
            } else {
                (StatusCode::UNAUTHORIZED, "authentication required\n").into_response()
            }
        }
    }
}

/// What the guards make of a request's path.
enum Guarded {
    /// Outside the URL prefix: not the dashboard's.
    Outside,
    /// A path anyone may fetch.
    Public,
    /// A path that needs a login, relative to the prefix.
    Path(String),
}

fn guarded_path(request: &Request) -> Guarded {
    match request
        .extensions()
        .get::<RelativePath>()
        .and_then(|path| path.0.clone())
    {
        None => Guarded::Outside,
        Some(relative) if is_public(&relative) => Guarded::Public,
        Some(relative) => Guarded::Path(relative),
    }
}

/// Paths anyone may fetch.
fn is_public(relative_path: &str) -> bool {
    is_static_asset(relative_path)
        || matches!(relative_path, "/login" | "/healthz" | "/healthcheck")
}

/// A browser asking for a page (sent to a login form), not an API or script call (401).
fn is_page_request(request: &Request, relative: &str) -> bool {
    let wants_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    matches!(*request.method(), Method::GET | Method::HEAD)
        && wants_html
        && !relative.starts_with("/api/")
}

fn unauthenticated(state: &AuthState, request: &Request, relative: &str) -> Response {
    if is_page_request(request, relative) {
        let next = request
            .uri()
            .path_and_query()
            .map(|path| path.as_str().to_owned())
            .unwrap_or_default();
        let location = format!(
            "{}/login?next={}",
            state.url_prefix,
            login::percent_encode(&next)
        );
        return Redirect::to(&location).into_response();
    }
    let mut response = (StatusCode::UNAUTHORIZED, "authentication required\n").into_response();
    // Browsers show a password dialog for this header; only non-browser clients get it.
    if request.headers().get("sec-fetch-mode").is_none() {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"celeriac\", charset=\"UTF-8\""),
        );
    }
    response
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (name, password) = decoded.split_once(':')?;
    Some((name.to_owned(), password.to_owned()))
}

/// The login a request came with, to ask again later: a response that outlives its request's
/// check (the live event stream) asks [`LoginCheck::holds`] now and then and ends when the
/// session was logged out or the account deleted or given a new password.
#[derive(Debug, Clone)]
pub(crate) struct LoginCheck {
    state: AuthState,
    /// The session's id; `None` for Basic auth, which has no session to end.
    session_id: Option<String>,
    name: String,
    credential: String,
    /// Authenticated by a trusted proxy, which checks every request itself.
    proxied: bool,
}

impl LoginCheck {
    /// True while the session exists and the account still has the password it was made
    /// with. A database error counts as holding (logged): a hiccup must not close every tab.
    pub(crate) async fn holds(&self) -> bool {
        if self.proxied {
            return true;
        }
        if let Some(id) = &self.session_id {
            match self.state.sessions.load(id, celeriac::clock::now()).await {
                Ok(Some(_)) => {}
                Ok(None) => return false,
                Err(error) => {
                    tracing::warn!(%error, "cannot re-read a session; keeping its stream");
                    return true;
                }
            }
        }
        match self.state.users.credentials(&self.name).await {
            Ok(Some(credentials)) => credential_tag(&credentials.password_hash) == self.credential,
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(%error, "cannot re-read a user; keeping its stream");
                true
            }
        }
    }
}

/// Checks Basic credentials with the same throttle and timing rules as the login form.
async fn basic_user(
    state: &AuthState,
    name: String,
    password: String,
    address: &str,
) -> Option<(AuthUser, LoginCheck)> {
    if let Some(credential) = state.verified.recall(&name, &password) {
        // Verified a moment ago: read the account again (deleted, new password or new role
        // count at once) but skip the argon2 work.
        match state.users.credentials(&name).await {
            Ok(Some(credentials)) if credential_tag(&credentials.password_hash) == credential => {
                let check = LoginCheck {
                    state: state.clone(),
                    session_id: None,
                    name: name.clone(),
                    credential,
                    proxied: false,
                };
                let user = AuthUser {
                    name,
                    role: credentials.role,
                };
                return Some((user, check));
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "cannot read user credentials");
                return None;
            }
        }
    }
    match login::check_password(state, &name, password.clone(), address).await {
        login::Verdict::Accepted { role, credential } => {
            state.verified.remember(&name, &password, &credential);
            let check = LoginCheck {
                state: state.clone(),
                session_id: None,
                name: name.clone(),
                credential,
                proxied: false,
            };
            Some((AuthUser { name, role }, check))
        }
        login::Verdict::Rejected | login::Verdict::Throttled { .. } => None,
    }
}

async fn session_user(state: &AuthState, session: &Session) -> Option<(AuthUser, LoginCheck)> {
    let stored: SessionUser = session.get(SESSION_USER_KEY).await.ok().flatten()?;
    let age_ms = celeriac::clock::now().timestamp_millis() - stored.login_at_ms;
    let absolute_ms = i64::try_from(state.limits.absolute.as_millis()).unwrap_or(i64::MAX);
    if age_ms > absolute_ms {
        let _ = session.flush().await;
        return None;
    }
    match state.users.credentials(&stored.name).await {
        Ok(Some(credentials))
            if credential_tag(&credentials.password_hash) == stored.credential =>
        {
            let check = LoginCheck {
                state: state.clone(),
                session_id: session.id().map(|id| id.to_string()),
                name: stored.name.clone(),
                credential: stored.credential,
                proxied: false,
            };
            let user = AuthUser {
                name: stored.name,
                role: credentials.role,
            };
            Some((user, check))
        }
        Ok(Some(_)) => {
            // The password changed (or the account was re-created) since this login.
            let _ = session.flush().await;
            None
        }
        Ok(None) => {
            // The account was deleted: end its sessions as they show up.
            let _ = session.flush().await;
            None
        }
        Err(error) => {
            tracing::error!(%error, "cannot read the session's user");
            None
        }
    }
}

/// A role a handler demands, as a type: `RequireRole<Operator>`.
pub trait MinimumRole {
    /// The least role that passes.
    const ROLE: Role;
}

/// Marker: any logged-in user.
#[derive(Debug)]
pub struct Viewer;
/// Marker: operators and admins (task actions; used by the API routes).
#[derive(Debug)]
pub struct Operator;
/// Marker: admins only.
#[derive(Debug)]
pub struct Admin;

impl MinimumRole for Viewer {
    const ROLE: Role = Role::Viewer;
}
impl MinimumRole for Operator {
    const ROLE: Role = Role::Operator;
}
impl MinimumRole for Admin {
    const ROLE: Role = Role::Admin;
}

/// Extractor for handlers: the request's [`AuthUser`] if their role is at least `R`'s;
/// otherwise the handler does not run and the client gets 401 (no user) or 403.
#[derive(Debug)]
pub struct RequireRole<R: MinimumRole> {
    /// The user.
    pub user: AuthUser,
    role: PhantomData<R>,
}

impl<S: Send + Sync, R: MinimumRole> FromRequestParts<S> for RequireRole<R> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(user) = parts.extensions.get::<AuthUser>().cloned() else {
            return Err((StatusCode::UNAUTHORIZED, "authentication required\n").into_response());
        };
        if user.role < R::ROLE {
            return Err((
                StatusCode::FORBIDDEN,
                format!("this needs the {} role\n", R::ROLE),
            )
                .into_response());
        }
        Ok(RequireRole {
            user,
            role: PhantomData,
        })
    }
}
