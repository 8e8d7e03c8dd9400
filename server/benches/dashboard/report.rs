//! The Markdown tables the dashboard benchmark prints: the live load (server CPU and memory,
//! what each client read, event-to-browser latency against the 500 ms target), page times
//! against the 50 ms target, and the WASM bundle against 500 KB gzipped.

use std::fmt::Write;

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

pub(crate) fn render(
    quick: bool,
    load: &LoadFigures,
    pages: &[PageRow],
    bundle: Option<(u64, u64)>,
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
        "| event → client max | {} |\n",
        milliseconds(load.latency_max)
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
