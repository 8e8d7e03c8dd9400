//! Periodic tasks from the configuration (`beat_schedule`), Celery's static schedule, turned
//! into database entries at beat start.
//!
//! The sync writes an entry only when its definition differs from the stored one, so starting
//! several beats does not look like an edit, and it keeps the stored `enabled` flag and run
//! bookkeeping: a configured entry someone disabled with `celeriac schedule disable` stays
//! disabled across restarts. Entries added through the API or CLI are never touched; removing
//! an entry from the configuration does not delete it (use `celeriac schedule delete`).

use super::{
    Crontab, Interval, IntervalPeriod, PeriodicTask, Schedule, ScheduleStore, Solar, StoreError,
};
use crate::config::{invalid, BeatScheduleEntry, Config, ConfigError};
use serde_json::Value;

/// The configured entries as periodic tasks, or the first invalid one (the error names
/// `beat_schedule.<entry>.<field>`).
pub fn periodic_tasks(config: &Config) -> Result<Vec<PeriodicTask>, ConfigError> {
    config
        .beat_schedule
        .iter()
        .map(|(name, entry)| periodic_task(name, entry, &config.timezone))
        .collect()
}

/// Parses a schedule as the configuration and the CLI write it: a number of seconds, an
/// interval text (`30s`, `5m`, `2h`, `1d`), a crontab in cron's field order, or Celery's
/// `solar(event, lat, lon)` as a table `{ solar = "sunset", latitude = 48.8566, longitude =
/// 2.3522 }`.
pub fn parse_schedule(value: &Value, timezone: &str) -> Result<Schedule, String> {
    match value {
        Value::Number(number) => {
            let seconds = number
                .as_f64()
                .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
                .ok_or_else(|| format!("{number} is not a positive number of seconds"))?;
            let interval = if seconds.fract() == 0.0 {
                Interval::new(seconds as u64, IntervalPeriod::Seconds)
            } else {
                Interval::new((seconds * 1e6).round() as u64, IntervalPeriod::Microseconds)
            };
            interval
                .map(Schedule::Interval)
                .map_err(|error| error.to_string())
        }
        Value::String(text) => {
            let fields = text.split_whitespace().count();
            if fields == 1 && !text.trim_start().starts_with('@') {
                return text
                    .parse::<Interval>()
                    .map(Schedule::Interval)
                    .map_err(|error| error.to_string());
            }
            Crontab::parse_cron(text, timezone)
                .map(Schedule::Crontab)
                .map_err(|error| error.to_string())
        }
        Value::Object(table) if table.contains_key("solar") => {
            let text = |key: &str| match table.get(key) {
                Some(Value::String(text)) => Ok(text.clone()),
                Some(Value::Number(number)) => Ok(number.to_string()),
                Some(other) => Err(format!("{key}: {other} is not a number")),
                None => Err(format!("{key}: required with solar")),
            };
            if let Some(unknown) = table
                .keys()
                .find(|key| !["solar", "latitude", "longitude"].contains(&key.as_str()))
            {
                return Err(format!(
                    "{unknown}: not a solar option (solar, latitude, longitude)"
                ));
            }
            Solar::parse(&text("solar")?, &text("latitude")?, &text("longitude")?)
                .map(Schedule::Solar)
                .map_err(|error| error.to_string())
        }
        other => Err(format!(
            "{other} is not a crontab text, an interval text, a number of seconds or a solar \
             table ({{ solar = \"sunset\", latitude = 48.8566, longitude = 2.3522 }})"
        )),
    }
}

fn periodic_task(
    name: &str,
    entry: &BeatScheduleEntry,
    timezone: &str,
) -> Result<PeriodicTask, ConfigError> {
    let field = |field: &str| format!("beat_schedule.{name}.{field}");
    let timezone = entry.timezone.as_deref().unwrap_or(timezone);
    let schedule = parse_schedule(&entry.schedule, timezone)
        .map_err(|reason| invalid(&field("schedule"), &entry.schedule.to_string(), &reason))?;
    let mut task = PeriodicTask::new(name, entry.task.clone(), schedule);
    task.args = Value::Array(entry.args.clone());
    task.kwargs = Value::Object(entry.kwargs.clone());
    task.queue = entry.options.queue.clone();
    task.priority = entry.options.priority;
    task.expire_seconds = entry.options.expires;
    task.description = "from beat_schedule".to_owned();
    task.validate().map_err(|error| {
        invalid(
            &field(error.field()),
            &Value::from(name).to_string(),
            &error.to_string(),
        )
    })?;
    Ok(task)
}

/// Writes the configured entries into the store (module docs); returns how many changed.
pub async fn sync(store: &ScheduleStore, config: &Config) -> Result<usize, StoreError> {
    let tasks = periodic_tasks(config).map_err(|error| StoreError::Corrupt {
        name: "beat_schedule".to_owned(),
        reason: error.to_string(),
    })?;
    let mut changed = 0;
    for mut task in tasks {
        match store.get(&task.name).await {
            Ok(stored) => {
                task.enabled = stored.task.enabled;
                task.last_run_at = stored.task.last_run_at;
                task.total_run_count = stored.task.total_run_count;
                task.date_changed = stored.task.date_changed;
                if stored.task != task {
                    store.update(&task).await?;
                    changed += 1;
                }
            }
            Err(StoreError::NotFound { .. }) => match store.add(&task).await {
                Ok(()) => changed += 1,
                // Another beat (or `serve`) starting at the same moment wrote this configured
                // entry first, from the same configuration: nothing is left to do, and a first
                // start of several processes must not fail on it.
                Err(StoreError::Exists { .. }) => {}
                Err(error) => return Err(error),
            },
            Err(error) => return Err(error),
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_read_as_celery_users_write_them() {
        let every = parse_schedule(&Value::from(30), "UTC").unwrap();
        assert_eq!(every.describe(), "Every 30 seconds");
        let text = parse_schedule(&Value::from("5m"), "UTC").unwrap();
        assert_eq!(text.describe(), "Every 5 minutes");
        let crontab = parse_schedule(&Value::from("*/5 * * * *"), "Europe/Berlin").unwrap();
        assert!(matches!(crontab, Schedule::Crontab(_)));
        let error = parse_schedule(&Value::from("0 24 * * *"), "UTC").unwrap_err();
        assert!(error.starts_with("hour: 24"), "{error}");
        let sunset =
            serde_json::json!({"solar": "sunset", "latitude": 48.8566, "longitude": 2.3522});
        let solar = parse_schedule(&sunset, "UTC").unwrap();
        assert_eq!(solar.describe(), "Sunset at 48.856600, 2.352200");
        let far_south = serde_json::json!({"solar": "sunset", "latitude": -91, "longitude": 0});
        let error = parse_schedule(&far_south, "UTC").unwrap_err();
        assert_eq!(error, "latitude: -91 is out of range (-90 to 90)");
        let typo = serde_json::json!({"solar": "sunset", "lat": 1, "longitude": 0});
        let error = parse_schedule(&typo, "UTC").unwrap_err();
        assert_eq!(
            error,
            "lat: not a solar option (solar, latitude, longitude)"
        );
    }

    #[test]
    fn configured_entries_become_periodic_tasks() {
        let config = Config::from_sources(
            Some(
                r#"
[beat_schedule.cleanup]
task = "carts.cleanup_expired_carts"
schedule = "5m"
options = { queue = "celery", expires = 60 }

[beat_schedule.report]
task = "demo.add"
schedule = "0 7 * * mon-fri"
args = [2, 3]
timezone = "Europe/Berlin"

[beat_schedule.lights]
task = "home.lights_on"
schedule = { solar = "dusk_civil", latitude = 59.3293, longitude = 18.0686 }
"#,
            ),
            Vec::new(),
        )
        .unwrap();
        let tasks = periodic_tasks(&config).unwrap();
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks[0].name, "cleanup");
        assert_eq!(tasks[0].expire_seconds, Some(60));
        assert_eq!(tasks[1].name, "lights");
        assert_eq!(
            tasks[1].schedule.describe(),
            "Civil dusk at 59.329300, 18.068600"
        );
        assert_eq!(tasks[2].args, serde_json::json!([2, 3]));
    }

    #[test]
    fn a_bad_entry_names_its_field() {
        let error = Config::from_sources(
            Some("[beat_schedule.bad]\ntask = \"demo.add\"\nschedule = \"0 24 * * *\"\n"),
            Vec::new(),
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("beat_schedule.bad.schedule"), "{text}");
        assert!(text.contains("hour: 24 is out of range 0-23"), "{text}");
    }
}
