//! The run's coverage: every inventory rule with how often it was judged, its verdict, and
//! for a rule not exercised, why.

use std::collections::BTreeMap;

use serde::Serialize;

use super::inventory::{Kind, Rule, inventory};
use crate::oracle::RuleTally;
use crate::report::{CheckReport, RunReport};
use crate::scenario::corpus::SNAPSHOT_FILES;

/// What a run found about one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleVerdict {
    /// Judged, and every judgement held.
    Conforms,
    /// Some judgement found a deviation.
    Failing,
    /// No deviation, and no judgement settled it: each rests on an unsettled point.
    Unsettled,
    /// Not judged in this run.
    NotExercised,
}

/// One rule of the inventory as a run saw it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleCoverage {
    /// The rule.
    #[serde(flatten)]
    pub rule: Rule,
    /// How often it was judged, failed, stayed unsettled.
    #[serde(flatten)]
    pub tally: RuleTally,
    /// What the run found.
    pub verdict: RuleVerdict,
    /// Why a rule was not exercised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The coverage of a run: every rule of the inventory.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    /// Rules exercised.
    pub exercised: usize,
    /// Rules in the inventory.
    pub total: usize,
    /// Every rule, by id.
    pub rules: Vec<RuleCoverage>,
}

impl Coverage {
    /// The coverage of a KMS run (None for an XKS run, which the inventory does not describe).
    pub fn of(report: &RunReport) -> Option<Coverage> {
        // A KMS run lists the checks that count rules (run or filtered out) or its scenarios.
        let counting = [Kind::Member, Kind::Exclusive, Kind::State, Kind::Error]
            .iter()
            .flat_map(|k| k.checks().iter());
        let counters: Vec<&str> = counting.copied().collect();
        let kms = report
            .checks
            .iter()
            .any(|c| counters.contains(&c.name.as_str()) || c.name.starts_with(SCENARIO_PREFIX));
        if !kms {
            return None;
        }
        let mut tallies: BTreeMap<&str, RuleTally> = BTreeMap::new();
        for c in &report.checks {
            for (id, t) in &c.verdict.covered {
                tallies.entry(id.as_str()).or_default().add(*t);
            }
        }
        let rules: Vec<RuleCoverage> = inventory()
            .into_iter()
            .map(|rule| {
                let tally = tallies.get(rule.id.as_str()).copied().unwrap_or_default();
                let verdict = if tally.exercised == 0 {
                    RuleVerdict::NotExercised
                } else if tally.failed > 0 {
                    RuleVerdict::Failing
                } else if tally.unsettled == tally.exercised {
                    // Nothing settled it (one settled judgement is enough).
                    RuleVerdict::Unsettled
                } else {
                    RuleVerdict::Conforms
                };
                let reason =
                    (verdict == RuleVerdict::NotExercised).then(|| not_exercised(&rule, report));
                RuleCoverage {
                    rule,
                    tally,
                    verdict,
                    reason,
                }
            })
            .collect();
        Some(Coverage {
            exercised: rules.iter().filter(|r| r.tally.exercised > 0).count(),
            total: rules.len(),
            rules,
        })
    }

    /// The terminal's summary, e.g. `412 of 418 rules exercised (2 failing, 3 unsettled)`.
    pub fn summary(&self) -> String {
        let count = |v: RuleVerdict| self.rules.iter().filter(|r| r.verdict == v).count();
        let mut extra = Vec::new();
        for (v, word) in [
            (RuleVerdict::Failing, "failing"),
            (RuleVerdict::Unsettled, "unsettled"),
        ] {
            let n = count(v);
            if n > 0 {
                extra.push(format!("{n} {word}"));
            }
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(" ({})", extra.join(", "))
        };
        format!(
            "{} of {} rules exercised{extra}",
            self.exercised, self.total
        )
    }

    /// Rules of `operation` exercised, and in all.
    pub fn of_operation(&self, operation: &str) -> (usize, usize) {
        let mine = self
            .rules
            .iter()
            .filter(|r| r.rule.operation.as_deref() == Some(operation));
        let (mut done, mut all) = (0, 0);
        for r in mine {
            all += 1;
            if r.tally.exercised > 0 {
                done += 1;
            }
        }
        (done, all)
    }

    /// The rules not exercised, each with its reason.
    pub fn missed(&self) -> impl Iterator<Item = &RuleCoverage> {
        self.rules
            .iter()
            .filter(|r| r.verdict == RuleVerdict::NotExercised)
    }
}

/// Keeps a rule failing only in a trial that failed: in a trial that ended without a failure
/// (its failing findings did not reproduce while shrinking, or a scenario's snapshot
/// comparison passed), a judgement that failed is counted unsettled, never failing.
pub fn settle(report: &mut CheckReport) {
    if !report.failures.is_empty() {
        return;
    }
    for t in report.verdict.covered.values_mut() {
        t.unsettled += t.failed;
        t.failed = 0;
    }
}

/// Why a rule was not exercised: filtered out, no fixture for its role, or not drawn.
fn not_exercised(rule: &Rule, report: &RunReport) -> String {
    let ran = |name: &str| report.checks.iter().any(|c| c.name == name && !c.ignored);
    let by_scenarios = matches!(rule.kind, Kind::State | Kind::Error);
    let scenarios_ran = report
        .checks
        .iter()
        .any(|c| c.name.starts_with(SCENARIO_PREFIX) && !c.ignored);
    let reachable = rule.kind.checks().iter().any(|c| ran(c)) || (by_scenarios && scenarios_ran);
    if !reachable {
        let who = rule.kind.checks().join(", ");
        return if by_scenarios {
            format!("filtered out: only the {who} check and the scenarios exercise it")
        } else {
            format!("filtered out: only the {who} check exercises it")
        };
    }
    if let Some(op) = rule.operation.as_deref() {
        let sent = report
            .checks
            .iter()
            .any(|c| c.verdict.exercised.get(op).is_some_and(|n| *n > 0));
        if !sent && op == "CreateKey" && !report.is_embedded() {
            return "no CreateKey was sent: ckscheck creates KMS keys only in the embedded \
                    emulator, since a real key cannot be deleted at once"
                .into();
        }
    }
    if rule.kind == Kind::Error
        && let Some(op) = rule.operation.as_deref()
    {
        let error = rule.id.rsplit('/').next().unwrap_or_default();
        let shown_by: Vec<String> = scenarios_showing(op, error)
            .into_iter()
            .map(|s| format!("{SCENARIO_PREFIX}{s}"))
            .collect();
        let skipped: Vec<&str> = shown_by
            .iter()
            .filter_map(|name| report.checks.iter().find(|c| &c.name == name))
            .filter(|c| c.ignored)
            .map(|c| c.explain.as_str())
            .collect();
        if !skipped.is_empty() && skipped.len() == shown_by.len() {
            return format!("no fixture plays its role: {}", skipped.join("; "));
        }
    }
    "not drawn in this run: more cases (--cases) may reach it".into()
}

/// Trial names of scenarios start with this.
const SCENARIO_PREFIX: &str = "snapshot::";

/// The scenarios whose snapshot shows `operation` answered with `error`.
fn scenarios_showing(operation: &str, error: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (file, text) in SNAPSHOT_FILES {
        let mut op = "";
        let shows = text.lines().any(|line| {
            let line = line.trim_start().trim_start_matches("- ");
            if let Some(o) = line.strip_prefix("op: ") {
                op = o.trim();
            }
            line.strip_prefix("error: ").map(str::trim) == Some(error) && op == operation
        });
        if shows {
            out.push(file.trim_end_matches(".snap").to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_stays_failing_only_in_a_trial_that_failed() {
        use crate::oracle::{Family, Judged};
        use crate::report::FailureDetail;
        let id = "state/DeleteCustomKeyStore/CONNECTED";
        let mut passed = CheckReport::not_run("states".into(), Family::States, "x".into());
        passed.verdict.cover(id, Judged::Fail);
        let mut failed = passed.clone();
        failed.failures.push(FailureDetail::default());
        settle(&mut passed);
        settle(&mut failed);
        let t = passed.verdict.covered[id];
        assert_eq!((t.exercised, t.failed, t.unsettled), (1, 0, 1));
        let t = failed.verdict.covered[id];
        assert_eq!((t.exercised, t.failed, t.unsettled), (1, 1, 0));
    }

    #[test]
    fn an_xks_run_has_no_kms_coverage() {
        use crate::oracle::Family;
        let mut report = crate::report::sample::report();
        report.checks = vec![CheckReport::not_run(
            "xks-validation".into(),
            Family::Validation,
            "x".into(),
        )];
        assert!(Coverage::of(&report).is_none());
        report.checks.push(CheckReport::not_run(
            "validation".into(),
            Family::Validation,
            "x".into(),
        ));
        assert!(Coverage::of(&report).is_some());
    }

    #[test]
    fn a_rule_not_exercised_says_why() {
        use crate::oracle::Family;
        let mut report = crate::report::sample::report();
        report.endpoint = "http://kms.example.test".into();
        report.checks.clear();
        let mut agreement = CheckReport::not_run("agreement".into(), Family::States, "x".into());
        agreement.ignored = false;
        let mut skipped = CheckReport::not_run(
            "snapshot::create-cluster-not-active".into(),
            Family::Snapshots,
            "no backend plays cluster:not-active".into(),
        );
        skipped.ignored = true;
        report.checks = vec![agreement, skipped];
        let c = Coverage::of(&report).unwrap();
        let why = |id: &str| {
            let r = c.rules.iter().find(|r| r.rule.id == id).unwrap();
            assert_eq!(r.verdict, RuleVerdict::NotExercised, "{id}");
            r.reason.clone().unwrap()
        };
        assert_eq!(
            why("error/CreateCustomKeyStore/CloudHsmClusterNotActiveException"),
            "no fixture plays its role: no backend plays cluster:not-active"
        );
        assert!(
            why("error/CreateKey/CustomKeyStoreNotFoundException")
                .starts_with("no CreateKey was sent")
        );
        assert!(
            why("member/CreateCustomKeyStore/CustomKeyStoreName/length-max")
                .starts_with("filtered out: only the validation check")
        );
        assert!(
            why("error/DeleteCustomKeyStore/CustomKeyStoreHasCMKsException")
                .starts_with("not drawn in this run")
        );
        assert!(c.summary().starts_with("0 of "), "{}", c.summary());
    }

    /// Fails when a declared error of the inventory is left to the draw: each must be shown by
    /// a scenario of the corpus, so that every run reaches it whatever its seed.
    #[test]
    fn every_declared_error_of_the_inventory_has_a_scenario() {
        let missing: Vec<String> = inventory()
            .into_iter()
            .filter(|r| r.kind == Kind::Error)
            .filter(|r| {
                let op = r.operation.as_deref().unwrap_or_default();
                let error = r.id.rsplit('/').next().unwrap_or_default();
                scenarios_showing(op, error).is_empty()
            })
            .map(|r| r.id)
            .collect();
        assert!(missing.is_empty(), "no scenario shows {missing:#?}");
    }

    #[test]
    fn snapshots_name_the_errors_they_show() {
        let s = scenarios_showing("CreateCustomKeyStore", "CloudHsmClusterNotActiveException");
        assert!(
            s.contains(&"create-cluster-not-active".to_string()),
            "{s:?}"
        );
        assert!(
            scenarios_showing("DeleteCustomKeyStore", "CloudHsmClusterNotActiveException")
                .is_empty()
        );
    }
}
