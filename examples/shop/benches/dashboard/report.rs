//! The Markdown tables the dashboard benchmark prints: the live load (server CPU and memory,
//! what each client read, event-to-browser latency against the 500 ms target), page times
//! against the 50 ms target, and the WASM bundle against 500 KB gzipped.

use std::fmt::Write;

use crate::flower::FlowerFigures;

/// The load run's figures.
pub(crate) struct LoadFigures {
    pub(crate) clients: usize,
    pub(crate) offered_rate: f64,
    pub(crate) published_events: u64,
    pub(crate) publish_seconds: f64,
    /// Cores busy (CPU seconds per second).
    pub(crate) server_cpu_idle: f64,
    pub(crate) server_cpu_load: f64,
    pub(crate) redis_cpu_load: f64,
    pub(crate) rss_idle_kib: u64,
    pub(crate) rss_peak_kib: u64,
    pub(crate) sse_events_per_client: f64,
    pub(crate) sse_bytes_per_client_per_second: f64,
    pub(crate) markers_expected: u64,
    pub(crate) markers_seen: u64,
    pub(crate) latency_p50: f64,
    pub(crate) latency_p95: f64,
    pub(crate) latency_p99: f64,
    pub(crate) latency_max: f64,
}

/// One page's load times, in seconds.
pub(crate) struct PageRow {
    pub(crate) path: String,
    pub(crate) bytes: usize,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
}

fn milliseconds(seconds: f64) -> String {
    if seconds.is_finite() {
        format!("{:.1} ms", seconds * 1000.0)
    } else {
        "n/a".to_owned()
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn ratio(theirs: f64, ours: f64) -> String {
    let value = theirs / ours;
    if value.is_finite() && value >= 0.1 {
        format!("{value:.1}×")
    } else if value.is_finite() && value > 0.0 {
        format!("{value:.3}×")
    } else {
        "n/a".to_owned()
    }
}

pub(crate) fn render(
    quick: bool,
    load: &LoadFigures,
    pages: &[PageRow],
    flower: Option<&FlowerFigures>,
    bundle: Option<(u64, u64)>,
    (history_fell_behind, slow_statements): (usize, usize),
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Dashboard: {} live clients while {:.0} events/s flow{}\n",
        load.clients,
        load.offered_rate,
        if quick { " (quick run)" } else { "" }
    );
    let _ = writeln!(
        out,
        "{} events published in {:.1} s ({:.0}/s).\n",
        load.published_events,
        load.publish_seconds,
        load.published_events as f64 / load.publish_seconds.max(1e-9)
    );
    let _ = writeln!(out, "| measure | value |\n|---|---|");
    let _ = writeln!(
        out,
        "| server CPU, clients connected, idle | {:.1} % of a core |",
        load.server_cpu_idle * 100.0
    );
    let _ = writeln!(
        out,
        "| server CPU under load | {:.0} % of a core |",
        load.server_cpu_load * 100.0
    );
    let _ = writeln!(
        out,
        "| Redis CPU under load | {:.0} % of a core |",
        load.redis_cpu_load * 100.0
    );
    let _ = writeln!(
        out,
        "| server RSS idle → peak | {:.1} → {:.1} MiB |",
        load.rss_idle_kib as f64 / 1024.0,
        load.rss_peak_kib as f64 / 1024.0
    );
    let _ = writeln!(
        out,
        "| SSE events per client | {:.0} ({:.1}/s) |",
        load.sse_events_per_client,
        load.sse_events_per_client / load.publish_seconds.max(1e-9)
    );
    let _ = writeln!(
        out,
        "| SSE bytes per client | {:.0} KiB/s |",
        load.sse_bytes_per_client_per_second / 1024.0
    );
    let _ = writeln!(
        out,
        "| markers seen (all clients) | {} of {} |",
        load.markers_seen, load.markers_expected
    );
    let _ = writeln!(
        out,
        "| event → client p50 / p95 | {} / {} |",
        milliseconds(load.latency_p50),
        milliseconds(load.latency_p95)
    );
    let _ = writeln!(
        out,
        "| event → client p99 (target ≤ 500 ms) | {} ({}) |",
        milliseconds(load.latency_p99),
        verdict(load.latency_p99 <= 0.5)
    );
    let _ = writeln!(
        out,
        "| event → client max | {} |",
        milliseconds(load.latency_max)
    );
    let _ = writeln!(
        out,
        "| server log: history recorder fell behind / SQL statements over 1 s | {history_fell_behind} / {slow_statements} |\n"
    );

    let _ = writeln!(
        out,
        "### Pages (server-rendered, time to last byte on localhost, 50 loads each)\n"
    );
    let _ = writeln!(
        out,
        "| page | bytes | p50 | p99 | target ≤ 50 ms |\n|---|---|---|---|---|"
    );
    for page in pages {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            page.path,
            page.bytes,
            milliseconds(page.p50),
            milliseconds(page.p99),
            verdict(page.p50 <= 0.05)
        );
    }
    out.push('\n');
    if let Some(flower) = flower {
        render_flower(&mut out, load, pages, flower);
    }
    match bundle {
        Some((raw, gzipped)) => {
            let _ = writeln!(
                out,
                "WASM bundle in target/site/pkg: {:.0} KB, **{:.0} KB gzipped** (target ≤ 500 KB: {}).",
                raw as f64 / 1000.0,
                gzipped as f64 / 1000.0,
                verdict(gzipped <= 500_000)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "No WASM bundle in target/site/pkg: run scripts/build-site.sh --release first."
            );
        }
    }
    out
}

/// Celeriac beside Flower under the same stream; a ratio is how many times better Celeriac
/// does (Flower's figure over ours, or ours over Flower's for counts).
fn render_flower(out: &mut String, load: &LoadFigures, pages: &[PageRow], flower: &FlowerFigures) {
    let _ = writeln!(
        out,
        "### Beside Flower 2.2 (same Redis, same stream; Flower's viewers poll every 250 ms)\n"
    );
    let _ = writeln!(
        out,
        "| measure | celeriac | Flower 2.2 | ratio |\n|---|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| server CPU under load | {:.0} % | {:.0} % | {} |",
        load.server_cpu_load * 100.0,
        flower.cpu_load * 100.0,
        ratio(flower.cpu_load, load.server_cpu_load)
    );
    let _ = writeln!(
        out,
        "| RSS idle → peak | {:.1} → {:.1} MiB | {:.1} → {:.1} MiB | {} |",
        load.rss_idle_kib as f64 / 1024.0,
        load.rss_peak_kib as f64 / 1024.0,
        flower.rss_idle_kib as f64 / 1024.0,
        flower.rss_peak_kib as f64 / 1024.0,
        ratio(flower.rss_peak_kib as f64, load.rss_peak_kib as f64)
    );
    let _ = writeln!(
        out,
        "| markers seen by the viewers | {} of {} | {} of {} | |",
        load.markers_seen, load.markers_expected, flower.markers_seen, flower.markers_expected
    );
    let _ = writeln!(
        out,
        "| event → viewer p50 | {} | {} | {} |",
        milliseconds(load.latency_p50),
        milliseconds(flower.latency_p50),
        ratio(flower.latency_p50, load.latency_p50)
    );
    let _ = writeln!(
        out,
        "| event → viewer p99 | {} | {} | {} |",
        milliseconds(load.latency_p99),
        milliseconds(flower.latency_p99),
        ratio(flower.latency_p99, load.latency_p99)
    );
    let _ = writeln!(
        out,
        "| Flower polls: answered, failed, p50 / p99 | | {}, {}, {} / {} | |\n",
        flower.polls,
        flower.poll_failures,
        milliseconds(flower.poll_p50),
        milliseconds(flower.poll_p99)
    );
    let _ = writeln!(
        out,
        "Pages after the load (p50 / p99 of 50 loads):\n\n| page | celeriac | Flower 2.2 page | Flower 2.2 | ratio (p50) |\n|---|---|---|---|---|"
    );
    let pairs = [
        ("/", "/"),
        ("/tasks", "/tasks"),
        ("/api/tasks?limit=100", "/api/tasks?limit=100"),
        ("/tasks/bench-marker-", "/task/bench-marker-"),
    ];
    for (ours_path, flower_path) in pairs {
        // A task page is the newest marker's, whose number differs between the two runs.
        let matches = |page: &&PageRow, path: &str| {
            page.path == path || (path.ends_with('-') && page.path.starts_with(path))
        };
        let ours = pages.iter().find(|page| matches(page, ours_path));
        let theirs = flower.pages.iter().find(|page| matches(page, flower_path));
        if let (Some(ours), Some(theirs)) = (ours, theirs) {
            let (ours_path, flower_path) = (&ours.path, &theirs.path);
            let _ = writeln!(
                out,
                "| `{ours_path}` | {} / {} | `{flower_path}` | {} / {} | {} |",
                milliseconds(ours.p50),
                milliseconds(ours.p99),
                milliseconds(theirs.p50),
                milliseconds(theirs.p99),
                ratio(theirs.p50, ours.p50)
            );
        }
    }
    out.push('\n');
}
