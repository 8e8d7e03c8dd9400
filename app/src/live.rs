//! [`use_live_events`]: the cluster's live state from the SSE stream `/api/events`, as one
//! signal every page reads.
//!
//! [`provide_live_events`] (called once by [`crate::App`]) opens one `EventSource` per tab,
//! in the browser only. The `snapshot` event replaces workers and merges tasks; `delta` events
//! update what changed. `EventSource` reconnects by itself after a dropped connection (and
//! sends `Last-Event-ID`, so the server resumes with a delta); when the browser gives up
//! (the server answered with an error), a new one is opened after [`RECONNECT`].
//!
//! Pages that refetch JSON when things change follow [`LiveEvents::tick`], which moves at
//! most once per [`TICK_EVERY`] however busy the cluster is, and always after the last change.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use leptos::prelude::*;

use crate::model::{LiveDelta, LiveSnapshot, LiveTask, LiveWorker};

/// How long to wait before opening a new stream after the browser gave one up.
pub const RECONNECT: Duration = Duration::from_secs(3);
/// The shortest time between two ticks.
pub const TICK_EVERY: Duration = Duration::from_secs(1);
/// Tasks kept in the browser; the oldest changes are dropped first.
const MAX_TASKS: usize = 2_000;

/// What the stream has told this tab so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveState {
    /// True once a `snapshot` arrived, so the workers here are complete.
    pub synced: bool,
    /// The stream is open.
    pub connected: bool,
    /// The monitor's version of the last event.
    pub version: u64,
    /// Workers by node name.
    pub workers: BTreeMap<String, LiveWorker>,
    /// Recently changed tasks by id.
    pub tasks: HashMap<String, LiveTask>,
}

impl LiveState {
    fn merge_tasks(&mut self, tasks: Vec<LiveTask>) {
        for task in tasks {
            self.tasks.insert(task.id.clone(), task);
        }
        if self.tasks.len() > MAX_TASKS {
            let mut versions: Vec<u64> = self.tasks.values().map(|task| task.version).collect();
            versions.sort_unstable();
            let keep_from = versions[versions.len() - MAX_TASKS];
            self.tasks.retain(|_, task| task.version >= keep_from);
        }
    }

    /// Applies a `snapshot` event.
    pub fn apply_snapshot(&mut self, snapshot: LiveSnapshot) {
        self.synced = true;
        self.version = snapshot.version;
        self.workers = snapshot
            .workers
            .into_iter()
            .map(|worker| (worker.hostname.clone(), worker))
            .collect();
        self.merge_tasks(snapshot.tasks);
    }

    /// Applies a `delta` event.
    pub fn apply_delta(&mut self, delta: LiveDelta) {
        self.version = self.version.max(delta.version);
        for worker in delta.workers {
            self.workers.insert(worker.hostname.clone(), worker);
        }
        self.merge_tasks(delta.tasks);
    }
}

/// The live state and its clocks; `Copy`, so closures take it freely.
#[derive(Debug, Clone, Copy)]
pub struct LiveEvents {
    /// Everything the stream said.
    pub state: RwSignal<LiveState>,
    /// Moves (at most once per [`TICK_EVERY`]) after the state changed.
    pub tick: RwSignal<u64>,
    /// Epoch seconds, advanced every second in the browser; ages are measured against it.
    pub now: RwSignal<f64>,
}

/// Epoch seconds on either side.
pub fn now_seconds() -> f64 {
    #[cfg(feature = "ssr")]
    {
        celeriac::clock::epoch_now()
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        js_sys::Date::now() / 1000.0
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        0.0
    }
}

/// Creates the live state, provides it as context and, in the browser, connects it.
pub fn provide_live_events() -> LiveEvents {
    let live = LiveEvents {
        state: RwSignal::new(LiveState::default()),
        tick: RwSignal::new(0),
        now: RwSignal::new(now_seconds()),
    };
    provide_context(live);
    #[cfg(feature = "hydrate")]
    {
        let url = crate::client::use_api().url("/api/events");
        // Effects only run in the browser, after hydration.
        Effect::new(move |_| untrack(|| browser::start(live, url.clone())));
    }
    live
}

/// The live state of this tab (the one [`provide_live_events`] made, or an idle one).
pub fn use_live_events() -> LiveEvents {
    use_context::<LiveEvents>().unwrap_or_else(|| LiveEvents {
        state: RwSignal::new(LiveState::default()),
        tick: RwSignal::new(0),
        now: RwSignal::new(now_seconds()),
    })
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::cell::{Cell, RefCell};

    use leptos::prelude::*;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    use web_sys::{Event, EventSource, MessageEvent};

    use super::{now_seconds, LiveEvents, RECONNECT, TICK_EVERY};
    use crate::model::{LiveDelta, LiveSnapshot};

    /// The open stream and the handlers it calls (dropping them would detach them).
    struct Connection {
        source: EventSource,
        _on_message: Vec<Closure<dyn FnMut(MessageEvent)>>,
        _on_state: Vec<Closure<dyn FnMut(Event)>>,
    }

    thread_local! {
        static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };
        /// When the tick last moved, and whether a later move is already scheduled.
        static LAST_TICK: Cell<f64> = const { Cell::new(0.0) };
        static TICK_PENDING: Cell<bool> = const { Cell::new(false) };
    }

    pub(super) fn start(live: LiveEvents, url: String) {
        set_interval(move || live.now.set(now_seconds()), Duration::from_secs(1));
        connect(live, url);
    }

    use std::time::Duration;

    fn bump(live: LiveEvents) {
        let now = now_seconds();
        let since = now - LAST_TICK.get();
        if since >= TICK_EVERY.as_secs_f64() {
            LAST_TICK.set(now);
            live.tick.update(|tick| *tick += 1);
        } else if !TICK_PENDING.get() {
            TICK_PENDING.set(true);
            let wait = TICK_EVERY.as_secs_f64() - since;
            set_timeout(
                move || {
                    TICK_PENDING.set(false);
                    LAST_TICK.set(now_seconds());
                    live.tick.update(|tick| *tick += 1);
                },
                Duration::from_secs_f64(wait.max(0.0)),
            );
        }
    }

    fn connect(live: LiveEvents, url: String) {
        if let Some(old) = CONNECTION.take() {
            old.source.close();
        }
        let source = match EventSource::new(&url) {
            Ok(source) => source,
            Err(error) => {
                leptos::logging::warn!("cannot open {url}: {error:?}");
                return;
            }
        };
        let on_snapshot = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            match serde_json::from_str::<LiveSnapshot>(&text) {
                Ok(snapshot) => {
                    live.state.update(|state| state.apply_snapshot(snapshot));
                    bump(live);
                }
                Err(error) => leptos::logging::warn!("unreadable snapshot event: {error}"),
            }
        });
        let on_delta = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            match serde_json::from_str::<LiveDelta>(&text) {
                Ok(delta) => {
                    live.state.update(|state| state.apply_delta(delta));
                    bump(live);
                }
                Err(error) => leptos::logging::warn!("unreadable delta event: {error}"),
            }
        });
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            live.state.update(|state| state.connected = true);
        });
        let on_error = {
            let source = source.clone();
            Closure::<dyn FnMut(Event)>::new(move |_: Event| {
                live.state.update(|state| state.connected = false);
                // CONNECTING means the browser retries by itself; CLOSED means it gave up.
                if source.ready_state() == EventSource::CLOSED {
                    let url = url.clone();
                    set_timeout(move || connect(live, url), RECONNECT);
                }
            })
        };
        let listen = |kind: &str, handler: &js_sys::Function| {
            if let Err(error) = source.add_event_listener_with_callback(kind, handler) {
                leptos::logging::warn!("cannot listen to {kind} events: {error:?}");
            }
        };
        listen("snapshot", on_snapshot.as_ref().unchecked_ref());
        listen("delta", on_delta.as_ref().unchecked_ref());
        listen("open", on_open.as_ref().unchecked_ref());
        listen("error", on_error.as_ref().unchecked_ref());
        CONNECTION.set(Some(Connection {
            source,
            _on_message: vec![on_snapshot, on_delta],
            _on_state: vec![on_open, on_error],
        }));
    }
}
