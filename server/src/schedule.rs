//! `celeriac beat` and `celeriac schedule`: beat as a process, and periodic tasks read and
//! edited in the database, through the engine's `beat` API.
//!
//! Every edit is written to the store first and then announced on Redis, so running beats
//! apply it at once; a beat that misses the announcement applies it at its next tick anyway.
//! Invalid input fails with the engine's error, which names the field
//! (`hour: 24 is out of range 0-23`), and a non-zero exit.

use crate::cli::{BeatArgs, ScheduleArgs, ScheduleCommand, ScheduleDefinition};
use anyhow::{bail, Context};
use celeriac::beat::{
    arguments,
    django::{DjangoBeatTables, DjangoSync},
    send_options, static_schedule, Beat, BeatOptions, Crontab, DstAdjustment, PeriodicTask,
    Schedule, ScheduleStore, Solar, StoredTask,
};
use celeriac::clock;
use celeriac::config::Config;
use celeriac::producer::Producer;
use celeriac::worker::node_name::{check_node_name_template, expand_node_name, hostname};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::future::Future;

async fn store(config: &Config) -> anyhow::Result<ScheduleStore> {
    Ok(ScheduleStore::new(crate::open_database(config).await?))
}

async fn producer(config: &Config) -> anyhow::Result<Producer> {
    Producer::connect(config)
        .await
        .context("connecting to the broker")
}

/// `celeriac beat`: runs until SIGTERM/SIGINT.
pub async fn beat(config: Config, args: &BeatArgs) -> anyhow::Result<()> {
    let node_name = match &args.hostname {
        Some(template) => {
            check_node_name_template(template)?;
            expand_node_name(Some(template), &hostname())
        }
        None => embedded_beat_name(),
    };
    let store = store(&config).await?;
    run_beat(
        config,
        store,
        node_name,
        celeriac::worker::shutdown::termination_signal(),
    )
    .await
}

/// The node name of a beat started without `-n`.
pub fn embedded_beat_name() -> String {
    format!("beat@{}", hostname())
}

/// Syncs `beat_schedule` into `store` and runs a beat until `stop` resolves.
pub async fn run_beat(
    config: Config,
    store: ScheduleStore,
    node_name: String,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let django = if config.uses_django_beat() {
        Some(django_tables(&config).await?)
    } else {
        None
    };
    let changed = match &django {
        Some(tables) => django_static_entries(tables, &config).await?,
        None => static_schedule::sync(&store, &config)
            .await
            .context("writing beat_schedule into the database")?,
    };
    let producer = producer(&config).await?;
    if changed > 0 {
        producer.broker().beat_announce_change().await?;
    }
    let options = BeatOptions::from_config(&config, node_name);
    tracing::info!(
        node = %options.node_name,
        configured = config.beat_schedule.len(),
        changed,
        lease_timeout = ?options.lease_timeout,
        max_loop_interval = ?options.max_loop_interval,
        "beat: starting"
    );
    let mut beat = Beat::new(store, producer, options);
    if let Some(tables) = django {
        beat = beat.with_django(DjangoSync::new(tables));
    }
    let stats = beat.run(stop).await;
    tracing::info!(?stats, "beat: stopped");
    Ok(())
}

/// django-celery-beat's tables in the `database_url` database (`beat_scheduler = "django"`).
async fn django_tables(config: &Config) -> anyhow::Result<DjangoBeatTables> {
    DjangoBeatTables::open(&config.database_url)
        .await
        .context("opening django-celery-beat's tables")
}

/// What Celery's `DatabaseScheduler` does at start: the configured `beat_schedule` entries
/// written into Django's rows, and `celery.backend_cleanup` created when results expire.
async fn django_static_entries(
    tables: &DjangoBeatTables,
    config: &Config,
) -> anyhow::Result<usize> {
    let mut changed = 0;
    let configured = static_schedule::periodic_tasks(config)?;
    let (existing, _) = tables.list().await?;
    for task in configured {
        let known = existing.iter().find(|known| known.name == task.name);
        if known.is_none_or(|known| !celeriac::beat::django::same_definition(known, &task)) {
            tables.write(&task).await?;
            changed += 1;
        }
    }
    if config.result_expires().is_some() && tables.install_default_entries().await? {
        changed += 1;
    }
    Ok(changed)
}

/// `celeriac schedule …`; false when the command ran but found a problem worth a non-zero
/// exit.
pub async fn schedule(config: Config, args: &ScheduleArgs) -> anyhow::Result<bool> {
    let store = store(&config).await?;
    match &args.command {
        ScheduleCommand::List { json } => list(&store, *json).await?,
        ScheduleCommand::Add(definition) => {
            let task = definition_to_task(definition, None, &config)?;
            store.add(&task).await?;
            announce(&config).await;
            println!("added {}: {}", task.name, task.schedule.describe());
        }
        ScheduleCommand::Edit(definition) => {
            let stored = store.get(&definition.name).await?;
            let task = definition_to_task(definition, Some(stored.task), &config)?;
            store.update(&task).await?;
            announce(&config).await;
            println!("edited {}: {}", task.name, task.schedule.describe());
        }
        ScheduleCommand::Enable { name } | ScheduleCommand::Disable { name } => {
            let enable = matches!(args.command, ScheduleCommand::Enable { .. });
            store.set_enabled(name, enable).await?;
            announce(&config).await;
            println!("{} {name}", if enable { "enabled" } else { "disabled" });
        }
        ScheduleCommand::Delete { name } => {
            store.delete(name).await?;
            announce(&config).await;
            println!("deleted {name}");
        }
        ScheduleCommand::RunNow { name } => {
            let stored = store.get(name).await?;
            let producer = producer(&config).await?;
            let (args, kwargs) = arguments(&stored.task);
            let options = send_options(&stored.task, None, clock::now());
            let result = producer
                .send_task(&stored.task.task, args, kwargs, options)
                .await?;
            println!("{}", result.id);
        }
        ScheduleCommand::Next { name, count } => next(&store.get(name).await?, *count),
        ScheduleCommand::Import { django_url, .. } => {
            let url = django_url.as_deref().unwrap_or(&config.database_url);
            let tables = DjangoBeatTables::open(url).await?;
            let (tasks, refused) = tables.list().await?;
            let mut copied = 0;
            for task in &tasks {
                store.upsert(task).await?;
                copied += 1;
            }
            announce(&config).await;
            println!("imported {copied} periodic task(s) from django-celery-beat");
            for (name, reason) in &refused {
                eprintln!("not imported: {name}: {reason}");
            }
            return Ok(refused.is_empty());
        }
        ScheduleCommand::Export { django_url, .. } => {
            let url = django_url.as_deref().unwrap_or(&config.database_url);
            let tables = DjangoBeatTables::open(url).await?;
            let mut copied = 0;
            for stored in store.list().await? {
                tables.write(&stored.task).await?;
                copied += 1;
            }
            println!("exported {copied} periodic task(s) to django-celery-beat");
        }
        ScheduleCommand::Leader => {
            let producer = producer(&config).await?;
            match producer.broker().beat_leader().await? {
                Some(leader) => println!(
                    "{} (token {}, lease {:.1}s left)",
                    leader.owner,
                    leader.token,
                    leader.remaining.as_secs_f64()
                ),
                None => {
                    println!("no beat leads");
                    return Ok(false);
                }
            }
        }
        ScheduleCommand::Runs { name } => {
            store.get(name).await?;
            for run in store.runs(name).await? {
                println!(
                    "{}  {:<12}  {:>6} ms late  missed {}  {}",
                    iso(Some(run.slot)),
                    run.outcome,
                    run.lateness_ms,
                    run.missed,
                    run.task_id.unwrap_or_default()
                );
            }
        }
    }
    Ok(true)
}

/// Tells running beats to resync now; a failure only delays the edit to their next tick.
async fn announce(config: &Config) {
    let announced = match Producer::connect(config).await {
        Ok(producer) => producer
            .broker()
            .beat_announce_change()
            .await
            .map_err(|error| error.to_string()),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = announced {
        tracing::warn!(%error, "could not announce the change; beats apply it at their next tick");
    }
}

fn definition_to_task(
    definition: &ScheduleDefinition,
    existing: Option<PeriodicTask>,
    config: &Config,
) -> anyhow::Result<PeriodicTask> {
    let schedule = if let Some(crontab) = &definition.crontab {
        let timezone = definition.timezone.as_deref().unwrap_or(&config.timezone);
        Some(Schedule::Crontab(Crontab::parse_cron(crontab, timezone)?))
    } else if let Some(every) = &definition.every {
        Some(Schedule::Interval(every.parse()?))
    } else if let Some(at) = &definition.at {
        let at = DateTime::parse_from_rfc3339(at)
            .with_context(|| format!("at: {at:?} is not an RFC 3339 time"))?;
        Some(Schedule::Clocked {
            at: at.with_timezone(&Utc),
        })
    } else if let Some(event) = &definition.solar {
        Some(Schedule::Solar(Solar::parse(
            event,
            definition.latitude.as_deref().unwrap_or_default(),
            definition.longitude.as_deref().unwrap_or_default(),
        )?))
    } else {
        None
    };
    let mut task = match (existing, schedule) {
        (Some(mut task), schedule) => {
            if let Some(schedule) = schedule {
                task.one_off |= matches!(schedule, Schedule::Clocked { .. });
                task.schedule = schedule;
            }
            task
        }
        (None, Some(schedule)) => {
            let Some(name) = &definition.task else {
                bail!("task: required (--task NAME)")
            };
            PeriodicTask::new(definition.name.clone(), name.clone(), schedule)
        }
        (None, None) => bail!("schedule: required (--crontab, --every or --at)"),
    };
    if let Some(name) = &definition.task {
        task.task = name.clone();
    }
    if let Some(args) = &definition.args {
        task.args = serde_json::from_str(args).context("args: not valid JSON")?;
    }
    if let Some(kwargs) = &definition.kwargs {
        task.kwargs = serde_json::from_str(kwargs).context("kwargs: not valid JSON")?;
    }
    if definition.queue.is_some() {
        task.queue = definition.queue.clone();
    }
    if definition.priority.is_some() {
        task.priority = definition.priority;
    }
    if definition.expires.is_some() {
        task.expire_seconds = definition.expires;
    }
    if let Some(description) = &definition.description {
        task.description = description.clone();
    }
    task.one_off |= definition.one_off;
    task.validate()?;
    Ok(task)
}

fn iso(instant: Option<DateTime<Utc>>) -> String {
    instant.map_or_else(
        || "-".to_owned(),
        |instant| instant.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

async fn list(store: &ScheduleStore, as_json: bool) -> anyhow::Result<()> {
    let now = clock::now();
    let entries = store.list().await?;
    if !as_json {
        println!(
            "{:<24} {:<40} {:<7} {:<19} {:<19} {:>6} {:>6}",
            "NAME", "SCHEDULE", "ENABLED", "LAST RUN", "NEXT RUN", "TOTAL", "MISSED"
        );
    }
    for stored in entries {
        let next = next_run(&stored, now);
        let task = &stored.task;
        if as_json {
            let line = json!({
                "name": task.name, "task": task.task, "schedule": task.schedule,
                "description": task.schedule.describe(), "enabled": task.enabled,
                "last_run_at": task.last_run_at, "next_run_at": next,
                "total_run_count": task.total_run_count, "missed_count": stored.missed_count,
                "late_count": stored.late_count, "args": task.args, "kwargs": task.kwargs,
                "queue": task.queue, "exchange": task.exchange, "routing_key": task.routing_key,
                "headers": task.headers, "priority": task.priority, "expires": task.expires,
                "expire_seconds": task.expire_seconds, "one_off": task.one_off,
                "start_time": task.start_time, "notes": task.description,
            });
            println!("{line}");
        } else {
            println!(
                "{:<24} {:<40} {:<7} {:<19} {:<19} {:>6} {:>6}",
                task.name,
                task.schedule.describe(),
                if task.enabled { "yes" } else { "no" },
                iso(task.last_run_at),
                iso(next),
                task.total_run_count,
                stored.missed_count
            );
        }
    }
    Ok(())
}

/// The next slot as beat would see it (after the anchor of a resumed entry); the dashboard
/// shows the same.
pub(crate) fn next_run(stored: &StoredTask, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let decision = celeriac::beat::plan(
        &stored.task,
        stored.anchor_at,
        now,
        celeriac::beat::CatchUp::Once,
        chrono::TimeDelta::zero(),
    );
    decision.fire.first().copied().or(decision.next)
}

fn next(stored: &StoredTask, count: usize) {
    let now = clock::now();
    match &stored.task.schedule {
        Schedule::Crontab(crontab) => {
            let zone = crontab.timezone();
            let from = next_run(stored, now).unwrap_or(now) - chrono::TimeDelta::milliseconds(1);
            for run in crontab.upcoming(from, count) {
                let flag = match run.adjustment {
                    DstAdjustment::Normal => "",
                    DstAdjustment::ShiftedByGap => "  (DST gap: shifted to the end of the gap)",
                    DstAdjustment::AmbiguousFirst => "  (DST overlap: runs once, first occurrence)",
                };
                println!(
                    "{}  {}{flag}",
                    run.at.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S %Z"),
                    iso(Some(run.at))
                );
            }
        }
        schedule => {
            let mut at = next_run(stored, now);
            for _ in 0..count {
                let Some(instant) = at else { break };
                println!("{} UTC", iso(Some(instant)));
                at = if stored.task.one_off {
                    None
                } else {
                    schedule.next_after(instant)
                };
            }
        }
    }
}
