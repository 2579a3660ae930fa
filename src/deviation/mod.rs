//! From findings to deviations: the one step that decides each finding's outcome.
//!
//! Oracles return findings; a user acts on deviations. A deviation is one stable signature
//! (`OPERATION/RULE: KIND`, see [`crate::oracle::Finding::signature`]) that several checks and
//! scenarios may find, with its smallest reproducer. [`Policy::resolve`] gives every distinct
//! signature of a trial its status (failing, unsettled, warning, known from a baseline, or
//! folded under an operation the endpoint does not implement) when the trial ends;
//! [`catalogue::catalogue`] gathers them over the run and adds the baseline entries that no
//! longer occur. Every report (terminal, JSON, JUnit, matrix) reads these statuses and never
//! decides again.

pub mod baseline;
pub mod catalogue;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::history::History;
use crate::oracle::{Finding, Severity, implemented};
use crate::report::{CheckReport, FailureDetail};

pub use baseline::Baseline;
pub use catalogue::{Catalogue, Deviation, catalogue};

/// The rule of the deviation that stands for an operation the endpoint does not implement.
pub const NOT_IMPLEMENTED: &str = "not-implemented";

/// How a deviation ends up in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// A deviation that fails the run.
    Failing,
    /// Disagrees with an unsettled or inferred expectation: fails only under `--strict`.
    Unsettled,
    /// A style deviation or a documented trap: never fails.
    Warning,
    /// Listed in the baseline: accepted, does not fail the run.
    Known,
    /// Listed in the baseline and no longer seen where it was seen before.
    Fixed,
    /// Listed in the baseline, but nothing that saw it ran this time (filtered out, not run).
    Unobserved,
}

impl Status {
    /// The lower-case word the reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Failing => "failing",
            Status::Unsettled => "unsettled",
            Status::Warning => "warning",
            Status::Known => "known",
            Status::Fixed => "fixed",
            Status::Unobserved => "unobserved",
        }
    }
}

/// One distinct deviation as one trial saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    /// The deviation's signature (for a folded finding: the `OP/not-implemented` it is folded
    /// under).
    pub id: String,
    /// The operation concerned.
    pub operation: String,
    /// The rule.
    pub rule: String,
    /// One finding's message: what was expected and what came back, as this trial saw it.
    pub summary: String,
    /// Its status in this run.
    pub status: Status,
    /// For a folded finding, its own signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded: Option<String>,
    /// The index in the trial's `failures` of the reproducer that shows it, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<usize>,
}

/// An operation the endpoint does not implement, as the probe before the trials found it.
#[derive(Debug, Clone)]
pub struct Unimplemented {
    /// The answer it gives (e.g. `500 text/html`).
    pub answer: String,
    /// The probe's request and answer: the smallest reproducer.
    pub detail: FailureDetail,
}

/// What decides each finding's outcome: strictness, the baseline and the operations the
/// endpoint does not implement.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Unsettled findings fail too (`--strict`).
    pub strict: bool,
    /// Known deviations (`--baseline`).
    pub baseline: Option<Baseline>,
    /// Operations the endpoint answers as not implemented, by name.
    pub unimplemented: BTreeMap<String, Unimplemented>,
}

/// The signature of the deviation standing for an unimplemented operation.
pub fn not_implemented_id(operation: &str, answer: &str) -> String {
    crate::oracle::signature(operation, NOT_IMPLEMENTED, &format!("answers {answer}"))
}

impl Policy {
    /// The status a deviation with this signature and severity gets.
    pub fn status(&self, id: &str, severity: Severity) -> Status {
        if self.baseline.as_ref().is_some_and(|b| b.contains(id)) {
            return Status::Known;
        }
        match severity {
            Severity::Failure => Status::Failing,
            Severity::Unsettled if self.strict => Status::Failing,
            Severity::Unsettled => Status::Unsettled,
            Severity::Warning => Status::Warning,
        }
    }

    /// The not-implemented deviation a finding is folded under, if any: its operation is one the
    /// endpoint does not implement, or its reproducer needed such an operation (which got the
    /// not-implemented answer).
    pub fn folded_under(&self, finding: &Finding, reproducer: Option<&History>) -> Option<String> {
        if let Some(u) = self.unimplemented.get(&finding.operation) {
            return Some(not_implemented_id(&finding.operation, &u.answer));
        }
        let history = reproducer?;
        history.exchanges.iter().find_map(|e| {
            let u = self.unimplemented.get(&e.operation)?;
            implemented::answer_to_target(e).map(|_| not_implemented_id(&e.operation, &u.answer))
        })
    }

    /// The not-implemented deviation that blocks a trial needing `operations`, if any.
    pub fn blocking<'a>(&self, operations: impl IntoIterator<Item = &'a str>) -> Option<String> {
        operations.into_iter().find_map(|op| {
            self.unimplemented
                .get(op)
                .map(|u| not_implemented_id(op, &u.answer))
        })
    }

    /// Decides the trial's deviations: one [`Seen`] per distinct signature of its findings,
    /// each with its status and the reproducer that shows it.
    pub fn resolve(&self, report: &mut CheckReport) {
        let mut seen: Vec<Seen> = Vec::new();
        for finding in &report.verdict.findings {
            let own = finding.signature();
            let failure = report
                .failures
                .iter()
                .position(|f| f.signature.as_deref() == Some(own.as_str()))
                .or_else(|| {
                    // A scenario's one reproducer shows all of its findings.
                    (report.failures.len() == 1 && report.failures[0].signature.is_none())
                        .then_some(0)
                });
            let reproducer = failure.map(|i| &report.failures[i].history);
            let (id, folded, status) = match self.folded_under(finding, reproducer) {
                Some(under) if under != own => {
                    let status = self.status(&under, Severity::Failure);
                    (under, Some(own), status)
                }
                Some(under) => {
                    // The not-implemented deviation itself (a blocked scenario's finding).
                    let status = self.status(&under, Severity::Failure);
                    (under, None, status)
                }
                None => {
                    let status = self.status(&own, finding.severity);
                    (own, None, status)
                }
            };
            if let Some(s) = seen.iter_mut().find(|s| s.id == id && s.folded == folded) {
                // The same signature at two severities: the stronger one counts.
                if status < s.status {
                    s.status = status;
                }
                continue;
            }
            let (operation, rule) = match &folded {
                Some(_) => (finding.operation.clone(), NOT_IMPLEMENTED.to_string()),
                None => (finding.operation.clone(), finding.rule.clone()),
            };
            let operation = match &folded {
                Some(_) => id.split('/').next().unwrap_or(&operation).to_string(),
                None => operation,
            };
            seen.push(Seen {
                id,
                operation,
                rule,
                summary: finding.message.clone(),
                status,
                folded,
                failure,
            });
        }
        // A failure no finding names (the target could not be reached, the check was aborted).
        for (i, f) in report.failures.iter().enumerate() {
            if f.signature.is_none() && report.verdict.findings.is_empty() {
                seen.push(Seen {
                    id: "harness/run: the trial could not run".into(),
                    operation: "-".into(),
                    rule: "harness".into(),
                    summary: crate::report::one_line(&f.summary, 200),
                    status: Status::Failing,
                    folded: None,
                    failure: Some(i),
                });
            }
        }
        seen.sort_by(|a, b| (a.status, &a.id).cmp(&(b.status, &b.id)));
        report.deviations = seen;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::Step;
    use crate::history::{Exchange, Outcome};
    use crate::oracle::{Family, Verdict};
    use crate::report::RunReport;

    fn finding(severity: Severity, operation: &str, rule: &str, kind: &str) -> Finding {
        Finding {
            severity,
            operation: operation.into(),
            rule: rule.into(),
            kind: kind.into(),
            message: format!("{operation} {rule} on store cks-123"),
            exchange: None,
        }
    }

    fn exchange(operation: &str, status: u16, content_type: &str) -> Exchange {
        Exchange {
            sequence: 1,
            step: 0,
            attempt: 1,
            operation: operation.into(),
            request: json!({}),
            raw: false,
            wire: None,
            expect: None,
            started_ms: 0,
            elapsed_ms: 1,
            outcome: Outcome::Response {
                status,
                request_id: Some("r".into()),
                content_type: Some(content_type.into()),
                error_type: None,
                body: serde_json::Value::Null,
                text: Some("<html>NotImplementedError</html>".into()),
            },
        }
    }

    fn detail(signature: Option<&str>, steps: usize, history: History) -> FailureDetail {
        let step = Step::Call {
            operation: "CreateCustomKeyStore".into(),
            body: json!({}),
            expect: None,
        };
        FailureDetail {
            signature: signature.map(str::to_string),
            summary: "s".into(),
            steps: vec![step; steps],
            history,
            seed: 1,
            cases_needed: 1,
            requests_needed: 0,
            shrink: None,
            diff: None,
            replay: None,
            reproducer: None,
            raw: None,
        }
    }

    fn check(name: &str, findings: Vec<Finding>, failures: Vec<FailureDetail>) -> CheckReport {
        let mut c = CheckReport::not_run(name.into(), Family::States, "x".into());
        c.ignored = false;
        c.verdict = Verdict {
            findings,
            exercised: Default::default(),
            ..Default::default()
        };
        c.failures = failures;
        c
    }

    fn run(checks: Vec<CheckReport>) -> RunReport {
        RunReport {
            seed: 1,
            endpoint: "http://localhost:4566".into(),
            region: "us-east-1".into(),
            strict: false,
            faults: Vec::new(),
            checks,
            catalogue: Catalogue::default(),
            caveats: Vec::new(),
            partition: None,
        }
    }

    const CREATE: &str = "CreateCustomKeyStore";
    const DESCRIBE: &str = "DescribeCustomKeyStores";

    #[test]
    fn each_signature_gets_its_status_once_and_its_reproducer() {
        let twice = finding(
            Severity::Failure,
            DESCRIBE,
            "pagination/union",
            "got some missing",
        );
        let unsettled = finding(Severity::Unsettled, CREATE, "states/x", "y");
        let warning = finding(Severity::Warning, CREATE, "errors/bare-type", "namespaced");
        let sig = twice.signature();
        let mut c = check(
            "pagination",
            vec![twice.clone(), twice, unsettled.clone(), warning],
            vec![detail(Some(&sig), 3, History::default())],
        );
        Policy::default().resolve(&mut c);
        let statuses: Vec<(String, Status, Option<usize>)> = c
            .deviations
            .iter()
            .map(|d| (d.id.clone(), d.status, d.failure))
            .collect();
        assert_eq!(
            statuses,
            [
                (sig.clone(), Status::Failing, Some(0)),
                (unsettled.signature(), Status::Unsettled, None),
                (
                    "CreateCustomKeyStore/errors/bare-type: namespaced".into(),
                    Status::Warning,
                    None
                ),
            ]
        );
        assert_eq!(c.status(), crate::report::Status::Failed);
        // Strict: the unsettled one fails; a baseline: the failing one is known.
        Policy {
            strict: true,
            ..Policy::default()
        }
        .resolve(&mut c);
        assert_eq!(c.failing().count(), 2);
        let baseline = Baseline::parse(&format!(
            "format_version = 1\n[[deviation]]\nid = {:?}\n",
            sig
        ))
        .unwrap();
        Policy {
            baseline: Some(baseline),
            ..Policy::default()
        }
        .resolve(&mut c);
        let known = c.deviations.iter().find(|d| d.id == sig).unwrap();
        assert_eq!(known.status, Status::Known);
        assert_eq!(c.status(), crate::report::Status::Passed);
    }

    fn unimplemented_create() -> Policy {
        let probe = exchange(CREATE, 500, "text/html");
        let mut policy = Policy::default();
        policy.unimplemented.insert(
            CREATE.into(),
            Unimplemented {
                answer: "500 text/html".into(),
                detail: detail(
                    Some(&not_implemented_id(CREATE, "500 text/html")),
                    1,
                    History {
                        exchanges: vec![probe],
                    },
                ),
            },
        );
        policy
    }

    #[test]
    fn findings_an_unimplemented_operation_causes_are_folded_under_it() {
        let policy = unimplemented_create();
        let on_create = finding(Severity::Failure, CREATE, "errors/content-type", "html");
        // A Describe finding whose shrunk sequence needed the Create that was not implemented.
        let after = finding(Severity::Failure, DESCRIBE, "pagination/union", "missing");
        let needed = History {
            exchanges: vec![exchange(CREATE, 500, "text/html")],
        };
        // A Describe finding of its own: not folded.
        let own = finding(
            Severity::Failure,
            DESCRIBE,
            "fields/CreationDate",
            "missing",
        );
        let mut c = check(
            "pagination",
            vec![on_create.clone(), after.clone(), own.clone()],
            vec![
                detail(Some(&after.signature()), 2, needed),
                detail(Some(&own.signature()), 1, History::default()),
            ],
        );
        policy.resolve(&mut c);
        let under = not_implemented_id(CREATE, "500 text/html");
        let folded: Vec<(&str, Option<&str>)> = c
            .deviations
            .iter()
            .map(|d| (d.id.as_str(), d.folded.as_deref()))
            .collect();
        assert!(folded.contains(&(under.as_str(), Some(on_create.signature().as_str()))));
        assert!(folded.contains(&(under.as_str(), Some(after.signature().as_str()))));
        assert!(folded.contains(&(own.signature().as_str(), None)));
        let report = run(vec![c]);
        let cat = catalogue(&report, &policy);
        let entry = cat.deviations.iter().find(|d| d.id == under).unwrap();
        assert_eq!(entry.folded.len(), 2);
        assert_eq!(
            entry.steps(),
            1,
            "the probe's one request is its reproducer"
        );
        assert_eq!(cat.deviations.len(), 2);
        // The census saw the operation answered otherwise too: unsettled, not failing.
        let mut cat = cat;
        cat.unconfirmed_not_implemented(CREATE, 10, 10);
        assert_eq!(
            cat.deviations
                .iter()
                .find(|d| d.id == under)
                .unwrap()
                .status,
            Status::Failing
        );
        cat.unconfirmed_not_implemented(CREATE, 10, 7);
        let entry = cat.deviations.iter().find(|d| d.id == under).unwrap();
        assert_eq!(entry.status, Status::Unsettled);
        assert!(entry.summary.contains("3 of 10"), "{}", entry.summary);
    }

    #[test]
    fn a_baseline_entry_not_seen_is_fixed_only_where_its_trial_ran_in_full() {
        let gone = "DescribeCustomKeyStores/pagination/union: got some missing";
        let text = format!(
            "format_version = 1\n[[deviation]]\nid = {gone:?}\nseen_in = [\"pagination\"]\nreason = \"r\"\n"
        );
        let policy = Policy {
            baseline: Some(Baseline::parse(&text).unwrap()),
            ..Policy::default()
        };
        let status = |mut c: CheckReport| {
            policy.resolve(&mut c);
            let cat = catalogue(&run(vec![c]), &policy);
            assert!(cat.baseline);
            cat.deviations.iter().find(|d| d.id == gone).unwrap().status
        };
        assert_eq!(status(check("pagination", vec![], vec![])), Status::Fixed);
        let mut capped = check("pagination", vec![], vec![]);
        capped.capped = Some("stopped at 20".into());
        assert_eq!(status(capped), Status::Unobserved);
        assert_eq!(
            status(check("exclusion", vec![], vec![])),
            Status::Unobserved
        );
        let mut ignored = check("pagination", vec![], vec![]);
        ignored.ignored = true;
        assert_eq!(status(ignored), Status::Unobserved);
        assert!(!catalogue(&run(vec![]), &policy).fails(false));
        let fixed = {
            let c = check("pagination", vec![], vec![]);
            catalogue(&run(vec![c]), &policy)
        };
        assert!(!fixed.fails(false));
        assert!(
            fixed.fails(true),
            "--strict-baseline fails on a fixed entry"
        );
    }

    #[test]
    fn a_written_baseline_keeps_reasons_and_a_property_checks_steps() {
        let a = finding(Severity::Failure, DESCRIBE, "exclusion/not-found", "k");
        let b = finding(Severity::Failure, CREATE, "answer", "expected 200, got 500");
        let mut property = check(
            "exclusion",
            vec![a.clone()],
            vec![detail(Some(&a.signature()), 2, History::default())],
        );
        let mut scenario = check(
            "snapshot::create",
            vec![b.clone()],
            vec![detail(None, 4, History::default())],
        );
        let policy = Policy::default();
        policy.resolve(&mut property);
        policy.resolve(&mut scenario);
        let cat = catalogue(&run(vec![property, scenario]), &policy);
        let previous = Baseline::parse(&format!(
            "format_version = 1\n[[deviation]]\nid = {:?}\nreason = \"upstream 7\"\n",
            a.signature()
        ))
        .unwrap();
        let written = cat.to_baseline(Some(&previous));
        let a_entry = written.entry(&a.signature()).unwrap();
        assert_eq!(a_entry.reason, "upstream 7");
        assert_eq!(a_entry.seen_in, ["exclusion"]);
        let steps: Vec<Step> = serde_json::from_str(&a_entry.steps).unwrap();
        assert_eq!(steps.len(), 2);
        let b_entry = written.entry(&b.signature()).unwrap();
        assert_eq!(b_entry.reason, "");
        assert!(b_entry.steps.is_empty(), "a scenario replays itself");
        assert!(!b_entry.summary.contains('\n'));
        // Read back, the written file accepts both.
        let back = Baseline::parse(&written.to_toml()).unwrap();
        assert!(back.contains(&a.signature()) && back.contains(&b.signature()));
    }
}
