//! The login form and logout: plain server-rendered HTML, so logging in works before (and
//! without) the WASM bundle, and the page carries no script at all.
//!
//! Unknown users and wrong passwords get the same answer after the same work (a dummy hash is
//! verified), and both count against the throttle, so the form reveals neither which accounts
//! exist nor which half of a guess was wrong.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use celeriac::auth::Role;
use serde::Deserialize;
use tower_sessions::Session;

use super::{Admin, AuthState, AuthUser, RequireRole, SessionUser, Viewer, SESSION_USER_KEY};
use crate::dashboard::security::ClientContext;

/// The outcome of a password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Right password; the user's role.
    Accepted(Role),
    /// Unknown user or wrong password (indistinguishable on purpose).
    Rejected,
    /// Too many failures for this account or address; the password was not checked.
    Throttled,
}

/// Checks `password` for `name`, applying the throttle and recording failures.
pub async fn check_password(
    state: &AuthState,
    name: &str,
    password: String,
    address: &str,
) -> Verdict {
    if state.throttle.is_blocked(name, address) {
        return Verdict::Throttled;
    }
    let credentials = match state.users.credentials(name).await {
        Ok(credentials) => credentials,
        Err(error) => {
            tracing::error!(%error, "cannot read user credentials");
            None
        }
    };
    let role = credentials.as_ref().map(|credentials| credentials.role);
    let hash = credentials.map(|credentials| credentials.password_hash);
    match (state.hasher.verify(hash, password).await, role) {
        (true, Some(role)) => {
            state.throttle.record_success(name);
            Verdict::Accepted(role)
        }
        _ => {
            state.throttle.record_failure(name, address);
            Verdict::Rejected
        }
    }
}

/// `?next=` on the login page.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// The form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// `GET <prefix>/login`.
pub async fn login_page(
    State(state): State<AuthState>,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = safe_next(&state.url_prefix, query.next.as_deref());
    Html(render_form(&state.url_prefix, &next, "", None)).into_response()
}

/// `POST <prefix>/login`: on success a new session id (the pre-login one, if any, is
/// discarded, so a planted cookie is worthless) and a redirect to `next`.
pub async fn login_submit(
    State(state): State<AuthState>,
    Extension(client): Extension<ClientContext>,
    session: Session,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(&state.url_prefix, Some(&form.next));
    let name = form.username.trim().to_owned();
    match check_password(&state, &name, form.password, &client.address).await {
        Verdict::Accepted(_role) => {
            if let Err(error) = session.cycle_id().await {
                tracing::error!(%error, "cannot cycle the session id");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            let user = SessionUser {
                name: name.clone(),
                login_at_ms: celeriac::clock::now().timestamp_millis(),
            };
            if let Err(error) = session.insert(SESSION_USER_KEY, user).await {
                tracing::error!(%error, "cannot store the session");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            audit(&state, &name, "login", &client.address).await;
            tracing::info!(user = %name, address = %client.address, "dashboard login");
            Redirect::to(&next).into_response()
        }
        Verdict::Rejected => {
            audit(&state, &name, "login_failed", &client.address).await;
            let page = render_form(
                &state.url_prefix,
                &next,
                &name,
                Some("Wrong user name or password."),
            );
            (StatusCode::UNAUTHORIZED, Html(page)).into_response()
        }
        Verdict::Throttled => {
            audit(&state, &name, "login_throttled", &client.address).await;
            let page = render_form(
                &state.url_prefix,
                &next,
                &name,
                Some("Too many failed logins. Try again later."),
            );
            (StatusCode::TOO_MANY_REQUESTS, Html(page)).into_response()
        }
    }
}

/// `POST <prefix>/logout`: deletes the session from the store and the cookie.
pub async fn logout(
    State(state): State<AuthState>,
    Extension(client): Extension<ClientContext>,
    user: Option<Extension<AuthUser>>,
    session: Session,
) -> Response {
    if let Err(error) = session.flush().await {
        tracing::error!(%error, "cannot delete the session");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    if let Some(Extension(user)) = user {
        audit(&state, &user.name, "logout", &client.address).await;
    }
    Redirect::to(&format!("{}/login", state.url_prefix)).into_response()
}

/// `GET <prefix>/api/me`: who is logged in, for the pages' header and API clients.
pub async fn whoami(RequireRole { user, .. }: RequireRole<Viewer>) -> Response {
    axum::Json(app::model::Me {
        name: user.name,
        role: user.role.as_str().to_owned(),
    })
    .into_response()
}

/// `GET <prefix>/api/audit?limit=N`: the newest audit entries (admins only).
pub async fn audit_entries(
    _admin: RequireRole<Admin>,
    State(state): State<AuthState>,
    Query(query): Query<AuditQuery>,
) -> Response {
    match state
        .audit
        .recent(query.limit.unwrap_or(100).min(1000))
        .await
    {
        Ok(entries) => axum::Json(
            entries
                .into_iter()
                .map(|entry| {
                    serde_json::json!({
                        "at": entry.at.to_rfc3339(),
                        "actor": entry.actor,
                        "action": entry.action,
                        "target": entry.target,
                        "address": entry.address,
                    })
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot read the audit log");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `?limit=` of the audit listing.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    limit: Option<u32>,
}

async fn audit(state: &AuthState, actor: &str, action: &str, address: &str) {
    if let Err(error) = state.audit.append(actor, action, "", address).await {
        tracing::error!(%error, action, "cannot write the audit log");
    }
}

/// Where to go after login: a path under the prefix on this site, else the dashboard's root
/// (an absolute or protocol-relative URL would make the form an open redirect).
fn safe_next(prefix: &str, next: Option<&str>) -> String {
    let home = if prefix.is_empty() {
        "/".to_owned()
    } else {
        prefix.to_owned()
    };
    match next {
        Some(next)
            if next.starts_with(&format!("{prefix}/"))
                && !next.starts_with("//")
                && !next.contains('\\')
                && !next.starts_with(&format!("{prefix}/login")) =>
        {
            next.to_owned()
        }
        _ => home,
    }
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(character),
        }
    }
    escaped
}

/// Percent-encodes everything but unreserved characters and `/`, for a path in a query.
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn render_form(prefix: &str, next: &str, username: &str, error: Option<&str>) -> String {
    let prefix = escape_html(prefix);
    let error = error
        .map(|error| {
            format!(
                r#"<p class="login-error" role="alert">{}</p>"#,
                escape_html(error)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · Celeriac</title>
<link rel="icon" type="image/svg+xml" href="{prefix}/favicon.svg">
<link rel="stylesheet" href="{prefix}/pkg/celeriac.css">
</head>
<body>
<main class="login">
<h1>Celeriac</h1>
{error}
<form method="post" action="{prefix}/login">
<input type="hidden" name="next" value="{next}">
<label>User name <input name="username" autocomplete="username" required autofocus value="{username}"></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button>
</form>
</main>
</body>
</html>
"#,
        next = escape_html(next),
        username = escape_html(username),
    )
}
