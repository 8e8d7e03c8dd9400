//! Celeriac's command line and dashboard for a binary with your own tasks.
//!
//! Celery gives a project `celery -A proj worker|beat|inspect|...` for the cost of an app
//! object; this crate gives a Rust binary the same: describe the tasks in an [`App`], hand it
//! to [`main`], and the binary answers `worker -Q email -c 8 -n email@%h -E -B`, `beat`,
//! `serve` (the dashboard with embedded workers and beat), `call`, `result`, `inspect`,
//! `control`, `events`, `schedule`, `history`, `user` and `dead-letters`, exactly as the stock
//! `celeriac` binary does:
//!
//! ```no_run
//! use celeriac::task::{Task, TaskError};
//!
//! async fn add(x: i64, y: i64) -> Result<i64, TaskError> {
//!     Ok(x + y)
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     celeriac_server::main(
//!         celeriac_server::App::new("hello").task(Task::new("hello.add", add).arg_names(["x", "y"])),
//!     )
//! }
//! ```
//!
//! `anyhow` lives only here, at the edge: the engine reports typed errors and this crate
//! turns them into a message and an exit code.
//!
//! # Layout
//! - [`App`] (`app`): tasks, routes, pools and static schedule of one binary.
//! - [`cli`]: the command line, with Celery's option names.
//! - `serve`: the dashboard with its embedded workers, beat and monitor, supervised together.
//! - `commands`, `control`, `event_tail`, `history_cli`, `schedule`, `user_cli`: the other
//!   subcommands; `monitoring`: the monitor and task history `serve` hosts.
//! - [`dashboard`]: axum + Leptos SSR.

mod app;
pub mod cli;
mod commands;
mod control;
pub mod dashboard;
mod event_tail;
mod history_cli;
mod memory;
mod monitoring;
mod schedule;
mod serve;
mod user_cli;

pub use app::{App, Pool, EMBEDDED_NODE_NAME};

use anyhow::Context;
use celeriac::config::Config;
use clap::{CommandFactory, FromArgMatches};
use cli::{Cli, Command};
use std::process::ExitCode;

/// Runs the command line over `app` and returns the process's exit code: 0 when the command
/// did what was asked, 1 when it ran and found a problem (a task failed, a node did not
/// answer), 2 when it could not run (bad configuration, unreachable broker).
pub fn main(app: App) -> ExitCode {
    let mut command = Cli::command().name(app.name().to_owned());
    if !app.has_tasks() {
        command = command.after_help(
            "This binary has no tasks of its own: its worker refuses to start and `serve` \
             embeds none. Build a binary with yours: celeriac_server::main(App::new(..).task(..)).",
        );
    }
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    init_logging(&cli.loglevel);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.spawn(memory::return_freed_memory());
    match runtime.block_on(run(app, cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(app: App, cli: Cli) -> anyhow::Result<bool> {
    let mut config = match app.fixed_config() {
        Some(config) => config.clone(),
        None => Config::load(cli.config.as_deref()).context("loading the configuration")?,
    };
    app.apply_to(&mut config)
        .context("adding the app's task routes")?;
    match cli.command {
        Command::Worker(args) => commands::worker(&app, config, &args).await.map(|()| true),
        Command::Call(args) => commands::call(config, &args).await,
        Command::Result(args) => commands::result(config, &args).await,
        Command::DeadLetters => commands::dead_letters(config).await.map(|()| true),
        Command::Inspect(args) => control::inspect(config, &args).await,
        Command::Control(args) => control::control(config, &args).await,
        Command::History(args) => history_cli::history(config, &args).await,
        Command::User(args) => user_cli::user(config, args).await.map(|()| true),
        Command::Events(args) => event_tail::events(config, &args).await.map(|()| true),
        Command::Serve(args) => serve::serve(&app, config, args).await.map(|()| true),
        Command::Beat(args) => schedule::beat(config, &args).await.map(|()| true),
        Command::Schedule(args) => schedule::schedule(config, &args).await,
    }
}

/// Resolves when `stop` turns true, or when its sender is gone (nobody is left to say so).
pub(crate) async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Opens (and, once across processes, migrates) the database at `database_url`: the one pool
/// a process uses for history, beat and accounts.
pub(crate) async fn open_database(config: &Config) -> anyhow::Result<celeriac::db::Database> {
    celeriac::db::Database::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "opening the database {} (database_url)",
                celeriac::db::hide_password(&config.database_url)
            )
        })
}

/// Logs to stderr the way every subcommand does, for a binary that runs Celeriac's parts
/// without [`main`] (an axum app mounting the [`dashboard::Dashboard`]): `CELERIAC_LOG` (an
/// `EnvFilter`, `celeriac=debug,info`) wins over `level` (`info`, `debug`, ...). Does nothing
/// when a subscriber is already installed.
pub fn init_logging(level: &str) {
    let filter = std::env::var("CELERIAC_LOG")
        .ok()
        .and_then(|directives| tracing_subscriber::EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| {
            tracing_subscriber::EnvFilter::try_new(level.to_ascii_lowercase())
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        });
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    // A second `main` in one process (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}
