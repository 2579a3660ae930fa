//! The text libtest prints for a failed trial: what the check enforces, then, for each failing
//! deviation, its findings, the minimal sequence and what it got back, and how to replay and
//! reproduce it; then the deviations that do not fail.

use std::fmt::Write;

use serde_json::Value;

use super::reproducer::{aws_cli_commands, curl_commands};
use super::{
    CheckReport, FailureDetail, RunReport, SERVE_URL, compact_json, deviation_line, finding_line,
    one_line, redact_history, redact_step,
};
use crate::deviation::{NOT_IMPLEMENTED, Seen, Status};
use crate::generate::{STORE_REF, Step};
use crate::history::{Exchange, Expectation, Outcome};
use crate::oracle::Finding;

/// Longest request or response body shown on one line, in characters.
const BODY_MAX: usize = 160;

/// Longest history shown in full; longer ones keep the first and last exchange of each step.
const HISTORY_MAX: usize = 40;

/// The failure message of a trial. Always: the explain line, the cases, target and seed.
///
/// - A property check (counterexamples with a signature): the counts line, then one block per
///   failing deviation, headed `deviation K of N: ID`, with its failing findings, the minimal
///   sequence (`minimal sequence (N steps)`, one line per step), what came back for each
///   exchange, the replay command, then the AWS CLI and curl reproducers.
/// - A scenario, or a trial that could not run (one counterexample without a signature): its
///   failing deviation ids, then one such block for all of its findings (with the snapshot
///   diff, if any); a trial without a counterexample gets its findings and the replay command.
/// - A scenario blocked by an operation the endpoint does not implement: one line naming the
///   deviation; nothing was sent.
///
/// Then a line per unsettled or known deviation of the trial (they do not fail it), and the
/// note of a check that stopped at its deviation cap.
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
    let failing: Vec<&Seen> = check.failing().collect();
    let blocked = failing
        .iter()
        .find(|d| d.rule == NOT_IMPLEMENTED && d.folded.is_none());
    if let (true, Some(d)) = (check.failures.is_empty(), blocked) {
        let _ = writeln!(
            out,
            "\nblocked by the deviation {} ({} is not implemented): nothing was sent",
            d.id, d.operation
        );
        return out;
    }

    if check.failures.iter().any(|f| f.signature.is_some()) {
        let _ = writeln!(out, "({})", finding_counts(check));
        let mut blocks: Vec<&Seen> = failing.clone();
        // In the order the counterexamples were found; those without one last.
        blocks.sort_by_key(|d| d.failure.unwrap_or(usize::MAX));
        for (k, d) in blocks.iter().enumerate() {
            let folded = d
                .folded
                .as_deref()
                .map(|f| format!(" (folded: {f})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "\ndeviation {} of {}: {}{folded}",
                k + 1,
                blocks.len(),
                d.id
            );
            let detail = d.failure.and_then(|i| check.failures.get(i));
            let findings: Vec<&Finding> = shown(check, d).collect();
            block(&mut out, check, report, detail, &findings, None);
        }
    } else {
        out.push_str("\nfailing deviations:\n");
        let mut ids: Vec<&str> = failing.iter().map(|d| d.id.as_str()).collect();
        ids.dedup();
        for id in ids {
            let _ = writeln!(out, "  {id}");
        }
        let findings: Vec<&Finding> = failing.iter().flat_map(|d| shown(check, d)).collect();
        let counts = finding_counts(check);
        out.push('\n');
        block(
            &mut out,
            check,
            report,
            check.failures.first(),
            &findings,
            Some(&counts),
        );
    }

    let others: Vec<&Seen> = check
        .deviations
        .iter()
        .filter(|d| matches!(d.status, Status::Unsettled | Status::Known))
        .collect();
    if !others.is_empty() {
        out.push_str("\nalso seen, not failing:\n");
        for d in others {
            let _ = writeln!(
                out,
                "  [{}] {}",
                d.status.as_str(),
                deviation_line(&d.id, &d.summary)
            );
        }
    }
    if let Some(note) = &check.capped {
        let _ = writeln!(out, "\nnote: {}", one_line(note, usize::MAX));
    }
    out
}

/// The findings of `check` that `seen` stands for.
fn shown<'c>(check: &'c CheckReport, seen: &'c Seen) -> impl Iterator<Item = &'c Finding> {
    let signature = seen.folded.as_deref().unwrap_or(&seen.id);
    check
        .verdict
        .findings
        .iter()
        .filter(move |f| f.signature() == signature)
}

/// One counterexample: its failing findings (its summary, or else `findings`), `counts` when
/// given, the snapshot diff, the minimal sequence, what came back, the replay command and the
/// AWS CLI and curl reproducers. Without a counterexample: the findings and the replay command.
fn block(
    out: &mut String,
    check: &CheckReport,
    report: &RunReport,
    failure: Option<&FailureDetail>,
    findings: &[&Finding],
    counts: Option<&str>,
) {
    out.push_str("failing findings:\n");
    let summary: Vec<&str> = failure
        .map(|f| f.summary.lines().filter(|l| !l.trim().is_empty()).collect())
        .unwrap_or_default();
    if summary.is_empty() {
        for f in findings {
            let _ = writeln!(out, "  {}", finding_line(f));
        }
    } else {
        for line in summary {
            let _ = writeln!(out, "  {}", line.trim());
        }
    }
    if let Some(counts) = counts {
        let _ = writeln!(out, "  ({counts})");
    }
    if let Some(diff) = failure.and_then(|f| f.diff.as_ref()) {
        let _ = write!(out, "\nagainst the snapshot:\n{diff}");
    }

    // A failure without steps (e.g. the target was unreachable) has no sequence to show.
    let counterexample = failure.filter(|f| !f.steps.is_empty() || !f.history.exchanges.is_empty());
    if let Some(failure) = counterexample {
        let _ = writeln!(out, "\nminimal sequence ({} steps):", failure.steps.len());
        for (i, step) in failure.steps.iter().enumerate() {
            let _ = writeln!(out, "  {}. {}", i + 1, step_line(&redact_step(step)));
        }
        if let Some(why) = failure.shrink.as_ref().and_then(|s| s.stopped.as_ref()) {
            let _ = writeln!(
                out,
                "  ({why}; this is the shortest sequence found so far that showed the deviation)"
            );
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

    if let Some(text) = failure.and_then(|f| f.reproducer.as_ref()) {
        let _ = write!(out, "\n{text}");
    }
    let seed = failure.map_or(report.seed, |f| f.seed);
    let replay = failure
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
}

/// `over all 17 case(s): 2 failing deviation(s), 1 unsettled (not failing), 1 warning(s)`,
/// then `, N known` when the baseline accepts some: the trial's distinct deviations by the
/// status the policy gave them.
fn finding_counts(check: &CheckReport) -> String {
    let count = |s: Status| {
        let mut ids: Vec<&str> = check
            .deviations
            .iter()
            .filter(|d| d.status == s)
            .map(|d| d.id.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    let mut parts = vec![format!("{} failing deviation(s)", count(Status::Failing))];
    let unsettled = count(Status::Unsettled);
    if unsettled > 0 {
        parts.push(format!("{unsettled} unsettled (not failing)"));
    }
    let warnings = count(Status::Warning);
    if warnings > 0 {
        parts.push(format!("{warnings} warning(s)"));
    }
    let known = count(Status::Known);
    if known > 0 {
        parts.push(format!("{known} known"));
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
            wire,
        } => format!(
            "Raw {operation} {}{}{}",
            compact_json(&Value::String(body.clone()), BODY_MAX),
            wire.as_ref()
                .map(|w| format!(" ({})", w.describe()))
                .unwrap_or_default(),
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

    /// Asserts that `parts` occur in `text` in this order.
    fn in_order(text: &str, parts: &[&str]) {
        let mut at = 0;
        for part in parts {
            let found = text[at..]
                .find(part)
                .unwrap_or_else(|| panic!("missing or out of order: {part:?}\n---\n{text}"));
            at += found + part.len();
        }
    }

    #[test]
    fn the_failure_text_has_every_part_in_order() {
        let report = sample::report();
        let text = failure_text(&report.checks[2], &report);
        let header = format!("deviation 1 of 2: {}\n", sample::MODEL_AGREEMENT);
        in_order(
            &text,
            &[
                "store-states: connection states follow the model\n",
                "17 case(s) against http://localhost:4566, seed 42\n",
                "(over all 17 case(s): 2 failing deviation(s), 1 unsettled (not failing), 1 warning(s))\n",
                &header,
                "failing findings:\n  [failure] ConnectCustomKeyStore states/model-agreement: expected CONNECTING or CONNECTED after Connect, got DISCONNECTED (exchange #3)\n",
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
            ],
        );
        assert!(!text.contains(sample::CLEAR_PASSWORD), "{text}");
        assert!(!text.contains("guess-me-1"), "{text}");
        assert!(!text.contains("start the reference emulator"), "{text}");
    }

    #[test]
    fn each_failing_deviation_gets_its_own_block() {
        let report = sample::report();
        let text = failure_text(&report.checks[2], &report);
        assert_eq!(text.matches("deviation 1 of 2: ").count(), 1, "{text}");
        assert_eq!(text.matches("deviation 2 of 2: ").count(), 1, "{text}");
        assert!(!text.contains("of 3:"), "{text}");
        assert_eq!(text.matches("minimal sequence (").count(), 2, "{text}");
        assert_eq!(text.matches("\nreplay: ").count(), 2, "{text}");
        assert_eq!(text.matches("as AWS CLI commands:").count(), 2, "{text}");
        let (first, second) = text.split_once("deviation 2 of 2: ").unwrap();
        // The first block is the model-agreement deviation's (its counterexample came first).
        assert!(first.contains(sample::MODEL_AGREEMENT), "{first}");
        assert!(first.contains("minimal sequence (7 steps):"), "{first}");
        assert!(!first.contains("states/connect-answer"), "{first}");
        in_order(
            second,
            &[
                sample::CONNECT_ANSWER,
                "\nfailing findings:\n  [failure] ConnectCustomKeyStore states/connect-answer: expected an empty object, got null (exchange #3)\n",
                "minimal sequence (2 steps):\n  1. CreateCustomKeyStore ",
                "  2. ConnectCustomKeyStore {\"CustomKeyStoreId\":\"$store:0\"}\n\n",
                "what came back (3 exchanges):\n",
                "  #3 step 2 ConnectCustomKeyStore → 200 {}\n",
                "replay: ckscheck run --seed 42 --filter store-states",
                "as AWS CLI commands:\n",
                "aws kms connect-custom-key-store",
                "as curl commands:\n",
                // Then the deviations that do not fail: unsettled and known, not warnings.
                "\nalso seen, not failing:\n",
                &format!("  [unsettled] {}\n", sample::DELETE_UNSETTLED),
            ],
        );
        assert!(!second.contains("DescribeCustomKeyStores"), "{second}");
        assert!(!text.contains("namespaced-type"), "{text}");
        assert!(!text.contains("note: "), "{text}");
    }

    #[test]
    fn known_deviations_and_the_cap_are_noted_after_the_blocks() {
        let mut report = sample::baselined();
        report.checks[2].capped = Some(
            "stopped looking for new deviations at 2 (--max-deviations) after 17 case(s); more may exist"
                .into(),
        );
        let text = failure_text(&report.checks[2], &report);
        in_order(
            &text,
            &[
                "(over all 17 case(s): 2 failing deviation(s), 1 warning(s), 1 known)\n",
                "deviation 1 of 2: ",
                "deviation 2 of 2: ",
                "\nalso seen, not failing:\n",
                &format!("  [known] {}\n", sample::DELETE_UNSETTLED),
                "\nnote: stopped looking for new deviations at 2 (--max-deviations) after 17 case(s); more may exist\n",
            ],
        );
        assert!(!text.contains("[unsettled]"), "{text}");
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
    fn a_scenario_keeps_one_block_for_all_its_findings_with_its_ids_first() {
        let mut report = sample::report();
        let check = &mut report.checks[2];
        let mut played = check.failures.remove(0);
        check.failures.clear();
        played.signature = None;
        played.summary = "ConnectCustomKeyStore [states/model-agreement]: got DISCONNECTED\n\
                          ConnectCustomKeyStore [states/connect-answer]: got null"
            .into();
        played.diff = Some(
            "-  \"ConnectionState\": \"CONNECTED\"\n+  \"ConnectionState\": \"DISCONNECTED\"\n"
                .into(),
        );
        check.failures.push(played);
        sample::resolve(&mut report, &crate::deviation::Policy::default());
        let text = failure_text(&report.checks[2], &report);
        in_order(
            &text,
            &[
                "17 case(s) against http://localhost:4566, seed 42\n",
                &format!(
                    "\nfailing deviations:\n  {}\n  {}\n",
                    sample::CONNECT_ANSWER,
                    sample::MODEL_AGREEMENT
                ),
                "\nfailing findings:\n  ConnectCustomKeyStore [states/model-agreement]: got DISCONNECTED\n  ConnectCustomKeyStore [states/connect-answer]: got null\n",
                "  (over all 17 case(s): 2 failing deviation(s), 1 unsettled (not failing), 1 warning(s))\n",
                "\nagainst the snapshot:\n-  \"ConnectionState\": \"CONNECTED\"\n",
                "minimal sequence (7 steps):\n",
                "what came back (13 exchanges):\n",
                "replay: ckscheck run --seed 42 --filter store-states",
                "as AWS CLI commands:\n",
                "as curl commands:\n",
                "\nalso seen, not failing:\n  [unsettled] ",
            ],
        );
        assert!(!text.contains("deviation 1 of"), "{text}");
        assert!(!text.contains(sample::CLEAR_PASSWORD), "{text}");
    }

    #[test]
    fn a_failure_without_counterexample_lists_the_failing_findings() {
        let mut report = sample::report();
        report.checks[2].failures.clear();
        sample::resolve(&mut report, &crate::deviation::Policy::default());
        let text = failure_text(&report.checks[2], &report);
        assert!(text.contains("  [failure] ConnectCustomKeyStore states/connect-answer: expected an empty object, got null (exchange #3)\n"), "{text}");
        assert!(!text.contains("minimal sequence"), "{text}");
        assert!(
            !text.contains("[unsettled] DeleteCustomKeyStore states"),
            "{text}"
        );
        assert!(
            text.contains("replay: ckscheck run --seed 42 --filter store-states"),
            "{text}"
        );
    }

    #[test]
    fn a_failure_without_steps_shows_its_summary_and_no_empty_sections() {
        let mut report = sample::report();
        let check = &mut report.checks[0];
        check.failures.push(FailureDetail {
            signature: None,
            summary: "the target could not be reached: connection refused".into(),
            steps: Vec::new(),
            history: Default::default(),
            seed: 42,
            cases_needed: 0,
            requests_needed: 0,
            shrink: None,
            diff: None,
            replay: None,
            reproducer: None,
            raw: None,
        });
        sample::resolve(&mut report, &crate::deviation::Policy::default());
        let text = failure_text(&report.checks[0], &report);
        in_order(
            &text,
            &[
                "\nfailing deviations:\n  harness/run: the trial could not run\n",
                "failing findings:\n  the target could not be reached: connection refused\n",
                "replay: ckscheck run --seed 42 --filter validation",
            ],
        );
        assert!(!text.contains("minimal sequence"), "{text}");
        assert!(!text.contains("what came back"), "{text}");
        assert!(!text.contains("as AWS CLI commands"), "{text}");
    }

    #[test]
    fn a_blocked_scenario_says_so_in_one_line() {
        let report = sample::blocked();
        let check = report.checks.last().unwrap();
        let text = failure_text(check, &report);
        assert_eq!(
            text,
            "snapshot::disconnect-twice: disconnecting a disconnected store is harmless\n\
             1 case(s) against http://localhost:4566, seed 42\n\
             \n\
             blocked by the deviation DisconnectCustomKeyStore/not-implemented: answers 501 \
             text/html (DisconnectCustomKeyStore is not implemented): nothing was sent\n"
        );
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
