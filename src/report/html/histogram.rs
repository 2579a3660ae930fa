//! An inline SVG latency histogram: logarithmic time axis (so sub-millisecond calls and KMS's
//! 250 ms budget fit on one chart), ten bins per decade, p50 and p99 and the budget marked.

use std::fmt::Write;

use super::{attr, esc};

/// KMS gives up on an XKS call after this many milliseconds.
pub const BUDGET_MS: f64 = 250.0;

const WIDTH: f64 = 520.0;
const HEIGHT: f64 = 190.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = 36.0;
const BINS_PER_DECADE: f64 = 10.0;

/// The histogram of `samples` (milliseconds) of `operation`, with `p50` and `p99` marked.
pub fn histogram(operation: &str, samples: &[f64], p50: Option<f64>, p99: Option<f64>) -> String {
    let positive: Vec<f64> = samples
        .iter()
        .copied()
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let min = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let max = positive.iter().copied().fold(0.0, f64::max);
    let lo_exp = if min.is_finite() {
        min.log10().floor().min(-1.0)
    } else {
        -1.0
    };
    let hi_exp = max.log10().ceil().clamp(3.0, 5.0);
    let span = hi_exp - lo_exp;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |v: f64| {
        (LEFT + (v.max(10f64.powf(lo_exp)).log10() - lo_exp) / span * plot_w).min(WIDTH - RIGHT)
    };
    let bins = (span * BINS_PER_DECADE) as usize;
    let mut counts = vec![0usize; bins.max(1)];
    for v in &positive {
        let b = ((v.log10() - lo_exp) * BINS_PER_DECADE).floor();
        let b = (b.max(0.0) as usize).min(counts.len() - 1);
        counts[b] += 1;
    }
    let tallest = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let mut svg = format!(
        "<svg class=\"histogram\" data-operation=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"{} latency histogram\">\n<title>{} latency: {} calls</title>\n",
        attr(operation),
        attr(operation),
        esc(operation),
        positive.len()
    );
    let _ = writeln!(
        svg,
        "<text x=\"{LEFT}\" y=\"16\" font-size=\"13\" font-weight=\"600\">{} ({} calls)</text>",
        esc(operation),
        positive.len()
    );
    let base = TOP + plot_h;
    let bar_w = plot_w / counts.len() as f64;
    for (i, n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
        let h = (*n as f64 / tallest * plot_h).max(1.0);
        let _ = writeln!(
            svg,
            "<rect class=\"bin\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" \
             fill=\"#4a7bd0\"><title>{n} call(s)</title></rect>",
            LEFT + i as f64 * bar_w + 0.5,
            base - h,
            (bar_w - 1.0).max(1.0)
        );
    }
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#333\"/>",
        WIDTH - RIGHT
    );
    for e in (lo_exp as i32)..=(hi_exp as i32) {
        let v = 10f64.powi(e);
        let tx = x(v);
        let label = if e < 0 {
            format!("{v} ms")
        } else {
            format!("{} ms", v as u64)
        };
        let _ = writeln!(
            svg,
            "<line x1=\"{tx:.1}\" y1=\"{base}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{label}</text>",
            base + 4.0,
            base + 15.0
        );
    }
    let mut marker = |class: &str, v: f64, colour: &str, label: String, row: f64| {
        let mx = x(v);
        let _ = writeln!(
            svg,
            "<g class=\"{class}\"><line x1=\"{mx:.1}\" y1=\"{TOP}\" x2=\"{mx:.1}\" y2=\"{base}\" \
             stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"{colour}\" \
             text-anchor=\"{}\">{}</text></g>",
            if class == "budget" { "0" } else { "4 3" },
            if class == "budget" {
                mx - 3.0
            } else {
                mx + 3.0
            },
            TOP + 10.0 + row * 12.0,
            if class == "budget" { "end" } else { "start" },
            esc(&label)
        );
    };
    marker(
        "budget",
        BUDGET_MS,
        "#c0392b",
        "KMS budget 250 ms".into(),
        0.0,
    );
    if let Some(p) = p50 {
        marker("p50", p, "#1e8449", format!("p50 {p:.1} ms"), 1.0);
    }
    if let Some(p) = p99 {
        marker("p99", p, "#7d3c98", format!("p99 {p:.1} ms"), 2.0);
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">latency \
         (log scale)</text>\n</svg>",
        LEFT + plot_w / 2.0,
        HEIGHT - 4.0
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Catches a histogram that loses calls, or leaves out the budget or a percentile.
    #[test]
    fn every_call_is_in_a_bin_and_the_markers_are_drawn() {
        let samples: Vec<f64> = (1..=100).map(|i| 0.2 + i as f64 * 0.05).collect();
        let svg = histogram("Encrypt", &samples, Some(2.7), Some(5.1));
        let total: usize = svg
            .match_indices("<title>")
            .skip(1)
            .map(|(i, _)| {
                let rest = &svg[i + 7..];
                rest[..rest.find(' ').unwrap()].parse::<usize>().unwrap()
            })
            .sum();
        assert_eq!(total, 100, "{svg}");
        for mark in [
            "class=\"budget\"",
            "p50 2.7 ms",
            "p99 5.1 ms",
            "KMS budget 250 ms",
        ] {
            assert!(svg.contains(mark), "no {mark}");
        }
        let slow = histogram("Decrypt", &[300.0, 20_000.0], None, None);
        assert!(slow.contains("10000 ms"), "{slow}");
        assert!(!histogram("x", &[], None, None).contains("class=\"bin\""));
    }
}
