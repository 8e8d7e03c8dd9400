//! [`Link`]: the connection every broker and backend command goes through, to one Redis, or
//! with Sentinel to whichever server is the master now.
//!
//! A `Link` is a cheap clone and a [`ConnectionLike`], so `query_async(&mut link)` works as on
//! redis-rs's `ConnectionManager`, which it wraps. Direct: one manager for the process's life
//! (it reconnects by itself to the same address). Sentinel (`sentinel://`, see `sentinel`): a
//! watcher asks the sentinels for the master every second and, when it moved, connects to the
//! new one and swaps it in; commands already sent to the old master fail as on any dropped
//! connection (the callers retry), commands after the swap go to the new one, and PUB/SUB
//! connections made afterwards ([`Link::client`]) too. Every component (producer, fetch and
//! acks, results, events, remote control, beat) follows without a restart.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager};
use ::redis::{Cmd, Pipeline, RedisFuture, Value};

use super::sentinel::Sentinels;

/// How often the watcher asks the sentinels where the master is.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// The connection to the current master (module docs).
#[derive(Clone)]
pub struct Link {
    inner: Inner,
    database: i64,
}

#[derive(Clone)]
enum Inner {
    Direct {
        /// Shared: a client with TLS settings is large, and a link is cloned for every command.
        client: Arc<::redis::Client>,
        manager: ConnectionManager,
    },
    Following(Arc<Following>),
}

/// The current master's client and manager, replaced when Sentinel moves the master.
struct Following {
    /// The client is shared: each command clones the pair.
    current: RwLock<(Arc<::redis::Client>, ConnectionManager)>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.inner {
            Inner::Direct { .. } => "direct",
            Inner::Following(_) => "sentinel",
        };
        formatter
            .debug_struct("Link")
            .field("kind", &kind)
            .field("address", &self.address())
            .finish()
    }
}

impl Link {
    /// A link to one server.
    pub(crate) fn direct(client: ::redis::Client, manager: ConnectionManager) -> Link {
        let database = client.get_connection_info().redis_settings().db();
        Link {
            inner: Inner::Direct {
                client: Arc::new(client),
                manager,
            },
            database,
        }
    }

    /// A link that follows the master `sentinels` name, starting at `client`/`manager`, and
    /// the watcher that keeps it there (it stops when the last clone is dropped).
    pub(crate) fn following(
        client: ::redis::Client,
        manager: ConnectionManager,
        sentinels: Sentinels,
        role: &'static str,
    ) -> Link {
        let database = client.get_connection_info().redis_settings().db();
        let following = Arc::new(Following {
            current: RwLock::new((Arc::new(client), manager)),
        });
        tokio::spawn(watch(Arc::downgrade(&following), sentinels, role));
        Link {
            inner: Inner::Following(following),
            database,
        }
    }

    /// The client of the current master, for connections of their own (PUB/SUB, replies).
    pub(crate) fn client(&self) -> ::redis::Client {
        match &self.inner {
            Inner::Direct { client, .. } => client.as_ref().clone(),
            Inner::Following(following) => following.current().0.as_ref().clone(),
        }
    }

    /// `host:port` of the current master.
    pub(crate) fn address(&self) -> String {
        self.client().get_connection_info().addr().to_string()
    }
}

impl Following {
    fn current(&self) -> (Arc<::redis::Client>, ConnectionManager) {
        match self.current.read() {
            Ok(current) => current.clone(),
            // A writer panicked mid-swap; the pair it left is still a usable connection.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, client: ::redis::Client, manager: ConnectionManager) {
        match self.current.write() {
            Ok(mut current) => *current = (Arc::new(client), manager),
            Err(poisoned) => *poisoned.into_inner() = (Arc::new(client), manager),
        }
    }
}

/// Asks the sentinels where the master is every [`WATCH_EVERY`] and swaps in a connection to
/// it when it moved; logs each move and each failure to learn it.
async fn watch(following: Weak<Following>, sentinels: Sentinels, role: &'static str) {
    let mut interval = tokio::time::interval(WATCH_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(following) = following.upgrade() else {
            return;
        };
        let now = following
            .current()
            .0
            .get_connection_info()
            .addr()
            .to_string();
        let master = match sentinels.master().await {
            Ok(master) => master,
            Err(error) => {
                tracing::warn!(role, %error, "cannot ask the sentinels where the master is");
                continue;
            }
        };
        let address = master.get_connection_info().addr().to_string();
        if address == now {
            continue;
        }
        match super::connect::connect_manager(
            master.clone(),
            super::connect::RECONNECTS_UNDER_SENTINEL,
        )
        .await
        {
            Ok(manager) => {
                following.replace(master, manager);
                tracing::warn!(role, from = %now, to = %address, "the {role}'s master moved; following it");
            }
            Err(error) => {
                tracing::warn!(role, address = %address, %error, "cannot connect to the new master yet");
            }
        }
    }
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Direct { manager, .. } => manager.req_packed_command(cmd),
            Inner::Following(following) => {
                let mut manager = following.current().1;
                Box::pin(async move { manager.req_packed_command(cmd).await })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Inner::Direct { manager, .. } => manager.req_packed_commands(cmd, offset, count),
            Inner::Following(following) => {
                let mut manager = following.current().1;
                Box::pin(async move { manager.req_packed_commands(cmd, offset, count).await })
            }
        }
    }

    fn get_db(&self) -> i64 {
        self.database
    }
}
