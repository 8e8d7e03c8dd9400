//! [`App`]: what one Celeriac binary brings: its tasks, where they are routed, the worker
//! pools `serve` embeds and the periodic tasks it declares in code.
//!
//! The stock `celeriac` binary is an empty `App`: it runs no tasks of its own, so pointed at a
//! real Celery cluster it consumes nothing and schedules nothing. A team's own binary is the
//! same command line over an `App` with their tasks:
//!
//! ```no_run
//! use celeriac::task::{Task, TaskError};
//! use celeriac_server::App;
//!
//! async fn send_invoice(order_id: i64) -> Result<String, TaskError> {
//!     Ok(format!("invoice {order_id} sent"))
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let app = App::new("shop")
//!         .task(Task::new("orders.send_invoice", send_invoice).arg_names(["order_id"]))
//!         .route("orders.send_invoice", "email")
//!         .beat_every("invoices.nightly", "orders.send_invoice", "1d");
//!     celeriac_server::main(app) // shop worker -Q email -c 8 -n email@%h | shop serve | ...
//! }
//! ```

use celeriac::config::{BeatScheduleEntry, Config};
use celeriac::routing::{Route, RoutingError, TaskRoutes};
use celeriac::task::{Registry, Task};
use std::collections::BTreeMap;

/// One binary's tasks, routes, embedded worker pools and static beat schedule.
///
/// Settings (broker, backend, database) are not here: they come from `celeriac.toml` and
/// `CELERIAC_*` at start, as Celery reads its configuration, so one binary serves every
/// environment. [`App::config`] fixes them in code instead, for tests and single-file tools.
#[derive(Debug, Clone)]
pub struct App {
    name: String,
    registry: Registry,
    routes: Vec<(String, Route)>,
    pools: Vec<Pool>,
    beat_schedule: BTreeMap<String, BeatScheduleEntry>,
    config: Option<Config>,
}

/// A worker pool `serve` embeds: a node name, its queues and its concurrency, as
/// `worker -n <node_name> -Q <queues> -c <concurrency>` would run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// Node name template (`email@%h`).
    pub node_name: String,
    /// Queues it consumes.
    pub queues: Vec<String>,
    /// Concurrent tasks (default: the `worker_concurrency` setting).
    pub concurrency: Option<usize>,
}

/// The node name of `serve`'s embedded worker when the app declares no pool; not Celery's
/// `celery@%h`, which Python workers started without `-n` already use.
pub const EMBEDDED_NODE_NAME: &str = "celeriac@%h";

impl App {
    /// An app with no tasks; `name` is the program name its `--help` shows.
    pub fn new(name: impl Into<String>) -> App {
        App {
            name: name.into(),
            registry: Registry::new(),
            routes: Vec::new(),
            pools: Vec::new(),
            beat_schedule: BTreeMap::new(),
            config: None,
        }
    }

    /// Adds a task (a later task with the same name replaces it). A task with its own queue
    /// (`#[task(queue = "email")]`, [`Task::queue`]) is routed there, so this binary's
    /// producers send it there and its workers consume that queue.
    pub fn task(mut self, task: Task) -> App {
        if let Some(queue) = &task.options().queue {
            let route = (task.name().to_owned(), Route::queue(queue.clone()));
            self.routes.retain(|(pattern, _)| pattern != task.name());
            self.routes.push(route);
        }
        self.registry.register(task);
        self
    }

    /// Adds tasks.
    pub fn tasks(self, tasks: impl IntoIterator<Item = Task>) -> App {
        tasks.into_iter().fold(self, App::task)
    }

    /// Shares `value` (a database pool, an HTTP client, settings) with this binary's tasks,
    /// which read it with `context.state::<T>()?`; one value per type. Every worker the binary
    /// runs, embedded or not, gets it.
    pub fn provide<T: Send + Sync + 'static>(mut self, value: T) -> App {
        self.registry.provide(value);
        self
    }

    /// Routes tasks named `pattern` (an exact name or a glob such as `orders.*`) to `queue`,
    /// for every producer and worker of this binary. `task_routes` in the configuration wins
    /// over the routes given here.
    pub fn route(mut self, pattern: impl Into<String>, queue: impl Into<String>) -> App {
        self.routes.push((pattern.into(), Route::queue(queue)));
        self
    }

    /// Declares a worker pool for `serve` to embed; with none, `serve` embeds one pool named
    /// [`EMBEDDED_NODE_NAME`] on every queue the tasks route to.
    pub fn pool(
        mut self,
        node_name: impl Into<String>,
        queues: impl IntoIterator<Item = impl Into<String>>,
        concurrency: Option<usize>,
    ) -> App {
        self.pools.push(Pool {
            node_name: node_name.into(),
            queues: queues.into_iter().map(Into::into).collect(),
            concurrency,
        });
        self
    }

    /// Adds a static periodic task, as an entry of Celery's `beat_schedule`; the
    /// configuration's `beat_schedule` entry of the same name wins.
    pub fn beat_schedule(mut self, name: impl Into<String>, entry: BeatScheduleEntry) -> App {
        self.beat_schedule.insert(name.into(), entry);
        self
    }

    /// Sends `task` with no arguments on `schedule`: an interval (`"30s"`, `"5m"`, `"1d"`) or
    /// a crontab in cron's field order (`"*/15 * * * *"`), checked when beat starts.
    pub fn beat_every(
        self,
        name: impl Into<String>,
        task: impl Into<String>,
        schedule: impl Into<String>,
    ) -> App {
        let entry = BeatScheduleEntry {
            task: task.into(),
            schedule: serde_json::Value::String(schedule.into()),
            args: Vec::new(),
            kwargs: serde_json::Map::new(),
            options: Default::default(),
            timezone: None,
        };
        self.beat_schedule(name, entry)
    }

    /// Uses `config` instead of reading `celeriac.toml` and `CELERIAC_*`.
    pub fn config(mut self, config: Config) -> App {
        self.config = Some(config);
        self
    }

    /// The program name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tasks.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Whether the app runs any task; the stock binary does not, so it embeds no worker.
    pub fn has_tasks(&self) -> bool {
        self.registry.names().next().is_some()
    }

    /// The declared pools.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// The fixed configuration, when [`App::config`] gave one.
    pub(crate) fn fixed_config(&self) -> Option<&Config> {
        self.config.as_ref()
    }

    /// `config` completed with this app's routes and static schedule, the configuration's own
    /// entries winning.
    pub fn apply_to(&self, config: &mut Config) -> Result<(), RoutingError> {
        let mut entries = config.task_routes.entries().to_vec();
        for (pattern, route) in &self.routes {
            if !entries.iter().any(|(existing, _)| existing == pattern) {
                entries.push((pattern.clone(), route.clone()));
            }
        }
        config.task_routes = TaskRoutes::new(entries)?;
        for (name, entry) in &self.beat_schedule {
            config
                .beat_schedule
                .entry(name.clone())
                .or_insert_with(|| entry.clone());
        }
        Ok(())
    }

    /// The queues this app's tasks are sent to under `config`'s routes: what its embedded
    /// worker consumes by default, in the order of the task names.
    pub fn task_queues(&self, config: &Config) -> Vec<String> {
        let mut queues: Vec<String> = Vec::new();
        for name in self.registry.names() {
            let queue = config
                .task_routes
                .route(name)
                .map_or(config.task_default_queue.as_str(), |route| {
                    route.queue.as_str()
                });
            if !queues.iter().any(|known| known == queue) {
                queues.push(queue.to_owned());
            }
        }
        queues
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use celeriac::task::TaskError;

    async fn noop() -> Result<(), TaskError> {
        Ok(())
    }

    #[test]
    fn the_stock_app_has_no_tasks_queues_or_schedule() {
        let app = App::new("celeriac");
        let mut config = Config::default();
        app.apply_to(&mut config).expect("no routes to refuse");
        assert!(!app.has_tasks());
        assert!(app.task_queues(&config).is_empty());
        assert!(config.task_routes.is_empty());
        assert!(config.beat_schedule.is_empty());
    }

    #[test]
    fn queues_follow_the_routes_and_the_configuration_wins() {
        let app = App::new("shop")
            .task(Task::new("orders.email", noop).queue("email"))
            .task(Task::new("orders.pdf", noop))
            .task(Task::new("carts.cleanup", noop))
            .route("orders.pdf", "render")
            .beat_every("cleanup", "carts.cleanup", "5m");
        let mut config = Config {
            task_routes: TaskRoutes::new(vec![("orders.pdf".to_owned(), Route::queue("pdf"))])
                .expect("routes"),
            ..Config::default()
        };
        app.apply_to(&mut config).expect("plain routes");
        assert_eq!(app.task_queues(&config), ["celery", "email", "pdf"]);
        assert_eq!(config.beat_schedule["cleanup"].task, "carts.cleanup");
    }
}
