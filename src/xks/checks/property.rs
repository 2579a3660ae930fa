//! Runs a property check with proptest: generated cases from the run seed, and on a failure
//! the shrunk input, run once more to record what it got back.

use std::fmt::Debug;
use std::sync::Mutex;

use proptest::strategy::Strategy;
use proptest::test_runner::{
    Config as ProptestConfig, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};

use super::probe::Probe;
use super::{Counterexample, Ctx, Outcome};
use crate::oracle::{Severity, Verdict};

/// Runs `case` on `ctx.cases` inputs from `strategy`; shrinks the first failing one.
pub fn property<S>(
    ctx: &Ctx,
    check: &str,
    strategy: S,
    case: impl Fn(&mut Probe, &S::Value),
) -> Outcome
where
    S: Strategy,
    S::Value: Debug + Clone,
{
    let observed = Mutex::new(Verdict::default());
    let first_failing = Mutex::new(None::<u32>);
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig {
            cases: ctx.cases,
            failure_persistence: None,
            max_shrink_iters: 256,
            max_shrink_time: 30_000,
            ..ProptestConfig::default()
        },
        TestRng::from_seed(
            RngAlgorithm::ChaCha,
            &crate::suite::seed_bytes(ctx.seed, check),
        ),
    );
    let counter = Mutex::new(0u32);
    let result = runner.run(&strategy, |input| {
        let n = {
            let mut c = counter.lock().unwrap_or_else(|p| p.into_inner());
            *c += 1;
            *c
        };
        let mut probe = Probe::new(ctx);
        case(&mut probe, &input);
        let failed = probe.failed();
        let mut verdict = probe.verdict;
        if failed {
            // The shrunk case's findings are kept; those of the cases shrinking tried are not.
            verdict.findings.retain(|f| f.severity == Severity::Warning);
        }
        observed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .absorb(verdict);
        if failed {
            first_failing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(n);
            Err(TestCaseError::fail("failed"))
        } else {
            Ok(())
        }
    });
    // Generated cases: the calls up to the first failure; the calls after it were shrinking.
    let first_failing = first_failing
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    let cases =
        first_failing.unwrap_or_else(|| counter.into_inner().unwrap_or_else(|p| p.into_inner()));
    let mut verdict = observed.into_inner().unwrap_or_else(|p| p.into_inner());
    let failure = match result {
        Ok(()) => None,
        Err(TestError::Fail(_, minimal)) => {
            let mut probe = Probe::new(ctx);
            case(&mut probe, &minimal);
            if !probe.failed() {
                probe.verdict.find(
                    Severity::Failure,
                    "-",
                    "deterministic",
                    "expected the shrunk input to fail again, got a pass",
                    "the shrunk input passed when sent again: the proxy is not deterministic; the first failure is above",
                    None,
                );
            }
            verdict.absorb(probe.verdict);
            Some(Counterexample {
                input: format!("{minimal:?}"),
                exchanges: probe.exchanges,
                cases_needed: cases,
            })
        }
        Err(TestError::Abort(why)) => {
            verdict.find(
                Severity::Failure,
                "-",
                "aborted",
                "aborted",
                format!("the check was aborted: {why}"),
                None,
            );
            Some(Counterexample {
                input: "(none: aborted)".into(),
                exchanges: Vec::new(),
                cases_needed: cases,
            })
        }
    };
    Outcome {
        verdict,
        cases,
        failure,
        metrics: Default::default(),
    }
}
