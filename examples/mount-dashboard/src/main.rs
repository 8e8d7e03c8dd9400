//! An existing axum app (a shop's back office, with its own staff login) that mounts Celeriac's
//! dashboard at `/tasks`. The app's login middleware decides who is signed in; the dashboard
//! asks it through a [`HostLogin`] and keeps no accounts of its own.
//!
//! Staff sign in at `/login` with the password in `STAFF_PASSWORD`; `APP_ADDR` is where the app
//! listens (127.0.0.1:8000). The broker, result backend and database come from `celeriac.toml`
//! or `CELERIAC_*` variables.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, Request, State};
use axum::http::header;
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use celeriac_server::dashboard::{AuthUser, Dashboard, HostLogin, Role};
use serde::Deserialize;

/// A signed-in member of staff: what the app's own middleware puts on each request.
#[derive(Clone)]
struct Staff(String);

/// The app's sessions: cookie token → staff name.
#[derive(Clone, Default)]
struct Sessions(Arc<Mutex<HashMap<String, String>>>);

const COOKIE: &str = "backoffice_session";

/// The app's own middleware: the session cookie's staff member, if any, as an extension.
async fn identify_staff(
    State(sessions): State<Sessions>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::COOKIE)
        .and_then(|cookies| cookies.to_str().ok())
        .and_then(|cookies| {
            cookies
                .split(';')
                .find_map(|cookie| cookie.trim().strip_prefix(&format!("{COOKIE}=")))
        })
        .map(str::to_owned);
    let name = token.and_then(|token| sessions.0.lock().ok()?.get(&token).cloned());
    if let Some(name) = name {
        request.extensions_mut().insert(Staff(name));
    }
    next.run(request).await
}

#[derive(Deserialize)]
struct NextPage {
    next: Option<String>,
}

#[derive(Deserialize)]
struct Login {
    name: String,
    password: String,
    next: String,
}

async fn login_form(Query(query): Query<NextPage>) -> Html<String> {
    let next = query
        .next
        .unwrap_or_else(|| "/".to_owned())
        .replace('"', "");
    Html(format!(
        r#"<h1>Back office</h1><form method="post" action="/login">
        <input name="name" placeholder="name"><input name="password" type="password" placeholder="password">
        <input type="hidden" name="next" value="{next}"><button type="submit">Sign in</button></form>"#
    ))
}

async fn login(State(sessions): State<Sessions>, Form(form): Form<Login>) -> Response {
    let expected = std::env::var("STAFF_PASSWORD").unwrap_or_default();
    if expected.is_empty() || form.password != expected {
        return (axum::http::StatusCode::UNAUTHORIZED, "wrong password\n").into_response();
    }
    let token = uuid::Uuid::new_v4().to_string();
    if let Ok(mut sessions) = sessions.0.lock() {
        sessions.insert(token.clone(), form.name);
    }
    // Only paths on this site, never `//elsewhere`.
    let next = if form.next.starts_with('/') && !form.next.starts_with("//") {
        form.next
    } else {
        "/".to_owned()
    };
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax");
    ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
}

async fn logout(State(sessions): State<Sessions>, staff: Option<Extension<Staff>>) -> Response {
    if let (Some(Extension(Staff(name))), Ok(mut sessions)) = (staff, sessions.0.lock()) {
        sessions.retain(|_, signed_in| *signed_in != name);
    }
    let expired = format!("{COOKIE}=; Path=/; Max-Age=0");
    ([(header::SET_COOKIE, expired)], Redirect::to("/login")).into_response()
}

async fn home(staff: Option<Extension<Staff>>) -> Html<String> {
    match staff {
        Some(Extension(Staff(name))) => Html(format!(
            r#"<p>Hello, {name}. <a href="/tasks">Tasks</a></p>"#
        )),
        None => Html(r#"<p><a href="/login">Sign in</a></p>"#.to_owned()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    celeriac_server::init_logging("info");
    let config = celeriac::config::Config::load(None)?;
    let dashboard = Dashboard::builder(config)
        .url_prefix("/tasks")
        .host_login(
            HostLogin::new(|request| {
                let Staff(name) = request.extensions.get::<Staff>()?;
                Some(AuthUser {
                    name: name.clone(),
                    role: Role::Operator,
                })
            })
            .login_url("/login")
            .logout_url("/logout"),
        )
        .start()
        .await?;
    let sessions = Sessions::default();
    let app = Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .nest("/tasks", dashboard.router())
        .layer(from_fn_with_state(sessions.clone(), identify_staff))
        .with_state(sessions);
    let addr = std::env::var("APP_ADDR").unwrap_or_else(|_| "127.0.0.1:8000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("back office on http://{addr}/, the dashboard at http://{addr}/tasks");
    axum::serve(listener, app)
        .with_graceful_shutdown(dashboard.close_on(async {
            let _ = tokio::signal::ctrl_c().await;
        }))
        .await?;
    dashboard.stopped().await;
    Ok(())
}
