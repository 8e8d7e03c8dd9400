//! The command line, with Celery's option names where Celery has them.

use clap::{Args, Parser, Subcommand};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Celeriac: Celery's task queue in Rust, wire-compatible with Python Celery.
#[derive(Debug, Parser)]
#[command(name = "celeriac", version)]
pub struct Cli {
    /// Configuration file (default: $CELERIAC_CONFIG, else ./celeriac.toml if present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, short = 'l', global = true, default_value = "info")]
    pub loglevel: String,
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// What to run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a worker.
    Worker(WorkerArgs),
    /// Send a task and print its id (and, with --wait, its result).
    Call(CallArgs),
    /// Print a task's stored result.
    Result(ResultArgs),
    /// Run the dashboard with beat and, when this binary has tasks, embedded workers.
    Serve(ServeArgs),
    /// List the dead-letter list: messages that could not be processed, with the reason.
    DeadLetters,
    /// Print the cluster's Celery events as they happen, one line each.
    Events(EventsArgs),
    /// The durable task history: list, show, retry a past task.
    History(crate::history_cli::HistoryArgs),
    /// Dashboard accounts: add, list, delete.
    User(crate::user_cli::UserArgs),
    /// Ask workers (Python or Rust) what they are doing, as `celery inspect` does.
    Inspect(InspectArgs),
    /// Tell workers (Python or Rust) to change something, as `celery control` does.
    Control(ControlArgs),
    /// Run beat: send periodic tasks from the database (any number may run; one leads).
    Beat(BeatArgs),
    /// Read and edit periodic tasks in the database (`database_url`).
    Schedule(ScheduleArgs),
}

/// `celeriac beat`.
#[derive(Debug, Args)]
pub struct BeatArgs {
    /// This beat's name in the leader lease (default: `beat@<host>`).
    #[arg(short = 'n', long)]
    pub hostname: Option<String>,
}

/// `celeriac schedule`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ScheduleCommand,
}

/// The commands of `celeriac schedule`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Every periodic task: schedule in words, enabled, last and next run, counts.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a periodic task.
    Add(ScheduleDefinition),
    /// Change a periodic task (only the options given).
    Edit(ScheduleDefinition),
    /// Enable a periodic task (slots that passed while it was disabled are not sent).
    Enable {
        /// Entry name.
        name: String,
    },
    /// Disable a periodic task.
    Disable {
        /// Entry name.
        name: String,
    },
    /// Send the task now, outside its schedule (its run bookkeeping is unchanged).
    RunNow {
        /// Entry name.
        name: String,
    },
    /// Delete a periodic task.
    Delete {
        /// Entry name.
        name: String,
    },
    /// The next run times, in the schedule's zone, flagging DST shifts.
    Next {
        /// Entry name.
        name: String,
        /// How many.
        #[arg(short = 'n', default_value_t = 5)]
        count: usize,
    },
    /// Which beat leads, and how long its lease lasts.
    Leader,
    /// The entry's recent runs, newest first.
    Runs {
        /// Entry name.
        name: String,
    },
    /// Copy every periodic task of django-celery-beat's tables into Celeriac's (a one-way
    /// move off `celery beat -S django`); entries that exist are updated.
    Import {
        /// Where from: `django` (the only source).
        #[arg(long, value_parser = ["django"])]
        from: String,
        /// The Django database, if not `database_url`.
        #[arg(long)]
        django_url: Option<String>,
    },
    /// Copy every periodic task of Celeriac's tables into django-celery-beat's (back to the
    /// Django admin); entries that exist are updated.
    Export {
        /// Where to: `django` (the only target).
        #[arg(long, value_parser = ["django"])]
        to: String,
        /// The Django database, if not `database_url`.
        #[arg(long)]
        django_url: Option<String>,
    },
}

/// A periodic task's definition on the command line.
#[derive(Debug, Args)]
pub struct ScheduleDefinition {
    /// Entry name (unique).
    pub name: String,
    /// Task name.
    #[arg(long)]
    pub task: Option<String>,
    /// Positional arguments as a JSON array.
    #[arg(long)]
    pub args: Option<String>,
    /// Keyword arguments as a JSON object.
    #[arg(long)]
    pub kwargs: Option<String>,
    /// Queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Priority 0-255.
    #[arg(long)]
    pub priority: Option<u32>,
    /// Seconds after its slot at which each message expires.
    #[arg(long)]
    pub expires: Option<u64>,
    /// A crontab in cron's field order: "minute hour day_of_month month day_of_week".
    #[arg(long, group = "when")]
    pub crontab: Option<String>,
    /// The crontab's zone (default: the timezone setting).
    #[arg(long, requires = "crontab")]
    pub timezone: Option<String>,
    /// An interval: 30s, 5m, 2h, 1d.
    #[arg(long, group = "when")]
    pub every: Option<String>,
    /// Once, at this RFC 3339 time (a clocked one-off).
    #[arg(long, group = "when")]
    pub at: Option<String>,
    /// At an event of the Sun's day (Celery's `solar`): sunrise, sunset, solar_noon,
    /// dawn_civil, dawn_nautical, dawn_astronomical, dusk_civil, dusk_nautical,
    /// dusk_astronomical; with --latitude and --longitude.
    #[arg(long, group = "when", requires_all = ["latitude", "longitude"])]
    pub solar: Option<String>,
    /// The solar event's place: degrees north (south negative).
    #[arg(long, requires = "solar", allow_negative_numbers = true)]
    pub latitude: Option<String>,
    /// The solar event's place: degrees east (west negative).
    #[arg(long, requires = "solar", allow_negative_numbers = true)]
    pub longitude: Option<String>,
    /// Run once, then disable.
    #[arg(long)]
    pub one_off: bool,
    /// Free text.
    #[arg(long)]
    pub description: Option<String>,
}

/// Whom a remote-control command addresses, how long it waits, how it prints.
#[derive(Debug, Args)]
pub struct BroadcastArgs {
    /// Only these workers: node names, comma-separated or repeated.
    #[arg(short = 'd', long, value_delimiter = ',', global = true)]
    pub destination: Vec<String>,
    /// Seconds to wait for replies.
    #[arg(short = 't', long, default_value_t = 1.0, global = true)]
    pub timeout: f64,
    /// Print the replies as one JSON object, node name → reply.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `celeriac inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// What to ask.
    #[command(subcommand)]
    pub command: InspectCommand,
    /// Which workers, how long to wait for replies, how to print them.
    #[command(flatten)]
    pub broadcast: BroadcastArgs,
}

/// The questions of `celeriac inspect`, named as in Celery.
#[derive(Debug, Subcommand)]
#[command(rename_all = "snake_case")]
pub enum InspectCommand {
    /// Ping the workers.
    Ping,
    /// Tasks running now.
    Active,
    /// Tasks prefetched, waiting for a pool slot.
    Reserved,
    /// Tasks waiting for their eta.
    Scheduled,
    /// Worker statistics.
    Stats,
    /// Registered task names.
    Registered,
    /// Queues consumed.
    ActiveQueues,
    /// Revoked task ids.
    Revoked,
    /// Worker configuration.
    Conf,
    /// What the workers know of these task ids.
    QueryTask {
        /// Task ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// `celeriac control`.
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// What to change.
    #[command(subcommand)]
    pub command: ControlCommand,
    /// Which workers, how long to wait for replies, how to print them.
    #[command(flatten)]
    pub broadcast: BroadcastArgs,
}

/// The commands of `celeriac control`, named as in Celery.
#[derive(Debug, Subcommand)]
#[command(rename_all = "snake_case")]
pub enum ControlCommand {
    /// Revoke tasks: workers will not run them.
    Revoke {
        /// Task ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Also stop them where they are running.
        #[arg(long)]
        terminate: bool,
        /// The signal Python workers send with --terminate.
        #[arg(long, default_value = "SIGTERM")]
        signal: String,
    },
    /// Set a task's rate limit ("10/m", "5/s", "100/h"; "0" removes it).
    RateLimit {
        /// Task name.
        name: String,
        /// The rate.
        rate: String,
    },
    /// Set a task's soft and hard time limits, in seconds.
    TimeLimit {
        /// Task name.
        name: String,
        /// Soft limit.
        soft: f64,
        /// Hard limit.
        hard: Option<f64>,
    },
    /// Add pool slots.
    PoolGrow {
        /// How many.
        #[arg(default_value_t = 1)]
        n: u32,
    },
    /// Remove pool slots.
    PoolShrink {
        /// How many.
        #[arg(default_value_t = 1)]
        n: u32,
    },
    /// Change the autoscaler's range (workers without one answer with an error).
    Autoscale {
        /// Most pool slots.
        max: u32,
        /// Fewest pool slots.
        min: u32,
    },
    /// Start consuming a queue.
    AddConsumer {
        /// Queue name.
        queue: String,
        /// Exchange to bind it to (default: the queue's name).
        #[arg(long)]
        exchange: Option<String>,
        /// Routing key of the binding (default: the queue's name).
        #[arg(long)]
        routing_key: Option<String>,
    },
    /// Stop consuming a queue.
    CancelConsumer {
        /// Queue name.
        queue: String,
    },
    /// Turn task events on.
    EnableEvents,
    /// Turn task events off.
    DisableEvents,
    /// Shut the workers down warmly (they do not reply).
    Shutdown,
}

/// `celeriac worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Queues to consume, comma-separated (default: task_default_queue).
    #[arg(short = 'Q', long, value_delimiter = ',')]
    pub queues: Vec<String>,
    /// Tasks run at once (default: worker_concurrency, else the number of CPUs).
    #[arg(short = 'c', long)]
    pub concurrency: Option<usize>,
    /// Node name; %h, %n, %d expand as in Celery (default: celery@%h).
    #[arg(short = 'n', long)]
    pub hostname: Option<String>,
    /// worker_prefetch_multiplier.
    #[arg(long)]
    pub prefetch_multiplier: Option<u32>,
    /// Send task events for monitors (worker_send_task_events).
    #[arg(short = 'E', long = "task-events")]
    pub task_events: bool,
    /// Also run beat in this process, as `celery worker -B` (one beat leads however many run).
    #[arg(short = 'B', long)]
    pub beat: bool,
}

/// `celeriac call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// Task name.
    pub name: String,
    /// Positional arguments as a JSON array.
    #[arg(long, default_value = "[]")]
    pub args: String,
    /// Keyword arguments as a JSON object.
    #[arg(long, default_value = "{}")]
    pub kwargs: String,
    /// Queue (default: task_routes, else task_default_queue).
    #[arg(long)]
    pub queue: Option<String>,
    /// Seconds to wait before running.
    #[arg(long)]
    pub countdown: Option<f64>,
    /// Run no earlier than this RFC 3339 time.
    #[arg(long)]
    pub eta: Option<String>,
    /// Seconds after which the task expires instead of running.
    #[arg(long)]
    pub expires: Option<f64>,
    /// Priority 0-9 (lower runs first on Redis).
    #[arg(long)]
    pub priority: Option<u8>,
    /// Task id to use instead of a fresh UUID.
    #[arg(long)]
    pub task_id: Option<String>,
    /// Wait for the result and print it as JSON on the last line.
    #[arg(long)]
    pub wait: bool,
    /// Seconds to wait with --wait.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
}

/// `celeriac result`.
#[derive(Debug, Args)]
pub struct ResultArgs {
    /// Task id.
    pub id: String,
    /// Wait until the task is ready.
    #[arg(long)]
    pub wait: bool,
    /// Seconds to wait with --wait.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
}

/// `celeriac serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,
    /// Do not run the embedded worker.
    #[arg(long)]
    pub no_worker: bool,
    /// Queues of the embedded worker (default: the app's pools, else the queues its tasks are
    /// routed to); without a worker, the queues the Queues page shows.
    #[arg(short = 'Q', long, value_delimiter = ',')]
    pub queues: Vec<String>,
    /// Concurrency of the embedded worker.
    #[arg(short = 'c', long)]
    pub concurrency: Option<usize>,
    /// Do not run the embedded beat.
    #[arg(long)]
    pub no_beat: bool,
    /// Serve the dashboard under this path (e.g. /tasks) behind a reverse proxy.
    #[arg(long, env = "CELERIAC_URL_PREFIX", default_value = "")]
    pub url_prefix: String,
    /// Addresses of reverse proxies whose X-Forwarded-For/-Proto/-Host headers are trusted,
    /// comma-separated or repeated.
    #[arg(long, env = "CELERIAC_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxy: Vec<IpAddr>,
    /// Proxy authentication: believe this header (e.g. X-Remote-User, set by nginx after
    /// `auth_basic` or `auth_request`) from --trusted-proxy addresses as the logged-in user.
    #[arg(long, env = "CELERIAC_PROXY_AUTH_HEADER")]
    pub proxy_auth_header: Option<String>,
    /// The role of a proxy-authenticated user without a dashboard account (viewer, operator
    /// or admin); one with an account keeps its role.
    #[arg(long, env = "CELERIAC_PROXY_AUTH_ROLE", default_value = "viewer")]
    pub proxy_auth_role: String,
}

/// `celeriac events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Print each event as Celery's JSON object instead of a summary line.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
}
