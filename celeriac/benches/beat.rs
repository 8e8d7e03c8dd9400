//! Crontab speed for a beat with 100,000 entries, ours against Python Celery 5.4's `crontab` in
//! the same run (`cargo bench -p celeriac --bench beat`). Prints a table with the ratios.
//!
//! Parse = build the crontab from its five field texts. Next run = the first run after a
//! `last_run_at`: our `Crontab::next_after`, Celery's `crontab.remaining_delta` added to
//! `last_run_at` (what `is_due` computes). Celery's crontab has no zone of its own, so the
//! comparison is in UTC; our cost in zones with DST is an extra row. Each side makes one untimed
//! pass over the next runs before the timed one.

use celeriac::beat::{Crontab, CrontabSpec};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

const ENTRIES: usize = 100_000;

/// Field texts like the ones people write: `*`, a value, a list, a range, a step.
fn field(number: usize, salt: usize, choices: &[&'static str]) -> String {
    choices[(number.wrapping_mul(2_654_435_761) ^ salt) % choices.len()].to_owned()
}

fn specs() -> Vec<CrontabSpec> {
    (0..ENTRIES)
        .map(|number| CrontabSpec {
            minute: field(number, 1, &["0", "*/15", "5,35", "*", "30", "0-30/10"]),
            hour: field(number, 2, &["*", "9", "*/2", "8-18", "0,12", "3"]),
            day_of_week: field(number, 3, &["*", "*", "1-5", "mon,fri", "0"]),
            day_of_month: field(number, 4, &["*", "*", "*", "1", "1-7", "15"]),
            month_of_year: field(number, 5, &["*", "*", "*", "*/3", "1"]),
            timezone: "UTC".into(),
        })
        .collect()
}

fn last_runs() -> Vec<DateTime<Utc>> {
    let start = DateTime::<Utc>::from_timestamp(1_735_689_600, 0).expect("2025-01-01"); // 2025
    (0..ENTRIES)
        .map(|number| start + TimeDelta::seconds((number as i64 * 7_919) % (365 * 86_400)))
        .collect()
}

fn per_second(count: usize, seconds: f64) -> f64 {
    count as f64 / seconds
}

fn python_rates(specs: &[CrontabSpec], last_runs: &[DateTime<Utc>]) -> Option<(f64, f64)> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-interop/bin/python");
    if !python.exists() {
        return None;
    }
    let input =
        std::env::temp_dir().join(format!("celeriac-bench-beat-{}.json", std::process::id()));
    let entries: Vec<_> = specs
        .iter()
        .zip(last_runs)
        .map(|(spec, last_run_at)| {
            json!([
                spec.minute,
                spec.hour,
                spec.day_of_week,
                spec.day_of_month,
                spec.month_of_year,
                last_run_at.to_rfc3339()
            ])
        })
        .collect();
    std::fs::write(&input, serde_json::to_vec(&entries).ok()?).ok()?;
    let script = format!(
        r#"
import datetime, json, time
from celery import Celery
from celery.schedules import crontab
app = Celery("bench", set_as_current=False)
app.conf.timezone = "UTC"
entries = json.load(open({path:?}))
last_runs = [datetime.datetime.fromisoformat(entry[5]) for entry in entries]
start = time.perf_counter()
schedules = [crontab(minute=m, hour=h, day_of_week=w, day_of_month=d, month_of_year=y, app=app)
             for m, h, w, d, y, _ in entries]
parse = len(entries) / (time.perf_counter() - start)
def next_runs():
    for schedule, last_run_at in zip(schedules, last_runs):
        schedule.nowfun = lambda: last_run_at
        begin, delta, _now = schedule.remaining_delta(last_run_at)
        begin + delta
next_runs()
start = time.perf_counter()
next_runs()
next_run = len(entries) / (time.perf_counter() - start)
print(parse, next_run)
"#,
        path = input.display().to_string()
    );
    let output = Command::new(python).arg("-c").arg(script).output().ok()?;
    let _removed = std::fs::remove_file(&input);
    let text = String::from_utf8_lossy(&output.stdout);
    let mut numbers = text
        .split_whitespace()
        .filter_map(|word| word.parse::<f64>().ok());
    Some((numbers.next()?, numbers.next()?))
}

#[allow(clippy::print_stdout, reason = "a benchmark prints its table")]
fn main() {
    let specs = specs();
    let last_runs = last_runs();

    let start = Instant::now();
    let crontabs: Vec<Crontab> = specs
        .iter()
        .map(|spec| Crontab::new(black_box(spec)).expect("the benchmark's crontabs are valid"))
        .collect();
    let parse = per_second(ENTRIES, start.elapsed().as_secs_f64());

    // One untimed pass first (both sides), so neither pays for cold caches.
    for (crontab, last_run_at) in crontabs.iter().zip(&last_runs) {
        black_box(crontab.next_after(black_box(*last_run_at)));
    }
    let start = Instant::now();
    for (crontab, last_run_at) in crontabs.iter().zip(&last_runs) {
        black_box(crontab.next_after(black_box(*last_run_at)));
    }
    let next_utc = per_second(ENTRIES, start.elapsed().as_secs_f64());

    let zones = [
        chrono_tz::Europe::Berlin,
        chrono_tz::America::New_York,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::Pacific::Chatham,
    ];
    let zoned: Vec<Crontab> = crontabs
        .iter()
        .enumerate()
        .map(|(number, crontab)| crontab.with_timezone(zones[number % zones.len()]))
        .collect();
    let start = Instant::now();
    for (crontab, last_run_at) in zoned.iter().zip(&last_runs) {
        black_box(crontab.next_after(black_box(*last_run_at)));
    }
    let next_zoned = per_second(ENTRIES, start.elapsed().as_secs_f64());

    let python = python_rates(&specs, &last_runs);
    println!("beat benchmark, {ENTRIES} crontabs, one core");
    println!("| operation | celeriac (crontabs/s) | Celery 5.4 (crontabs/s) | ratio |");
    println!("|---|---:|---:|---:|");
    for (name, ours, theirs) in [
        ("parse", parse, python.map(|rates| rates.0)),
        ("next run, UTC", next_utc, python.map(|rates| rates.1)),
        ("next run, DST zones", next_zoned, None),
    ] {
        match (theirs, python) {
            (Some(theirs), _) => println!(
                "| {name} | {ours:.0} | {theirs:.0} | {:.1}× |",
                ours / theirs
            ),
            (None, Some(_)) => {
                println!("| {name} | {ours:.0} | – (no zones in Celery's crontab) | – |")
            }
            (None, None) => {
                println!("| {name} | {ours:.0} | n/a (run scripts/python-venv.sh) | – |")
            }
        }
    }
}
