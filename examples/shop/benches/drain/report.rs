//! The Markdown tables the drain benchmark prints: drain per results setting with ratios,
//! Redis commands per task by name (the round-trip profile), enqueue, and the targets.
//!
//! A ratio is how many times better celeriac does: its rate over Celery's, or Celery's cost
//! (CPU, memory, commands) over ours.

use crate::drain::{DrainMeasurement, WorkerKind};
use crate::enqueue::EnqueueMeasurement;
use crate::numbers::{ratio, thousands};
use std::collections::BTreeSet;
use std::fmt::Write;

/// One drain run as reported.
#[derive(Debug, Clone)]
pub(crate) struct DrainRow {
    /// Which worker.
    pub(crate) kind: WorkerKind,
    /// Results on?
    pub(crate) results: bool,
    /// What it measured.
    pub(crate) measurement: DrainMeasurement,
}

/// (label, value, higher-is-better) rows of one measurement.
fn metrics(measurement: &DrainMeasurement) -> Vec<(&'static str, f64, bool)> {
    vec![
        ("messages pre-filled (N)", measurement.messages as f64, true),
        ("drain, tasks/s", measurement.rate(), true),
        (
            "worker CPU, µs/task",
            measurement.per_task_micros(measurement.worker_cpu),
            false,
        ),
        (
            "worker peak RSS, MB",
            measurement.peak_rss_kib as f64 / 1024.0,
            false,
        ),
        (
            "Redis commands/task",
            measurement.commands_per_task(),
            false,
        ),
        (
            "redis-server CPU, µs/task",
            measurement.per_task_micros(measurement.redis_cpu),
            false,
        ),
    ]
}

fn format_value(label: &str, value: f64) -> String {
    if label.contains("RSS") || label.contains("commands") {
        format!("{value:.1}")
    } else {
        thousands(value)
    }
}

fn drain_table(out: &mut String, rows: &[&DrainRow]) {
    let pairs: Vec<(&DrainRow, &DrainRow)> = rows
        .chunks(2)
        .filter_map(|pair| match pair {
            [ours, theirs] => Some((*ours, *theirs)),
            _ => None,
        })
        .collect();
    let mut header = String::from("| metric |");
    let mut rule = String::from("|---|");
    for (ours, theirs) in &pairs {
        let _ = write!(
            header,
            " {} | {} | ratio |",
            ours.kind.label(),
            theirs.kind.label()
        );
        rule.push_str("---:|---:|---:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    let labels: Vec<_> = metrics(&rows[0].measurement)
        .into_iter()
        .map(|(label, _, higher)| (label, higher))
        .collect();
    for (index, (label, higher_is_better)) in labels.iter().enumerate() {
        let _ = write!(out, "| {label} |");
        for (ours, theirs) in &pairs {
            let our_value = metrics(&ours.measurement)[index].1;
            let their_value = metrics(&theirs.measurement)[index].1;
            let advantage = if index == 0 {
                String::new()
            } else if *higher_is_better {
                ratio(our_value / their_value)
            } else {
                ratio(their_value / our_value)
            };
            let _ = write!(
                out,
                " {} | {} | {advantage} |",
                format_value(label, our_value),
                format_value(label, their_value)
            );
        }
        out.push('\n');
    }
}

fn commands_table(out: &mut String, rows: &[&DrainRow]) {
    let names: BTreeSet<&String> = rows
        .iter()
        .flat_map(|row| row.measurement.commands.keys())
        .collect();
    let _ = write!(out, "| command |");
    for row in rows {
        let _ = write!(out, " {} |", row.kind.label());
    }
    let _ = writeln!(out, "\n|---|{}", "---:|".repeat(rows.len()));
    for name in names {
        let per_task: Vec<f64> = rows
            .iter()
            .map(|row| {
                row.measurement.commands.get(name).copied().unwrap_or(0) as f64
                    / row.measurement.window_tasks as f64
            })
            .collect();
        if per_task.iter().all(|value| *value < 0.005) {
            continue;
        }
        let _ = write!(out, "| {name} |");
        for value in per_task {
            let _ = write!(out, " {value:.2} |");
        }
        out.push('\n');
    }
}

fn enqueue_table(out: &mut String, enqueues: &[(String, EnqueueMeasurement)]) {
    let baseline = enqueues
        .iter()
        .find(|(label, _)| label.contains("apply_async"))
        .map(|(_, measurement)| measurement.rate)
        .unwrap_or(f64::NAN);
    let _ = writeln!(
        out,
        "| producer | tasks | tasks/s | producer CPU, µs/task | Redis commands/task | redis-server CPU, µs/task | vs apply_async |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for (label, measurement) in enqueues {
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {:.1} | {:.2} | {:.1} | {} |",
            thousands(measurement.tasks as f64),
            thousands(measurement.rate),
            measurement.cpu_micros_per_task,
            measurement.commands_per_task,
            measurement.redis_micros_per_task,
            ratio(measurement.rate / baseline)
        );
    }
}

fn targets(out: &mut String, drains: &[DrainRow], enqueues: &[(String, EnqueueMeasurement)]) {
    let best_rate = |results: bool| {
        drains
            .iter()
            .filter(|row| row.results == results && !row.kind.is_celery())
            .map(|row| row.measurement.rate())
            .fold(0.0, f64::max)
    };
    let worst_rss = drains
        .iter()
        .filter(|row| !row.kind.is_celery())
        .map(|row| row.measurement.peak_rss_kib as f64 / 1024.0)
        .fold(0.0, f64::max);
    let batched = enqueues
        .iter()
        .find(|(label, _)| label.contains("send_batch"))
        .map(|(_, measurement)| measurement.rate)
        .unwrap_or(f64::NAN);
    let verdict = |met: bool| if met { "met" } else { "**missed**" };
    let _ = writeln!(
        out,
        "| target | measured (best celeriac run) | |\n|---|---:|---|"
    );
    for (label, value, met) in [
        (
            "drain ≥ 20,000 tasks/s, results off",
            best_rate(false),
            best_rate(false) >= 20_000.0,
        ),
        (
            "drain ≥ 8,000 tasks/s, results on",
            best_rate(true),
            best_rate(true) >= 8_000.0,
        ),
        (
            "enqueue ≥ 100,000 tasks/s, batched",
            batched,
            batched >= 100_000.0,
        ),
    ] {
        let _ = writeln!(out, "| {label} | {} | {} |", thousands(value), verdict(met));
    }
    let _ = writeln!(
        out,
        "| worker RSS ≤ 20 MB (worst celeriac run) | {worst_rss:.1} MB | {} |",
        verdict(worst_rss <= 20.0)
    );
}

/// The whole report.
pub(crate) fn render(
    quick: bool,
    drains: &[DrainRow],
    enqueues: &[(String, EnqueueMeasurement)],
) -> String {
    let mut out = String::new();
    if quick {
        out.push_str("Quick run (--quick): small N, figures are rough.\n\n");
    }
    for results in [false, true] {
        let rows: Vec<&DrainRow> = drains.iter().filter(|row| row.results == results).collect();
        if rows.is_empty() {
            continue;
        }
        let state = if results { "on" } else { "off" };
        let _ = writeln!(out, "### Drain, results {state}\n");
        drain_table(&mut out, &rows);
        let _ = writeln!(
            out,
            "\nRedis commands per task by name, results {state} (script-internal calls included):\n"
        );
        commands_table(&mut out, &rows);
        out.push('\n');
    }
    let _ = writeln!(out, "### Enqueue\n");
    enqueue_table(&mut out, enqueues);
    let _ = writeln!(out, "\n### Targets\n");
    targets(&mut out, drains, enqueues);
    out
}
