//! `GET /api/events`: server-sent events, one stream per browser tab.
//!
//! 1. On connect the tab gets a `snapshot` event: workers, task names with counters, the
//!    newest [`SNAPSHOT_TASKS`] tasks, per-state counts of the retained tasks.
//! 2. Then `delta` events: every record changed since the last event (`ClusterState::
//!    changes_since`), at most one per [`COALESCE`], however many events went by; a delta
//!    with more than [`DELTA_TASKS`] changed tasks is sent as a fresh `snapshot` instead.
//! 3. Every event has an `id:` (`<boot>.<version>`). A reconnecting `EventSource` sends it back
//!    as `Last-Event-ID`; a version of this process that the state has not outrun gets the
//!    delta since it, anything else (another process, a restart) a fresh snapshot.
//! 4. A comment every [`KEEP_ALIVE`] keeps proxies from closing an idle stream;
//!    `X-Accel-Buffering: no` stops nginx from buffering it.
//! 5. Every [`LOGIN_RECHECK`] the stream asks whether its login still holds, and ends when the
//!    session was logged out or the account deleted or given a new password.
//!
//! Per-client work is bounded: the stream holds only a `watch` receiver of the monitor's
//! version (no queue of events), wakes when it changes, sleeps out the rest of the coalescing
//! interval, and reads what changed under the monitor's lock. A slow client makes its own TCP
//! buffer fill and its stream wait; it never makes the server hold more. The stream ends when
//! the client goes away (axum drops it), the monitor stops, or the server shuts down (so open
//! tabs do not hold up axum's graceful shutdown).

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use celeriac::events::state::TaskQuery;
use celeriac::events::Monitor;
use futures::Stream;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::dashboard::auth::LoginCheck;
use crate::dashboard::AppState;

/// The shortest time between two events of one stream.
pub(crate) const COALESCE: Duration = Duration::from_millis(250);
/// Idle time after which a keep-alive comment is sent.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Tasks in a snapshot (the rest come through the history API).
const SNAPSHOT_TASKS: usize = 100;
/// Changed tasks one delta carries before a snapshot replaces it.
const DELTA_TASKS: usize = 1_000;
/// How far behind a `Last-Event-ID` may be and still get a delta.
const RESUME_WINDOW: u64 = 1_000_000;

/// Names this process's versions, so an id from before a restart is never taken for one of
/// ours.
fn boot() -> u32 {
    static BOOT: OnceLock<u32> = OnceLock::new();
    *BOOT.get_or_init(rand::random)
}

fn event_id(version: u64) -> String {
    format!("{:x}.{version}", boot())
}

/// The version in a `Last-Event-ID` of this process, if it is one.
fn resume_version(headers: &HeaderMap) -> Option<u64> {
    let text = headers.get("last-event-id")?.to_str().ok()?;
    let (boot_text, version) = text.trim().split_once('.')?;
    (u32::from_str_radix(boot_text, 16).ok()? == boot())
        .then(|| version.parse().ok())
        .flatten()
}

/// How often an open stream asks whether its login still holds (logout, a deleted account
/// or a new password end it), so a tab left open cannot keep watching for hours after.
#[cfg(not(test))]
const LOGIN_RECHECK: Duration = Duration::from_secs(15);
#[cfg(test)]
const LOGIN_RECHECK: Duration = Duration::from_millis(300);

/// `GET /api/events`.
pub(super) async fn stream(
    State(state): State<AppState>,
    login: Option<Extension<LoginCheck>>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let client = Client {
        login: login.map(|Extension(login)| login),
        recheck: tokio::time::interval_at(Instant::now() + LOGIN_RECHECK, LOGIN_RECHECK),
        versions: state.monitor.versions(),
        monitor: state.monitor.clone(),
        closing: state.closing.clone(),
        sent: None,
        resume: resume_version(&headers),
        last_send: Instant::now(),
    };
    let sse = Sse::new(events(client)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    (
        [
            (HeaderName::from_static("x-accel-buffering"), "no"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        sse,
    )
}

/// One tab's position in the state.
struct Client {
    monitor: Arc<Monitor>,
    versions: watch::Receiver<u64>,
    /// True once the server shuts down: the stream ends (a closed sender means never).
    closing: watch::Receiver<bool>,
    /// The version the last event brought the tab to.
    sent: Option<u64>,
    /// The version the tab says it has (`Last-Event-ID`), until the first event.
    resume: Option<u64>,
    last_send: Instant,
    /// The login to ask again every [`LOGIN_RECHECK`]; `None` behind a host's login, whose
    /// sessions are the host's.
    login: Option<LoginCheck>,
    recheck: tokio::time::Interval,
}

fn events(client: Client) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(client, |mut client| async move {
        let event = client.next().await?;
        Some((Ok(event), client))
    })
}

impl Client {
    async fn next(&mut self) -> Option<Event> {
        let Some(sent) = self.sent else {
            self.versions.borrow_and_update();
            let resume = self.resume.take().filter(|version| {
                let current = *self.versions.borrow();
                *version <= current && current - version <= RESUME_WINDOW
            });
            return Some(match resume {
                Some(version) => self.delta(version),
                None => self.snapshot(),
            });
        };
        if *self.closing.borrow() {
            return None;
        }
        let mut closing = self.closing.clone();
        let closed = async move {
            if closing.wait_for(|closing| *closing).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(closed);
        loop {
            tokio::select! {
                changed = self.versions.changed() => changed.ok()?,
                () = &mut closed => return None,
                _ = self.recheck.tick() => {
                    match &self.login {
                        Some(login) if !login.holds().await => return None,
                        _ => continue,
                    }
                }
            }
            tokio::time::sleep_until(self.last_send + COALESCE).await;
            let current = *self.versions.borrow_and_update();
            if current > sent {
                return Some(self.delta(sent));
            }
        }
    }

    fn delta(&mut self, since: u64) -> Event {
        let now = celeriac::clock::epoch_now();
        let changes = self
            .monitor
            .read(|cluster| cluster.changes_since(since, now, DELTA_TASKS));
        if changes.truncated {
            return self.snapshot();
        }
        self.finish("delta", changes.version, &changes)
    }

    fn snapshot(&mut self) -> Event {
        let (version, body) = snapshot_body(&self.monitor);
        self.finish("snapshot", version, &body)
    }

    fn finish(&mut self, kind: &str, version: u64, body: &impl serde::Serialize) -> Event {
        self.sent = Some(version);
        self.last_send = Instant::now();
        let data = serde_json::to_string(body).unwrap_or_else(|error| {
            tracing::error!(%error, "cannot serialise an SSE event");
            "{}".to_owned()
        });
        Event::default()
            .id(event_id(version))
            .event(kind)
            .data(data)
    }
}

/// The `snapshot` event's body and its version: workers, task names with counters, the newest
/// [`SNAPSHOT_TASKS`] tasks, per-state counts of the retained tasks.
fn snapshot_body(monitor: &Monitor) -> (u64, serde_json::Value) {
    let now = celeriac::clock::epoch_now();
    let (snapshot, tasks, state_counts) = monitor.read(|cluster| {
        let query = TaskQuery {
            limit: SNAPSHOT_TASKS,
            ..TaskQuery::default()
        };
        (
            cluster.snapshot(now),
            cluster.tasks(&query),
            cluster.state_counts(),
        )
    });
    let state_counts: serde_json::Map<String, serde_json::Value> = state_counts
        .into_iter()
        .map(|(state, count)| (state.as_str().to_owned(), json!(count)))
        .collect();
    let body = json!({
        "version": snapshot.version,
        "workers": snapshot.workers,
        "task_names": snapshot.task_names,
        "counters": snapshot.counters,
        "tasks": tasks,
        "state_counts": state_counts,
    });
    (snapshot.version, body)
}

/// `GET /api/snapshot`: the stream's `snapshot` event as one JSON document, for a page's first
/// paint (server rendering reads it before any stream is open).
pub(super) async fn snapshot(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(snapshot_body(&state.monitor).1)
}
