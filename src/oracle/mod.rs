//! Oracles: pure checks over a history. They never touch the network.
//!
//! Each oracle reads a [`History`] (and the expectations its exchanges carry) and returns
//! findings. A finding names the operation it concerns, so the report can build the parity
//! matrix, and says whether it fails the run, only warns, or rests on an unsettled point.

pub mod agreement;
pub mod common;
pub mod concurrency;
pub mod errors;
pub mod exclusion;
pub mod fields;
pub mod implemented;
pub mod measures;
pub mod pagination;
pub mod snapshot;
pub mod snapshot_kinds;
pub mod states;
pub mod validation;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::history::History;
use crate::model::{Fixtures, ModelConfig};
use crate::spec::Spec;

/// The columns of the parity matrix: what kind of rule a check enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Member constraints and malformed input give the right client error.
    Validation,
    /// Error names, statuses and declared-ness.
    Errors,
    /// State machine and model agreement.
    States,
    /// Paging invariants.
    Pagination,
    /// The name/ID exclusion of DescribeCustomKeyStores.
    Exclusion,
    /// Enum values, field presence, types and secrecy of responses.
    FieldPresence,
    /// Concurrent requests.
    Concurrency,
    /// Snapshot expectations.
    Snapshots,
    /// XKS: encryption round trips, integrity values and tamper detection.
    Crypto,
    /// XKS: SigV4, credentials, URI paths and methods.
    Authentication,
    /// XKS: response times against KMS's budget.
    Latency,
}

impl Family {
    /// Every family of the KMS checks, in parity-matrix column order.
    pub const ALL: [Family; 8] = [
        Family::Validation,
        Family::Errors,
        Family::States,
        Family::Pagination,
        Family::Exclusion,
        Family::FieldPresence,
        Family::Concurrency,
        Family::Snapshots,
    ];

    /// The column title.
    pub fn title(self) -> &'static str {
        match self {
            Family::Validation => "validation",
            Family::Errors => "errors",
            Family::States => "states",
            Family::Pagination => "pagination",
            Family::Exclusion => "exclusion",
            Family::FieldPresence => "field presence",
            Family::Concurrency => "concurrency",
            Family::Snapshots => "snapshots",
            Family::Crypto => "crypto",
            Family::Authentication => "authentication",
            Family::Latency => "latency",
        }
    }
}

/// How much a finding weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Non-conformance: fails the check.
    Failure,
    /// Disagrees with an expectation that rests on an unsettled or inferred point: shown, and
    /// fails only under `--strict`.
    Unsettled,
    /// A style deviation (e.g. a namespaced `__type`) or a documented trap: never fails.
    Warning,
}

/// One thing an oracle noticed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// How much it weighs.
    pub severity: Severity,
    /// The operation concerned.
    pub operation: String,
    /// The invariant or rule, e.g. `pagination/exactly-once`.
    pub rule: String,
    /// What was expected and what came back, in words that hold no store ID, name, date or
    /// random value (e.g. `expected CustomKeyStoreNotFoundException, got 200 with 0 stores`,
    /// `missing`): the part of the deviation signature after the rule.
    #[serde(default)]
    pub kind: String,
    /// One line saying what was expected and what came back.
    pub message: String,
    /// Index of the exchange in the history that shows it, if one does.
    pub exchange: Option<usize>,
}

impl Finding {
    /// The deviation signature, `OPERATION/RULE: KIND` (`OPERATION/RULE` without a kind): the
    /// same for the same deviation whatever the seed, the store IDs or the names.
    pub fn signature(&self) -> String {
        signature(&self.operation, &self.rule, &self.kind)
    }
}

/// A deviation signature from its parts (see [`Finding::signature`]).
pub fn signature(operation: &str, rule: &str, kind: &str) -> String {
    if kind.is_empty() {
        format!("{operation}/{rule}")
    } else {
        format!("{operation}/{rule}: {kind}")
    }
}

/// What an oracle gets besides the history.
pub struct Context<'a> {
    /// The API spec.
    pub spec: &'a Spec,
    /// The backends the endpoint has.
    pub fixtures: &'a Arc<Fixtures>,
    /// The model configuration to predict with (quota, switches).
    pub model: &'a ModelConfig,
    /// Prefix of every store name this run creates; other stores belong to someone else.
    pub name_prefix: &'a str,
}

/// The result of judging one history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// What the oracle noticed.
    pub findings: Vec<Finding>,
    /// How many exchanges of each operation the oracle judged.
    pub exercised: BTreeMap<String, usize>,
    /// The inventory rules the oracle judged (see [`crate::coverage`]), by rule id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub covered: BTreeMap<String, RuleTally>,
}

/// How one judgement of an inventory rule came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judged {
    /// The endpoint did what the rule says.
    Pass,
    /// It did not.
    Fail,
    /// It may not have: the answer rests on an unsettled point, or the oracle could not tell.
    Unsettled,
}

/// How often a rule was judged, and how often it failed or stayed unsettled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleTally {
    /// Judgements in all.
    pub exercised: u64,
    /// Judgements that found a deviation.
    pub failed: u64,
    /// Judgements left unsettled.
    pub unsettled: u64,
}

impl RuleTally {
    /// Adds another tally.
    pub fn add(&mut self, other: RuleTally) {
        self.exercised += other.exercised;
        self.failed += other.failed;
        self.unsettled += other.unsettled;
    }
}

impl Verdict {
    /// Records that an exchange of `operation` was judged.
    pub fn judged(&mut self, operation: &str) {
        *self.exercised.entry(operation.to_string()).or_default() += 1;
    }

    /// Records one judgement of an inventory rule.
    pub fn cover(&mut self, rule: impl Into<String>, judged: Judged) {
        let t = self.covered.entry(rule.into()).or_default();
        t.exercised += 1;
        match judged {
            Judged::Pass => {}
            Judged::Fail => t.failed += 1,
            Judged::Unsettled => t.unsettled += 1,
        }
    }

    /// How the findings added since `before` (a `findings.len()`) judge a rule: any failure
    /// fails it, else any unsettled finding leaves it unsettled.
    pub fn judged_since(&self, before: usize) -> Judged {
        let new = &self.findings[before.min(self.findings.len())..];
        if new.iter().any(|f| f.severity == Severity::Failure) {
            Judged::Fail
        } else if new.iter().any(|f| f.severity == Severity::Unsettled) {
            Judged::Unsettled
        } else {
            Judged::Pass
        }
    }

    /// Adds a finding; `kind` is what was expected and what came back, with no IDs, names,
    /// dates or random values (see [`Finding::kind`]).
    pub fn find(
        &mut self,
        severity: Severity,
        operation: &str,
        rule: &str,
        kind: impl Into<String>,
        message: impl Into<String>,
        exchange: Option<usize>,
    ) {
        self.findings.push(Finding {
            severity,
            operation: operation.to_string(),
            rule: rule.to_string(),
            kind: kind.into(),
            message: message.into(),
            exchange,
        });
    }

    /// Adds a failure.
    pub fn fail(
        &mut self,
        operation: &str,
        rule: &str,
        kind: impl Into<String>,
        message: impl Into<String>,
        exchange: Option<usize>,
    ) {
        self.find(Severity::Failure, operation, rule, kind, message, exchange);
    }

    /// The findings that fail the check (`strict`: unsettled ones too).
    pub fn failures(&self, strict: bool) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| {
            f.severity == Severity::Failure || (strict && f.severity == Severity::Unsettled)
        })
    }

    /// Accumulates another case's verdict: exercised counts add up, and a finding is kept only
    /// if no finding with the same severity and signature is already there.
    pub fn absorb(&mut self, other: Verdict) {
        for f in other.findings {
            let seen = self.findings.iter().any(|g| {
                g.severity == f.severity
                    && g.operation == f.operation
                    && g.rule == f.rule
                    && g.kind == f.kind
            });
            if !seen {
                self.findings.push(f);
            }
        }
        for (op, n) in other.exercised {
            *self.exercised.entry(op).or_default() += n;
        }
        for (rule, t) in other.covered {
            self.covered.entry(rule).or_default().add(t);
        }
    }
}

/// The inventory rules a history exercises, as the oracles that count them judge it: for a
/// scenario, whose verdict comes from its snapshot.
pub fn coverage_of(ctx: &Context<'_>, history: &History) -> BTreeMap<String, RuleTally> {
    let counting: [OracleFn; 4] = [
        validation::validation,
        exclusion::exclusion,
        states::states,
        agreement::agreement,
    ];
    let mut covered: BTreeMap<String, RuleTally> = BTreeMap::new();
    for oracle in counting {
        for (id, t) in oracle(ctx, history).covered {
            covered.entry(id).or_default().add(t);
        }
    }
    covered
}

/// An oracle: a named, pure check over a history.
pub type OracleFn = fn(&Context<'_>, &History) -> Verdict;
