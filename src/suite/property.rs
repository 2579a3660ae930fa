//! A check run as a property: saved regressions, then cases drawn from its workloads and run
//! on the check's lanes (several at once against the embedded emulator), each judged by its
//! oracle; the first failing case in drawing order is shrunk.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};

use super::{CheckTarget, Suite, keep_non_failures, seed_bytes};
use crate::generate::{self, Step};
use crate::history::History;
use crate::oracle::Verdict;
use crate::report::CheckReport;
use crate::runner::session::Session;
use crate::suite::Check;

/// The most shorter sequences tried after proptest's shrinking.
const MINIMIZE_TRIES: usize = 200;
/// The most simplifications proptest's value tree is asked for while shrinking.
const SHRINK_TRIES: usize = 1024;
/// The most time spent asking it.
const SHRINK_TIME: Duration = Duration::from_secs(60);

/// What drawing a check's cases found.
struct Drawn<T> {
    /// Cases run.
    cases: u32,
    /// Requests they sent.
    requests: u64,
    /// The first failing case in drawing order, and its number.
    failing: Option<(T, u32)>,
    /// Why drawing stopped early, if the strategy gave up.
    aborted: Option<String>,
}

impl Suite {
    /// Runs one check: saved regressions first, then generated cases; shrinks a failure.
    pub fn run_check(&self, check: &Check) -> CheckReport {
        let started = Instant::now();
        let lanes = match self.check_lanes() {
            Ok(lanes) => lanes,
            Err(e) => {
                let mut report = self.report(check, 0, Verdict::default(), started);
                let summary = format!("the target could not be reached: {e}");
                report.failure = Some(self.failure(summary, &[], History::default(), 0));
                return report;
            }
        };
        let mut observed = Verdict::default();
        let mut cases = 0;
        let requests = Cell::new(0);
        let judge = |steps: &[Step]| {
            let history = self.runtime.block_on(self.case(&lanes[0], steps.to_vec()));
            requests.set(requests.get() + history.exchanges.len() as u64);
            let verdict = (check.oracle)(&self.oracle_context(), &history);
            (history, verdict)
        };
        let mut failure = None;
        for steps in self.saved_regressions(check) {
            cases += 1;
            let (history, verdict) = judge(&steps);
            let summary = self.failure_of(&verdict);
            observed.absorb(verdict);
            if let Some(summary) = summary {
                let summary = format!("a saved regression fails again:\n{summary}");
                failure = Some(self.failure(summary, &steps, history, cases));
                break;
            }
        }
        if failure.is_none() {
            let drawn = self.draw(check, &lanes, &mut observed);
            cases += drawn.cases;
            requests.set(requests.get() + drawn.requests);
            failure = match (drawn.failing, drawn.aborted) {
                (Some((mut tree, needed)), _) => {
                    let fails = |s: &[Step]| self.failure_of(&judge(s).1).is_some();
                    let minimal = generate::minimize::shrink(
                        &mut tree,
                        SHRINK_TRIES,
                        SHRINK_TIME,
                        |s: &Vec<Step>| fails(s),
                    );
                    // Then drop every step the failure does not need.
                    let minimal = generate::minimize::minimize(minimal, MINIMIZE_TRIES, fails);
                    let (history, verdict) = judge(&minimal);
                    let summary = self.failure_of(&verdict).unwrap_or_else(|| {
                        "the shrunk sequence passed when run again: the endpoint is not deterministic"
                            .into()
                    });
                    observed.absorb(verdict);
                    let detail =
                        self.failure(summary, &minimal, history, cases - drawn.cases + needed);
                    self.save_regression(check, &detail.steps);
                    Some(detail)
                }
                (None, Some(why)) => {
                    let summary = format!("the check was aborted: {why}");
                    Some(self.failure(summary, &[], History::default(), cases))
                }
                (None, None) => None,
            };
        }
        for lane in lanes {
            if let Some(emulator) = lane.emulator {
                self.runtime.block_on(emulator.stop());
            }
        }
        let mut report = self.report(check, cases, observed, started);
        report.requests = requests.get();
        report.failure = failure;
        report
    }

    /// Draws up to `cases` cases and runs each on the next free lane, judging each as it ends,
    /// until one fails. Drawing stops at the first failure; the cases in flight then finish,
    /// and the earliest failing case in drawing order is the one returned, so a seed finds the
    /// same failure however the lanes interleave.
    fn draw(
        &self,
        check: &Check,
        lanes: &[CheckTarget],
        observed: &mut Verdict,
    ) -> Drawn<impl ValueTree<Value = Vec<Step>> + use<>> {
        let strategy = proptest::strategy::Union::new(
            check
                .workloads
                .iter()
                .map(|w| generate::workload(*w, &self.gen_context)),
        );
        let mut rng = TestRunner::new_with_rng(
            ProptestConfig {
                failure_persistence: None,
                ..ProptestConfig::default()
            },
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(self.seed, check.name)),
        );
        let mut trees = Vec::new();
        let mut failing: Option<usize> = None;
        let mut aborted = None;
        let mut free: Vec<usize> = (0..lanes.len()).rev().collect();
        let mut running = FuturesUnordered::new();
        let mut requests = 0;
        self.runtime.block_on(async {
            loop {
                while failing.is_none()
                    && aborted.is_none()
                    && trees.len() < self.cases as usize
                    && let Some(lane) = free.pop()
                {
                    match strategy.new_tree(&mut rng) {
                        Ok(tree) => {
                            let (number, case) =
                                (trees.len(), self.case(&lanes[lane], tree.current()));
                            trees.push(tree);
                            running.push(async move { (number, lane, case.await) });
                        }
                        Err(why) => aborted = Some(why.to_string()),
                    }
                }
                let Some((number, lane, history)) = running.next().await else {
                    break;
                };
                free.push(lane);
                requests += history.exchanges.len() as u64;
                let verdict = (check.oracle)(&self.oracle_context(), &history);
                if self.failure_of(&verdict).is_some() {
                    failing = Some(failing.map_or(number, |f| f.min(number)));
                }
                observed.absorb(keep_non_failures(verdict));
            }
        });
        let cases = trees.len() as u32;
        Drawn {
            cases,
            requests,
            failing: failing.map(|n| (trees.swap_remove(n), n as u32 + 1)),
            aborted,
        }
    }

    /// The failures of a verdict as the report's summary, if it has any.
    fn failure_of(&self, verdict: &Verdict) -> Option<String> {
        let lines: Vec<String> = verdict
            .failures(self.strict)
            .map(|f| format!("{} [{}]: {}", f.operation, f.rule, f.message))
            .collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }

    /// The targets a check's cases run on: `lanes` embedded emulators of its own (at most one
    /// per case), or the one remote endpoint.
    fn check_lanes(&self) -> Result<Vec<CheckTarget>, String> {
        let lanes = self.lanes.min(self.cases as usize).max(1);
        (0..lanes).map(|_| self.target_of(&self.target)).collect()
    }

    /// Runs one case on `lane` from a clean slate and returns what it recorded (also to the
    /// history file). The case runs as a task on the shared runtime, where the emulators serve
    /// too (as a load client would).
    fn case(&self, lane: &CheckTarget, steps: Vec<Step>) -> impl Future<Output = History> + '_ {
        if let Some(emulator) = &lane.emulator {
            emulator.reset();
        }
        let sequence = self.sequences.fetch_add(1, Ordering::Relaxed);
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
            if let Some(sink) = &self.history {
                let mut out = sink.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = history.write_jsonl(&mut *out) {
                    eprintln!("ckscheck: cannot write the history: {e}");
                }
            }
            history
        }
    }
}
