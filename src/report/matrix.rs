//! The parity matrix: operation × check family, as Markdown an emulator author can paste into
//! their documentation.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{RunReport, one_line};
use crate::oracle::{Family, Finding, Severity};

/// The custom key store operations, in API order: the first rows of the matrix.
pub const CUSTOM_KEY_STORE_OPERATIONS: [&str; 6] = [
    "CreateCustomKeyStore",
    "DescribeCustomKeyStores",
    "ConnectCustomKeyStore",
    "DisconnectCustomKeyStore",
    "UpdateCustomKeyStore",
    "DeleteCustomKeyStore",
];

/// What one cell of the matrix says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Exercised by a check of the family, no failing finding.
    Pass,
    /// This many failing findings.
    Fail(usize),
    /// No check of the family exercised the operation.
    NotExercised,
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Pass => f.write_str("pass"),
            Cell::Fail(n) => write!(f, "fail ({n})"),
            Cell::NotExercised => f.write_str("—"),
        }
    }
}

/// The rows of the matrix: the six custom key store operations, CreateKey, then every other
/// operation a check exercised or found something about, sorted.
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
                .chain(c.verdict.findings.iter().map(|f| f.operation.as_str()))
        })
        .filter(|op| !op.is_empty() && !ops.iter().any(|o| o == op))
        .collect();
    ops.extend(others.into_iter().map(str::to_string));
    ops
}

/// The cell for `operation` in column `family` (ignored checks do not count; unsettled
/// findings fail only when the run is strict).
pub fn matrix_cell(report: &RunReport, operation: &str, family: Family) -> Cell {
    let checks = || {
        report
            .checks
            .iter()
            .filter(move |c| !c.ignored && c.family == family)
    };
    let failing = checks()
        .flat_map(|c| c.verdict.failures(report.strict))
        .filter(|f| f.operation == operation)
        .count();
    if failing > 0 {
        return Cell::Fail(failing);
    }
    let exercised = checks().any(|c| c.verdict.exercised.get(operation).is_some_and(|n| *n > 0));
    if exercised {
        Cell::Pass
    } else {
        Cell::NotExercised
    }
}

/// The parity matrix as Markdown: a table with one row per operation (see
/// [`matrix_operations`]) and one column per [`Family::ALL`], then the endpoint, seed and a
/// legend, then the failing findings grouped by operation, then the findings that do not
/// fail (warnings, and unsettled ones outside `--strict`).
pub fn parity_matrix(report: &RunReport) -> String {
    let ops = matrix_operations(report);
    let mut rows: Vec<Vec<String>> = vec![
        std::iter::once("operation".to_string())
            .chain(Family::ALL.iter().map(|f| f.title().to_string()))
            .collect(),
    ];
    for op in &ops {
        rows.push(
            std::iter::once(format!("`{op}`"))
                .chain(
                    Family::ALL
                        .iter()
                        .map(|f| matrix_cell(report, op, *f).to_string()),
                )
                .collect(),
        );
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
        "Legend: **pass**: exercised by the checks of that family, no failing finding · \
         **fail (N)**: N failing findings · **—**: not exercised by any check of that family. \
         Unsettled findings (KMS behaviour that is inferred, not documented) count as failing \
         only under `--strict`. Generated by ckscheck."
    );

    let failing = grouped(report, &ops, |f| {
        f.severity == Severity::Failure || (report.strict && f.severity == Severity::Unsettled)
    });
    out.push_str("\n### Failing findings\n\n");
    if failing.is_empty() {
        out.push_str("None.\n");
    } else {
        out.push_str(&failing);
    }
    let notes = grouped(report, &ops, |f| {
        f.severity == Severity::Warning || (!report.strict && f.severity == Severity::Unsettled)
    });
    if !notes.is_empty() {
        out.push_str("\n### Not failing (warnings and unsettled points)\n\n");
        out.push_str(&notes);
    }
    out
}

/// The findings that `pick` selects, as a Markdown list grouped by operation in row order.
fn grouped(report: &RunReport, ops: &[String], pick: impl Fn(&Finding) -> bool) -> String {
    let mut out = String::new();
    for op in ops {
        let mut items = Vec::new();
        for c in report.checks.iter().filter(|c| !c.ignored) {
            for f in c.verdict.findings.iter().filter(|f| &f.operation == op) {
                if pick(f) {
                    let rest = format!("{}: {}", f.rule, one_line(&f.message, usize::MAX));
                    items.push(format!(
                        "  - {} (check `{}`, {})",
                        escape(&rest),
                        c.name,
                        c.family.title()
                    ));
                }
            }
        }
        if !items.is_empty() {
            let _ = writeln!(out, "- `{op}`");
            for i in items {
                let _ = writeln!(out, "{i}");
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
    fn cells_say_pass_fail_or_not_exercised() {
        let report = sample::report();
        let md = parity_matrix(&report);
        let connect = row(&md, "ConnectCustomKeyStore");
        assert_eq!(connect.len(), 1 + Family::ALL.len());
        assert_eq!(connect[column(Family::States)], "fail (2)", "{md}");
        // Exercised 0 times by the validation check: not exercised.
        assert_eq!(connect[column(Family::Validation)], "—", "{md}");
        let create = row(&md, "CreateCustomKeyStore");
        assert_eq!(create[column(Family::Validation)], "pass", "{md}");
        assert_eq!(create[column(Family::States)], "pass", "{md}");
        assert_eq!(create[column(Family::Pagination)], "—", "{md}");
        let describe = row(&md, "DescribeCustomKeyStores");
        assert_eq!(describe[column(Family::Pagination)], "pass", "{md}");
        // Only an unsettled finding, not strict, not exercised.
        let delete = row(&md, "DeleteCustomKeyStore");
        assert_eq!(delete[column(Family::States)], "—", "{md}");
        // The ignored snapshots check counts for nothing.
        assert!(row(&md, "CreateKey")[1..].iter().all(|c| c == "—"), "{md}");
        assert!(create[column(Family::Snapshots)] == "—", "{md}");
    }

    #[test]
    fn strict_runs_count_unsettled_findings() {
        let mut report = sample::report();
        report.strict = true;
        assert_eq!(
            matrix_cell(&report, "DeleteCustomKeyStore", Family::States),
            Cell::Fail(1)
        );
        report.strict = false;
        assert_eq!(
            matrix_cell(&report, "DeleteCustomKeyStore", Family::States),
            Cell::NotExercised
        );
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
    fn below_the_table_come_endpoint_seed_legend_and_grouped_findings() {
        let report = sample::report();
        let md = parity_matrix(&report);
        assert!(md.contains("Endpoint: `http://localhost:4566` (region `us-east-1`) · seed `42` · strict: no · checks: 2 passed, 1 failed, 1 ignored"), "{md}");
        assert!(md.contains("Legend: **pass**"), "{md}");
        let failing = md
            .split("### Failing findings")
            .nth(1)
            .unwrap()
            .split("### Not failing")
            .next()
            .unwrap();
        assert!(failing.contains("- `ConnectCustomKeyStore`\n  - states/model-agreement: expected CONNECTING or CONNECTED after Connect, got DISCONNECTED (check `store-states`, states)\n"), "{md}");
        assert!(!failing.contains("DeleteCustomKeyStore"), "{md}");
        let notes = md.split("### Not failing").nth(1).unwrap();
        assert!(
            notes.contains("- `DeleteCustomKeyStore`\n  - states/delete-while-connected"),
            "{md}"
        );
        assert!(notes.contains("- `DescribeCustomKeyStores`"), "{md}");
    }
}
