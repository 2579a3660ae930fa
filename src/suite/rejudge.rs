//! `ckscheck report rejudge`: judges a saved `--history` again, sending nothing. Every oracle,
//! the snapshot comparison and the deviation catalogue run on the recorded exchanges, case by
//! case as the run judged them; shrinking is not redone (each deviation's counterexample is the
//! last shrink candidate of the run that still shows it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::regions::{Region, Regions};
use super::run::{ConfigError, print_notes, write_report_files};
use super::worklist::{Shown, Worklist, not_reproduced};
use super::{
    Check, ShrinkBudget, ShrinkStats, Suite, Target, checks, keep_non_failures, scenarios,
};
use crate::deviation::{self, Baseline, Policy};
use crate::generate::GenContext;
use crate::history::{CaseLine, Exchange, HISTORY_FORMAT, Header, History, Role, ShrunkLine};
use crate::model::ModelConfig;
use crate::oracle::{Family, Finding, Verdict};
use crate::report::{self, CheckReport, RunReport};
use crate::scenario::{self, Scenario, Snapshots};
use crate::sigv4::Credential;

/// Everything `ckscheck report rejudge` can be told.
#[derive(Debug, Clone, Default)]
pub struct RejudgeOptions {
    /// The history a `ckscheck run --history` wrote.
    pub history: PathBuf,
    /// The snapshots the scenarios are judged against (None: the ones built in).
    pub snapshots: Option<PathBuf>,
    /// Known deviations: reported as known, they do not fail.
    pub baseline: Option<PathBuf>,
    /// Baseline entries that no longer occur fail too.
    pub strict_baseline: bool,
    /// JUnit XML report path.
    pub junit: Option<PathBuf>,
    /// JSON report path.
    pub json: Option<PathBuf>,
    /// Markdown parity matrix path.
    pub matrix: Option<PathBuf>,
    /// HTML report path.
    pub html: Option<PathBuf>,
}

/// One recorded case: its line and its exchanges.
type Case = (CaseLine, History);

/// A history as read back: the run's facts, its cases and its shrinks' ends.
pub struct Recorded {
    /// The header.
    pub header: Header,
    /// Every case, in the order it was written.
    pub cases: Vec<Case>,
    /// How each shrink ended.
    pub shrunk: Vec<ShrunkLine>,
}

/// Reads a history file; Err names the first part an oracle needs that it lacks.
pub fn read(path: &Path) -> Result<Recorded, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the history {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("cannot rejudge {}: {e}", path.display()))
}

/// Parses the text of a history file (see [`read`]).
pub fn parse(text: &str) -> Result<Recorded, String> {
    let mut header: Option<Header> = None;
    let mut cases: Vec<Case> = Vec::new();
    let mut by_sequence: BTreeMap<u64, usize> = BTreeMap::new();
    let mut shrunk = Vec::new();
    let mut orphans: Vec<(usize, Exchange)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(line).map_err(|e| format!("line {n} is not JSON: {e}"))?;
        if let Some(h) = value.get("header") {
            let h: Header = serde_json::from_value(h.clone())
                .map_err(|e| format!("line {n}: the header lacks what the oracles need: {e}"))?;
            if h.format != HISTORY_FORMAT {
                return Err(format!(
                    "line {n}: history format {} (ckscheck {}), this ckscheck reads format \
                     {HISTORY_FORMAT}",
                    h.format, h.tool_version
                ));
            }
            header = Some(h);
        } else if let Some(c) = value.get("case") {
            let c: CaseLine = serde_json::from_value(c.clone())
                .map_err(|e| format!("line {n}: a case line lacks what the oracles need: {e}"))?;
            by_sequence.insert(c.sequence, cases.len());
            cases.push((c, History::default()));
        } else if let Some(s) = value.get("shrunk") {
            let s: ShrunkLine = serde_json::from_value(s.clone())
                .map_err(|e| format!("line {n}: a shrink line is incomplete: {e}"))?;
            shrunk.push(s);
        } else {
            let e: Exchange = serde_json::from_value(value)
                .map_err(|e| format!("line {n}: not an exchange: {e}"))?;
            match by_sequence.get(&e.sequence) {
                Some(at) => cases[*at].1.exchanges.push(e),
                None => orphans.push((n, e)),
            }
        }
    }
    let Some(header) = header else {
        return Err(format!(
            "it has no header line (format {HISTORY_FORMAT}): it was written by an older \
             ckscheck, or cut. Missing: the run's seed, endpoint, region, fixtures, quota, \
             strictness and the stores already there, which the oracles judge with; run again \
             with this version's --history"
        ));
    };
    if let Some((n, e)) = orphans.first() {
        return Err(format!(
            "line {n}: exchange of sequence {} has no case line before it (which trial, role \
             and region it belongs to); {} exchange(s) are without one",
            e.sequence,
            orphans.len()
        ));
    }
    if !cases.iter().any(|(c, _)| matches!(c.role, Role::Probe)) {
        return Err(
            "it has no probe case: which operations the endpoint does not implement is \
             missing"
                .into(),
        );
    }
    Ok(Recorded {
        header,
        cases,
        shrunk,
    })
}

/// Rejudges a history; returns the exit code (0 pass, 1 failing deviation, 2 configuration).
pub fn rejudge(
    options: &RejudgeOptions,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8, ConfigError> {
    let recorded = read(&options.history)?;
    let baseline = options
        .baseline
        .as_deref()
        .map(Baseline::load)
        .transpose()?;
    let suite = offline_suite(&recorded.header, baseline, runtime);
    let mut suite = suite;
    let probe = recorded
        .cases
        .iter()
        .find(|(c, _)| matches!(c.role, Role::Probe))
        .expect("parse requires a probe case");
    suite.policy.unimplemented = suite.unimplemented_in(&probe.0.steps, &probe.1);
    let h = &recorded.header;
    println!(
        "ckscheck report rejudge: {} ({} cases recorded), {}, region {}, seed {}",
        options.history.display(),
        recorded.cases.len(),
        h.endpoint,
        h.region,
        h.seed
    );
    for c in &recorded.cases {
        suite.record(&c.1, c.0.clone());
    }
    let selected = |name: &str| {
        h.filter.as_deref().is_none_or(|f| name.contains(f))
            && !h.skip.iter().any(|s| name.contains(s.as_str()))
    };
    let mut checks_run = Vec::new();
    for check in checks() {
        let cases: Vec<&Case> = recorded
            .cases
            .iter()
            .filter(|(c, _)| c.trial == check.name)
            .collect();
        let report = if cases.is_empty() {
            CheckReport::not_run(check.name.into(), check.family, check.explain.into())
        } else {
            let mut r = suite.rejudge_check(&check, &cases, &recorded.shrunk);
            suite.policy.resolve(&mut r);
            r
        };
        checks_run.push(report);
    }
    let snapshots = options
        .snapshots
        .as_deref()
        .map_or(Snapshots::Builtin, Snapshots::Dir);
    for s in scenario::builtin() {
        let name = scenarios::trial_name(&s);
        let case = recorded.cases.iter().find(|(c, _)| c.trial == name);
        let blocked = scenarios::needed_operations(&s)
            .iter()
            .any(|op| suite.policy.unimplemented.contains_key(*op));
        let mut report = match case {
            Some(case) => suite.rejudge_scenario(&s, case, snapshots),
            // Blocked: the run sent nothing and judged it from the probe alone, as here.
            None if blocked && selected(&name) => suite.run_scenario(&s, snapshots),
            None => {
                let why = suite.scenario_runnable(&s).err().map(|why| {
                    if h.healthy_only
                        && scenario::script::script(&s, &crate::model::Fixtures::builtin()).is_ok()
                    {
                        format!(
                            "{why}: it needs a failing backend, {}",
                            super::run::HEALTHY_ONLY
                        )
                    } else {
                        why
                    }
                });
                let explain = scenarios::explain(&s, why.as_deref());
                CheckReport::not_run(name, Family::Snapshots, explain)
            }
        };
        if !report.ignored && (case.is_some() || blocked) {
            suite.policy.resolve(&mut report);
        }
        checks_run.push(report);
    }
    let mut run_report = RunReport {
        seed: h.seed,
        endpoint: h.endpoint.clone(),
        region: h.region.clone(),
        strict: h.strict,
        faults: h.faults.clone(),
        checks: checks_run,
        catalogue: Default::default(),
        caveats: Vec::new(),
        partition: None,
    };
    let failed_trial = run_report
        .checks
        .iter()
        .any(|c| c.status() == report::Status::Failed);
    let mut catalogue = deviation::catalogue(&run_report, &suite.policy);
    {
        let census = suite.census.lock().unwrap_or_else(|p| p.into_inner());
        for (op, answers) in census.iter() {
            catalogue.unconfirmed_not_implemented(op, answers.total, answers.not_implemented);
        }
    }
    run_report.catalogue = catalogue;
    for c in &run_report.checks {
        println!(
            "{:8} {}",
            format!("{:?}", c.status()).to_lowercase(),
            c.name
        );
    }
    print_notes(&run_report);
    print!("{}", report::coverage::run_coverage_text(&run_report));
    print!(
        "{}",
        report::catalogue::catalogue_text(&run_report, options.strict_baseline)
    );
    write_report_files(
        options.junit.as_deref(),
        options.json.as_deref(),
        options.matrix.as_deref(),
        &run_report,
    )?;
    if let Some(path) = &options.html {
        let context = report::html::HtmlContext {
            baseline: options.baseline.as_ref().map(|b| b.display().to_string()),
            strict_baseline: options.strict_baseline,
            ..report::html::HtmlContext::now()
        };
        report::html::write_html(path, &run_report, &context)?;
    }
    let failed = run_report.catalogue.fails(options.strict_baseline) || failed_trial;
    Ok(if failed { 1 } else { 0 })
}

/// A suite that holds the run's facts and sends nothing: its target is never reached.
fn offline_suite(
    h: &Header,
    baseline: Option<Baseline>,
    runtime: &tokio::runtime::Runtime,
) -> Suite {
    let fixtures = Arc::new(h.fixtures.clone());
    let home = region_of(h, &fixtures, &h.region, h.quota);
    Suite {
        runtime: runtime.handle().clone(),
        target: Target::Remote {
            url: h.endpoint.clone(),
        },
        credential: Credential::new("AKIDCKSCHECKREJUDGE", "never-used"),
        region: h.region.clone(),
        rate: None,
        request_timeout: Duration::from_secs(10),
        transition_timeout: Duration::from_secs(60),
        journal: None,
        fixtures,
        regions: Regions::shared(home),
        prefix: h.name_prefix.clone(),
        cases: h.cases,
        seed: h.seed,
        strict: h.strict,
        regressions: None,
        history: None,
        sequences: Default::default(),
        lanes: 1,
        proxies: None,
        policy: Policy {
            strict: h.strict,
            baseline,
            unimplemented: Default::default(),
        },
        max_deviations: h.max_deviations,
        shrink_budget: ShrinkBudget::resolve(None, None, h.embedded),
        census: Default::default(),
    }
}

/// The region a case ran in, with its quota, as the run's predictions saw it.
fn region_of(
    h: &Header,
    fixtures: &Arc<crate::model::Fixtures>,
    region: &str,
    quota: usize,
) -> Region {
    let model = ModelConfig {
        quota: h.quota,
        connect_delay_ms: h.connect_delay_ms,
        ..ModelConfig::default()
    };
    let gen_context = GenContext {
        fixtures: fixtures.clone(),
        quota,
        allow_create_key: h.embedded,
        name_prefix_len: h.name_prefix.chars().count(),
    };
    Region::new(region, &model, &gen_context, quota)
}

/// A failing signature and the case that first showed it.
#[derive(Clone)]
struct Found<'c> {
    finding: Finding,
    case: &'c Case,
}

impl Shown for Found<'_> {
    fn finding(&self) -> &Finding {
        &self.finding
    }
}

impl Suite {
    /// The region a recorded case ran in.
    fn case_region(&self, case: &CaseLine) -> Region {
        let h = Header {
            format: HISTORY_FORMAT,
            tool_version: String::new(),
            seed: self.seed,
            endpoint: String::new(),
            embedded: matches!(self.target, Target::Embedded(_)),
            healthy_only: false,
            region: case.region.clone(),
            strict: self.strict,
            faults: Vec::new(),
            name_prefix: self.prefix.clone(),
            fixtures: Default::default(),
            quota: case.quota,
            foreign_stores: 0,
            connect_delay_ms: self.regions.home.model.connect_delay_ms,
            cases: self.cases,
            max_deviations: self.max_deviations,
            filter: None,
            skip: Vec::new(),
        };
        let mut r = region_of(&h, &self.fixtures, &case.region, case.quota);
        r.gen_context.allow_create_key = self.regions.home.gen_context.allow_create_key;
        r
    }

    /// A check's verdict on one recorded case.
    fn judge_case(&self, check: &Check, case: &Case) -> Verdict {
        self.judge(check, &case.1, &self.case_region(&case.0))
    }

    /// Judges a check's recorded cases as the run did: fixed sequences, drawn cases in drawing
    /// order, then each deviation's shrink candidates (the last that shows it is its
    /// counterexample).
    fn rejudge_check(&self, check: &Check, cases: &[&Case], shrunk: &[ShrunkLine]) -> CheckReport {
        let started = Instant::now();
        let mut observed = Verdict::default();
        let mut found: Vec<(String, Found)> = Vec::new();
        let mut fixed: Vec<(u32, &Case)> = Vec::new();
        let mut drawn: Vec<(u32, &Case)> = Vec::new();
        for c in cases {
            match c.0.role {
                Role::Fixed { index } => fixed.push((index, c)),
                Role::Drawn { number } => drawn.push((number, c)),
                _ => {}
            }
        }
        fixed.sort_by_key(|(i, _)| *i);
        drawn.sort_by_key(|(i, _)| *i);
        for (_, case) in &fixed {
            let verdict = self.judge_case(check, case);
            for f in self.failing(&verdict) {
                let sig = f.signature();
                if !found.iter().any(|(s, _)| *s == sig) {
                    let finding = f.clone();
                    found.push((sig, Found { finding, case }));
                }
            }
            observed.absorb(keep_non_failures(verdict));
        }
        let mut firsts: BTreeMap<String, (u32, Found)> = BTreeMap::new();
        for (number, case) in &drawn {
            let verdict = self.judge_case(check, case);
            for f in self.failing(&verdict) {
                let finding = f.clone();
                firsts
                    .entry(f.signature())
                    .or_insert((*number, Found { finding, case }));
            }
            observed.absorb(keep_non_failures(verdict));
        }
        let total_cases = (fixed.len() + drawn.len()) as u32;
        let mut by_case: Vec<(String, (u32, Found))> = firsts.into_iter().collect();
        by_case.sort_by_key(|(sig, (n, _))| (*n, sig.clone()));
        for (sig, (_, item)) in by_case {
            if !found.iter().any(|(s, _)| *s == sig) {
                found.push((sig, item));
            }
        }
        let mut capped = None;
        let counts = |f: &Finding| self.policy.folded_under(f, None).is_none();
        let (mut worklist, over) = Worklist::capped(found, counts, self.max_deviations);
        if over {
            capped = Some(self.cap_note(total_cases));
        }
        let mut failures = Vec::new();
        let mut verdict_failures = Verdict::default();
        while let Some((sig, item)) = worklist.next() {
            if self.policy.folded_under(&item.finding, None).is_some() {
                verdict_failures.findings.push(item.finding.clone());
                continue;
            }
            let known: BTreeSet<String> = worklist.known();
            let mut newly_met: Vec<(String, Found)> = Vec::new();
            let mut last_hit: Option<(&Case, Vec<Finding>)> = None;
            let candidates = cases
                .iter()
                .filter(|c| matches!(&c.0.role, Role::Shrink { signature } if *signature == sig));
            for case in candidates {
                let verdict = self.judge_case(check, case);
                let mut mine = Vec::new();
                for f in self.failing(&verdict) {
                    let other = f.signature();
                    if other == sig {
                        mine.push(f.clone());
                    } else if !known.contains(&other) && !newly_met.iter().any(|(m, _)| *m == other)
                    {
                        let finding = f.clone();
                        newly_met.push((other, Found { finding, case }));
                    }
                }
                if !mine.is_empty() {
                    last_hit = Some((case, mine));
                }
            }
            if worklist.meet(newly_met, counts, self.max_deviations) {
                capped.get_or_insert_with(|| self.cap_note(total_cases));
            }
            let stats: Option<ShrinkStats> = shrunk
                .iter()
                .find(|s| s.trial == check.name && s.signature == sig)
                .map(|s| s.stats.clone());
            let (case, summary) = match (last_hit, &stats) {
                (Some((case, mine)), _) => {
                    let text = mine.iter().map(line).collect::<Vec<_>>().join("\n");
                    verdict_failures.findings.extend(mine);
                    (case, text)
                }
                // No shrink of it was recorded (a signature the run did not see): the case that
                // showed it is the counterexample.
                (None, None) => {
                    verdict_failures.findings.push(item.finding.clone());
                    (item.case, line(&item.finding))
                }
                // No candidate showed it again; when the budget stopped the shrink, the run
                // ran the first case once more, which did not show it either.
                (None, Some(s)) => {
                    let tries = s.sent + usize::from(s.stopped.is_some());
                    let flaky = not_reproduced(&item.finding, tries);
                    let text = line(&flaky);
                    verdict_failures.findings.push(flaky);
                    (item.case, text)
                }
            };
            let requests = case.1.exchanges.len() as u64;
            let mut detail = self.failure(
                Some(sig),
                summary,
                &case.0.steps,
                case.1.clone(),
                total_cases,
                requests,
            );
            detail.shrink = stats;
            failures.push(detail);
        }
        observed.absorb(verdict_failures);
        let mut report = self.report(check, total_cases, observed, started);
        report.requests = cases.iter().map(|c| c.1.exchanges.len() as u64).sum();
        report.failures = failures;
        report.capped = capped;
        crate::coverage::tally::settle(&mut report);
        report
    }

    /// Judges a recorded scenario against its snapshot in `snapshots`.
    fn rejudge_scenario(
        &self,
        scenario: &Scenario,
        case: &Case,
        snapshots: Snapshots<'_>,
    ) -> CheckReport {
        let started = Instant::now();
        let mut report = CheckReport::not_run(
            scenarios::trial_name(scenario),
            Family::Snapshots,
            scenario.purpose.clone(),
        );
        report.ignored = false;
        report.cases = 1;
        let leftovers = match &case.0.role {
            Role::Scenario { leftovers } => leftovers.clone(),
            _ => Vec::new(),
        };
        let played = scenario::replay::played(
            scenario,
            &self.fixtures,
            &self.prefix,
            case.1.clone(),
            leftovers,
        );
        let expected = snapshots.expected(&scenario.name);
        match (played, expected) {
            (Ok(played), Ok(expected)) => {
                let region = self.case_region(&case.0);
                self.judge_played(scenario, &mut report, expected.as_deref(), &played, &region);
            }
            (Err(e), _) | (_, Err(e)) => {
                let requests = case.1.exchanges.len() as u64;
                let history = case.1.clone();
                let detail = self.failure(None, e, &case.0.steps, history, 1, requests);
                report.failures.push(detail);
            }
        }
        report.duration = started.elapsed();
        report
    }
}

/// A finding as a summary line: `OP [rule]: message`.
fn line(f: &Finding) -> String {
    format!("{} [{}]: {}", f.operation, f.rule, f.message)
}
