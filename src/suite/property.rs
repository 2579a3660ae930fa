//! A check run as a property: saved regressions and the baseline's reproducers first, then cases
//! drawn from its workloads and run on the check's lanes (several at once against the embedded
//! emulator), each judged by its oracle. Drawing goes on after a failure, through the whole case
//! budget: every distinct failing signature is kept with the earliest case in drawing order that
//! showed it, then each is shrunk on its own (a candidate counts only if it still shows that
//! signature), so one check reports each distinct deviation with its own smallest sequence.
//! Each shrink runs within its budget (see [`super::shrink`]) and sends no candidate twice.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};

use super::regions::Region;
use super::shrink::Candidates;
use super::worklist::{Shown, Worklist, not_reproduced};
use super::{CheckTarget, Suite, keep_non_failures, seed_bytes};
use crate::generate::minimize::Tried;
use crate::generate::{self, Step};
use crate::history::{History, Line, Role, ShrunkLine};
use crate::oracle::{Finding, Verdict};
use crate::report::CheckReport;
use crate::runner::session::Session;
use crate::suite::Check;

/// The most shorter sequences tried after proptest's shrinking, per deviation.
const MINIMIZE_TRIES: usize = 200;
/// The most simplifications proptest's value tree is asked for while shrinking one deviation.
const SHRINK_TRIES: usize = 1024;

/// The most distinct deviations one check reports when `--max-deviations` is not given.
pub const MAX_DEVIATIONS: usize = 20;

/// Where a failing signature was first seen.
#[derive(Clone)]
enum Origin {
    /// Generated case number N (0-based, drawing order): its value tree can be made again.
    Drawn(u32),
    /// A fixed sequence (a saved regression, a baseline reproducer, a sweep case, or a
    /// candidate met while shrinking another signature): only step removal shrinks it. With
    /// the cases run up to it, in run order (None: met while shrinking, counted as every case).
    Fixed(Vec<Step>, Option<u32>),
}

/// A failing signature and where it was first seen.
#[derive(Clone)]
struct Found {
    origin: Origin,
    /// The finding as first seen (kept when the signature needs no reproducer of its own).
    finding: Finding,
    /// What the case that first showed it recorded: the evidence when it does not show again.
    history: History,
    /// Requests the check had sent when that case ended (in drawing order for drawn cases).
    requests_needed: u64,
}

impl Shown for Found {
    fn finding(&self) -> &Finding {
        &self.finding
    }
}

/// A run that showed a signature: its sequence, what it recorded, and the findings.
type Hit = (Vec<Step>, History, Vec<Finding>);

/// What drawing a check's cases found.
struct Drawn {
    /// Cases run.
    cases: u32,
    /// Requests they sent.
    requests: u64,
    /// Requests each case sent, by case number.
    case_requests: Vec<u64>,
    /// Each failing signature with the earliest case in drawing order that showed it, and
    /// what that case recorded.
    firsts: BTreeMap<String, (u32, Finding, History)>,
    /// The generator's state before each case was drawn, so its value tree can be made again.
    rngs: Vec<TestRng>,
    /// Why drawing stopped early, if the strategy gave up.
    aborted: Option<String>,
    /// The number of cases after which drawing stopped because the cap was reached.
    capped_after: Option<u32>,
}

impl Suite {
    /// Runs one check: saved regressions and baseline reproducers first, then generated cases;
    /// shrinks each distinct failing signature, up to the deviation cap.
    pub fn run_check(&self, check: &Check) -> CheckReport {
        let started = Instant::now();
        let region = self.regions.take();
        let lanes = match self.check_lanes(&region) {
            Ok(lanes) => lanes,
            Err(e) => {
                let mut report = self.report(check, 0, Verdict::default(), started);
                let summary = format!("the target could not be reached: {e}");
                report
                    .failures
                    .push(self.failure(None, summary, &[], History::default(), 0, 0));
                return report;
            }
        };
        let requests = RefCell::new(0u64);
        let judge = |steps: &[Step], role: Role| {
            let tag = (check.name, role, &*region);
            let history = self
                .runtime
                .block_on(self.case(&lanes[0], steps.to_vec(), tag));
            *requests.borrow_mut() += history.exchanges.len() as u64;
            let verdict = self.judge(check, &history, &region);
            (history, verdict)
        };
        let mut observed = Verdict::default();
        let mut found: Vec<(String, Found)> = Vec::new();
        let mut cases = 0;
        for steps in self.fixed_sequences(check, &region) {
            let (history, verdict) = judge(&steps, Role::Fixed { index: cases });
            cases += 1;
            let requests_needed = *requests.borrow();
            for f in self.failing(&verdict) {
                let sig = f.signature();
                if !found.iter().any(|(s, _)| *s == sig) {
                    let origin = Origin::Fixed(steps.clone(), Some(cases));
                    found.push((
                        sig,
                        Found {
                            origin,
                            finding: f.clone(),
                            history: history.clone(),
                            requests_needed,
                        },
                    ));
                }
            }
            observed.absorb(keep_non_failures(verdict));
        }
        let fixed_cases = cases;
        let fixed_requests = *requests.borrow();
        let drawn = self.draw(check, (&lanes, &region), &mut observed, found.len());
        cases += drawn.cases;
        *requests.borrow_mut() += drawn.requests;
        let mut by_case: Vec<(&String, &(u32, Finding, History))> = drawn.firsts.iter().collect();
        by_case.sort_by_key(|(sig, (case, _, _))| (*case, (*sig).clone()));
        for (sig, (case, finding, history)) in by_case {
            if !found.iter().any(|(s, _)| s == sig) {
                let origin = Origin::Drawn(*case);
                let upto = &drawn.case_requests[..=*case as usize];
                found.push((
                    sig.clone(),
                    Found {
                        origin,
                        finding: finding.clone(),
                        history: history.clone(),
                        requests_needed: fixed_requests + upto.iter().sum::<u64>(),
                    },
                ));
            }
        }
        let mut capped = drawn.capped_after.map(|n| self.cap_note(n + fixed_cases));
        // Findings on an operation the endpoint does not implement need no sequence of their
        // own and do not count against the cap.
        let counts = |f: &Finding| self.policy.folded_under(f, None).is_none();
        let (mut worklist, over) = Worklist::capped(found, counts, self.max_deviations);
        if over {
            capped.get_or_insert_with(|| self.cap_note(cases));
        }
        // Shrink each signature on its own; signatures met while shrinking get their turn.
        let mut failures = Vec::new();
        let mut verdict_failures = Verdict::default();
        while let Some((sig, item)) = worklist.next() {
            if self.policy.folded_under(&item.finding, None).is_some() {
                // Its operation is not implemented: the probe's one request shows it.
                verdict_failures.findings.push(item.finding.clone());
                continue;
            }
            let known: BTreeSet<String> = worklist.known();
            let mut newly_met: Vec<(String, Found)> = Vec::new();
            // The last run that showed the signature (shrinking keeps only such candidates, so
            // it is the shrunk sequence's); candidates are judged once each, within the budget.
            let last_hit: RefCell<Option<Hit>> = RefCell::default();
            let mut candidates: Candidates<(History, Vec<Finding>)> =
                Candidates::new(self.shrink_budget, failures.is_empty());
            let mut shows = |s: &[Step]| -> Tried {
                let (tried, hit) = candidates.judge(s, |s| {
                    let role = Role::Shrink {
                        signature: sig.clone(),
                    };
                    let (history, verdict) = judge(s, role);
                    let sent = history.exchanges.len() as u64;
                    let mut mine = Vec::new();
                    for f in self.failing(&verdict) {
                        let other = f.signature();
                        if other == sig {
                            mine.push(f.clone());
                        } else if !known.contains(&other)
                            && !newly_met.iter().any(|(m, _)| *m == other)
                        {
                            let origin = Origin::Fixed(s.to_vec(), None);
                            newly_met.push((
                                other,
                                Found {
                                    origin,
                                    finding: f.clone(),
                                    history: history.clone(),
                                    requests_needed: *requests.borrow(),
                                },
                            ));
                        }
                    }
                    (sent, (!mine.is_empty()).then_some((history, mine)))
                });
                if let Some((history, mine)) = hit {
                    *last_hit.borrow_mut() = Some((s.to_vec(), history, mine));
                }
                tried
            };
            let (original, start, needed) = match &item.origin {
                Origin::Drawn(case) => {
                    let mut tree = self.regenerate(check, &region, &drawn.rngs[*case as usize]);
                    let original = tree.current();
                    let shrunk =
                        generate::minimize::shrink(&mut tree, SHRINK_TRIES, |s: &Vec<Step>| {
                            shows(s)
                        });
                    (original, shrunk, fixed_cases + case + 1)
                }
                Origin::Fixed(steps, needed) => {
                    (steps.clone(), steps.clone(), needed.unwrap_or(cases))
                }
            };
            let mut minimal = generate::minimize::minimize(start, MINIMIZE_TRIES, &mut shows);
            let hit_minimal = last_hit
                .borrow()
                .as_ref()
                .is_some_and(|(s, _, _)| *s == minimal);
            if !hit_minimal {
                // Shrinking never ran the shrunk sequence itself: run it once more (unless the
                // budget is spent).
                shows(&minimal);
            }
            if worklist.meet(newly_met, counts, self.max_deviations) {
                capped.get_or_insert_with(|| self.cap_note(cases));
            }
            let stats = candidates.stats;
            let tries = stats.sent;
            // Whether any candidate showed the signature again while shrinking.
            let shown_again = last_hit.borrow().is_some();
            let (history, summary) = match last_hit.take().filter(|(s, _, _)| *s == minimal) {
                Some((_, history, mine)) => {
                    let text = mine.iter().map(line).collect::<Vec<_>>().join("\n");
                    verdict_failures.findings.extend(mine);
                    (history, text)
                }
                None if stats.stopped.is_some() && shown_again => {
                    // The budget ran out before the shrunk sequence could be run again, but a
                    // candidate showed it: the case that showed it first is the counterexample,
                    // with what it recorded (never a run that did not show it).
                    minimal = original;
                    let text = line(&item.finding);
                    verdict_failures.findings.push(item.finding.clone());
                    (item.history.clone(), text)
                }
                None if stats.stopped.is_some() => {
                    // The budget ran out and no candidate showed it again: run the case that
                    // showed it once more, beyond the budget, to tell a deviation from chance.
                    minimal = original;
                    let role = Role::Shrink {
                        signature: sig.clone(),
                    };
                    let (history, verdict) = judge(&minimal, role);
                    let mine: Vec<Finding> = self
                        .failing(&verdict)
                        .filter(|f| f.signature() == sig)
                        .cloned()
                        .collect();
                    if mine.is_empty() {
                        let flaky = not_reproduced(&item.finding, tries + 1);
                        let text = line(&flaky);
                        verdict_failures.findings.push(flaky);
                        (item.history.clone(), text)
                    } else {
                        let text = mine.iter().map(line).collect::<Vec<_>>().join("\n");
                        verdict_failures.findings.extend(mine);
                        (history, text)
                    }
                }
                None => {
                    // Seen once, never again while shrinking: timing or chance, not a deviation
                    // this run can stand behind. Unsettled, so it fails only --strict; the case
                    // that showed it is the counterexample, with what it recorded.
                    minimal = original;
                    let flaky = not_reproduced(&item.finding, tries);
                    let text = line(&flaky);
                    verdict_failures.findings.push(flaky);
                    (item.history.clone(), text)
                }
            };
            self.record_line(&Line::Shrunk {
                shrunk: ShrunkLine {
                    trial: check.name.to_string(),
                    signature: sig.clone(),
                    stats: stats.clone(),
                },
            });
            let mut detail = self.failure(
                Some(sig),
                summary,
                &minimal,
                history,
                needed,
                item.requests_needed,
            );
            detail.shrink = Some(stats);
            self.save_regression(check, &detail.steps);
            failures.push(detail);
        }
        if let (true, Some(why)) = (failures.is_empty(), &drawn.aborted) {
            let summary = format!("the check was aborted: {why}");
            let sent = *requests.borrow();
            failures.push(self.failure(None, summary, &[], History::default(), cases, sent));
        }
        for lane in lanes {
            if let Some(emulator) = lane.emulator {
                self.runtime.block_on(emulator.stop());
            }
        }
        observed.absorb(verdict_failures);
        let mut report = self.report(check, cases, observed, started);
        report.requests = requests.into_inner();
        report.failures = failures;
        report.capped = capped;
        crate::coverage::tally::settle(&mut report);
        report
    }

    /// The check's verdict on one case, each finding with the cause a length measure gives.
    pub(super) fn judge(&self, check: &Check, history: &History, region: &Region) -> Verdict {
        let mut verdict = (check.oracle)(&self.oracle_context(region), history);
        crate::oracle::measures::explain(history, &mut verdict);
        verdict
    }

    /// The failing findings of a verdict (unsettled ones too under `--strict`).
    pub(super) fn failing<'v>(&self, verdict: &'v Verdict) -> impl Iterator<Item = &'v Finding> {
        verdict.failures(self.strict)
    }

    pub(super) fn cap_note(&self, after: u32) -> String {
        format!(
            "stopped looking for new deviations at {} (--max-deviations) after {after} case(s); \
             more may exist",
            self.max_deviations
        )
    }

    /// Sequences to replay before drawing: saved regressions, and the reproducers the baseline
    /// keeps for deviations this check saw (so a deviation that is gone is told from one that
    /// was not drawn this time).
    fn fixed_sequences(&self, check: &Check, region: &Region) -> Vec<Vec<Step>> {
        let mut out = self.saved_regressions(check);
        out.extend(self.sweep(check, region));
        if let Some(baseline) = &self.policy.baseline {
            for entry in &baseline.deviations {
                if entry.steps.is_empty() || !entry.seen_in.iter().any(|t| t == check.name) {
                    continue;
                }
                match serde_json::from_str::<Vec<Step>>(&entry.steps) {
                    Ok(steps) if !out.contains(&steps) => out.push(steps),
                    Ok(_) => {}
                    Err(e) => eprintln!(
                        "ckscheck: ignoring the steps the baseline keeps for {:?}: {e}",
                        entry.id
                    ),
                }
            }
        }
        out
    }

    /// One case per rule the check's workloads can break (none unless the check sweeps), each
    /// drawn from a generator seeded by the run seed, the check and the rule's place.
    fn sweep(&self, check: &Check, region: &Region) -> Vec<Vec<Step>> {
        if !check.sweep {
            return Vec::new();
        }
        let strategies = check
            .workloads
            .iter()
            .flat_map(|w| generate::sweep(*w, &region.gen_context));
        strategies
            .enumerate()
            .filter_map(|(i, s)| {
                let seed = seed_bytes(self.seed, &format!("{}#sweep{i}", check.name));
                let mut runner = TestRunner::new_with_rng(
                    proptest_config(),
                    TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
                );
                s.new_tree(&mut runner).ok().map(|t| t.current())
            })
            .collect()
    }

    /// The check's strategy: one of its workloads per case.
    fn strategy(&self, check: &Check, region: &Region) -> impl Strategy<Value = Vec<Step>> + use<> {
        proptest::strategy::Union::new(
            check
                .workloads
                .iter()
                .map(|w| generate::workload(*w, &region.gen_context)),
        )
    }

    /// The value tree of a case drawn from `rng` (the generator's state before it was drawn).
    fn regenerate(
        &self,
        check: &Check,
        region: &Region,
        rng: &TestRng,
    ) -> impl ValueTree<Value = Vec<Step>> {
        let mut runner = TestRunner::new_with_rng(proptest_config(), rng.clone());
        self.strategy(check, region)
            .new_tree(&mut runner)
            .expect("the case was drawn from this state before")
    }

    /// Draws up to `cases` cases and runs each on the next free lane, judging each as it ends.
    /// Every failing signature keeps the earliest case in drawing order that showed it, so a
    /// seed finds the same cases however the lanes interleave. Drawing stops early only when
    /// the cases drawn so far, all finished, already show as many distinct signatures as the
    /// cap allows (`known` are found already).
    fn draw(
        &self,
        check: &Check,
        (lanes, region): (&[CheckTarget], &Region),
        observed: &mut Verdict,
        known: usize,
    ) -> Drawn {
        let strategy = self.strategy(check, region);
        let mut runner = TestRunner::new_with_rng(
            proptest_config(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(self.seed, check.name)),
        );
        let mut rngs: Vec<TestRng> = Vec::new();
        let mut firsts: BTreeMap<String, (u32, Finding, History)> = BTreeMap::new();
        let mut done: Vec<bool> = Vec::new();
        let mut aborted = None;
        let mut capped_after = None;
        let mut free: Vec<usize> = (0..lanes.len()).rev().collect();
        let mut running = FuturesUnordered::new();
        let mut requests = 0;
        let mut case_requests: Vec<u64> = Vec::new();
        self.runtime.block_on(async {
            loop {
                while aborted.is_none()
                    && capped_after.is_none()
                    && rngs.len() < self.cases as usize
                    && let Some(lane) = free.pop()
                {
                    let before = runner.rng().clone();
                    match strategy.new_tree(&mut runner) {
                        Ok(tree) => {
                            let number = rngs.len() as u32;
                            rngs.push(before);
                            done.push(false);
                            case_requests.push(0);
                            let role = Role::Drawn { number };
                            let tag = (check.name, role, region);
                            let case = self.case(&lanes[lane], tree.current(), tag);
                            running.push(async move { (number, lane, case.await) });
                        }
                        Err(why) => aborted = Some(why.to_string()),
                    }
                }
                let Some((number, lane, history)) = running.next().await else {
                    break;
                };
                free.push(lane);
                done[number as usize] = true;
                requests += history.exchanges.len() as u64;
                case_requests[number as usize] = history.exchanges.len() as u64;
                let verdict = self.judge(check, &history, region);
                for f in self.failing(&verdict) {
                    match firsts.get_mut(&f.signature()) {
                        Some(slot) if number < slot.0 => {
                            *slot = (number, f.clone(), history.clone());
                        }
                        Some(_) => {}
                        None => {
                            firsts.insert(f.signature(), (number, f.clone(), history.clone()));
                        }
                    }
                }
                observed.absorb(keep_non_failures(verdict));
                // The cases before the first unfinished one are settled: if they alone reach the
                // cap, later cases cannot change which signatures come first.
                let prefix = done.iter().take_while(|d| **d).count() as u32;
                let settled = firsts
                    .values()
                    .filter(|(n, f, _)| *n < prefix && self.policy.folded_under(f, None).is_none())
                    .count();
                if capped_after.is_none() && known + settled >= self.max_deviations {
                    capped_after = Some(prefix);
                }
            }
        });
        if let Some(prefix) = capped_after {
            // Only the cases before the cap point count: the rest ran by the lanes' timing.
            firsts.retain(|_, (n, _, _)| *n < prefix);
        }
        Drawn {
            cases: rngs.len() as u32,
            requests,
            case_requests,
            firsts,
            rngs,
            aborted,
            capped_after,
        }
    }

    /// The targets a check's cases run on: `lanes` embedded emulators of its own (at most one
    /// per case), or the one remote endpoint.
    fn check_lanes(&self, region: &Region) -> Result<Vec<CheckTarget>, String> {
        let lanes = self.lanes.min(self.cases as usize).max(1);
        (0..lanes)
            .map(|_| self.target_of(&self.target, &region.region))
            .collect()
    }

    /// Runs one case on `lane` from a clean slate and returns what it recorded (also to the
    /// history file). The case runs as a task on the shared runtime, where the emulators serve
    /// too (as a load client would).
    pub(super) fn case(
        &self,
        lane: &CheckTarget,
        steps: Vec<Step>,
        (trial, role, region): (&str, Role, &Region),
    ) -> impl Future<Output = History> + '_ {
        if let Some(emulator) = &lane.emulator {
            emulator.reset();
        }
        let sequence = self.sequences.fetch_add(1, Ordering::Relaxed);
        let line = self.case_line(sequence, (trial, role), region, &steps);
        let mut session = Session::new(lane.endpoint.clone(), &self.prefix, sequence);
        let remote = lane.emulator.is_none();
        let task = self.runtime.spawn(async move {
            session.run(&steps).await;
            if remote {
                for (id, why) in session.cleanup().await {
                    eprintln!(
                        "ckscheck: could not remove store {id}: {why} (it is in the journal)"
                    );
                }
            }
            session.into_history()
        });
        async move {
            let history = match task.await {
                Ok(history) => history,
                // A panic in the case is a harness bug: let it surface as one.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Cancelled: the runtime is shutting down (Ctrl-C); nothing was recorded.
                Err(_) => History::default(),
            };
            self.record(&history, line);
            history
        }
    }
}

/// proptest's configuration for drawing (no persistence: regressions are ours).
fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A finding as a summary line: `OP [rule]: message`.
fn line(f: &Finding) -> String {
    format!("{} [{}]: {}", f.operation, f.rule, f.message)
}
