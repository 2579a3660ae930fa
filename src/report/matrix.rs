//! The parity matrix: operation × check family, as Markdown an emulator author can paste into
//! their documentation.
//!
//! A cell counts **distinct deviations**, not findings: a deviation is one signature
//! (`OPERATION/RULE: KIND`), however many findings, cases and checks of the family showed it,
//! with the status the run's policy gave it. A cell reads:
//!
//! - `pass`: exercised by a check of the family, no failing deviation;
//! - `fail (N)`: N distinct failing deviations;
//! - `pass (K known)`, `fail (N; K known)`, `— (K known)`: the same, plus K deviations the
//!   baseline accepts (they do not fail);
//! - `—`: no check of the family exercised the operation.
//!
//! Below the table come the failing deviations of each cell (id, what it is, the checks that
//! saw it), then the ones that do not fail (unsettled, warning, known).

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{RunReport, deviation_line, one_line};
use crate::coverage::tally::Coverage;
use crate::deviation::{Seen, Status};
use crate::oracle::Family;

/// The custom key store operations, in API order: the first rows of the matrix.
pub const CUSTOM_KEY_STORE_OPERATIONS: [&str; 6] = [
    "CreateCustomKeyStore",
    "DescribeCustomKeyStores",
    "ConnectCustomKeyStore",
    "DisconnectCustomKeyStore",
    "UpdateCustomKeyStore",
    "DeleteCustomKeyStore",
];

/// What one cell of the matrix says (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Exercised by a check of the family, no failing deviation; `known` accepted ones.
    Pass {
        /// Distinct known deviations (accepted by the baseline).
        known: usize,
    },
    /// Distinct failing deviations, and known ones.
    Fail {
        /// Distinct failing deviations.
        failing: usize,
        /// Distinct known deviations (accepted by the baseline).
        known: usize,
    },
    /// No check of the family exercised the operation; `known` accepted deviations all the same
    /// (e.g. a scenario blocked before it sent anything).
    NotExercised {
        /// Distinct known deviations (accepted by the baseline).
        known: usize,
    },
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Cell::Pass { known: 0 } => f.write_str("pass"),
            Cell::Pass { known } => write!(f, "pass ({known} known)"),
            Cell::Fail { failing, known: 0 } => write!(f, "fail ({failing})"),
            Cell::Fail { failing, known } => write!(f, "fail ({failing}; {known} known)"),
            Cell::NotExercised { known: 0 } => f.write_str("—"),
            Cell::NotExercised { known } => write!(f, "— ({known} known)"),
        }
    }
}

/// The operation a row of the matrix stands for: none for a trial that could not run.
fn row_operation(d: &Seen) -> Option<&str> {
    (d.rule != "harness" && !d.operation.is_empty() && d.operation != "-")
        .then_some(d.operation.as_str())
}

/// Whether `op` may have a row: not `-` (no operation) and none of the names the
/// `protocol/unknown-operation` cases make up (scenarios and the snapshot check name them too).
fn is_row_operation(op: &str) -> bool {
    op != crate::history::NO_OPERATION
        && !crate::generate::protocol::MADE_UP_OPERATIONS.contains(&op)
}

/// The rows of the matrix: the six custom key store operations, CreateKey, then every other
/// operation a check exercised or found a deviation about, sorted.
pub fn matrix_operations(report: &RunReport) -> Vec<String> {
    let mut ops: Vec<String> = CUSTOM_KEY_STORE_OPERATIONS
        .iter()
        .chain(&["CreateKey"])
        .map(|s| s.to_string())
        .collect();
    let others: BTreeSet<&str> = report
        .checks
        .iter()
        .filter(|c| !c.ignored)
        .flat_map(|c| {
            c.verdict
                .exercised
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(op, _)| op.as_str())
                .chain(c.deviations.iter().filter_map(row_operation))
        })
        // A made-up operation name (a `protocol/unknown-operation` case) never gets a row.
        .filter(|op| is_row_operation(op) && !ops.iter().any(|o| o == op))
        .collect();
    ops.extend(others.into_iter().map(str::to_string));
    ops
}

/// The distinct deviations with `status` about `operation` that the checks of `family` saw
/// (ignored checks do not count), each with those checks, in run order.
fn cell_deviations<'r>(
    report: &'r RunReport,
    operation: &str,
    family: Family,
    status: impl Fn(Status) -> bool,
) -> Vec<(&'r Seen, Vec<&'r str>)> {
    let mut out: Vec<(&Seen, Vec<&str>)> = Vec::new();
    for c in report
        .checks
        .iter()
        .filter(|c| !c.ignored && c.family == family)
    {
        for d in c
            .deviations
            .iter()
            .filter(|d| status(d.status) && row_operation(d) == Some(operation))
        {
            match out.iter_mut().find(|(seen, _)| seen.id == d.id) {
                Some((_, checks)) => {
                    if !checks.contains(&c.name.as_str()) {
                        checks.push(&c.name);
                    }
                }
                None => out.push((d, vec![c.name.as_str()])),
            }
        }
    }
    out
}

/// The cell for `operation` in column `family`: distinct failing and known deviations of the
/// family's checks (as the run's policy decided them; ignored checks do not count).
pub fn matrix_cell(report: &RunReport, operation: &str, family: Family) -> Cell {
    let failing = cell_deviations(report, operation, family, |s| s == Status::Failing).len();
    let known = cell_deviations(report, operation, family, |s| s == Status::Known).len();
    if failing > 0 {
        return Cell::Fail { failing, known };
    }
    let exercised = report
        .checks
        .iter()
        .filter(|c| !c.ignored && c.family == family)
        .any(|c| c.verdict.exercised.get(operation).is_some_and(|n| *n > 0));
    if exercised {
        Cell::Pass { known }
    } else {
        Cell::NotExercised { known }
    }
}

/// The title of the coverage column.
pub const COVERAGE_TITLE: &str = "rules";

/// The coverage column's cell: `exercised/all` rules of the operation (`—` when it has none).
pub fn coverage_cell(coverage: &Coverage, operation: &str) -> String {
    match coverage.of_operation(operation) {
        (_, 0) => "—".into(),
        (done, all) => format!("{done}/{all}"),
    }
}

/// The parity matrix as Markdown: a table with one row per operation (see
/// [`matrix_operations`]) and one column per [`Family::ALL`] and a rules column (cells: see the module
/// documentation), then the endpoint, seed and a legend, then the distinct failing deviations
/// of each cell, then the deviations that do not fail (unsettled, warnings, known), and the
/// failing ones no operation stands for (a trial that could not run).
pub fn parity_matrix(report: &RunReport) -> String {
    let ops = matrix_operations(report);
    let coverage = Coverage::of(report);
    let mut header: Vec<String> = std::iter::once("operation".to_string())
        .chain(Family::ALL.iter().map(|f| f.title().to_string()))
        .collect();
    if coverage.is_some() {
        header.push(COVERAGE_TITLE.into());
    }
    let mut rows: Vec<Vec<String>> = vec![header];
    for op in &ops {
        let mut row: Vec<String> = std::iter::once(format!("`{op}`"))
            .chain(
                Family::ALL
                    .iter()
                    .map(|f| matrix_cell(report, op, *f).to_string()),
            )
            .collect();
        if let Some(c) = &coverage {
            row.push(coverage_cell(c, op));
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let pad = |text: &str, w: usize| format!("{text}{}", " ".repeat(w - text.chars().count()));
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| pad(c, *w)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "|-{}-|", rule.join("-|-"));
        }
    }

    let t = report.totals();
    let _ = writeln!(
        out,
        "\nEndpoint: {} (region `{}`) · seed `{}` · strict: {} · checks: {} passed, {} failed, {} ignored\n",
        if report.is_embedded() {
            report.endpoint_label()
        } else {
            format!("`{}`", report.endpoint)
        },
        report.region,
        report.seed,
        if report.strict { "yes" } else { "no" },
        t.passed,
        t.failed,
        t.ignored
    );
    let _ = writeln!(
        out,
        "Legend: **pass**: exercised by the checks of that family, no failing deviation · \
         **fail (N)**: N distinct failing deviations (one deviation is one signature, however \
         many findings and checks showed it) · **K known**: K deviations the baseline accepts \
         (they do not fail) · **—**: not exercised by any check of that family. Unsettled \
         deviations (KMS behaviour that is inferred, not documented) fail only under \
         `--strict`. **rules**: rules of the operation this run exercised, of those the \
         inventory holds (`ckscheck run --list-rules`). Generated by ckscheck."
    );
    if let Some(c) = &coverage {
        let _ = writeln!(out, "\nRule coverage: {}.", c.summary());
    }

    let failing = grouped(report, &ops, |s| s == Status::Failing);
    out.push_str("\n### Failing deviations\n\n");
    if failing.is_empty() {
        out.push_str("None.\n");
    } else {
        out.push_str(&failing);
    }
    let notes = grouped(report, &ops, |s| {
        matches!(s, Status::Unsettled | Status::Warning | Status::Known)
    });
    if !notes.is_empty() {
        out.push_str("\n### Not failing (unsettled, warnings and known deviations)\n\n");
        out.push_str(&notes);
    }
    let mut harness: Vec<String> = Vec::new();
    for c in report.checks.iter().filter(|c| !c.ignored) {
        for d in c.failing().filter(|d| row_operation(d).is_none()) {
            harness.push(format!(
                "- {} (check `{}`)",
                escape(&deviation_line(&d.id, &d.summary)),
                c.name,
            ));
        }
    }
    if !harness.is_empty() {
        out.push_str("\n### Trials that could not run\n\n");
        for line in harness {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// The distinct deviations whose status `pick` selects, as a Markdown list with one item per
/// cell (operation in row order, then family in column order) and one sub-item per deviation:
/// its id, what it is, why it is known (the baseline's reason) and the checks that saw it.
fn grouped(report: &RunReport, ops: &[String], pick: impl Fn(Status) -> bool) -> String {
    let mut out = String::new();
    for op in ops {
        for family in Family::ALL {
            let items = cell_deviations(report, op, family, &pick);
            if items.is_empty() {
                continue;
            }
            let _ = writeln!(out, "- `{op}` · {}", family.title());
            for (d, checks) in items {
                let label = match d.status {
                    Status::Failing => String::new(),
                    s => escape(&format!("[{}] ", s.as_str())),
                };
                let checks: Vec<String> = checks.iter().map(|c| format!("`{c}`")).collect();
                let reason = report
                    .catalogue
                    .deviations
                    .iter()
                    .find(|c| c.id == d.id && d.status == Status::Known)
                    .and_then(|c| c.reason.as_deref())
                    .filter(|r| !r.is_empty())
                    .map(|r| format!(" (known: {})", escape(&one_line(r, usize::MAX))))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  - {label}{}{reason} (check {})",
                    escape(&deviation_line(&d.id, &d.summary)),
                    checks.join(", ")
                );
            }
        }
    }
    out
}

/// Keeps finding text from turning into Markdown markup or HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '*' | '_' | '`' | '[' | ']' | '\\' | '|' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deviation::Policy;
    use crate::oracle::{Finding, Severity};
    use crate::report::sample;

    /// The cells of one row of the rendered table, by column title.
    fn row(md: &str, op: &str) -> Vec<String> {
        let line = md
            .lines()
            .find(|l| l.starts_with(&format!("| `{op}` ")))
            .unwrap_or_else(|| panic!("no row {op}:\n{md}"));
        line.trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_string())
            .collect()
    }

    fn column(family: Family) -> usize {
        1 + Family::ALL.iter().position(|f| *f == family).unwrap()
    }

    #[test]
    fn the_rules_column_counts_the_rules_of_the_operation_a_check_judged() {
        let connect = "ConnectCustomKeyStore";
        let all = crate::coverage::inventory::inventory()
            .iter()
            .filter(|r| r.operation.as_deref() == Some(connect))
            .count();
        let mut report = sample::report();
        let rules = |report: &RunReport| {
            row(&parity_matrix(report), connect)[1 + Family::ALL.len()].clone()
        };
        assert_eq!(rules(&report), format!("0/{all}"));
        report.checks[0].verdict.cover(
            "state/ConnectCustomKeyStore/FAILED",
            crate::oracle::Judged::Pass,
        );
        // A rule id outside the inventory counts for nothing.
        report.checks[0].verdict.cover(
            "state/ConnectCustomKeyStore/NOWHERE",
            crate::oracle::Judged::Pass,
        );
        assert_eq!(rules(&report), format!("1/{all}"));
        assert!(parity_matrix(&report).contains("Rule coverage: 1 of "));
    }

    #[test]
    fn cells_say_pass_fail_or_not_exercised() {
        let report = sample::report();
        let md = parity_matrix(&report);
        let connect = row(&md, "ConnectCustomKeyStore");
        assert_eq!(connect.len(), 2 + Family::ALL.len());
        assert_eq!(connect[column(Family::States)], "fail (2)", "{md}");
        // Exercised 0 times by the validation check: not exercised.
        assert_eq!(connect[column(Family::Validation)], "—", "{md}");
        let create = row(&md, "CreateCustomKeyStore");
        assert_eq!(create[column(Family::Validation)], "pass", "{md}");
        assert_eq!(create[column(Family::States)], "pass", "{md}");
        assert_eq!(create[column(Family::Pagination)], "—", "{md}");
        let describe = row(&md, "DescribeCustomKeyStores");
        assert_eq!(describe[column(Family::Pagination)], "pass", "{md}");
        // Only an unsettled deviation, not strict, not exercised.
        let delete = row(&md, "DeleteCustomKeyStore");
        assert_eq!(delete[column(Family::States)], "—", "{md}");
        // The ignored snapshots check counts for nothing.
        let create_key = row(&md, "CreateKey");
        assert!(
            create_key[1..=Family::ALL.len()].iter().all(|c| c == "—"),
            "{md}"
        );
        assert!(create[column(Family::Snapshots)] == "—", "{md}");
    }

    /// A failing finding of the `store-states` check about DescribeCustomKeyStores.
    fn describe_finding(kind: &str) -> Finding {
        Finding {
            severity: Severity::Failure,
            operation: "DescribeCustomKeyStores".into(),
            rule: "states/listed".into(),
            kind: kind.into(),
            message: format!("{kind} (case {})", kind.len()),
            exchange: None,
        }
    }

    #[test]
    fn cells_count_distinct_deviations_not_findings() {
        let mut report = sample::report();
        // Two findings with one signature (and the same one in a second check of the family).
        let mut twice = describe_finding("a store is missing");
        report.checks[2].verdict.findings.push(twice.clone());
        twice.message = "a store is missing from page 2".into();
        report.checks[2].verdict.findings.push(twice.clone());
        let mut other = report.checks[2].clone();
        other.name = "store-states-again".into();
        other.verdict.findings = vec![twice];
        report.checks.push(other);
        sample::resolve(&mut report, &Policy::default());
        assert_eq!(
            matrix_cell(&report, "DescribeCustomKeyStores", Family::States),
            Cell::Fail {
                failing: 1,
                known: 0
            }
        );
        let md = parity_matrix(&report);
        assert_eq!(
            row(&md, "DescribeCustomKeyStores")[column(Family::States)],
            "fail (1)",
            "{md}"
        );
        let failing = md
            .split("### Failing deviations")
            .nth(1)
            .unwrap()
            .split("### Not failing")
            .next()
            .unwrap();
        assert_eq!(
            failing
                .matches("DescribeCustomKeyStores/states/listed")
                .count(),
            1,
            "{md}"
        );
        assert!(
            failing.contains("(check `store-states`, `store-states-again`)"),
            "{md}"
        );

        // Two different signatures: two deviations.
        report.checks[2]
            .verdict
            .findings
            .push(describe_finding("a store is listed twice"));
        sample::resolve(&mut report, &Policy::default());
        let md = parity_matrix(&report);
        assert_eq!(
            row(&md, "DescribeCustomKeyStores")[column(Family::States)],
            "fail (2)",
            "{md}"
        );
    }

    #[test]
    fn known_deviations_are_counted_apart_and_do_not_fail() {
        let report = sample::baselined();
        assert_eq!(
            matrix_cell(&report, "DeleteCustomKeyStore", Family::States),
            Cell::NotExercised { known: 1 }
        );
        let md = parity_matrix(&report);
        assert_eq!(
            row(&md, "DeleteCustomKeyStore")[column(Family::States)],
            "— (1 known)",
            "{md}"
        );
        let notes = md.split("### Not failing").nth(1).unwrap();
        assert!(
            notes.contains(
                "- `DeleteCustomKeyStore` · states\n  - \\[known\\] DeleteCustomKeyStore/states/delete-while-connected: expected CustomKeyStoreInvalidStateException, got no response (known: upstream issue 12: deleting a connected store is not rejected) (check `store-states`)\n"
            ),
            "{md}"
        );
        // Known next to failing, and known in an exercised cell.
        let mut report = sample::report();
        let mut baseline = sample::baseline();
        let mut entry = baseline.deviations[0].clone();
        entry.id = sample::CONNECT_ANSWER.into();
        baseline.deviations.push(entry);
        let policy = Policy {
            baseline: Some(baseline),
            ..Default::default()
        };
        sample::resolve(&mut report, &policy);
        let md = parity_matrix(&report);
        assert_eq!(
            row(&md, "ConnectCustomKeyStore")[column(Family::States)],
            "fail (1; 1 known)",
            "{md}"
        );
        report.checks[2].verdict.findings.remove(0);
        report.checks[2].failures.remove(0);
        sample::resolve(&mut report, &policy);
        assert_eq!(
            matrix_cell(&report, "ConnectCustomKeyStore", Family::States),
            Cell::Pass { known: 1 }
        );
        assert_eq!(Cell::Pass { known: 1 }.to_string(), "pass (1 known)");
    }

    #[test]
    fn strict_runs_count_unsettled_deviations() {
        let mut report = sample::report();
        let strict = Policy {
            strict: true,
            ..Default::default()
        };
        sample::resolve(&mut report, &strict);
        assert_eq!(
            matrix_cell(&report, "DeleteCustomKeyStore", Family::States),
            Cell::Fail {
                failing: 1,
                known: 0
            }
        );
        sample::resolve(&mut report, &Policy::default());
        assert_eq!(
            matrix_cell(&report, "DeleteCustomKeyStore", Family::States),
            Cell::NotExercised { known: 0 }
        );
    }

    #[test]
    fn a_blocked_scenario_fails_its_cell_without_exercising_it() {
        let report = sample::blocked();
        let md = parity_matrix(&report);
        assert_eq!(
            row(&md, "DisconnectCustomKeyStore")[column(Family::Snapshots)],
            "fail (1)",
            "{md}"
        );
        assert!(
            md.contains("- `DisconnectCustomKeyStore` · snapshots\n  - DisconnectCustomKeyStore/not-implemented: answers 501 text/html — blocked: "),
            "{md}"
        );
    }

    /// Catches a made-up operation name (a `protocol/unknown-operation` case) or `-` growing a
    /// row of its own.
    #[test]
    fn made_up_operations_get_no_row() {
        let mut report = sample::report();
        let before = matrix_operations(&report);
        for op in ["ListCustomKeyStores", "-"] {
            report.checks[0].verdict.exercised.insert(op.into(), 3);
        }
        assert_eq!(matrix_operations(&report), before);
    }

    #[test]
    fn rows_follow_api_order_then_create_key_then_others() {
        let report = sample::report();
        let md = parity_matrix(&report);
        let order: Vec<&str> = md
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| l.split('`').nth(1).unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "CreateCustomKeyStore",
                "DescribeCustomKeyStores",
                "ConnectCustomKeyStore",
                "DisconnectCustomKeyStore",
                "UpdateCustomKeyStore",
                "DeleteCustomKeyStore",
                "CreateKey",
                "GetKeyPolicy",
            ]
        );
        let header = md.lines().next().unwrap();
        assert!(
            header.starts_with("| operation ") && header.contains("| field presence |"),
            "{header}"
        );
        assert!(md.lines().nth(1).unwrap().starts_with("|---"));
        // Every table line has the same width.
        let widths: BTreeSet<usize> = md
            .lines()
            .take_while(|l| l.starts_with('|'))
            .map(|l| l.chars().count())
            .collect();
        assert_eq!(widths.len(), 1, "{md}");
    }

    #[test]
    fn below_the_table_come_endpoint_seed_legend_and_the_deviations_of_each_cell() {
        let report = sample::report();
        let md = parity_matrix(&report);
        assert!(md.contains("Endpoint: `http://localhost:4566` (region `us-east-1`) · seed `42` · strict: no · checks: 2 passed, 1 failed, 1 ignored"), "{md}");
        assert!(md.contains("Legend: **pass**"), "{md}");
        assert!(
            md.contains("**fail (N)**: N distinct failing deviations"),
            "{md}"
        );
        let failing = md
            .split("### Failing deviations")
            .nth(1)
            .unwrap()
            .split("### Not failing")
            .next()
            .unwrap();
        assert!(
            failing.contains(
                "- `ConnectCustomKeyStore` · states\n  \
                 - ConnectCustomKeyStore/states/connect-answer: expected an empty object, got null (check `store-states`)\n  \
                 - ConnectCustomKeyStore/states/model-agreement: expected CONNECTING or CONNECTED, got DISCONNECTED — expected CONNECTING or CONNECTED after Connect, got DISCONNECTED (check `store-states`)\n"
            ),
            "{md}"
        );
        assert!(!failing.contains("DeleteCustomKeyStore"), "{md}");
        let notes = md.split("### Not failing").nth(1).unwrap();
        assert!(
            notes.contains(
                "- `DeleteCustomKeyStore` · states\n  - \\[unsettled\\] DeleteCustomKeyStore/states/delete-while-connected"
            ),
            "{md}"
        );
        assert!(
            notes.contains("- `DescribeCustomKeyStores` · pagination\n  - \\[warning\\] "),
            "{md}"
        );
        assert!(!md.contains("Trials that could not run"), "{md}");
    }
}
