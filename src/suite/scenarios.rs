//! Scenario trials: each scenario of the corpus played against the target (a fresh embedded
//! emulator per scenario, or the remote endpoint) and judged against its snapshot.

use std::time::{Duration, Instant};

use super::regions::Region;
use super::{Suite, Target};
use crate::history::{History, Role};
use crate::model::ModelConfig;
use crate::oracle::snapshot::{Inferred, compare};
use crate::oracle::{Family, Severity, Verdict};
use crate::report::{CheckReport, FailureDetail};
use crate::scenario::script::script;
use crate::scenario::{Played, Scenario, Snapshots, play};

/// The trial name of a scenario.
pub fn trial_name(scenario: &Scenario) -> String {
    format!("snapshot::{}", scenario.name)
}

/// A scenario's line in the reports: its purpose, and why it did not run if it did not.
pub fn explain(scenario: &Scenario, not_run: Option<&str>) -> String {
    match not_run {
        Some(why) => format!("{} (not run: {why})", scenario.purpose),
        None => scenario.purpose.clone(),
    }
}

/// How playing a scenario on the suite's target went.
pub enum Playing {
    /// It ran.
    Played(Box<Played>),
    /// The target's fixtures cannot run it (nothing was sent).
    NotRunnable(String),
    /// The target could not be reached or started.
    NoTarget(String),
}

impl Suite {
    /// Whether the target can run `scenario`, or why not: every role needs a fixture that
    /// plays it, and a scenario that creates KMS keys runs only on the embedded emulator,
    /// which is thrown away after it (elsewhere the keys would keep its store for days, and
    /// the store's name and backend from the scenarios after it).
    pub fn scenario_runnable(&self, scenario: &Scenario) -> Result<(), String> {
        script(scenario, &self.fixtures)?;
        let creates_keys = scenario
            .steps
            .iter()
            .any(|s| s.op.as_deref() == Some("CreateKey"));
        if creates_keys && !matches!(self.target, Target::Embedded(_)) {
            return Err(
                "it creates KMS keys, which would keep its store for days: embedded emulator only"
                    .into(),
            );
        }
        Ok(())
    }

    /// Plays one scenario on the target; its stores are removed afterwards. An embedded
    /// emulator is a fresh one, with the standard transition time (as `ckscheck serve` has),
    /// so a step right after a Connect or Disconnect sees the transitional state.
    pub fn play_scenario(&self, scenario: &Scenario) -> Playing {
        self.play_scenario_in(scenario, &self.regions.take())
    }

    /// Plays `scenario` in `region` (see [`Suite::play_scenario`]).
    fn play_scenario_in(&self, scenario: &Scenario, region: &Region) -> Playing {
        if let Err(why) = self.scenario_runnable(scenario) {
            return Playing::NotRunnable(why);
        }
        let embedded = matches!(self.target, Target::Embedded(_));
        let target = match &self.target {
            Target::Embedded(config) => {
                let mut config = config.clone();
                config.model.connect_delay_ms = ModelConfig::default().connect_delay_ms;
                Target::Embedded(config)
            }
            remote => remote.clone(),
        };
        let target = match self.target_of(&target, &region.region) {
            Ok(t) => t,
            Err(e) => return Playing::NoTarget(e),
        };
        let sequence = self
            .sequences
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (endpoint, prefix, scenario_owned) = (
            target.endpoint.clone(),
            self.prefix.clone(),
            scenario.clone(),
        );
        let played = self
            .runtime
            .block_on(async move { play(&scenario_owned, endpoint, &prefix, sequence).await });
        if let Some(emulator) = target.emulator {
            self.runtime.block_on(emulator.stop());
        }
        match played {
            Ok(mut p) => {
                if embedded {
                    // The emulator is gone with everything in it.
                    p.leftovers.clear();
                }
                Playing::Played(Box::new(p))
            }
            Err(why) => Playing::NotRunnable(why),
        }
    }

    /// Plays one scenario and judges it against its snapshot in `snapshots`. A scenario that
    /// needs an operation the endpoint does not implement is not played: it is reported as
    /// blocked by that operation's deviation, not as a diff.
    pub fn run_scenario(&self, scenario: &Scenario, snapshots: Snapshots<'_>) -> CheckReport {
        let started = Instant::now();
        let mut report = CheckReport {
            name: trial_name(scenario),
            family: Family::Snapshots,
            explain: scenario.purpose.clone(),
            cases: 1,
            requests: 0,
            duration: Duration::ZERO,
            verdict: Verdict::default(),
            failures: Vec::new(),
            deviations: Vec::new(),
            capped: None,
            ignored: false,
            metrics: Default::default(),
        };
        let detail = |summary: String, played: Option<&Played>, diff: Option<String>| {
            let (steps, history) = played
                .map(|p| (p.steps.as_slice(), p.history.clone()))
                .unwrap_or((&[], History::default()));
            let requests = history.exchanges.len() as u64;
            let mut d: FailureDetail = self.failure(None, summary, steps, history, 1, requests);
            d.diff = diff;
            d
        };
        let needs = needed_operations(scenario);
        if let Some((op, u)) = needs
            .iter()
            .find_map(|op| self.policy.unimplemented.get_key_value(*op))
        {
            let answer = &u.answer;
            report.verdict.fail(
                op,
                crate::deviation::NOT_IMPLEMENTED,
                format!("answers {answer}"),
                format!(
                    "blocked: the scenario needs {op}, which the endpoint does not implement \
                     (it answers {answer}); nothing was sent"
                ),
                None,
            );
            report.duration = started.elapsed();
            return report;
        }
        let expected = match snapshots.expected(&scenario.name) {
            Ok(e) => e,
            Err(e) => {
                report.failures.push(detail(e, None, None));
                return report;
            }
        };
        let region = self.regions.take();
        match self.play_scenario_in(scenario, &region) {
            Playing::NoTarget(e) => {
                let summary = format!("the target could not be reached: {e}");
                report.failures.push(detail(summary, None, None));
            }
            Playing::NotRunnable(why) => {
                // Not a finding about the endpoint: the fixtures lack a backend.
                report.ignored = true;
                report.explain = explain(scenario, Some(&why));
            }
            Playing::Played(played) => {
                let sequence = played.history.exchanges.first().map_or(0, |e| e.sequence);
                let role = Role::Scenario {
                    leftovers: played.leftovers.clone(),
                };
                let name = trial_name(scenario);
                let line = self.case_line(sequence, (&name, role), &region, &played.steps);
                self.record(&played.history, line);
                self.judge_played(scenario, &mut report, expected.as_deref(), &played, &region);
            }
        }
        report.duration = started.elapsed();
        report
    }
}

impl Suite {
    /// Judges a played scenario against its `expected` snapshot into `report`.
    pub(super) fn judge_played(
        &self,
        scenario: &Scenario,
        report: &mut CheckReport,
        expected: Option<&str>,
        played: &Played,
        region: &Region,
    ) {
        let detail = |summary: String, diff: Option<String>| {
            let history = played.history.clone();
            let requests = history.exchanges.len() as u64;
            let mut d: FailureDetail =
                self.failure(None, summary, &played.steps, history, 1, requests);
            d.diff = diff;
            d
        };
        report.requests = played.history.exchanges.len() as u64;
        let c = compare(
            &self.oracle_context(region),
            expected,
            &played.text,
            &played.history,
            inferred(scenario).as_ref(),
        );
        report.verdict = c.verdict;
        report.verdict.covered =
            crate::oracle::coverage_of(&self.oracle_context(region), &played.history);
        if c.diff.is_none() && report.verdict.findings.is_empty() {
            // The transcript is the snapshot's to the letter: a rule the oracles could not
            // settle alone (a cell of a passing state) held as the reference answered it.
            for t in report.verdict.covered.values_mut() {
                t.unsettled = 0;
                t.failed = 0;
            }
        }
        for (id, why) in &played.leftovers {
            report.verdict.fail(
                "DeleteCustomKeyStore",
                "cleanup/left-behind",
                "a store could not be removed",
                format!("store {id} could not be removed: {why}"),
                None,
            );
        }
        let failing: Vec<String> = report
            .verdict
            .failures(self.strict)
            .map(|f| format!("{} [{}]: {}", f.operation, f.rule, f.message))
            .collect();
        if !failing.is_empty() {
            report.failures.push(detail(failing.join("\n"), c.diff));
        } else if let Some(diff) = c.diff {
            // An inferred expectation differs: the notes show the diff, unfailed.
            if let Some(f) = report
                .verdict
                .findings
                .iter_mut()
                .find(|f| f.severity == Severity::Unsettled)
            {
                f.message = format!("{} (inferred):\n{diff}", f.message);
            }
        }
        crate::coverage::tally::settle(report);
    }
}

/// What a scenario's inference covers, in transcript steps.
pub fn inferred(scenario: &Scenario) -> Option<Inferred> {
    let i = scenario.inferred.as_ref()?;
    let steps = (!i.steps.is_empty()).then(|| {
        i.steps
            .iter()
            .flat_map(|s| scenario.transcript_steps(*s))
            .collect()
    });
    Some(Inferred {
        steps,
        paths: i.paths.clone(),
    })
}

/// The operations a scenario sends (a settle step polls DescribeCustomKeyStores).
pub(super) fn needed_operations(scenario: &Scenario) -> Vec<&str> {
    let mut ops: Vec<&str> = Vec::new();
    for step in &scenario.steps {
        let op = step.op.as_deref().unwrap_or("DescribeCustomKeyStores");
        if !ops.contains(&op) {
            ops.push(op);
        }
    }
    ops
}
