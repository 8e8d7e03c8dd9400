//! The command line, with Celery's option names where Celery has them.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
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
    /// Run the dashboard with an embedded worker.
    Serve(ServeArgs),
    /// List the dead-letter list: messages that could not be processed, with the reason.
    DeadLetters,
    /// Print the cluster's Celery events as they happen, one line each.
    Events(EventsArgs),
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
    /// Queues of the embedded worker (default: celery, email, render).
    #[arg(short = 'Q', long, value_delimiter = ',')]
    pub queues: Vec<String>,
    /// Concurrency of the embedded worker.
    #[arg(short = 'c', long)]
    pub concurrency: Option<usize>,
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
