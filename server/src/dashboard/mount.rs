//! [`Dashboard`]: the dashboard as an `axum::Router` for a team's own web app, the way
//! Sidekiq::Web or Oban Web are mounted: one `nest` line, behind the app's own login.
//!
//! It reads the cluster the same way `celeriac serve` does (a monitor on the broker's events,
//! the task history in `database_url`), so it starts those first; they run until
//! [`Dashboard::close_on`]'s signal, [`Dashboard::stopped`] or the handle's drop. It embeds no worker and no beat: run those as
//! their own processes (`worker -B`) or in `serve`.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use celeriac::config::Config;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::auth::HostLogin;
use super::{normalize_url_prefix, AppState, DashboardOptions};
use crate::monitoring;

/// What to mount and how; [`Dashboard::builder`] makes one.
#[derive(Debug)]
pub struct DashboardBuilder {
    config: Config,
    url_prefix: String,
    login: Option<HostLogin>,
    queues: Vec<String>,
    trusted_proxies: Vec<IpAddr>,
    site_root: Option<PathBuf>,
}

impl DashboardBuilder {
    /// The path the router is nested at (`/tasks`); pages, links and the browser bundle are
    /// served under it, so it must be the path given to `nest`. `""` (the default) is the root.
    pub fn url_prefix(mut self, prefix: &str) -> Self {
        self.url_prefix = normalize_url_prefix(prefix);
        self
    }

    /// Guards the dashboard with the host app's login instead of the dashboard's own accounts.
    /// Without it, the dashboard has its login form and users (`<binary> user add`).
    pub fn host_login(mut self, login: HostLogin) -> Self {
        self.login = Some(login);
        self
    }

    /// The queues the Queues page shows (their depth and consumers); the configuration's
    /// default queue when none are given.
    pub fn queues(mut self, queues: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// Reverse proxies in front of the host app whose `X-Forwarded-For/-Proto/-Host` are
    /// believed (the audit log's client address, `Secure` cookies).
    pub fn trusted_proxies(mut self, proxies: impl IntoIterator<Item = IpAddr>) -> Self {
        self.trusted_proxies = proxies.into_iter().collect();
        self
    }

    /// Serves the browser bundle from a built site on disk instead of the embedded one.
    pub fn site_root(mut self, site_root: impl Into<PathBuf>) -> Self {
        self.site_root = Some(site_root.into());
        self
    }

    /// Opens (and migrates) the database, subscribes to the cluster's events and starts the
    /// task history recorder; the router is then ready to mount.
    pub async fn start(self) -> anyhow::Result<Dashboard> {
        let database = crate::open_database(&self.config).await?;
        let (stop, stop_receiver) = watch::channel(false);
        let monitoring = monitoring::start(&self.config, database.clone(), || {
            crate::stopped(stop_receiver.clone())
        })
        .await?;
        let queues = if self.queues.is_empty() {
            vec![self.config.task_default_queue.clone()]
        } else {
            self.queues
        };
        let state = AppState::new(&monitoring, queues)
            .with_bulk_retry_rate(self.config.dashboard_bulk_retry_rate())
            .with_result_backend(&self.config);
        let options = DashboardOptions {
            // Only read for Leptos' options; the host app owns the listener.
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            site_root: self.site_root,
            url_prefix: self.url_prefix,
            trusted_proxies: self.trusted_proxies,
            proxy_auth: None,
        };
        let composed = super::compose(&options, state, database, self.login, stop_receiver)
            .context("preparing the dashboard's accounts")?;
        let mut tasks = monitoring.tasks;
        if let Some(sweeper) = composed.sweeper {
            tasks.push(("the dashboard session sweeper", sweeper));
        }
        let router = composed.router;
        Ok(Dashboard {
            router,
            stop: Arc::new(stop),
            tasks,
        })
    }
}

/// The dashboard, ready to mount: [`Dashboard::router`] into the host app,
/// [`Dashboard::close_on`] its shutdown signal.
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use celeriac_server::dashboard::{AuthUser, Dashboard, HostLogin, Role};
///
/// # #[derive(Clone)] struct Staff(String);
/// # async fn run() -> anyhow::Result<()> {
/// let config = celeriac::config::Config::load(None)?;
/// let dashboard = Dashboard::builder(config)
///     .url_prefix("/tasks")
///     // Whoever the app's own login middleware let in, as an operator of the dashboard.
///     .host_login(HostLogin::new(|request| {
///         let staff = request.extensions.get::<Staff>()?;
///         Some(AuthUser { name: staff.0.clone(), role: Role::Operator })
///     }))
///     .start()
///     .await?;
/// let app: Router = Router::new()
///     .route("/", get(|| async { "the shop" }))
///     .nest("/tasks", dashboard.router());
/// // ... the app's own login layer, then:
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
/// axum::serve(listener, app)
///     .with_graceful_shutdown(dashboard.close_on(async {
///         let _ = tokio::signal::ctrl_c().await;
///     }))
///     .await?;
/// dashboard.stopped().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Dashboard {
    router: Router,
    stop: Arc<watch::Sender<bool>>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Dashboard {
    /// A dashboard over the broker, result backend and database of `config`.
    pub fn builder(config: Config) -> DashboardBuilder {
        DashboardBuilder {
            config,
            url_prefix: String::new(),
            login: None,
            queues: Vec::new(),
            trusted_proxies: Vec::new(),
            site_root: None,
        }
    }

    /// The router, its own state applied, so it fits a host router of any state type `S`:
    /// `nest` it at the URL prefix (or serve it as it is when the prefix is empty). Cheap to
    /// call again; every copy serves the same dashboard.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        self.router.clone().with_state(())
    }

    /// `signal`, then the dashboard's live streams end: give it to the host server's
    /// `with_graceful_shutdown`, which otherwise waits forever for open tabs' event streams.
    pub fn close_on(
        &self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let stop = self.stop.clone();
        async move {
            signal.await;
            stop.send_replace(true);
        }
    }

    /// Ends the live streams and the background work (monitor, history recorder), and waits
    /// for the latter: call it once the host server has stopped.
    pub async fn stopped(self) {
        self.stop.send_replace(true);
        for (name, task) in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(component = name, %error, "a dashboard component panicked");
            }
        }
    }
}
