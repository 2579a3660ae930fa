//! The text libtest prints for a failed trial: what the check enforces, what failed, the
//! minimal sequence and what it got back, and how to replay and reproduce it.

use std::fmt::Write;

use serde_json::Value;

use super::reproducer::{aws_cli_commands, curl_commands};
use super::{
    CheckReport, RunReport, SERVE_URL, compact_json, finding_line, one_line, redact_history,
    redact_step,
};
use crate::generate::{STORE_REF, Step};
use crate::history::{Exchange, Expectation, Outcome};
use crate::oracle::Severity;

/// Longest request or response body shown on one line, in characters.
const BODY_MAX: usize = 160;

/// Longest history shown in full; longer ones keep the first and last exchange of each step.
const HISTORY_MAX: usize = 40;

/// The failure message of a check: explain line, failing findings, the minimal sequence
/// (`minimal sequence (N steps)`, one line per step), what came back for each exchange, the
/// replay command, then the AWS CLI and curl reproducers. A check without a counterexample
/// gets the first two parts and the replay command.
pub fn failure_text(check: &CheckReport, report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {}",
        check.name,
        one_line(&check.explain, usize::MAX)
    );
    let _ = writeln!(
        out,
        "{} case(s) against {}, seed {}{}",
        check.cases,
        report.endpoint_label(),
        report.seed,
        if report.strict { ", strict" } else { "" }
    );

    out.push_str("\nfailing findings:\n");
    let summary: Vec<&str> = check
        .failure
        .as_ref()
        .map(|f| f.summary.lines().filter(|l| !l.trim().is_empty()).collect())
        .unwrap_or_default();
    if summary.is_empty() {
        for f in check.verdict.failures(report.strict) {
            let _ = writeln!(out, "  {}", finding_line(f));
        }
    } else {
        for line in summary {
            let _ = writeln!(out, "  {}", line.trim());
        }
    }
    let _ = writeln!(out, "  ({})", finding_counts(check, report.strict));
    if let Some(diff) = check.failure.as_ref().and_then(|f| f.diff.as_ref()) {
        let _ = write!(out, "\nagainst the snapshot:\n{diff}");
    }

    // A failure without steps (e.g. the target was unreachable) has no sequence to show.
    let counterexample = check
        .failure
        .as_ref()
        .filter(|f| !f.steps.is_empty() || !f.history.exchanges.is_empty());
    if let Some(failure) = counterexample {
        let _ = writeln!(out, "\nminimal sequence ({} steps):", failure.steps.len());
        for (i, step) in failure.steps.iter().enumerate() {
            let _ = writeln!(out, "  {}. {}", i + 1, step_line(&redact_step(step)));
        }
        let history = redact_history(&failure.history);
        let _ = writeln!(
            out,
            "\nwhat came back ({} exchanges):",
            history.exchanges.len()
        );
        for line in exchange_lines(&history.exchanges) {
            let _ = writeln!(out, "  {line}");
        }
    }

    if let Some(text) = check.failure.as_ref().and_then(|f| f.reproducer.as_ref()) {
        let _ = write!(out, "\n{text}");
    }
    let seed = check.failure.as_ref().map_or(report.seed, |f| f.seed);
    let replay = check
        .failure
        .as_ref()
        .and_then(|f| f.replay.clone())
        .unwrap_or_else(|| report.replay_command(seed, &check.name));
    let _ = writeln!(out, "\nreplay: {replay}");

    if let Some(failure) = counterexample.filter(|f| !f.history.exchanges.is_empty()) {
        let url = if report.is_embedded() {
            SERVE_URL
        } else {
            report.endpoint.as_str()
        };
        let start = report.is_embedded().then(|| {
            format!(
                "  # start the reference emulator first: {}",
                report.serve_command(seed)
            )
        });
        out.push_str("\nas AWS CLI commands:\n");
        out.extend(start.clone().map(|s| s + "\n"));
        for line in aws_cli_commands(&failure.history, url, &report.region) {
            let _ = writeln!(out, "  {line}");
        }
        out.push_str("\nas curl commands:\n");
        out.extend(start.map(|s| s + "\n"));
        for line in curl_commands(&failure.history, url, &report.region) {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// `over all 17 case(s): 2 failing, 1 unsettled (not failing), 1 warning(s)`.
fn finding_counts(check: &CheckReport, strict: bool) -> String {
    let failing = check.verdict.failures(strict).count();
    let count = |s: Severity| check.notes(strict).filter(|f| f.severity == s).count();
    let mut parts = vec![format!("{failing} failing")];
    let unsettled = count(Severity::Unsettled);
    if unsettled > 0 {
        parts.push(format!("{unsettled} unsettled (not failing)"));
    }
    let warnings = count(Severity::Warning);
    if warnings > 0 {
        parts.push(format!("{warnings} warning(s)"));
    }
    format!("over all {} case(s): {}", check.cases, parts.join(", "))
}

fn expectation(expect: &Expectation) -> String {
    let wanted = expect.error.as_deref().unwrap_or("success");
    let unsettled = if expect.unsettled { ", unsettled" } else { "" };
    format!(" — expects {wanted} (rule {}{unsettled})", expect.rule)
}

/// One step on one line (bodies cut to a readable length).
pub(crate) fn step_line(step: &Step) -> String {
    match step {
        Step::Call {
            operation,
            body,
            expect,
        } => format!(
            "{operation} {}{}",
            compact_json(body, BODY_MAX),
            expect.as_ref().map(expectation).unwrap_or_default()
        ),
        Step::Raw {
            operation,
            body,
            expect,
        } => format!(
            "Raw {operation} {}{}",
            compact_json(&Value::String(body.clone()), BODY_MAX),
            expectation(expect)
        ),
        Step::Settle { store } => {
            format!("Settle {STORE_REF}{store} (poll until neither CONNECTING nor DISCONNECTING)")
        }
        Step::Paginate { limit } => match limit {
            Some(l) => format!("Paginate Limit={l} (follow NextMarker)"),
            None => "Paginate without Limit (follow NextMarker)".into(),
        },
        Step::Concurrent { steps } => {
            let inner: Vec<String> = steps
                .iter()
                .map(|s| match s {
                    Step::Call {
                        operation, body, ..
                    } => format!("{operation} {}", compact_json(body, BODY_MAX / 2)),
                    other => step_line(other),
                })
                .collect();
            format!("Concurrent: {}", inner.join(" ‖ "))
        }
    }
}

/// What one exchange got back, on one line: status and error name (with message), or a short
/// body, or why nothing came back.
pub(crate) fn outcome_line(e: &Exchange) -> String {
    match &e.outcome {
        Outcome::Unknown { reason } => format!("no response: {}", one_line(reason, BODY_MAX)),
        Outcome::Response {
            status, body, text, ..
        } => match e.error_name() {
            Some(name) => {
                let message = body
                    .get("message")
                    .or_else(|| body.get("Message"))
                    .and_then(Value::as_str)
                    .map(|m| format!(": {}", one_line(m, BODY_MAX)))
                    .unwrap_or_default();
                format!("{status} {name}{message}")
            }
            None if body.is_null() => match text.as_deref() {
                Some(t) if !t.trim().is_empty() => {
                    format!("{status} (not JSON) {}", one_line(t, BODY_MAX))
                }
                _ => format!("{status} (empty body)"),
            },
            None => format!("{status} {}", compact_json(body, BODY_MAX)),
        },
    }
}

fn exchange_lines(exchanges: &[Exchange]) -> Vec<String> {
    let keep: Vec<bool> = (0..exchanges.len())
        .map(|i| {
            let e = &exchanges[i];
            let same = |j: usize| {
                exchanges
                    .get(j)
                    .is_some_and(|o| o.sequence == e.sequence && o.step == e.step)
            };
            exchanges.len() <= HISTORY_MAX || i == 0 || !same(i - 1) || !same(i + 1)
        })
        .collect();
    let width = exchanges.len().to_string().len();
    let mut lines = Vec::new();
    let mut skipped = 0;
    for (i, e) in exchanges.iter().enumerate() {
        if !keep[i] {
            skipped += 1;
            continue;
        }
        if skipped > 0 {
            lines.push(format!(
                "… {skipped} more exchange(s) of step {}",
                e.step + 1
            ));
            skipped = 0;
        }
        let attempt = if e.attempt > 1 {
            format!(" (attempt {})", e.attempt)
        } else {
            String::new()
        };
        let raw = if e.raw { " (raw body)" } else { "" };
        lines.push(format!(
            "#{:<width$} step {} {}{raw}{attempt} → {}",
            i + 1,
            e.step + 1,
            e.operation,
            outcome_line(e)
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    #[test]
    fn the_failure_text_has_every_part_in_order() {
        let report = sample::report();
        let text = failure_text(&report.checks[2], &report);
        let parts = [
            "store-states: connection states follow the model\n",
            "17 case(s) against http://localhost:4566, seed 42\n",
            "failing findings:\n  [failure] ConnectCustomKeyStore states/model-agreement: expected CONNECTING or CONNECTED after Connect, got DISCONNECTED (exchange #3)\n",
            "  [failure] ConnectCustomKeyStore states/connect-answer: expected an empty object, got null (exchange #3)\n",
            "  (over all 17 case(s): 2 failing, 1 unsettled (not failing), 1 warning(s))\n",
            "minimal sequence (7 steps):\n",
            "  1. CreateCustomKeyStore {\"CloudHsmClusterId\":\"cluster-1234abcd\",\"CustomKeyStoreName\":\"$name:o'brien\",\"KeyStorePassword\":\"[secret]\",",
            "  2. ConnectCustomKeyStore {\"CustomKeyStoreId\":\"$store:0\"}\n",
            "  3. Settle $store:0 (poll until neither CONNECTING nor DISCONNECTING)\n",
            "  4. Paginate Limit=1 (follow NextMarker)\n",
            "  5. UpdateCustomKeyStore {\"CustomKeyStoreId\":\"$store:0\",\"KeyStorePassword\":\"[secret]\"} — expects CustomKeyStoreInvalidStateException (rule state/update-while-connected)\n",
            "  6. Raw DescribeCustomKeyStores \"{\\\"Limit\\\": \" — expects SerializationException (rule body/truncated-json)\n",
            "  7. Concurrent: DisconnectCustomKeyStore {\"CustomKeyStoreId\":\"$store:0\"} ‖ DeleteCustomKeyStore {\"CustomKeyStoreId\":\"$store:0\"}\n",
            "what came back (13 exchanges):\n",
            "  #1  step 1 CreateCustomKeyStore → 400 ThrottlingException: slow down\n",
            "  #2  step 1 CreateCustomKeyStore (attempt 2) → 200 {\"CustomKeyStoreId\":\"cks-0123456789abcdef0\"}\n",
            "  #10 step 5 UpdateCustomKeyStore → 400 CustomKeyStoreInvalidStateException: store is connected\n",
            "  #11 step 6 DescribeCustomKeyStores (raw body) → 400 SerializationException: Unexpected end of input\n",
            "  #13 step 7 DeleteCustomKeyStore → no response: timed out\n",
            "replay: ckscheck run --seed 42 --filter store-states --endpoint-url http://localhost:4566 --region us-east-1\n",
            "as AWS CLI commands:\n",
            "  STORE_1=$(aws kms create-custom-key-store --endpoint-url http://localhost:4566 --region us-east-1 --cli-input-json '{",
            "as curl commands:\n",
            "  STORE_1=$(curl -sS http://localhost:4566 --aws-sigv4 \"aws:amz:us-east-1:kms\"",
        ];
        let mut at = 0;
        for part in parts {
            let found = text[at..]
                .find(part)
                .unwrap_or_else(|| panic!("missing or out of order: {part:?}\n---\n{text}"));
            at += found + part.len();
        }
        assert!(!text.contains(sample::CLEAR_PASSWORD), "{text}");
        assert!(!text.contains("guess-me-1"), "{text}");
        assert!(!text.contains("start the reference emulator"), "{text}");
    }

    #[test]
    fn embedded_runs_replay_without_an_endpoint_and_reproduce_against_serve() {
        let mut report = sample::report();
        report.endpoint = "embedded http://127.0.0.1:40123".into();
        report.strict = true;
        let text = failure_text(&report.checks[2], &report);
        assert!(
            text.contains("against embedded reference emulator, seed 42, strict\n"),
            "{text}"
        );
        assert!(
            text.contains("replay: ckscheck run --seed 42 --filter store-states --strict\n"),
            "{text}"
        );
        assert!(
            text.contains("  # start the reference emulator first: ckscheck serve --seed 42\n"),
            "{text}"
        );
        assert!(
            text.contains("--endpoint-url http://127.0.0.1:4599 "),
            "{text}"
        );
        assert!(!text.contains("40123"), "{text}");
        // Planted faults are part of the target: both commands carry them.
        report.faults = vec!["duplicate-names".into()];
        let text = failure_text(&report.checks[2], &report);
        assert!(
            text.contains(
                "replay: ckscheck run --seed 42 --filter store-states --strict --fault duplicate-names\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("first: ckscheck serve --seed 42 --fault duplicate-names\n"),
            "{text}"
        );
    }

    #[test]
    fn a_failure_without_counterexample_lists_the_verdict() {
        let mut report = sample::report();
        let mut check = report.checks.remove(2);
        check.failure = None;
        let text = failure_text(&check, &report);
        assert!(text.contains("states/connect-answer"), "{text}");
        assert!(!text.contains("minimal sequence"), "{text}");
        assert!(!text.contains("states/delete-while-connected"), "{text}");
        assert!(
            text.contains("replay: ckscheck run --seed 42 --filter store-states"),
            "{text}"
        );
    }

    #[test]
    fn a_failure_without_steps_shows_its_summary_and_no_empty_sections() {
        let mut report = sample::report();
        let check = &mut report.checks[2];
        let failure = check.failure.as_mut().unwrap();
        failure.summary = "the target could not be reached: connection refused".into();
        failure.steps.clear();
        failure.history.exchanges.clear();
        let text = failure_text(&report.checks[2], &report);
        assert!(
            text.contains(
                "failing findings:\n  the target could not be reached: connection refused\n"
            ),
            "{text}"
        );
        assert!(!text.contains("minimal sequence"), "{text}");
        assert!(!text.contains("what came back"), "{text}");
        assert!(!text.contains("as AWS CLI commands"), "{text}");
        assert!(text.contains("replay: ckscheck run --seed 42"), "{text}");
    }

    #[test]
    fn long_histories_keep_the_ends_of_each_step() {
        let mut history = sample::history();
        let page = history.exchanges[6].clone();
        history
            .exchanges
            .splice(7..7, std::iter::repeat_n(page, 50));
        let lines = exchange_lines(&history.exchanges);
        assert!(
            lines.iter().any(|l| l == "… 51 more exchange(s) of step 4"),
            "{lines:#?}"
        );
        assert!(lines.len() < 20, "{lines:#?}");
    }
}
