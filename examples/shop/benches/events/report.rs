//! The Markdown tables the events benchmark prints: ingest per offered rate (ours beside
//! Flower, with the ratio), the highest rate each took without loss, and memory per retained
//! task.
//!
//! A ratio is how many times better celeriac does: its ingest rate over Flower's, or Flower's
//! memory over ours.

use crate::consumer::Kind;
use crate::numbers::{ratio, thousands};
use crate::Run;
use std::fmt::Write;

/// One offered rate, both monitors.
pub(crate) struct StepRow {
    pub(crate) offered: u64,
    pub(crate) ours: Run,
    pub(crate) flower: Run,
}

/// One monitor's memory run.
pub(crate) struct MemoryRow {
    pub(crate) kind: Kind,
    pub(crate) tasks: u64,
    pub(crate) run: Run,
}

fn seen(run: &Run) -> String {
    format!(
        "{:.1} % (+{:.1} s)",
        100.0 * run.seen as f64 / run.expected.max(1) as f64,
        run.catch_up.as_secs_f64()
    )
}

pub(crate) fn render(quick: bool, seconds: u64, steps: &[StepRow], memory: &[MemoryRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Event ingest{} — each rate offered for {seconds} s, max_tasks 10,000\n",
        if quick { " (quick)" } else { "" }
    );
    let _ = writeln!(
        out,
        "| offered, events/s | celeriac ingest, events/s | celeriac applied (catch-up) | Flower 2.2 ingest, events/s | Flower applied (catch-up) | ratio |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|");
    for step in steps {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            thousands(step.offered as f64),
            thousands(step.ours.ingest_rate()),
            seen(&step.ours),
            thousands(step.flower.ingest_rate()),
            seen(&step.flower),
            ratio(step.ours.ingest_rate() / step.flower.ingest_rate())
        );
    }
    let best = |pick: fn(&StepRow) -> &Run| {
        steps
            .iter()
            .filter(|step| pick(step).lossless())
            .map(|step| step.offered)
            .max()
            .unwrap_or(0)
    };
    let (ours_best, flower_best) = (best(|step| &step.ours), best(|step| &step.flower));
    let _ = writeln!(
        out,
        "\nCatch-up is the time after publishing ended until the last event was applied.\nHighest offered rate taken in full and on time (every task event applied, caught up within 1 s): celeriac {} events/s, Flower {} events/s ({}).",
        thousands(ours_best as f64),
        thousands(flower_best as f64),
        ratio(ours_best as f64 / flower_best as f64)
    );
    if let Some(step) = steps.last() {
        let dropped = step.ours.ours["dropped"].as_u64().unwrap_or(0);
        let _ = writeln!(
            out,
            "At {} events/s our receiver reported {dropped} events dropped by its bounded buffer.",
            thousands(step.offered as f64)
        );
    }

    let _ = writeln!(out, "\n### Memory per retained task\n");
    let _ = writeln!(out, "| metric | celeriac Monitor | Flower 2.2 | ratio |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    let find = |kind: Kind| memory.iter().find(|row| row.kind == kind);
    if let (Some(ours), Some(flower)) = (find(Kind::Ours), find(Kind::Flower)) {
        let per_task = |row: &MemoryRow| {
            (row.run.rss_after_kib.saturating_sub(row.run.rss_idle_kib) as f64 * 1024.0)
                / row.tasks as f64
        };
        let _ = writeln!(
            out,
            "| tasks retained | {} | {} |  |",
            thousands(ours.tasks as f64),
            thousands(flower.tasks as f64)
        );
        let _ = writeln!(
            out,
            "| task events applied | {} | {} |  |",
            thousands(ours.run.seen as f64),
            thousands(flower.run.seen as f64)
        );
        let _ = writeln!(
            out,
            "| RSS growth per task, bytes | {} | {} | {} |",
            thousands(per_task(ours)),
            thousands(per_task(flower)),
            ratio(per_task(flower) / per_task(ours))
        );
        let _ = writeln!(
            out,
            "| RSS idle → after, MB | {:.1} → {:.1} | {:.1} → {:.1} | {} |",
            ours.run.rss_idle_kib as f64 / 1024.0,
            ours.run.rss_after_kib as f64 / 1024.0,
            flower.run.rss_idle_kib as f64 / 1024.0,
            flower.run.rss_after_kib as f64 / 1024.0,
            ratio(flower.run.rss_after_kib as f64 / ours.run.rss_after_kib as f64)
        );
        let estimate = ours.run.ours["task_bytes"].as_f64().unwrap_or(f64::NAN) / ours.tasks as f64;
        let _ = writeln!(
            out,
            "| state's own estimate per task, bytes | {} | n/a |  |",
            thousands(estimate)
        );
    }
    out
}
