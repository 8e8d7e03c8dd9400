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

/// The largest login form accepted: a name, a password of a few thousand characters and a
/// `next` path fit; the 2 MiB bodies that filled the audit log and the throttle do not.
pub const LOGIN_BODY_LIMIT: usize = 8 * 1024;

/// The longest user name a login may carry (no account has a longer one); longer ones are
/// refused as unknown after the same work, and never audited or kept as a throttle key whole.
pub const MAX_NAME_CHARS: usize = celeriac::auth::users::MAX_NAME_CHARS;

/// The outcome of a password check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Right password: the user's role, and the credential the session is bound to.
    Accepted {
        /// The role.
        role: Role,
        /// [`super::credential_tag`] of the password hash checked.
        credential: String,
    },
    /// Unknown user or wrong password (indistinguishable on purpose).
    Rejected,
    /// A budget is spent; the password was not checked. `first` is the first such refusal of
    /// the window, the one worth auditing.
    Throttled {
        /// The first refusal of its window.
        first: bool,
    },
}

/// Checks `password` for `name`: the throttle's budgets are taken first (so concurrent
/// guesses cannot outrun them), then the password is verified; a right one gives them back.
pub async fn check_password(
    state: &AuthState,
    name: &str,
    password: String,
    address: &str,
) -> Verdict {
    let reservation = match state.throttle.reserve(name, address) {
        Ok(reservation) => reservation,
        Err(refused) => {
            return Verdict::Throttled {
                first: refused.first,
            }
        }
    };
    let credentials = if name.chars().count() > MAX_NAME_CHARS {
        None
    } else {
        match state.users.credentials(name).await {
            Ok(credentials) => credentials,
            Err(error) => {
                tracing::error!(%error, "cannot read user credentials");
                None
            }
        }
    };
    let role = credentials.as_ref().map(|credentials| credentials.role);
    let hash = credentials.map(|credentials| credentials.password_hash);
    let credential = hash.as_deref().map(super::credential_tag);
    match (state.hasher.verify(hash, password).await, role, credential) {
        (true, Some(role), Some(credential)) => {
            state.throttle.succeeded(reservation);
            Verdict::Accepted { role, credential }
        }
        // The reservation is dropped: the failure stays counted.
        _ => Verdict::Rejected,
    }
}

/// `name` cut to [`MAX_NAME_CHARS`], for the audit log and the form's echo.
pub(super) fn clipped(name: &str) -> String {
    name.chars().take(MAX_NAME_CHARS).collect()
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
        Verdict::Accepted { credential, .. } => {
            if let Err(error) = session.cycle_id().await {
                tracing::error!(%error, "cannot cycle the session id");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            let user = SessionUser {
                name: name.clone(),
                login_at_ms: celeriac::clock::now().timestamp_millis(),
                credential,
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
            let name = clipped(&name);
            audit(&state, &name, "login_failed", &client.address).await;
            let page = render_form(
                &state.url_prefix,
                &next,
                &name,
                Some("Wrong user name or password."),
            );
            (StatusCode::UNAUTHORIZED, Html(page)).into_response()
        }
        Verdict::Throttled { first } => {
            let name = clipped(&name);
            // One row per spent budget and window: a flood of refused attempts writes nothing.
            if first {
                audit(&state, &name, "login_throttled", &client.address).await;
            }
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

/// Where to go after login: a path under the prefix on this site, else the dashboard's root.
///
/// Browsers are lenient where servers are not: they drop tabs and newlines from a URL, read
/// `\` as `/`, and resolve `..`, so `/\t/evil.example` or `/..//evil.example` written in a
/// `Location` can land on another site. So the path is accepted only in a form that has one
/// reading: printable ASCII, no `\`, no empty, `.` or `..` segment (`//` included) and no
/// encoded `/`, `\`, `.` or control character; anything else goes home.
pub(crate) fn safe_next(prefix: &str, next: Option<&str>) -> String {
    let home = if prefix.is_empty() {
        "/".to_owned()
    } else {
        prefix.to_owned()
    };
    match next {
        Some(next) if is_plain_local_path(prefix, next) => next.to_owned(),
        _ => home,
    }
}

fn is_plain_local_path(prefix: &str, next: &str) -> bool {
    let (path, query) = next.split_once('?').unwrap_or((next, ""));
    let printable = |text: &str| text.bytes().all(|byte| byte.is_ascii_graphic());
    let Some(rest) = path.strip_prefix(prefix) else {
        return false;
    };
    let lowered = path.to_ascii_lowercase();
    rest.starts_with('/')
        && printable(path)
        && printable(query)
        && !path.contains('\\')
        // Encoded `/`, `\`, `.` and control characters (`%00`-`%1f`, `%7f`).
        && !["%2f", "%5c", "%2e", "%0", "%1", "%7f"]
            .iter()
            .any(|encoded| lowered.contains(encoded))
        && rest.split('/').skip(1).enumerate().all(|(index, segment)| {
            // A trailing `/` (an empty last segment) is harmless; the first segment may be
            // empty only for the prefix's root (`/tasks/` is `/tasks`).
            let last = index == rest.split('/').count() - 2;
            !matches!(segment, "." | "..") && (!segment.is_empty() || last)
        })
        && !rest.starts_with("/login")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_keeps_plain_paths_on_this_site() {
        for (prefix, next) in [
            ("", "/"),
            ("", "/failed"),
            ("", "/tasks/abc-123?state=FAILURE&page=2"),
            ("", "/periodic/nightly%20report"),
            ("/tasks", "/tasks/failed"),
            ("/tasks", "/tasks/workers/"),
        ] {
            assert_eq!(safe_next(prefix, Some(next)), next, "{prefix} {next}");
        }
    }

    /// The open-redirect bypasses seen in the security review, and their relatives.
    #[test]
    fn next_sends_everything_else_home() {
        for next in [
            "//evil.example",
            "//evil.example/",
            "///evil.example",
            "/\\evil.example",
            "/./\\evil.example",
            "/\t/evil.example",
            "/%09/evil.example",
            "/\n/evil.example",
            "/..//evil.example/",
            "/%2e%2e//evil.example/",
            "/%2E%2E/x",
            "/%2F%2Fevil.example",
            "/%5cevil.example",
            "/a//b",
            "/./x",
            "https://evil.example/",
            "https:evil.example",
            "javascript:alert(1)",
            " //evil.example",
            "/login",
            "/login?next=//evil.example",
            "/x?y=\r\nSet-Cookie:a",
            "",
        ] {
            assert_eq!(safe_next("", Some(next)), "/", "{next:?}");
        }
        for next in [
            "/tasks/..//evil.example/",
            "/tasks/%2e%2e/%2e%2e//evil.example",
            "/tasks//evil.example",
            "/tasksevil",
            "/tasks/\t/evil.example",
            "/other",
        ] {
            assert_eq!(safe_next("/tasks", Some(next)), "/tasks", "{next:?}");
        }
    }
}
