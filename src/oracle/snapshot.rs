//! The snapshot oracle: a scenario's normalised transcript against its snapshot, line by
//! line, with an insta-style diff for the report.

use std::fmt::Write;

use similar::{ChangeTag, DiffTag, TextDiff};

use super::{Severity, Verdict};

/// Lines of context around each changed part of a diff.
const CONTEXT: usize = 3;

/// What the comparison found: the verdict and, when they differ, the diff.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// One finding per operation whose steps differ (or one for a missing snapshot).
    pub verdict: Verdict,
    /// The diff, expected (`-`) against actual (`+`), when they differ.
    pub diff: Option<String>,
}

/// Judges `actual` against `expected` (None: no snapshot). `inferred`: the scenario's
/// expectations rest on our inference, so a difference is unsettled, not a failure.
pub fn compare(expected: Option<&str>, actual: &str, inferred: bool) -> Comparison {
    let mut verdict = Verdict::default();
    for op in operations(actual) {
        verdict.judged(op);
    }
    let Some(expected) = expected else {
        verdict.fail(
            "-",
            "snapshot/missing",
            "no snapshot: record one with `ckscheck record` or `cargo insta review`",
            None,
        );
        return Comparison {
            verdict,
            diff: None,
        };
    };
    let (expected, actual) = (expected.trim_end(), actual.trim_end());
    if expected == actual {
        return Comparison {
            verdict,
            diff: None,
        };
    }
    let severity = if inferred {
        Severity::Unsettled
    } else {
        Severity::Failure
    };
    let diff = TextDiff::from_lines(expected, actual);
    let mut differing: Vec<(usize, String)> = Vec::new();
    for op in diff.ops().iter().filter(|o| o.tag() != DiffTag::Equal) {
        let line = op
            .new_range()
            .start
            .min(actual.lines().count().saturating_sub(1));
        let (step, name) = step_at(actual, line);
        if !differing.iter().any(|(s, _)| *s == step) {
            differing.push((step, name));
        }
    }
    for (step, op) in differing.iter().filter(|(s, _)| *s > 0) {
        verdict.find(
            severity,
            op,
            "snapshot/match",
            format!("step {step} ({op}) differs from the snapshot"),
            None,
        );
    }
    if verdict.findings.is_empty() {
        verdict.find(
            severity,
            "-",
            "snapshot/match",
            "the transcript differs from the snapshot",
            None,
        );
    }
    Comparison {
        verdict,
        diff: Some(render(&diff)),
    }
}

/// The operations of a normalised transcript, in order.
fn operations(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("- op: "))
        .collect()
}

/// The step (1-based; 0 before the first) that line `line` of `text` belongs to, and its
/// operation.
fn step_at(text: &str, line: usize) -> (usize, String) {
    let mut step = 0;
    let mut op = String::from("-");
    for l in text.lines().take(line + 1) {
        if let Some(name) = l.strip_prefix("  - op: ") {
            step += 1;
            op = name.to_string();
        }
    }
    (step, op)
}

/// An insta-style diff: old and new line numbers, `-` for the snapshot, `+` for the endpoint.
fn render(diff: &TextDiff<'_, '_, '_, str>) -> String {
    let mut out = String::from("-snapshot\n+actual\n────────────┬───────────────────────────\n");
    for (i, group) in diff.grouped_ops(CONTEXT).iter().enumerate() {
        if i > 0 {
            out.push_str("┈┈┈┈┈┈┈┈┈┈┈┈┼┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈\n");
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let (old, new, sign) = match change.tag() {
                    ChangeTag::Equal => (change.old_index(), change.new_index(), ' '),
                    ChangeTag::Delete => (change.old_index(), None, '-'),
                    ChangeTag::Insert => (None, change.new_index(), '+'),
                };
                let num = |n: Option<usize>| n.map_or(String::new(), |n| (n + 1).to_string());
                let _ = writeln!(
                    out,
                    "{:>5} {:>5} │{sign}{}",
                    num(old),
                    num(new),
                    change.value().trim_end_matches('\n')
                );
            }
        }
    }
    out.push_str("────────────┴───────────────────────────\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNAP: &str = "steps:
  - op: CreateCustomKeyStore
    status: 200
    response:
      CustomKeyStoreId: \"[cks-1]\"
  - op: DescribeCustomKeyStores
    status: 200
    response:
      CustomKeyStores:
        - ConnectionState: DISCONNECTED";

    #[test]
    fn the_same_text_passes_and_counts_its_operations() {
        let c = compare(Some(SNAP), &format!("{SNAP}\n"), false);
        assert!(c.verdict.findings.is_empty());
        assert_eq!(c.diff, None);
        assert_eq!(c.verdict.exercised["DescribeCustomKeyStores"], 1);
    }

    #[test]
    fn a_changed_step_fails_with_its_operation_and_a_numbered_diff() {
        let actual = SNAP.replace(
            "ConnectionState: DISCONNECTED",
            "ConnectionState: CONNECTED",
        );
        let c = compare(Some(SNAP), &actual, false);
        let long = format!("{SNAP}\n  - op: DeleteCustomKeyStore\n    status: 200");
        let only_last = compare(
            Some(&format!(
                "{SNAP}\n  - op: DeleteCustomKeyStore\n    status: 400"
            )),
            &long,
            false,
        );
        assert_eq!(
            only_last.verdict.findings.len(),
            1,
            "{:?}",
            only_last.verdict.findings
        );
        assert_eq!(
            only_last.verdict.findings[0].operation,
            "DeleteCustomKeyStore"
        );
        assert_eq!(c.verdict.findings.len(), 1, "{:?}", c.verdict.findings);
        let f = &c.verdict.findings[0];
        assert_eq!(f.severity, Severity::Failure);
        assert_eq!(f.operation, "DescribeCustomKeyStores");
        assert_eq!(
            f.message,
            "step 2 (DescribeCustomKeyStores) differs from the snapshot"
        );
        let diff = c.diff.unwrap();
        assert!(
            diff.contains("   10       │-        - ConnectionState: DISCONNECTED"),
            "{diff}"
        );
        assert!(
            diff.contains("         10 │+        - ConnectionState: CONNECTED"),
            "{diff}"
        );
    }

    #[test]
    fn an_inferred_scenario_is_unsettled_and_a_missing_snapshot_fails() {
        let actual = SNAP.replace(
            "status: 200\n    response:\n      CustomKeyStoreId",
            "status: 400\n    response:\n      CustomKeyStoreId",
        );
        let c = compare(Some(SNAP), &actual, true);
        assert_eq!(c.verdict.findings[0].severity, Severity::Unsettled);
        assert_eq!(c.verdict.findings[0].operation, "CreateCustomKeyStore");
        let m = compare(None, SNAP, false);
        assert_eq!(m.verdict.findings[0].rule, "snapshot/missing");
        assert_eq!(m.verdict.findings[0].severity, Severity::Failure);
    }
}
