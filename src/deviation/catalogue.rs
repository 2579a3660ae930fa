//! The run's deviation catalogue: every distinct deviation once, where it was seen, and its
//! smallest reproducer; plus the baseline entries that did not occur.

use std::collections::BTreeMap;

use serde::Serialize;

use super::baseline::{self, Baseline};
use super::{Policy, Status};
use crate::report::{FailureDetail, RunReport};

/// One distinct deviation of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Deviation {
    /// Its signature, `OPERATION/RULE: KIND`.
    pub id: String,
    /// The operation concerned.
    pub operation: String,
    /// The rule.
    pub rule: String,
    /// What it is, in one line (the message of the finding its shortest reproducer shows).
    pub summary: String,
    /// How it ends up in this run.
    pub status: Status,
    /// The checks and scenarios that saw it, in run order.
    pub seen_in: Vec<String>,
    /// For a not-implemented operation: the signatures of the findings folded under it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub folded: Vec<String>,
    /// The trial whose reproducer is the shortest, and that reproducer.
    #[serde(skip)]
    pub reproducer: Option<(String, FailureDetail)>,
    /// From the baseline: why it is accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Deviation {
    /// Steps in the shortest reproducer (0 when there is none).
    pub fn steps(&self) -> usize {
        self.reproducer.as_ref().map_or(0, |(_, d)| d.step_count())
    }
}

/// Every distinct deviation of a run, failing ones first.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Catalogue {
    /// The deviations, by status then id.
    pub deviations: Vec<Deviation>,
    /// Whether the run had a baseline (a failing deviation is then a new one).
    pub baseline: bool,
}

impl Catalogue {
    /// How many deviations have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.deviations
            .iter()
            .filter(|d| d.status == status)
            .count()
    }

    /// Whether the run fails: a failing deviation, or (`strict_baseline`) a fixed one whose
    /// entry is still in the baseline.
    pub fn fails(&self, strict_baseline: bool) -> bool {
        self.count(Status::Failing) > 0 || (strict_baseline && self.count(Status::Fixed) > 0)
    }

    /// Marks the not-implemented deviation of `operation` unsettled when the run's census saw it
    /// answered otherwise too (`total` answers, `not_implemented` of them not-implemented
    /// ones): the probe's answer was not the whole truth.
    pub fn unconfirmed_not_implemented(
        &mut self,
        operation: &str,
        total: u64,
        not_implemented: u64,
    ) {
        if total == not_implemented {
            return;
        }
        for d in &mut self.deviations {
            if d.operation == operation
                && d.rule == super::NOT_IMPLEMENTED
                && d.status == Status::Failing
            {
                d.status = Status::Unsettled;
                d.summary = format!(
                    "{} (but {} of {total} answers to {operation} in this run were not a \
                     not-implemented answer: the endpoint is inconsistent)",
                    d.summary,
                    total - not_implemented
                );
            }
        }
    }

    /// The baseline that accepts this run's failing, unsettled and known deviations, keeping the
    /// reasons `previous` gave them.
    pub fn to_baseline(&self, previous: Option<&Baseline>) -> Baseline {
        let deviations = self
            .deviations
            .iter()
            .filter(|d| {
                matches!(
                    d.status,
                    Status::Failing | Status::Unsettled | Status::Known
                )
            })
            .map(|d| {
                let old = previous.and_then(|b| b.entry(&d.id));
                baseline::Entry {
                    id: d.id.clone(),
                    summary: crate::report::one_line(&d.summary, 200),
                    seen_in: d.seen_in.clone(),
                    reason: old.map(|e| e.reason.clone()).unwrap_or_default(),
                    steps: d
                        .reproducer
                        .as_ref()
                        .filter(|(trial, _)| !trial.starts_with("snapshot::"))
                        .and_then(|(_, detail)| serde_json::to_string(&detail.steps).ok())
                        .unwrap_or_default(),
                }
            })
            .collect();
        Baseline {
            format_version: baseline::FORMAT_VERSION,
            deviations,
        }
    }
}

/// Gathers the deviations every trial of `report` resolved (see [`Policy::resolve`]) into one
/// entry per signature, and adds each baseline entry that was not seen: `fixed` when a trial
/// that saw it before ran in full this time, `unobserved` otherwise.
pub fn catalogue(report: &RunReport, policy: &Policy) -> Catalogue {
    let mut by_id: BTreeMap<String, Deviation> = BTreeMap::new();
    for check in &report.checks {
        for seen in &check.deviations {
            let reproducer = seen
                .failure
                .and_then(|i| check.failures.get(i))
                .filter(|d| !d.steps.is_empty())
                .map(|d| (check.name.clone(), d.clone()));
            let entry = by_id.entry(seen.id.clone()).or_insert_with(|| Deviation {
                id: seen.id.clone(),
                operation: seen.operation.clone(),
                rule: seen.rule.clone(),
                summary: seen.summary.clone(),
                status: seen.status,
                seen_in: Vec::new(),
                folded: Vec::new(),
                reproducer: None,
                reason: None,
            });
            if !entry.seen_in.contains(&check.name) {
                entry.seen_in.push(check.name.clone());
            }
            entry.status = entry.status.min(seen.status);
            if let Some(f) = &seen.folded
                && !entry.folded.contains(f)
            {
                entry.folded.push(f.clone());
            }
            let shorter = match (&entry.reproducer, &reproducer) {
                (None, Some(_)) => true,
                (Some((_, old)), Some((_, new))) => new.step_count() < old.step_count(),
                _ => false,
            };
            if shorter && seen.folded.is_none() {
                entry.summary = seen.summary.clone();
                entry.reproducer = reproducer;
            }
        }
    }
    // A not-implemented operation's reproducer is the probe's one request.
    for (op, u) in &policy.unimplemented {
        let id = super::not_implemented_id(op, &u.answer);
        if let Some(entry) = by_id.get_mut(&id) {
            entry.summary = format!("{op} is not implemented: every request gets {}", u.answer);
            entry.reproducer = Some(("probe".into(), u.detail.clone()));
        }
    }
    if let Some(baseline) = &policy.baseline {
        for entry in &mut by_id.values_mut() {
            entry.reason = baseline.entry(&entry.id).map(|e| e.reason.clone());
        }
        for old in &baseline.deviations {
            if by_id.contains_key(&old.id) {
                continue;
            }
            let ran_in_full = |trial: &String| {
                report
                    .checks
                    .iter()
                    .any(|c| &c.name == trial && !c.ignored && c.capped.is_none())
            };
            let status = if old.seen_in.iter().any(ran_in_full) {
                Status::Fixed
            } else {
                Status::Unobserved
            };
            let (operation, rule) = split_id(&old.id);
            by_id.insert(
                old.id.clone(),
                Deviation {
                    id: old.id.clone(),
                    operation,
                    rule,
                    summary: old.summary.clone(),
                    status,
                    seen_in: Vec::new(),
                    folded: Vec::new(),
                    reproducer: None,
                    reason: Some(old.reason.clone()),
                },
            );
        }
    }
    let mut deviations: Vec<Deviation> = by_id.into_values().collect();
    deviations.sort_by(|a, b| (a.status, &a.id).cmp(&(b.status, &b.id)));
    Catalogue {
        deviations,
        baseline: policy.baseline.is_some(),
    }
}

/// The operation and rule of a signature `OPERATION/RULE: KIND`.
fn split_id(id: &str) -> (String, String) {
    let head = id.split(": ").next().unwrap_or(id);
    match head.split_once('/') {
        Some((op, rule)) => (op.to_string(), rule.to_string()),
        None => (head.to_string(), String::new()),
    }
}
