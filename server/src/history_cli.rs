//! `celeriac history`: the durable task history from the command line: list with filters,
//! one task with its timeline, and retry of a past task.

use anyhow::Context;
use celeriac::config::Config;
use celeriac::history::{retry_task, TaskFilter, TaskHistory};
use celeriac::producer::Producer;
use celeriac::TaskState;
use clap::{Args, Subcommand};

/// `celeriac history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: HistoryCommand,
}

/// The `celeriac history` commands.
#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Tasks, newest first.
    List {
        /// Only this state (PENDING, STARTED, SUCCESS, FAILURE, RETRY, REVOKED...); repeatable.
        #[arg(long)]
        state: Vec<String>,
        /// Only this task name.
        #[arg(long)]
        name: Option<String>,
        /// Only tasks run by this worker.
        #[arg(long)]
        worker: Option<String>,
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Only tasks whose arguments contain this text.
        #[arg(long)]
        search: Option<String>,
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: u32,
    },
    /// One task: its fields and its timeline.
    Show {
        /// Task id.
        id: String,
    },
    /// Send a past task again, as a new task linked to it.
    Retry {
        /// Task id.
        id: String,
    },
}

/// Runs a `celeriac history` command; false when the task was not found or refused.
pub async fn history(config: Config, args: &HistoryArgs) -> anyhow::Result<bool> {
    let history = TaskHistory::new(crate::open_database(&config).await?);
    match &args.command {
        HistoryCommand::List {
            state,
            name,
            worker,
            queue,
            search,
            limit,
        } => {
            let states = state
                .iter()
                .map(|state| {
                    serde_json::from_value::<TaskState>(serde_json::Value::String(
                        state.to_ascii_uppercase(),
                    ))
                    .with_context(|| format!("--state: {state:?} is not a task state"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let filter = TaskFilter {
                states,
                name: name.clone(),
                worker: worker.clone(),
                queue: queue.clone(),
                args_contains: search.clone(),
                ..TaskFilter::default()
            };
            let page = history.list(&filter, None, *limit).await?;
            for task in &page.tasks {
                println!(
                    "{}  {:<8} {:<30} {}  {}",
                    task.seen_at.format("%Y-%m-%d %H:%M:%S"),
                    task.state.as_str(),
                    task.name.as_deref().unwrap_or("?"),
                    task.task_id,
                    task.worker.as_deref().unwrap_or("")
                );
            }
            Ok(true)
        }
        HistoryCommand::Show { id } => {
            let Some(detail) = history.task(id).await? else {
                eprintln!("no task {id} in the history");
                return Ok(false);
            };
            let task = &detail.task;
            println!("id:        {}", task.task_id);
            println!("name:      {}", task.name.as_deref().unwrap_or("?"));
            println!("state:     {}", task.state.as_str());
            println!("worker:    {}", task.worker.as_deref().unwrap_or(""));
            println!("queue:     {}", task.queue.as_deref().unwrap_or(""));
            match (&task.args, &task.args_repr) {
                (Some(args), _) => println!("args:      {}", serde_json::Value::from(args.clone())),
                (None, Some(repr)) => println!("args:      {repr}"),
                (None, None) => {}
            }
            if let Some(result) = &task.result {
                println!("result:    {result}");
            }
            if let Some(exception) = &task.exception {
                println!("exception: {exception}");
            }
            if let Some(retried_from) = &task.retried_from {
                println!("retry of:  {retried_from}");
            }
            for entry in &detail.timeline {
                println!(
                    "  {}  {:<16} {}",
                    entry.at.format("%Y-%m-%d %H:%M:%S%.3f"),
                    entry.kind.as_type(),
                    entry.hostname.as_deref().unwrap_or("")
                );
            }
            Ok(true)
        }
        HistoryCommand::Retry { id } => {
            let producer = Producer::connect(&config).await?;
            match retry_task(&history, &producer, id).await {
                Ok(result) => {
                    println!("{}", result.id);
                    Ok(true)
                }
                Err(error) => {
                    eprintln!("cannot retry {id}: {error}");
                    Ok(false)
                }
            }
        }
    }
}
