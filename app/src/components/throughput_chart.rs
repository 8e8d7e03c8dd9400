//! The overview's chart: tasks succeeded and failed per second, minute by minute, over the last
//! hour, drawn as inline SVG.
//!
//! SVG because it is text the server renders like any other markup (the first paint has the
//! chart, no script needed) and the CSP allows it: colours come from the stylesheet's classes,
//! not inline styles. Scaled to the busiest minute, which the axis label names.

use leptos::prelude::*;

use crate::model::{MinutePoint, Throughput};

/// Drawing area in SVG units (the element scales to the page's width).
const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 140.0;

/// The chart for `throughput`.
#[component]
pub fn ThroughputChart(throughput: Throughput) -> AnyView {
    let points = throughput.points;
    let peak = points
        .iter()
        .map(|point| point.succeeded.max(point.failed))
        .max()
        .unwrap_or(0);
    let succeeded = polyline(&points, peak, |point| point.succeeded);
    let failed = polyline(&points, peak, |point| point.failed);
    let total_succeeded: u64 = points.iter().map(|point| point.succeeded).sum();
    let total_failed: u64 = points.iter().map(|point| point.failed).sum();
    let peak_label = format!("{:.2} tasks/s", peak as f64 / 60.0);
    let summary = format!("last hour: {total_succeeded} succeeded, {total_failed} failed");
    (view! {
        <figure class="throughput" data-testid="throughput-chart"
            data-succeeded=total_succeeded data-failed=total_failed>
            <svg viewBox=format!("0 0 {WIDTH} {}", HEIGHT + 16.0) role="img">
                <title>{summary.clone()}</title>
                <line class="axis" x1="0" y1=HEIGHT x2=WIDTH y2=HEIGHT />
                <polyline class="succeeded" points=succeeded />
                <polyline class="failed" points=failed />
                <text class="tick" x="2" y="10">{peak_label}</text>
                <text class="tick" x="2" y=HEIGHT + 14.0>"−60 min"</text>
                <text class="tick" x=WIDTH - 2.0 y=HEIGHT + 14.0 text-anchor="end">"now"</text>
            </svg>
            <figcaption>
                <span class="legend succeeded">"succeeded"</span>
                <span class="legend failed">"failed"</span>
                <span data-testid="throughput-summary">{summary}</span>
            </figcaption>
        </figure>
    })
    .into_any()
}

/// `x,y` pairs of one series, `peak` at the top (a flat line at the bottom when all is zero).
fn polyline(points: &[MinutePoint], peak: u64, value: impl Fn(&MinutePoint) -> u64) -> String {
    let last = points.len().saturating_sub(1).max(1) as f64;
    points
        .iter()
        .enumerate()
        .map(|(index, point)| {
            let x = index as f64 / last * WIDTH;
            let y = if peak == 0 {
                HEIGHT
            } else {
                HEIGHT - value(point) as f64 / peak as f64 * (HEIGHT - 14.0)
            };
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}
