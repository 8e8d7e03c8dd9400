//! [`WorkerRecord`]: one worker node as its events describe it, and when it counts as alive.
//!
//! Celery's `Worker.alive` is "a heartbeat was received less than `freq × 2` ago"
//! (`HEARTBEAT_EXPIRE_WINDOW` = 200 %), measured with the receiver's own clock at receipt
//! (`local_received`), so a worker whose clock is off still expires correctly. Task events from
//! a worker count as heartbeats too, as in Celery. `worker-offline` makes it offline at once,
//! until an event it sent later (by its own timestamp) says otherwise, so a heartbeat delayed
//! past the offline event does not bring a stopped worker back.
//!
//! Counters (`active`, `processed`, `loadavg`, `freq`) come from the worker event with the
//! newest sender timestamp, so a late heartbeat never moves `processed` backwards.

use crate::protocol::event::{Event, EventKind};
use std::sync::Arc;

/// Celery's `HEARTBEAT_EXPIRE_WINDOW`: a worker is alive until `freq × 200 %` after its last
/// heartbeat.
pub const HEARTBEAT_EXPIRE_WINDOW: f64 = 2.0;

/// Celery's `HEARTBEAT_DRIFT_MAX`: clocks further apart than this (seconds) are reported.
pub const HEARTBEAT_DRIFT_MAX: f64 = 16.0;

/// `freq` assumed before a worker event said otherwise (Celery's `Worker` default).
const DEFAULT_FREQ: f64 = 60.0;

/// One worker node.
#[derive(Debug)]
pub(crate) struct WorkerRecord {
    pub(crate) hostname: Arc<str>,
    pub(crate) pid: u32,
    pub(crate) utcoffset: i64,
    pub(crate) clock: u64,
    pub(crate) freq: f64,
    pub(crate) active: u64,
    pub(crate) processed: u64,
    pub(crate) loadavg: [f64; 3],
    pub(crate) sw_ident: Option<Box<str>>,
    pub(crate) sw_ver: Option<Box<str>>,
    pub(crate) sw_sys: Option<Box<str>>,
    /// Sender timestamp of the worker event the counters came from.
    fields_time: f64,
    /// Receiver's epoch time when the last sign of life arrived.
    pub(crate) last_seen: f64,
    /// Newest sender timestamp of a sign of life (heartbeat, online, task event).
    pub(crate) last_alive_time: f64,
    /// Newest sender timestamp of `worker-offline`; NaN when never.
    pub(crate) offline_time: f64,
    /// Newest sender timestamp of `worker-online`; NaN when never.
    pub(crate) online_time: f64,
    pub(crate) heartbeats: u64,
    /// `local_received - timestamp` of the last sign of life, seconds.
    pub(crate) drift: f64,
    /// Whether the last look (an event or [`super::ClusterState::expire_workers`]) found it
    /// alive, so expiry can be announced once.
    pub(crate) seen_alive: bool,
    pub(crate) version: u64,
}

impl WorkerRecord {
    pub(crate) fn new(hostname: Arc<str>) -> WorkerRecord {
        WorkerRecord {
            hostname,
            pid: 0,
            utcoffset: 0,
            clock: 0,
            freq: DEFAULT_FREQ,
            active: 0,
            processed: 0,
            loadavg: [0.0; 3],
            sw_ident: None,
            sw_ver: None,
            sw_sys: None,
            fields_time: f64::NAN,
            last_seen: f64::NAN,
            last_alive_time: f64::NAN,
            offline_time: f64::NAN,
            online_time: f64::NAN,
            heartbeats: 0,
            drift: 0.0,
            seen_alive: false,
            version: 0,
        }
    }

    /// Applies a `worker-*` event received at `received_at` (receiver's epoch seconds).
    pub(crate) fn apply_worker_event(&mut self, event: &Event, received_at: f64) {
        let timestamp = event.timestamp;
        if self.fields_time.is_nan() || timestamp >= self.fields_time {
            self.fields_time = timestamp;
            self.pid = event.pid;
            self.utcoffset = event.utcoffset;
            if let Some(freq) = event.f64_field("freq").filter(|freq| *freq > 0.0) {
                self.freq = freq;
            }
            if let Some(active) = event.u64_field("active") {
                self.active = active;
            }
            if let Some(processed) = event.u64_field("processed") {
                self.processed = processed;
            }
            if let Some(loadavg) = event
                .fields
                .get("loadavg")
                .and_then(|value| value.as_array())
            {
                for (slot, value) in self.loadavg.iter_mut().zip(loadavg) {
                    *slot = value.as_f64().unwrap_or(0.0);
                }
            }
            let text = |name: &str| event.str_field(name).map(Box::<str>::from);
            self.sw_ident = text("sw_ident").or(self.sw_ident.take());
            self.sw_ver = text("sw_ver").or(self.sw_ver.take());
            self.sw_sys = text("sw_sys").or(self.sw_sys.take());
        }
        self.clock = self.clock.max(event.clock);
        match event.kind {
            EventKind::WorkerOffline => {
                if self.offline_time.is_nan() || timestamp > self.offline_time {
                    self.offline_time = timestamp;
                }
            }
            EventKind::WorkerOnline => {
                if self.online_time.is_nan() || timestamp > self.online_time {
                    self.online_time = timestamp;
                }
                self.sign_of_life(timestamp, received_at);
            }
            _ => {
                self.heartbeats += 1;
                self.sign_of_life(timestamp, received_at);
            }
        }
    }

    /// A heartbeat or a task event from this worker, sent at `timestamp`, received at
    /// `received_at`.
    pub(crate) fn sign_of_life(&mut self, timestamp: f64, received_at: f64) {
        if self.last_alive_time.is_nan() || timestamp >= self.last_alive_time {
            self.last_alive_time = timestamp;
            self.drift = received_at - timestamp;
        }
        if self.last_seen.is_nan() || received_at > self.last_seen {
            self.last_seen = received_at;
        }
    }

    /// When the worker stops counting as alive without further news (receiver's epoch).
    pub(crate) fn heartbeat_expires(&self) -> f64 {
        self.last_seen + self.freq * HEARTBEAT_EXPIRE_WINDOW
    }

    /// Celery's `Worker.alive` at `now` (receiver's epoch seconds), offline events respected.
    pub(crate) fn alive(&self, now: f64) -> bool {
        let stopped = !self.offline_time.is_nan()
            && (self.last_alive_time.is_nan() || self.offline_time >= self.last_alive_time);
        !stopped && !self.last_seen.is_nan() && now < self.heartbeat_expires()
    }
}
