//! The `celeriac` binary: dashboard, CLI, embedded worker and beat.
//!
//! `anyhow` lives only here, at the edge: the engine reports typed errors and this file turns
//! them into a message and an exit code.

mod cli;
mod commands;
mod control;
mod dashboard;
mod event_tail;
mod history_cli;
mod monitoring;
mod schedule;
mod tasks;
mod user_cli;

use anyhow::Context;
use celeriac::config::Config;
use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.loglevel);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    let mut config = Config::load(cli.config.as_deref()).context("loading the configuration")?;
    if config.task_routes.is_empty() {
        config.task_routes = tasks::default_routes();
    }
    match cli.command {
        Command::Worker(args) => commands::worker(config, &args).await.map(|()| true),
        Command::Call(args) => commands::call(config, &args).await,
        Command::Result(args) => commands::result(config, &args).await,
        Command::DeadLetters => commands::dead_letters(config).await.map(|()| true),
        Command::Inspect(args) => control::inspect(config, &args).await,
        Command::Control(args) => control::control(config, &args).await,
        Command::History(args) => history_cli::history(config, &args).await,
        Command::User(args) => user_cli::user(config, args).await.map(|()| true),
        Command::Events(args) => event_tail::events(config, &args).await.map(|()| true),
        Command::Serve(args) => serve(config, args).await.map(|()| true),
        Command::Beat(args) => schedule::beat(config, &args).await.map(|()| true),
        Command::Schedule(args) => schedule::schedule(config, &args).await,
    }
}

/// The dashboard plus, unless `--no-worker`, an embedded worker on the seed's queues, and unless
/// `--no-beat`, an embedded beat (with the demo's periodic `carts.cleanup_expired_carts` when
/// the configuration has no `beat_schedule`); all stop together on SIGTERM/SIGINT.
async fn serve(config: Config, args: cli::ServeArgs) -> anyhow::Result<()> {
    let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
    let stopped = |mut receiver: tokio::sync::watch::Receiver<bool>| async move {
        let _ = receiver.wait_for(|stop| *stop).await;
    };
    let queues = if args.queues.is_empty() {
        vec![
            config.task_default_queue.clone(),
            "email".into(),
            "render".into(),
        ]
    } else {
        args.queues.clone()
    };
    let worker = if args.no_worker {
        None
    } else {
        let worker_args = cli::WorkerArgs {
            queues: queues.clone(),
            concurrency: args.concurrency,
            hostname: None,
            prefetch_multiplier: None,
            task_events: true,
        };
        let options = commands::worker_options(&config, &worker_args)?;
        // The dashboard's monitor will read the embedded worker's task events.
        let mut config = config.clone();
        config.worker_send_task_events = true;
        let stop = stopped(stop_receiver.clone());
        Some(tokio::spawn(async move {
            commands::run_worker(config, options, stop).await
        }))
    };
    let beat = if args.no_beat {
        None
    } else {
        let mut config = config.clone();
        if config.beat_schedule.is_empty() {
            config.beat_schedule = tasks::demo_beat_schedule();
        }
        let node_name = format!("beat@{}", celeriac::worker::node_name::hostname());
        let stop = stopped(stop_receiver.clone());
        Some(tokio::spawn(async move {
            schedule::run_beat(config, node_name, stop).await
        }))
    };
    let monitoring = monitoring::start(&config, || stopped(stop_receiver.clone())).await?;
    let accounts_database = monitoring.history.database().clone();
    let dashboard_state = dashboard::AppState::new(&monitoring, queues)
        .with_bulk_retry_rate(config.dashboard_bulk_retry_rate());
    let mut dashboard_options = dashboard::DashboardOptions::from_env(Some(args.addr));
    dashboard_options.url_prefix = dashboard::normalize_url_prefix(&args.url_prefix);
    dashboard_options.trusted_proxies = args.trusted_proxy.clone();
    let dashboard = tokio::spawn(dashboard::serve(
        dashboard_options,
        dashboard_state,
        accounts_database,
        stopped(stop_receiver),
    ));
    celeriac::worker::shutdown::termination_signal().await;
    let _ = stop_sender.send(true);
    if let Some(worker) = worker {
        worker.await.context("worker task")??;
    }
    if let Some(beat) = beat {
        beat.await.context("beat task")??;
    }
    dashboard.await.context("dashboard task")??;
    for task in monitoring.tasks {
        task.await.context("monitoring task")?;
    }
    Ok(())
}

fn init_logging(level: &str) {
    let filter = std::env::var("CELERIAC_LOG")
        .ok()
        .and_then(|directives| tracing_subscriber::EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| {
            tracing_subscriber::EnvFilter::try_new(level.to_ascii_lowercase())
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        });
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}
