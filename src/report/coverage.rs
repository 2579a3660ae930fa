//! The terminal's coverage block: one summary line, then each rule the run did not exercise
//! with its reason (the first [`SHOWN`]; the JSON report has them all).

use std::fmt::Write;

use super::RunReport;
use crate::coverage::tally::{Coverage, RuleVerdict};

/// How many missed rules the terminal lists.
pub const SHOWN: usize = 20;

/// The coverage block of a run (empty for an XKS run, which the inventory does not describe).
pub fn run_coverage_text(report: &RunReport) -> String {
    Coverage::of(report).map_or_else(String::new, |c| coverage_text(&c))
}

/// The coverage block, ending with a newline.
pub fn coverage_text(coverage: &Coverage) -> String {
    let mut out = format!("\nrule coverage: {}\n", coverage.summary());
    for r in coverage
        .rules
        .iter()
        .filter(|r| r.verdict == RuleVerdict::Failing)
    {
        let _ = writeln!(out, "  failing: {} ({})", r.rule.id, r.rule.says);
    }
    let missed: Vec<_> = coverage.missed().collect();
    for r in missed.iter().take(SHOWN) {
        let why = r.reason.as_deref().unwrap_or_default();
        let _ = writeln!(out, "  not exercised: {}: {why}", r.rule.id);
    }
    if missed.len() > SHOWN {
        let _ = writeln!(
            out,
            "  ... and {} more not exercised (the JSON report's `coverage` lists every rule)",
            missed.len() - SHOWN
        );
    }
    out
}
