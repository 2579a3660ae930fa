//! Report: formats results for people and machines: libtest failure text, JUnit XML, a JSON
//! report, a Markdown parity matrix, a self-contained HTML page, the terminal's deviation catalogue and shell reproducers.
//! It never judges: whether a check failed, and what each deviation is (failing, unsettled,
//! warning, known, fixed), comes from the statuses [`crate::deviation::Policy::resolve`] and
//! [`crate::deviation::catalogue`] decided.
//!
//! Secrets never leave through here. Histories arrive masked; steps (which the generator keeps
//! in clear) and, as a second line of defence, history requests are masked again on the way
//! out: every value of a secret member becomes a `[secret…]` token.

pub mod catalogue;
pub mod cost;
pub mod coverage;
pub mod failure;
pub mod html;
pub mod json;
pub mod junit;
pub mod matrix;
pub mod merge;
pub mod progress;
pub mod reproducer;

use std::time::Duration;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::deviation::{Seen, Status as DeviationStatus};
use crate::generate::Step;
use crate::history::{History, SECRET_TOKEN, is_secret_shape};
use crate::oracle::{Family, Finding, Severity, Verdict};
use crate::spec::{ShapeType, Spec};

pub use failure::failure_text;
pub use json::json_report;
pub use junit::junit_xml;
pub use matrix::parity_matrix;
pub use progress::Progress;
pub use reproducer::{aws_cli_commands, curl_commands, replay_hint};

/// The value of [`RunReport::endpoint`] for a run against the embedded (in-process) emulator;
/// `embedded <anything>` (e.g. `embedded http://127.0.0.1:40123`) is read the same way.
pub const EMBEDDED_ENDPOINT: &str = "embedded";

/// The value of [`RunReport::endpoint`] for `ckscheck xks run` against its embedded proxy.
pub const EMBEDDED_PROXY: &str = "embedded proxy";

/// Where `ckscheck serve` listens by default: the reproducers of an embedded run point here.
pub const SERVE_URL: &str = "http://127.0.0.1:4599";

/// The result of one check (one libtest trial).
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Trial name, e.g. `pagination`.
    pub name: String,
    /// The parity-matrix column the check belongs to.
    pub family: Family,
    /// One line: what the check enforces.
    pub explain: String,
    /// Generated cases run.
    pub cases: u32,
    /// Requests sent (every attempt, page and poll).
    pub requests: u64,
    /// Wall time of the check (milliseconds in JSON).
    #[serde(rename = "duration_ms", serialize_with = "as_millis")]
    pub duration: Duration,
    /// All findings (failures, unsettled, warnings) and exercised counts.
    pub verdict: Verdict,
    /// The shrunk counterexamples: one per distinct failing deviation of a property check (in
    /// the order their first cases were drawn), the played steps of a scenario, or why the
    /// trial could not run.
    pub failures: Vec<FailureDetail>,
    /// The trial's distinct deviations with their status, decided by
    /// [`crate::deviation::Policy::resolve`] when the trial ended.
    pub deviations: Vec<Seen>,
    /// Set when the check stopped looking for new deviations at its cap: says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capped: Option<String>,
    /// Filtered out / not run.
    pub ignored: bool,
    /// Measurements worth reporting, e.g. `Encrypt p99` → `3.1 ms` (latency).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metrics: std::collections::BTreeMap<String, String>,
}

/// The shrunk counterexample of a failed check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FailureDetail {
    /// The signature of the deviation it shows (None: a scenario's steps, which show all of its
    /// findings, or a trial that could not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The failing findings, one per line.
    pub summary: String,
    /// The shrunk sequence.
    pub steps: Vec<Step>,
    /// What the shrunk sequence got back (secrets masked).
    pub history: History,
    /// The run seed that replays it.
    pub seed: u64,
    /// Generated cases run up to and including the first failing one.
    pub cases_needed: u32,
    /// Requests sent up to and including the first case that showed it (saved regressions and
    /// baseline reproducers first, then drawn cases in drawing order).
    pub requests_needed: u64,
    /// How shrinking it went (None: not shrunk, e.g. a scenario or an XKS check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shrink: Option<crate::suite::ShrinkStats>,
    /// For a scenario: its snapshot (`-`) against what came back (`+`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The command that replays it, when it is not `ckscheck run`'s (e.g. `ckscheck xks run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<String>,
    /// The shrunk input and how to send it again by hand, for checks whose steps are not KMS
    /// requests (the XKS certification checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reproducer: Option<String>,
    /// The same reproduction as structured fields, for checks whose steps are not KMS requests
    /// (XKS): the JSON report's `steps`, `exchanges` and `curl` come from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawReproduction>,
}

impl FailureDetail {
    /// The length of its reproducer: KMS steps, or the XKS requests of a raw one.
    pub fn step_count(&self) -> usize {
        self.raw
            .as_ref()
            .map_or(self.steps.len(), |r| r.steps.len())
    }
}

/// A reproduction whose requests are not KMS operations (the XKS proxy API), secrets masked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RawReproduction {
    /// One line per exchange: what the request was.
    pub steps: Vec<String>,
    /// One object per exchange: `operation`, `what`, `method`, `path`, `request`, `status`,
    /// `error_name`, `latency_ms`, `response` (or `error` when no answer came).
    pub exchanges: Vec<Value>,
    /// One curl command per exchange.
    pub curl: Vec<String>,
}

/// The results of a whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    /// The run seed.
    pub seed: u64,
    /// The endpoint URL under test, or [`EMBEDDED_ENDPOINT`] for the embedded emulator.
    pub endpoint: String,
    /// The signing region.
    pub region: String,
    /// Whether unsettled findings fail checks (`--strict`).
    pub strict: bool,
    /// Names of the faults planted in the embedded emulator (`--fault`), if any.
    pub faults: Vec<String>,
    /// One report per check, in run order.
    pub checks: Vec<CheckReport>,
    /// The run's distinct deviations (empty until the run has ended).
    pub catalogue: crate::deviation::Catalogue,
    /// What the run did not certify, said at the top of every report (e.g. `xks run` over plain
    /// HTTP: TLS was not part of it); empty for a full run.
    pub caveats: Vec<String>,
    /// The shard this run was (`--partition`, e.g. `count:2/4`); None for a whole run.
    pub partition: Option<String>,
}

/// How a check ended, as every writer shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Ran, and nothing failed.
    Passed,
    /// Has a counterexample or a failing finding.
    Failed,
    /// Filtered out or not run.
    Ignored,
}

impl Status {
    /// `passed`, `failed` or `ignored`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Ignored => "ignored",
        }
    }
}

/// How many checks ended which way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Checks in the run.
    pub checks: usize,
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed.
    pub failed: usize,
    /// Checks filtered out or not run.
    pub ignored: usize,
}

impl CheckReport {
    /// The report of a check that did not run (filtered out, or its target lacks something).
    pub fn not_run(name: String, family: Family, explain: String) -> CheckReport {
        CheckReport {
            name,
            family,
            explain,
            cases: 0,
            requests: 0,
            duration: Duration::ZERO,
            verdict: Verdict::default(),
            failures: Vec::new(),
            deviations: Vec::new(),
            capped: None,
            ignored: true,
            metrics: Default::default(),
        }
    }

    /// Ignored when not run; failed when one of its deviations is failing (as the policy
    /// decided, see [`CheckReport::deviations`]); passed otherwise.
    pub fn status(&self) -> Status {
        if self.ignored {
            Status::Ignored
        } else if self.failing().next().is_some() {
            Status::Failed
        } else {
            Status::Passed
        }
    }

    /// The trial's failing deviations.
    pub fn failing(&self) -> impl Iterator<Item = &Seen> {
        self.deviations
            .iter()
            .filter(|d| d.status == DeviationStatus::Failing)
    }

    /// The findings that do not fail the check: warnings, and unsettled ones unless `strict`.
    pub fn notes(&self, strict: bool) -> impl Iterator<Item = &Finding> {
        self.verdict.findings.iter().filter(move |f| {
            f.severity == Severity::Warning || (!strict && f.severity == Severity::Unsettled)
        })
    }
}

impl RunReport {
    /// The command that replays `check` with `seed` against the same target (the whole run when
    /// `check` is empty).
    pub fn replay_command(&self, seed: u64, check: &str) -> String {
        let embedded = self.is_embedded();
        let mut replay =
            reproducer::replay_hint(seed, check, (!embedded).then_some(self.endpoint.as_str()));
        if !embedded {
            replay.push_str(" --region ");
            replay.push_str(&reproducer::sh_word(&self.region));
        }
        if self.strict {
            replay.push_str(" --strict");
        }
        replay.push_str(&self.fault_flags());
        replay
    }

    /// The command that serves the reference emulator a reproducer runs against.
    pub fn serve_command(&self, seed: u64) -> String {
        format!("ckscheck serve --seed {seed}{}", self.fault_flags())
    }

    fn fault_flags(&self) -> String {
        self.faults
            .iter()
            .map(|f| format!(" --fault {}", reproducer::sh_word(f)))
            .collect()
    }

    /// Whether the run was against the embedded emulator (see [`EMBEDDED_ENDPOINT`]).
    pub fn is_embedded(&self) -> bool {
        self.endpoint.is_empty() || self.endpoint.starts_with(EMBEDDED_ENDPOINT)
    }

    /// How many checks passed, failed and were ignored.
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            checks: self.checks.len(),
            ..Totals::default()
        };
        for c in &self.checks {
            match c.status() {
                Status::Passed => t.passed += 1,
                Status::Failed => t.failed += 1,
                Status::Ignored => t.ignored += 1,
            }
        }
        t
    }

    /// The endpoint as people should read it.
    pub fn endpoint_label(&self) -> String {
        if self.endpoint == EMBEDDED_PROXY {
            "embedded reference XKS proxy".into()
        } else if self.is_embedded() {
            "embedded reference emulator".into()
        } else {
            self.endpoint.clone()
        }
    }
}

fn as_millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A severity as a lower-case word.
pub(crate) fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Failure => "failure",
        Severity::Unsettled => "unsettled",
        Severity::Warning => "warning",
    }
}

/// A finding on one line: `[failure] OP rule: message (exchange #N)`, N counted from 1 (the
/// form the writers use; handy for [`FailureDetail::summary`]).
pub fn finding_line(f: &Finding) -> String {
    let at = f
        .exchange
        .map(|i| format!(" (exchange #{})", i + 1))
        .unwrap_or_default();
    format!(
        "[{}] {} {}: {}{at}",
        severity_word(f.severity),
        f.operation,
        f.rule,
        one_line(&f.message, usize::MAX)
    )
}

/// A deviation on one line: its id, then ` — ` and what was seen when that adds to the id
/// (the id ends with the kind, often the same words).
pub(crate) fn deviation_line(id: &str, summary: &str) -> String {
    let id = one_line(id, usize::MAX);
    let summary = one_line(summary, usize::MAX);
    if summary.is_empty() || id.ends_with(&summary) {
        id
    } else {
        format!("{id} — {summary}")
    }
}

/// Collapses whitespace runs (newlines included) to one space and cuts to `max` characters,
/// ending with `…` when cut.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= max {
        return joined;
    }
    let mut cut: String = joined.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A JSON value on one line, cut to `max` characters.
pub(crate) fn compact_json(value: &Value, max: usize) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Masks every secret member of an operation's request that is not masked already, as
/// `[secret]`. Unknown operations pass unchanged.
pub(crate) fn redact(operation: &str, request: &Value) -> Value {
    let spec = Spec::kms();
    match spec.operation(operation) {
        Some(op) => redact_shape(spec, &op.input, request, 0),
        None => request.clone(),
    }
}

fn redact_shape(spec: &Spec, shape_name: &str, value: &Value, depth: usize) -> Value {
    let Some(shape) = spec.shapes.get(shape_name) else {
        return value.clone();
    };
    if depth > 32 {
        return value.clone();
    }
    match (shape.kind, value) {
        (ShapeType::Structure, Value::Object(map)) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match shape.members.get(k) {
                        Some(m) => redact_shape(spec, &m.shape, v, depth + 1),
                        None => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        (ShapeType::List, Value::Array(items)) => match &shape.member {
            Some(member) => Value::Array(
                items
                    .iter()
                    .map(|v| redact_shape(spec, member, v, depth + 1))
                    .collect(),
            ),
            None => value.clone(),
        },
        (ShapeType::String, Value::String(s))
            if !s.starts_with(SECRET_TOKEN) && is_secret_shape(spec, shape_name) =>
        {
            Value::String(format!("{SECRET_TOKEN}]"))
        }
        _ => value.clone(),
    }
}

/// A raw body with its secrets masked when it parses as JSON; as it is otherwise.
pub(crate) fn redact_raw(operation: &str, body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => {
            let masked = redact(operation, &v);
            if masked == v {
                body.to_string()
            } else {
                masked.to_string()
            }
        }
        Err(_) => body.to_string(),
    }
}

/// A step with the secrets of its bodies masked.
pub(crate) fn redact_step(step: &Step) -> Step {
    match step {
        Step::Raw {
            operation,
            body,
            expect,
            wire,
        } => Step::Raw {
            operation: operation.clone(),
            body: redact_raw(operation, body),
            expect: expect.clone(),
            wire: wire.clone(),
        },
        // Groups recurse here, so a Raw step inside one is redacted as well.
        Step::Concurrent { steps } => Step::Concurrent {
            steps: steps.iter().map(redact_step).collect(),
        },
        other => other.map_call_bodies(&redact),
    }
}

/// A history with every request masked again (see [`redact`]).
pub(crate) fn redact_history(history: &History) -> History {
    History {
        exchanges: history
            .exchanges
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.request = match &e.request {
                    Value::String(s) if e.raw => Value::String(redact_raw(&e.operation, s)),
                    other => redact(&e.operation, other),
                };
                e
            })
            .collect(),
    }
}

#[cfg(test)]
pub(crate) mod sample {
    //! A small run shared by the writers' tests: one passing check per family that matters, a
    //! failing one with two deviations, each with its shrunk history (the longer one has a
    //! retry, settle polls, pages, a masked `[secret=other]`, a raw body, a concurrent step, an
    //! unknown outcome), and an ignored one; resolved, with its catalogue. Variants add a
    //! baseline ([`baselined`]) or a scenario blocked by an unimplemented operation
    //! ([`blocked`]).

    use std::collections::BTreeMap;
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;
    use crate::deviation::{Baseline, Policy};
    use crate::history::{Exchange, Expectation, Outcome};

    /// The clear-text password the generator put into a step; must never be printed.
    pub const CLEAR_PASSWORD: &str = "kmsuser-Passw0rd!";
    /// The store ID the failing history's create got back.
    pub const STORE_ID: &str = "cks-0123456789abcdef0";
    /// The name the failing history's create used (it contains a `'`).
    pub const NAME: &str = "ckscheck-r1-o'brien";

    fn response(status: u16, body: Value) -> Outcome {
        Outcome::Response {
            status,
            request_id: Some("req-1".into()),
            content_type: Some("application/x-amz-json-1.1".into()),
            error_type: None,
            body,
            text: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn exchange(
        step: u32,
        attempt: u32,
        operation: &str,
        request: Value,
        started_ms: u64,
        elapsed_ms: u64,
        outcome: Outcome,
    ) -> Exchange {
        Exchange {
            sequence: 7,
            step,
            attempt,
            operation: operation.into(),
            request,
            raw: false,
            wire: None,
            started_ms,
            elapsed_ms,
            outcome,
            expect: None,
        }
    }

    fn error(name: &str, message: &str) -> Outcome {
        response(400, json!({"__type": name, "message": message}))
    }

    /// The shrunk history of the failing check.
    pub fn history() -> History {
        let create = json!({
            "CustomKeyStoreName": NAME,
            "CloudHsmClusterId": "cluster-1234abcd",
            "KeyStorePassword": "[secret=cluster:cluster-1234abcd]",
            "TrustAnchorCertificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        });
        let by_id = json!({ "CustomKeyStoreId": STORE_ID });
        let store = |state: &str| json!({"CustomKeyStores": [{"CustomKeyStoreId": STORE_ID, "ConnectionState": state}]});
        let mut raw = exchange(
            5,
            1,
            "DescribeCustomKeyStores",
            Value::String("{\"Limit\": ".into()),
            300,
            1,
            error("SerializationException", "Unexpected end of input"),
        );
        raw.raw = true;
        raw.expect = Some(Expectation {
            error: Some("SerializationException".into()),
            rule: "body/truncated-json".into(),
            unsettled: false,
        });
        let mut update = exchange(
            4,
            1,
            "UpdateCustomKeyStore",
            json!({"CustomKeyStoreId": STORE_ID, "KeyStorePassword": "[secret=other]"}),
            250,
            1,
            error(
                "com.amazonaws.kms#CustomKeyStoreInvalidStateException",
                "store is connected",
            ),
        );
        update.expect = Some(Expectation {
            error: Some("CustomKeyStoreInvalidStateException".into()),
            rule: "state/update-while-connected".into(),
            unsettled: true,
        });
        History {
            exchanges: vec![
                exchange(
                    0,
                    1,
                    "CreateCustomKeyStore",
                    create.clone(),
                    10,
                    2,
                    error("ThrottlingException", "slow down"),
                ),
                exchange(
                    0,
                    2,
                    "CreateCustomKeyStore",
                    create,
                    40,
                    3,
                    response(200, json!({ "CustomKeyStoreId": STORE_ID })),
                ),
                exchange(
                    1,
                    1,
                    "ConnectCustomKeyStore",
                    by_id.clone(),
                    50,
                    2,
                    response(200, json!({})),
                ),
                exchange(
                    2,
                    1,
                    "DescribeCustomKeyStores",
                    by_id.clone(),
                    60,
                    2,
                    response(200, store("CONNECTING")),
                ),
                exchange(
                    2,
                    1,
                    "DescribeCustomKeyStores",
                    by_id.clone(),
                    80,
                    2,
                    response(200, store("CONNECTING")),
                ),
                exchange(
                    2,
                    1,
                    "DescribeCustomKeyStores",
                    by_id.clone(),
                    120,
                    2,
                    response(200, store("CONNECTED")),
                ),
                exchange(
                    3,
                    1,
                    "DescribeCustomKeyStores",
                    json!({"Limit": 1}),
                    200,
                    2,
                    response(
                        200,
                        json!({"CustomKeyStores": [{"CustomKeyStoreId": STORE_ID}], "NextMarker": "m-1", "Truncated": true}),
                    ),
                ),
                exchange(
                    3,
                    1,
                    "DescribeCustomKeyStores",
                    json!({"Limit": 1, "Marker": "m-1"}),
                    202,
                    2,
                    response(
                        200,
                        json!({"CustomKeyStores": [{"CustomKeyStoreId": "cks-other"}], "NextMarker": "m-2", "Truncated": true}),
                    ),
                ),
                exchange(
                    3,
                    1,
                    "DescribeCustomKeyStores",
                    json!({"Limit": 1, "Marker": "m-2"}),
                    204,
                    2,
                    response(200, json!({"CustomKeyStores": [], "Truncated": false})),
                ),
                update,
                raw,
                exchange(
                    6,
                    1,
                    "DisconnectCustomKeyStore",
                    by_id.clone(),
                    400,
                    5,
                    response(200, json!({})),
                ),
                exchange(
                    6,
                    1,
                    "DeleteCustomKeyStore",
                    by_id,
                    401,
                    10_000,
                    Outcome::Unknown {
                        reason: "timed out".into(),
                    },
                ),
            ],
        }
    }

    /// The shrunk steps of the failing check (in clear, as the generator keeps them).
    pub fn steps() -> Vec<Step> {
        let expect = |error: &str, rule: &str| Expectation {
            error: Some(error.into()),
            rule: rule.into(),
            unsettled: false,
        };
        vec![
            Step::Call {
                operation: "CreateCustomKeyStore".into(),
                body: json!({
                    "CustomKeyStoreName": "$name:o'brien",
                    "CloudHsmClusterId": "cluster-1234abcd",
                    "KeyStorePassword": CLEAR_PASSWORD,
                    "TrustAnchorCertificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
                }),
                expect: None,
            },
            Step::Call {
                operation: "ConnectCustomKeyStore".into(),
                body: json!({"CustomKeyStoreId": "$store:0"}),
                expect: None,
            },
            Step::Settle { store: 0 },
            Step::Paginate { limit: Some(1) },
            Step::Call {
                operation: "UpdateCustomKeyStore".into(),
                body: json!({"CustomKeyStoreId": "$store:0", "KeyStorePassword": "guess-me-1"}),
                expect: Some(expect(
                    "CustomKeyStoreInvalidStateException",
                    "state/update-while-connected",
                )),
            },
            Step::Raw {
                operation: "DescribeCustomKeyStores".into(),
                body: "{\"Limit\": ".into(),
                expect: expect("SerializationException", "body/truncated-json"),
                wire: None,
            },
            Step::Concurrent {
                steps: vec![
                    Step::Call {
                        operation: "DisconnectCustomKeyStore".into(),
                        body: json!({"CustomKeyStoreId": "$store:0"}),
                        expect: None,
                    },
                    Step::Call {
                        operation: "DeleteCustomKeyStore".into(),
                        body: json!({"CustomKeyStoreId": "$store:0"}),
                        expect: None,
                    },
                ],
            },
        ]
    }

    fn finding(
        severity: Severity,
        operation: &str,
        rule: &str,
        kind: &str,
        message: &str,
    ) -> Finding {
        Finding {
            severity,
            operation: operation.into(),
            rule: rule.into(),
            kind: kind.into(),
            message: message.into(),
            exchange: Some(2),
        }
    }

    fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
        pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    }

    /// The shrunk counterexample of one deviation: `finding` as its summary and signature.
    fn detail(finding: &Finding, steps: Vec<Step>, history: History, needed: u32) -> FailureDetail {
        FailureDetail {
            signature: Some(finding.signature()),
            summary: finding_line(finding),
            steps,
            history,
            seed: 42,
            cases_needed: needed,
            requests_needed: 0,
            shrink: None,
            diff: None,
            replay: None,
            reproducer: None,
            raw: None,
        }
    }

    /// The signature of the failing check's model-agreement deviation (7-step reproducer).
    pub const MODEL_AGREEMENT: &str = "ConnectCustomKeyStore/states/model-agreement: expected CONNECTING or CONNECTED, got DISCONNECTED";
    /// The signature of the failing check's connect-answer deviation (2-step reproducer).
    pub const CONNECT_ANSWER: &str =
        "ConnectCustomKeyStore/states/connect-answer: expected an empty object, got null";
    /// The signature of the failing check's unsettled finding.
    pub const DELETE_UNSETTLED: &str = "DeleteCustomKeyStore/states/delete-while-connected: expected CustomKeyStoreInvalidStateException, got no response";

    /// The run: `validation` and `pagination` pass (`pagination` with a warning),
    /// `store-states` fails with two deviations (one counterexample each), an unsettled and a
    /// warning one, and `snapshots` is ignored. Resolved under the default policy, with its
    /// catalogue.
    pub fn report() -> RunReport {
        let failing = Verdict {
            findings: vec![
                finding(
                    Severity::Failure,
                    "ConnectCustomKeyStore",
                    "states/model-agreement",
                    "expected CONNECTING or CONNECTED, got DISCONNECTED",
                    "expected CONNECTING or CONNECTED after Connect, got DISCONNECTED",
                ),
                finding(
                    Severity::Failure,
                    "ConnectCustomKeyStore",
                    "states/connect-answer",
                    "expected an empty object, got null",
                    "expected an empty object,\ngot null",
                ),
                finding(
                    Severity::Unsettled,
                    "DeleteCustomKeyStore",
                    "states/delete-while-connected",
                    "expected CustomKeyStoreInvalidStateException, got no response",
                    "expected CustomKeyStoreInvalidStateException, got no response",
                ),
                finding(
                    Severity::Warning,
                    "UpdateCustomKeyStore",
                    "errors/namespaced-type",
                    "namespaced __type",
                    "__type carries a namespace",
                ),
            ],
            exercised: counts(&[
                ("CreateCustomKeyStore", 5),
                ("ConnectCustomKeyStore", 3),
                ("DescribeCustomKeyStores", 7),
            ]),
            ..Default::default()
        };
        let short = History {
            exchanges: history().exchanges[..3].to_vec(),
        };
        let failures = vec![
            detail(&failing.findings[0], steps(), history(), 3),
            detail(&failing.findings[1], steps()[..2].to_vec(), short, 5),
        ];
        let mut report = RunReport {
            faults: Vec::new(),
            seed: 42,
            endpoint: "http://localhost:4566".into(),
            region: "us-east-1".into(),
            strict: false,
            checks: vec![
                CheckReport {
                    name: "validation".into(),
                    family: Family::Validation,
                    explain: "every rule-breaking request gets the declared client error".into(),
                    cases: 256,
                    requests: 1792,
                    duration: Duration::from_millis(1500),
                    verdict: Verdict {
                        findings: vec![],
                        exercised: counts(&[
                            ("CreateCustomKeyStore", 40),
                            ("GetKeyPolicy", 1),
                            ("ConnectCustomKeyStore", 0),
                        ]),
                        ..Default::default()
                    },
                    failures: Vec::new(),
                    deviations: Vec::new(),
                    capped: None,
                    ignored: false,
                    metrics: Default::default(),
                },
                CheckReport {
                    name: "pagination".into(),
                    family: Family::Pagination,
                    explain: "paging with any Limit yields each store exactly once".into(),
                    cases: 64,
                    requests: 448,
                    duration: Duration::from_millis(800),
                    verdict: Verdict {
                        findings: vec![finding(
                            Severity::Warning,
                            "DescribeCustomKeyStores",
                            "pagination/marker-format",
                            "not opaque",
                            "NextMarker is not opaque",
                        )],
                        exercised: counts(&[("DescribeCustomKeyStores", 12)]),
                        ..Default::default()
                    },
                    failures: Vec::new(),
                    deviations: Vec::new(),
                    capped: None,
                    ignored: false,
                    metrics: Default::default(),
                },
                CheckReport {
                    name: "store-states".into(),
                    family: Family::States,
                    explain: "connection states follow the model".into(),
                    cases: 17,
                    requests: 119,
                    duration: Duration::from_millis(2345),
                    verdict: failing,
                    failures,
                    deviations: Vec::new(),
                    capped: None,
                    ignored: false,
                    metrics: Default::default(),
                },
                CheckReport::not_run(
                    "snapshots".into(),
                    Family::Snapshots,
                    "responses match the reviewed transcripts".into(),
                ),
            ],
            catalogue: Default::default(),
            caveats: Vec::new(),
            partition: None,
        };
        resolve(&mut report, &Policy::default());
        report
    }

    /// Decides every check's deviations again under `policy` (and `strict` as it says) and
    /// rebuilds the run's catalogue.
    pub fn resolve(report: &mut RunReport, policy: &Policy) {
        report.strict = policy.strict;
        for check in &mut report.checks {
            policy.resolve(check);
        }
        report.catalogue = crate::deviation::catalogue(report, policy);
    }

    /// What [`baseline`] says about the deviation that is no longer seen.
    pub const FIXED: &str = "DescribeCustomKeyStores/pagination/exactly-once: a store listed twice";
    /// What [`baseline`] says about the deviation nothing that ran could see.
    pub const UNOBSERVED: &str = "DescribeCustomKeyStores/snapshot: differs";
    /// The reason [`baseline`] gives for the known deviation.
    pub const REASON: &str = "upstream issue 12: deleting a connected store is not rejected";

    /// A baseline listing the unsettled deviation of `store-states` (known, with
    /// [`REASON`]), [`FIXED`] (seen by `pagination` before, which ran in full) and
    /// [`UNOBSERVED`] (seen by the ignored `snapshots`).
    pub fn baseline() -> Baseline {
        let entry = |id: &str, seen_in: &str, reason: &str| crate::deviation::baseline::Entry {
            id: id.into(),
            summary: "what it was".into(),
            seen_in: vec![seen_in.into()],
            reason: reason.into(),
            steps: String::new(),
        };
        Baseline {
            format_version: crate::deviation::baseline::FORMAT_VERSION,
            deviations: vec![
                entry(DELETE_UNSETTLED, "store-states", REASON),
                entry(FIXED, "pagination", "was fixed in 1.2"),
                entry(UNOBSERVED, "snapshots", ""),
            ],
        }
    }

    /// [`report`] resolved against [`baseline`].
    pub fn baselined() -> RunReport {
        let mut report = report();
        let policy = Policy {
            baseline: Some(baseline()),
            ..Policy::default()
        };
        resolve(&mut report, &policy);
        report
    }

    /// What the endpoint of [`blocked`] answers to DisconnectCustomKeyStore.
    pub const NOT_IMPLEMENTED_ANSWER: &str = "501 text/html";

    /// A policy for an endpoint that does not implement DisconnectCustomKeyStore (answers
    /// [`NOT_IMPLEMENTED_ANSWER`]), with the probe's one-request reproducer.
    pub fn blocked_policy() -> Policy {
        let answer = NOT_IMPLEMENTED_ANSWER;
        let body = json!({"CustomKeyStoreId": "cks-00000000000000000"});
        let mut probe = exchange(
            0,
            1,
            "DisconnectCustomKeyStore",
            body.clone(),
            0,
            3,
            Outcome::Response {
                status: 501,
                request_id: None,
                content_type: Some("text/html".into()),
                error_type: None,
                body: Value::Null,
                text: Some("<html>Not Implemented</html>".into()),
            },
        );
        probe.sequence = 0;
        let detail = FailureDetail {
            signature: Some(crate::deviation::not_implemented_id(
                "DisconnectCustomKeyStore",
                answer,
            )),
            summary: format!("DisconnectCustomKeyStore [not-implemented]: answered {answer}"),
            steps: vec![Step::Call {
                operation: "DisconnectCustomKeyStore".into(),
                body,
                expect: None,
            }],
            history: History {
                exchanges: vec![probe],
            },
            seed: 42,
            cases_needed: 0,
            requests_needed: 0,
            shrink: None,
            diff: None,
            replay: None,
            reproducer: None,
            raw: None,
        };
        let mut policy = Policy::default();
        policy.unimplemented.insert(
            "DisconnectCustomKeyStore".into(),
            crate::deviation::Unimplemented {
                answer: answer.into(),
                detail,
            },
        );
        policy
    }

    /// [`report`] plus a scenario `snapshot::disconnect-twice` blocked because the endpoint
    /// does not implement DisconnectCustomKeyStore, resolved with [`blocked_policy`].
    pub fn blocked() -> RunReport {
        let answer = NOT_IMPLEMENTED_ANSWER;
        let mut scenario = CheckReport::not_run(
            "snapshot::disconnect-twice".into(),
            Family::Snapshots,
            "disconnecting a disconnected store is harmless".into(),
        );
        scenario.ignored = false;
        scenario.cases = 1;
        let mut blocked = finding(
            Severity::Failure,
            "DisconnectCustomKeyStore",
            crate::deviation::NOT_IMPLEMENTED,
            &format!("answers {answer}"),
            &format!(
                "blocked: the scenario needs DisconnectCustomKeyStore, which the endpoint does \
                 not implement (it answers {answer}); nothing was sent"
            ),
        );
        blocked.exchange = None;
        scenario.verdict.findings.push(blocked);
        let mut report = report();
        report.checks.push(scenario);
        resolve(&mut report, &blocked_policy());
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deviation::Policy;
    use serde_json::json;

    #[test]
    fn an_xks_reproducer_counts_its_requests_as_steps() {
        let mut detail = sample::blocked_policy().unimplemented["DisconnectCustomKeyStore"]
            .detail
            .clone();
        assert_eq!(detail.step_count(), 1);
        detail.steps.clear();
        detail.raw = Some(RawReproduction {
            steps: vec!["GetKeyMetadata".into(), "Encrypt".into(), "Decrypt".into()],
            ..RawReproduction::default()
        });
        assert_eq!(detail.step_count(), 3);
    }

    #[test]
    fn statuses_and_totals_follow_the_resolved_deviations_and_strictness() {
        let mut report = sample::report();
        let statuses: Vec<_> = report.checks.iter().map(|c| c.status()).collect();
        assert_eq!(
            statuses,
            [
                Status::Passed,
                Status::Passed,
                Status::Failed,
                Status::Ignored
            ]
        );
        let t = report.totals();
        assert_eq!((t.checks, t.passed, t.failed, t.ignored), (4, 2, 1, 1));
        assert_eq!(
            report.checks[2]
                .failing()
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>(),
            [sample::CONNECT_ANSWER, sample::MODEL_AGREEMENT]
        );
        // An unsettled deviation fails a check only under --strict.
        report.checks[1].verdict.findings[0].severity = Severity::Unsettled;
        sample::resolve(&mut report, &Policy::default());
        assert_eq!(report.checks[1].status(), Status::Passed);
        assert_eq!(
            report.checks[1].deviations[0].status,
            DeviationStatus::Unsettled
        );
        let strict = Policy {
            strict: true,
            ..Default::default()
        };
        sample::resolve(&mut report, &strict);
        assert_eq!(report.checks[1].status(), Status::Failed);
        assert_eq!(report.totals().failed, 2);
        assert_eq!(report.checks[1].notes(false).count(), 1);
        assert_eq!(report.checks[1].notes(true).count(), 0);
        // A baseline turns a failing deviation into a known one: the check passes.
        let mut baseline = sample::baseline();
        for id in [sample::CONNECT_ANSWER, sample::MODEL_AGREEMENT] {
            let mut e = baseline.deviations[0].clone();
            e.id = id.into();
            baseline.deviations.push(e);
        }
        let known = Policy {
            baseline: Some(baseline),
            ..Default::default()
        };
        sample::resolve(&mut report, &known);
        assert_eq!(report.checks[2].status(), Status::Passed);
    }

    #[test]
    fn the_sample_catalogue_has_every_status() {
        let report = sample::baselined();
        let cat = &report.catalogue;
        let status = |id: &str| {
            cat.deviations
                .iter()
                .find(|d| d.id == id)
                .unwrap_or_else(|| panic!("no {id} in {cat:#?}"))
                .status
        };
        assert_eq!(status(sample::MODEL_AGREEMENT), DeviationStatus::Failing);
        assert_eq!(status(sample::DELETE_UNSETTLED), DeviationStatus::Known);
        assert_eq!(status(sample::FIXED), DeviationStatus::Fixed);
        assert_eq!(status(sample::UNOBSERVED), DeviationStatus::Unobserved);
        assert_eq!(cat.count(DeviationStatus::Warning), 2);
        let blocked = sample::blocked();
        let probe = blocked
            .catalogue
            .deviations
            .iter()
            .find(|d| d.rule == crate::deviation::NOT_IMPLEMENTED)
            .unwrap();
        assert_eq!(probe.reproducer.as_ref().unwrap().0, "probe");
        assert_eq!(probe.seen_in, ["snapshot::disconnect-twice"]);
    }

    #[test]
    fn an_empty_check_name_replays_the_whole_run() {
        let report = sample::report();
        assert_eq!(
            report.replay_command(42, ""),
            "ckscheck run --seed 42 --endpoint-url http://localhost:4566 --region us-east-1"
        );
    }

    #[test]
    fn redaction_masks_clear_secrets_and_keeps_tokens_and_other_members() {
        let body = json!({
            "CustomKeyStoreName": "n",
            "KeyStorePassword": "clear-1",
            "XksProxyAuthenticationCredential": {"AccessKeyId": "AKIDKEEP", "RawSecretAccessKey": "clear-2"},
        });
        let masked = redact("CreateCustomKeyStore", &body);
        let text = masked.to_string();
        assert!(
            !text.contains("clear-1") && !text.contains("clear-2"),
            "{text}"
        );
        assert!(
            text.contains("AKIDKEEP") && text.contains("\"n\""),
            "{text}"
        );
        assert_eq!(masked["KeyStorePassword"], "[secret]");
        let token = json!({"KeyStorePassword": "[secret=other]"});
        assert_eq!(redact("UpdateCustomKeyStore", &token), token);
        let raw = redact_raw("UpdateCustomKeyStore", r#"{"KeyStorePassword":"clear-3"}"#);
        assert!(!raw.contains("clear-3"), "{raw}");
        assert_eq!(redact_raw("UpdateCustomKeyStore", "{broken"), "{broken");
        let step = redact_step(&sample::steps()[0]);
        assert!(!format!("{step:?}").contains(sample::CLEAR_PASSWORD));
    }

    #[test]
    fn check_reports_serialise_duration_as_millis() {
        let report = sample::report();
        let v = serde_json::to_value(&report.checks[2]).unwrap();
        assert_eq!(v["duration_ms"], 2345);
        assert_eq!(v["family"], "states");
        assert!(v.get("duration").is_none());
    }

    #[test]
    fn one_line_collapses_and_cuts() {
        assert_eq!(one_line("a\n  b\tc", 100), "a b c");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(compact_json(&json!({"a": "bcdef"}), 6), "{\"a\":…");
    }
}
