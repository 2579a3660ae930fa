//! The snapshot oracle: a scenario's normalised transcript against its snapshot, step by
//! step, with an insta-style diff for the report.
//!
//! Each step that differs gets findings with deviation signatures: first those of the
//! model-free oracles (fields, errors, exclusion, pagination, states) on the step's exchanges,
//! so a deviation a property check also finds has the same signature; else the structural
//! kinds of [`super::snapshot_kinds`]. Oracle findings on steps that match the snapshot are
//! dropped: the snapshot is KMS's answer.

use std::fmt::Write;

use similar::{ChangeTag, TextDiff};

use super::common::answer_kind;
use super::snapshot_kinds::{classify, parse_step};
use super::{Context, Finding, OracleFn, Severity, Verdict};
use super::{errors, exclusion, fields, pagination, states};
use crate::history::History;

/// Lines of context around each changed part of a diff.
const CONTEXT: usize = 3;

/// The model-free oracles whose findings explain a differing step.
const ORACLES: [OracleFn; 5] = [
    fields::fields,
    errors::errors,
    exclusion::exclusion,
    pagination::pagination,
    states::states,
];

/// The text that starts a step in a normalised transcript.
const STEP_START: &str = "  - op: ";

/// What the comparison found: the verdict and, when they differ, the diff.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Findings for each step that differs (or one for a missing snapshot).
    pub verdict: Verdict,
    /// The diff, expected (`-`) against actual (`+`), when they differ.
    pub diff: Option<String>,
}

/// What an inferred expectation covers: a structural difference on one of these transcript
/// steps and at one of these paths is unsettled, not a failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inferred {
    /// Transcript steps (1-based); None: every step.
    pub steps: Option<Vec<usize>>,
    /// Member paths (`XksProxyConfiguration.VpcEndpointServiceOwner`) or rules (`answer`) as
    /// findings name them; empty: every path.
    pub paths: Vec<String>,
}

impl Inferred {
    /// Whether a finding of rule `rule` on transcript step `step` is covered.
    pub fn covers(&self, step: usize, rule: &str) -> bool {
        let path = rule.split_once('/').map_or(rule, |(_, p)| p);
        self.steps.as_ref().is_none_or(|s| s.contains(&step))
            && (self.paths.is_empty() || self.paths.iter().any(|p| p == path || p == rule))
    }
}

/// Judges `actual` against `expected` (None: no snapshot); `history` is the scenario's played
/// history, whose exchange of step k (0-based `step` k-1) transcript step k shows. `inferred`:
/// what rests on our inference, where a structural difference is unsettled, not a failure.
pub fn compare(
    ctx: &Context<'_>,
    expected: Option<&str>,
    actual: &str,
    history: &History,
    inferred: Option<&Inferred>,
) -> Comparison {
    let mut verdict = Verdict::default();
    for op in operations(actual) {
        verdict.judged(op);
    }
    let Some(expected) = expected else {
        verdict.fail(
            "-",
            "snapshot/missing",
            "",
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
    let diff = TextDiff::from_lines(expected, actual);
    let (want, got) = (steps(expected), steps(actual));
    let differing: Vec<usize> = (0..want.len().max(got.len()))
        .filter(|&i| want.get(i) != got.get(i))
        .collect();
    let explained = if differing.is_empty() {
        Vec::new()
    } else {
        oracle_findings(ctx, history)
    };
    for i in differing {
        let step = i + 1;
        let mut found: Vec<Finding> = explained
            .iter()
            .filter(|(s, _)| *s == step)
            .map(|(_, f)| Finding {
                message: format!("step {step}: {}", f.message),
                ..f.clone()
            })
            .collect();
        if found.is_empty() {
            found = structural(ctx, step, want.get(i), got.get(i), history, inferred);
        }
        let mut seen: Vec<Finding> = Vec::new();
        for f in found {
            match seen.iter_mut().find(|g| g.signature() == f.signature()) {
                Some(g) => g.severity = g.severity.min(f.severity),
                None => seen.push(f),
            }
        }
        verdict.findings.extend(seen);
    }
    if verdict.findings.is_empty() {
        // A difference outside every step: no inference covers it.
        verdict.find(
            Severity::Failure,
            "-",
            "transcript",
            "the transcript differs",
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

/// The text of each step of a normalised transcript (from its `  - op: ` line to the next).
fn steps(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with(STEP_START) {
            out.push(String::new());
        }
        if let Some(step) = out.last_mut() {
            step.push_str(line);
            step.push('\n');
        }
    }
    out
}

/// The operation of a step's text.
fn step_operation(text: &str) -> &str {
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix(STEP_START))
        .map_or("-", str::trim)
}

/// The Failure and Unsettled findings of the model-free oracles that point at an exchange,
/// each with the (1-based) transcript step of that exchange.
fn oracle_findings(ctx: &Context<'_>, history: &History) -> Vec<(usize, Finding)> {
    if history.exchanges.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for oracle in ORACLES {
        for f in oracle(ctx, history).findings {
            if !matches!(f.severity, Severity::Failure | Severity::Unsettled) {
                continue;
            }
            let step = f
                .exchange
                .and_then(|i| history.exchanges.get(i))
                .map(|e| e.step as usize + 1);
            if let Some(step) = step {
                out.push((step, f));
            }
        }
    }
    out
}

/// The structural findings of step `step` (1-based), from its expected and actual text.
fn structural(
    ctx: &Context<'_>,
    step: usize,
    want: Option<&String>,
    got: Option<&String>,
    history: &History,
    inferred: Option<&Inferred>,
) -> Vec<Finding> {
    let op = got.or(want).map_or("-", |t| step_operation(t)).to_string();
    let finding = |rule: String, kind: String, detail: String| Finding {
        severity: if inferred.is_some_and(|i| i.covers(step, &rule)) {
            Severity::Unsettled
        } else {
            Severity::Failure
        },
        operation: op.clone(),
        rule,
        kind,
        message: format!("step {step} ({op}): {detail}"),
        exchange: None,
    };
    let (want, got) = match (want, got) {
        (Some(w), Some(g)) => (w, g),
        (Some(_), None) => {
            let kind = "the step is missing".to_string();
            return vec![finding("transcript".into(), kind.clone(), kind)];
        }
        _ => {
            let kind = "an unexpected step".to_string();
            return vec![finding("transcript".into(), kind.clone(), kind)];
        }
    };
    let (Some(w), Some(g)) = (parse_step(want), parse_step(got)) else {
        let kind = "the step differs".to_string();
        return vec![finding(
            "transcript".into(),
            kind,
            "the step differs from the snapshot".into(),
        )];
    };
    let last = history
        .exchanges
        .iter()
        .rposition(|e| e.step as usize + 1 == step);
    let actual_answer = last.map(|i| answer_kind(&history.exchanges[i]));
    classify(ctx.spec, &w, &g, actual_answer.as_deref())
        .into_iter()
        .map(|k| Finding {
            exchange: last,
            ..finding(k.rule, k.kind, k.detail)
        })
        .collect()
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
    use serde_json::{Value, json};

    use super::*;
    use crate::history::{Exchange, Outcome};
    use crate::oracle::common::testing::{ctx, ok, page, xks_entry};

    /// A Create step that got `[cks-1]`.
    const CREATE: &str = "  - op: CreateCustomKeyStore
    request:
      CustomKeyStoreName: \"[prefix]a\"
    status: 200
    request_id: \"[request-id]\"
    response:
      CustomKeyStoreId: \"[cks-1]\"";

    /// A Describe step listing one external key store.
    const XKS: &str = "  - op: DescribeCustomKeyStores
    request:
      CustomKeyStoreId: \"[cks-1]\"
    status: 200
    request_id: \"[request-id]\"
    response:
      CustomKeyStores:
        - ConnectionState: DISCONNECTED
          CreationDate: \"[epoch]\"
          CustomKeyStoreId: \"[cks-1]\"
          CustomKeyStoreName: \"[prefix]a\"
          CustomKeyStoreType: EXTERNAL_KEY_STORE
          XksProxyConfiguration:
            AccessKeyId: \"[xks:public.access-key-id]\"
            Connectivity: PUBLIC_ENDPOINT
            UriEndpoint: \"[xks:public.endpoint]\"
            UriPath: \"[xks:public.path]\"
      Truncated: false";

    /// A Describe step listing one FAILED CloudHSM store.
    const FAILED: &str = "  - op: DescribeCustomKeyStores
    request:
      CustomKeyStoreId: \"[cks-1]\"
    status: 200
    request_id: \"[request-id]\"
    response:
      CustomKeyStores:
        - CloudHsmClusterId: \"[cluster:healthy]\"
          ConnectionErrorCode: INVALID_CREDENTIALS
          ConnectionState: FAILED
          CreationDate: \"[epoch]\"
          CustomKeyStoreId: \"[cks-1]\"
          CustomKeyStoreName: \"[prefix]a\"
          CustomKeyStoreType: AWS_CLOUDHSM
          TrustAnchorCertificate: \"[cluster:healthy.anchor]\"
      Truncated: false";

    /// A Delete step refused with CustomKeyStoreInvalidStateException.
    const DELETE: &str = "  - op: DeleteCustomKeyStore
    request:
      CustomKeyStoreId: \"[cks-1]\"
    status: 400
    request_id: \"[request-id]\"
    error: CustomKeyStoreInvalidStateException
    message: \"[message]\"";

    /// A transcript of these steps.
    fn transcript(steps: &[&str]) -> String {
        format!("steps:\n{}", steps.join("\n"))
    }

    /// Compares without a history (the structural kinds only).
    fn judge(expected: &str, actual: &str) -> Comparison {
        compare(&ctx(), Some(expected), actual, &History::default(), None)
    }

    fn signatures(c: &Comparison) -> Vec<String> {
        c.verdict.findings.iter().map(Finding::signature).collect()
    }

    /// An exchange of transcript step `step` (1-based).
    fn exchange(step: u32, op: &str, request: Value, outcome: Outcome) -> Exchange {
        Exchange {
            sequence: 0,
            step: step - 1,
            attempt: 1,
            operation: op.into(),
            request,
            raw: false,
            wire: None,
            started_ms: 0,
            elapsed_ms: 1,
            outcome,
            expect: None,
        }
    }

    /// The history of CREATE then a Describe of `entry`; `create_request_id`: whether the
    /// Create's answer carried a request ID.
    fn xks_history(entry: Value, create_request_id: bool) -> History {
        let mut created = ok(json!({"CustomKeyStoreId": "cks-1"}));
        if let Outcome::Response { request_id, .. } = &mut created
            && !create_request_id
        {
            *request_id = None;
        }
        let name = entry["CustomKeyStoreName"].clone();
        History {
            exchanges: vec![
                exchange(
                    1,
                    "CreateCustomKeyStore",
                    json!({"CustomKeyStoreName": name}),
                    created,
                ),
                exchange(
                    2,
                    "DescribeCustomKeyStores",
                    json!({"CustomKeyStoreId": "cks-1"}),
                    ok(page(vec![entry], None)),
                ),
            ],
        }
    }

    #[test]
    fn the_same_text_passes_and_counts_its_operations() {
        let snap = transcript(&[CREATE, XKS]);
        let c = judge(&snap, &format!("{snap}\n"));
        assert!(c.verdict.findings.is_empty());
        assert_eq!(c.diff, None);
        assert_eq!(c.verdict.exercised["DescribeCustomKeyStores"], 1);
        assert_eq!(c.verdict.exercised["CreateCustomKeyStore"], 1);
    }

    #[test]
    fn a_missing_access_key_id_is_a_fields_finding_with_a_numbered_diff() {
        let snap = transcript(&[CREATE, XKS]);
        let actual = snap.replace(
            "            AccessKeyId: \"[xks:public.access-key-id]\"\n",
            "",
        );
        let c = judge(&snap, &actual);
        assert_eq!(
            signatures(&c),
            ["DescribeCustomKeyStores/fields/XksProxyConfiguration.AccessKeyId: missing"]
        );
        let f = &c.verdict.findings[0];
        assert_eq!(f.severity, Severity::Failure);
        assert!(
            f.message.starts_with(
                "step 2 (DescribeCustomKeyStores): CustomKeyStores[0].XksProxyConfiguration.AccessKeyId: missing"
            ),
            "{}",
            f.message
        );
        let diff = c.diff.unwrap();
        assert!(
            diff.contains("   22       │-            AccessKeyId: \"[xks:public.access-key-id]\""),
            "{diff}"
        );
        assert!(
            diff.contains("   23    22 │             Connectivity: PUBLIC_ENDPOINT"),
            "{diff}"
        );
    }

    #[test]
    fn the_fields_oracle_explains_a_missing_access_key_id_with_the_same_signature() {
        let snap = transcript(&[CREATE, XKS]);
        let actual = snap.replace(
            "            AccessKeyId: \"[xks:public.access-key-id]\"\n",
            "",
        );
        let mut entry = xks_entry("cks-1", "a", "DISCONNECTED");
        entry["XksProxyConfiguration"]
            .as_object_mut()
            .unwrap()
            .remove("AccessKeyId");
        // The Create's answer lacks a request ID: the errors oracle fires on step 1, which
        // matches the snapshot, so that finding is dropped.
        let history = xks_history(entry, false);
        assert!(
            errors::errors(&ctx(), &history)
                .findings
                .iter()
                .any(|f| f.exchange == Some(0) && f.severity == Severity::Failure),
            "the errors oracle flags step 1"
        );
        let c = compare(&ctx(), Some(&snap), &actual, &history, None);
        assert_eq!(
            signatures(&c),
            ["DescribeCustomKeyStores/fields/XksProxyConfiguration.AccessKeyId: missing"],
            "{:#?}",
            c.verdict.findings
        );
        let f = &c.verdict.findings[0];
        // The oracle's own finding, its message prefixed with the step.
        assert!(f.message.starts_with("step 2: "), "{}", f.message);
        assert_eq!(f.exchange, Some(1));
    }

    #[test]
    fn an_oracle_finding_on_a_differing_step_replaces_the_structural_kind() {
        let snap = transcript(&[CREATE]);
        let actual = snap.replace("request_id: \"[request-id]\"", "request_id: ~");
        assert_eq!(
            signatures(&judge(&snap, &actual)),
            ["CreateCustomKeyStore/answer: expected a request ID, got none"]
        );
        let mut history = xks_history(xks_entry("cks-1", "a", "DISCONNECTED"), false);
        history.exchanges.truncate(1);
        let c = compare(
            &ctx(),
            Some(&snap),
            &actual,
            &history,
            Some(&Inferred::default()),
        );
        let rules: Vec<&str> = c.verdict.findings.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(rules, ["errors/request-id"], "{:#?}", c.verdict.findings);
        let f = &c.verdict.findings[0];
        assert!(f.message.starts_with("step 1: "), "{}", f.message);
        // As the oracle found it: a failure even in an inferred scenario.
        assert_eq!(f.severity, Severity::Failure);
    }

    #[test]
    fn an_error_answered_with_a_200_is_one_answer_finding() {
        let snap = transcript(&[CREATE, DELETE]);
        let actual = transcript(&[
            CREATE,
            "  - op: DeleteCustomKeyStore
    request:
      CustomKeyStoreId: \"[cks-1]\"
    status: 200
    request_id: ~
    response: {}",
        ]);
        let c = judge(&snap, &actual);
        assert_eq!(
            signatures(&c),
            [
                "DeleteCustomKeyStore/answer: expected 400 CustomKeyStoreInvalidStateException, got 200"
            ]
        );
        assert_eq!(
            c.verdict.findings[0].message,
            "step 2 (DeleteCustomKeyStore): expected 400 CustomKeyStoreInvalidStateException, got 200"
        );
        // The history words the answer as the property checks do (a 500 with its content type).
        let history = History {
            exchanges: vec![exchange(
                2,
                "DeleteCustomKeyStore",
                json!({"CustomKeyStoreId": "cks-1"}),
                Outcome::Response {
                    status: 500,
                    request_id: Some("r".into()),
                    content_type: Some("text/html; charset=utf-8".into()),
                    error_type: None,
                    body: Value::Null,
                    text: Some("<html>".into()),
                },
            )],
        };
        let html = transcript(&[
            CREATE,
            "  - op: DeleteCustomKeyStore
    request:
      CustomKeyStoreId: \"[cks-1]\"
    status: 500
    request_id: \"[request-id]\"
    text: \"<html>\"",
        ]);
        let (want, got) = (steps(&snap), steps(&html));
        let found = structural(&ctx(), 2, want.get(1), got.get(1), &history, None);
        let kinds: Vec<String> = found.iter().map(Finding::signature).collect();
        assert_eq!(
            kinds,
            [
                "DeleteCustomKeyStore/answer: expected 400 CustomKeyStoreInvalidStateException, got 500 text/html"
            ]
        );
        assert_eq!(found[0].exchange, Some(0));
    }

    #[test]
    fn more_or_fewer_entries_are_one_count_finding() {
        let two = XKS.replace(
            "      Truncated: false",
            "        - ConnectionState: CONNECTED
          CreationDate: \"[epoch]\"
          CustomKeyStoreId: \"[cks-2]\"
          CustomKeyStoreName: \"[prefix]b\"
          CustomKeyStoreType: AWS_CLOUDHSM
      Truncated: false",
        );
        let (one, two) = (transcript(&[CREATE, XKS]), transcript(&[CREATE, &two]));
        assert_eq!(
            signatures(&judge(&one, &two)),
            ["DescribeCustomKeyStores/count/CustomKeyStores: more items than expected"]
        );
        let c = judge(&two, &one);
        assert_eq!(
            signatures(&c),
            ["DescribeCustomKeyStores/count/CustomKeyStores: fewer items than expected"]
        );
        assert!(
            c.verdict.findings[0]
                .message
                .ends_with("CustomKeyStores: expected 2 items, got 1"),
            "{}",
            c.verdict.findings[0].message
        );
    }

    #[test]
    fn an_enum_value_outside_the_enum_and_one_inside_it() {
        let snap = transcript(&[CREATE, XKS]);
        let lower = snap.replace(
            "ConnectionState: DISCONNECTED",
            "ConnectionState: connected",
        );
        assert_eq!(
            signatures(&judge(&snap, &lower)),
            ["DescribeCustomKeyStores/fields/ConnectionState: outside the enum"]
        );
        let snap = transcript(&[CREATE, FAILED]);
        let connected = snap
            .replace("          ConnectionErrorCode: INVALID_CREDENTIALS\n", "")
            .replace("ConnectionState: FAILED", "ConnectionState: CONNECTED");
        let c = judge(&snap, &connected);
        assert_eq!(
            signatures(&c),
            ["DescribeCustomKeyStores/value/ConnectionState: expected FAILED, got CONNECTED"]
        );
        // Without the state change, the missing code is reported.
        let no_code = snap.replace("          ConnectionErrorCode: INVALID_CREDENTIALS\n", "");
        assert_eq!(
            signatures(&judge(&snap, &no_code)),
            ["DescribeCustomKeyStores/fields/ConnectionErrorCode: missing"]
        );
    }

    #[test]
    fn a_string_creation_date_is_a_type_change() {
        // The normaliser redacts only a numeric CreationDate: a string date stays as it is.
        let snap = transcript(&[CREATE, XKS]);
        for date in ["\"2018-09-22T02:18:38Z\"", "2018-09-22T02:18:38Z"] {
            let actual = snap.replace("\"[epoch]\"", date);
            assert_eq!(
                signatures(&judge(&snap, &actual)),
                ["DescribeCustomKeyStores/fields/CreationDate: expected number, got string"],
                "{date}"
            );
        }
        // A null member reads as an absent one, as the fields oracle reads it.
        let actual = snap.replace("\"[epoch]\"", "~");
        assert_eq!(
            signatures(&judge(&snap, &actual)),
            ["DescribeCustomKeyStores/fields/CreationDate: missing"]
        );
        let actual = snap.replace("Truncated: false", "Truncated: ~");
        let back = signatures(&judge(&actual, &snap));
        assert_eq!(
            back,
            ["DescribeCustomKeyStores/fields/Truncated: expected null, got boolean"]
        );
    }

    #[test]
    fn an_inferred_scenario_is_unsettled_and_a_missing_snapshot_fails() {
        let snap = transcript(&[CREATE, DELETE]);
        let actual = snap.replace("status: 400", "status: 409");
        let all = Inferred::default();
        let c = compare(
            &ctx(),
            Some(&snap),
            &actual,
            &History::default(),
            Some(&all),
        );
        assert_eq!(
            signatures(&c),
            [
                "DeleteCustomKeyStore/answer: expected 400 CustomKeyStoreInvalidStateException, got 409 CustomKeyStoreInvalidStateException"
            ]
        );
        assert_eq!(c.verdict.findings[0].severity, Severity::Unsettled);
        assert_eq!(
            judge(&snap, &actual).verdict.findings[0].severity,
            Severity::Failure
        );
        let m = compare(&ctx(), None, &snap, &History::default(), None);
        assert_eq!(m.verdict.findings.len(), 1);
        assert_eq!(m.verdict.findings[0].rule, "snapshot/missing");
        assert_eq!(m.verdict.findings[0].severity, Severity::Failure);
        assert_eq!(m.diff, None);
    }

    #[test]
    fn an_inference_covers_its_steps_and_paths_and_nothing_else() {
        // A VPC store's listing: the inference is about VpcEndpointServiceOwner on step 2.
        let vpc = XKS
            .replace("PUBLIC_ENDPOINT", "VPC_ENDPOINT_SERVICE")
            .replace(
                "            UriPath: \"[xks:public.path]\"",
                "            UriPath: \"[xks:public.path]\"\n            VpcEndpointServiceName: \"[xks:vpc.vpc-service]\"",
            );
        let snap = transcript(&[CREATE, &vpc]);
        let owner = snap.replace(
            "            VpcEndpointServiceName:",
            "            VpcEndpointServiceOwner: \"[account]\"\n            VpcEndpointServiceName:",
        );
        let no_key = snap.replace(
            "            AccessKeyId: \"[xks:public.access-key-id]\"\n",
            "",
        );
        let scope = Inferred {
            steps: Some(vec![2]),
            paths: vec!["XksProxyConfiguration.VpcEndpointServiceOwner".into()],
        };
        let judge = |actual: &str, scope: &Inferred| {
            let c = compare(
                &ctx(),
                Some(&snap),
                actual,
                &History::default(),
                Some(scope),
            );
            c.verdict
                .findings
                .iter()
                .map(|f| (f.signature(), f.severity))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            judge(&owner, &scope),
            [(
                "DescribeCustomKeyStores/fields/XksProxyConfiguration.VpcEndpointServiceOwner: unexpected".to_string(),
                Severity::Unsettled
            )]
        );
        // Outside the paths, and outside the steps: a failure.
        assert_eq!(
            judge(&no_key, &scope),
            [(
                "DescribeCustomKeyStores/fields/XksProxyConfiguration.AccessKeyId: missing"
                    .to_string(),
                Severity::Failure
            )]
        );
        let step_one = Inferred {
            steps: Some(vec![1]),
            paths: Vec::new(),
        };
        assert_eq!(judge(&owner, &step_one)[0].1, Severity::Failure);
        // A step without paths covers every difference on it.
        let step_two = Inferred {
            steps: Some(vec![2]),
            paths: Vec::new(),
        };
        assert_eq!(judge(&no_key, &step_two)[0].1, Severity::Unsettled);
        // A rule names a kind of difference on every step.
        assert!(
            Inferred {
                steps: None,
                paths: vec!["answer".into()]
            }
            .covers(7, "answer")
        );
        assert!(
            !Inferred {
                steps: None,
                paths: vec!["answer".into()]
            }
            .covers(7, "fields/answer2")
        );
    }

    #[test]
    fn two_differing_steps_each_get_their_findings() {
        let snap = transcript(&[CREATE, FAILED, DELETE]);
        let actual = snap
            .replace(
                "CustomKeyStoreId: \"[cks-1]\"\n  - op: Describe",
                "CustomKeyStoreId: 7\n  - op: Describe",
            )
            .replace(
                "CustomKeyStoreType: AWS_CLOUDHSM",
                "CustomKeyStoreType: EXTERNAL_KEY_STORE",
            );
        let c = judge(&snap, &actual);
        assert_eq!(
            signatures(&c),
            [
                "CreateCustomKeyStore/fields/CustomKeyStoreId: expected string, got number",
                "DescribeCustomKeyStores/value/CustomKeyStoreType: expected AWS_CLOUDHSM, got EXTERNAL_KEY_STORE",
            ],
            "{:#?}",
            c.verdict.findings
        );
        assert!(
            c.verdict.findings[0]
                .message
                .starts_with("step 1 (CreateCustomKeyStore): ")
        );
        assert!(
            c.verdict.findings[1]
                .message
                .starts_with("step 2 (DescribeCustomKeyStores): ")
        );
    }

    #[test]
    fn request_id_message_and_request_differences_have_their_own_kinds() {
        let snap = transcript(&[CREATE, DELETE]);
        let pinned = snap.replace(
            "message: \"[message]\"",
            "pinned_message: Store is connected",
        );
        let other = pinned.replace("Store is connected", "Store is busy");
        assert_eq!(
            signatures(&judge(&pinned, &other)),
            ["DeleteCustomKeyStore/message: the error message differs"]
        );
        let marker = snap.replace(
            "    request:\n      CustomKeyStoreId: \"[cks-1]\"\n    status: 400",
            "    request:\n      CustomKeyStoreId: \"[cks-2]\"\n    status: 400",
        );
        assert_ne!(marker, snap);
        assert_eq!(
            signatures(&judge(&snap, &marker)),
            ["DeleteCustomKeyStore/transcript: the request differs"]
        );
        // The request differs because the answer did: only the answer counts.
        let both = marker.replace("status: 400", "status: 200");
        let kinds = signatures(&judge(&snap, &both));
        assert_eq!(kinds.len(), 1, "{kinds:?}");
        assert!(kinds[0].starts_with("DeleteCustomKeyStore/answer: "));
        let extra = snap.replace(
            "request_id: \"[request-id]\"\n    error",
            "request_id: ~\n    error",
        );
        assert_eq!(
            signatures(&judge(&extra, &snap)),
            ["DeleteCustomKeyStore/answer: unexpected request ID"]
        );
    }

    #[test]
    fn a_difference_outside_the_steps_and_a_missing_step_are_still_found() {
        let snap = transcript(&[CREATE]);
        let c = judge(&snap, &format!("# note\n{snap}"));
        assert_eq!(signatures(&c), ["-/transcript: the transcript differs"]);
        let c = judge(&transcript(&[CREATE, DELETE]), &snap);
        assert_eq!(
            signatures(&c),
            ["DeleteCustomKeyStore/transcript: the step is missing"]
        );
    }

    #[test]
    fn every_step_of_the_built_in_snapshots_parses_and_classifies() {
        use crate::scenario::corpus::SNAPSHOT_FILES;
        use crate::scenario::snapfile::contents;
        assert!(SNAPSHOT_FILES.len() >= 40);
        for (file, text) in SNAPSHOT_FILES {
            let snap = contents(text);
            for step in steps(&snap) {
                assert!(parse_step(&step).is_some(), "{file}: {step}");
            }
            // Every answer losing its request ID: one finding per step, the same signature.
            let actual = snap.replace("request_id: \"[request-id]\"", "request_id: ~");
            let c = judge(&snap, &actual);
            let n = snap.matches("request_id: \"[request-id]\"").count();
            assert_eq!(
                c.verdict.findings.len(),
                n,
                "{file}: {:#?}",
                c.verdict.findings
            );
            for f in &c.verdict.findings {
                assert_eq!(f.rule, "answer", "{file}: {f:?}");
                assert_eq!(f.kind, "expected a request ID, got none", "{file}: {f:?}");
            }
        }
    }
}
