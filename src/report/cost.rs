//! What each check cost, for the terminal summary: its requests and wall time, one line per
//! property check, and the scenarios' requests in one line.

use std::fmt::Write;

use super::RunReport;
use crate::oracle::Family;

/// The cost table: a header, one line per property check that ran (`name requests seconds`,
/// with a note when a budget stopped a shrink), then the scenarios' requests summed. Empty when
/// nothing ran.
pub fn cost_text(report: &RunReport) -> String {
    let ran = |c: &&super::CheckReport| !c.ignored;
    let checks: Vec<_> = report
        .checks
        .iter()
        .filter(ran)
        .filter(|c| c.family != Family::Snapshots)
        .collect();
    let scenarios: Vec<_> = report
        .checks
        .iter()
        .filter(ran)
        .filter(|c| c.family == Family::Snapshots)
        .collect();
    if checks.is_empty() && scenarios.is_empty() {
        return String::new();
    }
    let width = checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<width$}  {:>8}  {:>7}",
        "check", "requests", "seconds"
    );
    for c in &checks {
        let stopped = c
            .failures
            .iter()
            .filter(|f| f.shrink.as_ref().is_some_and(|s| s.stopped.is_some()))
            .count();
        let note = if stopped > 0 {
            format!("  (shrinking stopped early for {stopped} deviation(s))")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:>8}  {:>7.1}{note}",
            c.name,
            c.requests,
            c.duration.as_secs_f64()
        );
    }
    if !scenarios.is_empty() {
        let requests: u64 = scenarios.iter().map(|c| c.requests).sum();
        let _ = writeln!(out, "{} scenario(s): {requests} requests", scenarios.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::{CheckReport, FailureDetail};
    use crate::suite::ShrinkStats;

    #[test]
    fn each_check_that_ran_gets_its_requests_and_seconds() {
        let mut report = RunReport::default();
        let mut states = CheckReport::not_run("states".into(), Family::States, String::new());
        states.ignored = false;
        states.requests = 1792;
        states.duration = Duration::from_millis(2345);
        states.failures.push(FailureDetail {
            shrink: Some(ShrinkStats {
                stopped: Some("shrinking stopped early".into()),
                ..ShrinkStats::default()
            }),
            ..FailureDetail::default()
        });
        let skipped = CheckReport::not_run("fields".into(), Family::FieldPresence, String::new());
        let mut scenario =
            CheckReport::not_run("snapshot::a".into(), Family::Snapshots, String::new());
        scenario.ignored = false;
        scenario.requests = 12;
        report.checks = vec![states, skipped, scenario];
        let text = cost_text(&report);
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("check ") && lines[0].ends_with("requests  seconds"));
        assert_eq!(
            lines[1],
            "states      1792      2.3  (shrinking stopped early for 1 deviation(s))"
        );
        assert_eq!(lines[2], "1 scenario(s): 12 requests");
    }
}
