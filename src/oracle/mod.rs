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
}

impl Verdict {
    /// Records that an exchange of `operation` was judged.
    pub fn judged(&mut self, operation: &str) {
        *self.exercised.entry(operation.to_string()).or_default() += 1;
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
    }
}

/// An oracle: a named, pure check over a history.
pub type OracleFn = fn(&Context<'_>, &History) -> Verdict;
