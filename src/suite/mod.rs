//! The suite: each check is a property — cases drawn from a workload, run against the target,
//! judged by an oracle — run with proptest, which shrinks a failure to its smallest sequence.
//!
//! This is the glue between the parts: it calls the generators, hands steps to the runner,
//! gives the recorded history to the oracle and the outcome to the report. It judges nothing
//! itself.

mod checks;
pub mod cleanup;
pub mod proxies;
pub mod record;
pub mod run;
pub mod scenarios;
pub mod selftest;

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::test_runner::{
    Config as ProptestConfig, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};
use tokio::runtime::Handle;

pub use checks::{Check, checks};

use crate::emulator::{self, EmulatorConfig, RunningEmulator};
use crate::generate::{self, GenContext, Step};
use crate::history::{History, mask_secrets};
use crate::model::{Fixtures, ModelConfig};
use crate::oracle::{Context, Severity, Verdict};
use crate::report::{CheckReport, FailureDetail};
use crate::runner::journal::Journal;
use crate::runner::session::{Endpoint, RetryPolicy, Session};
use crate::runner::{KmsClient, Reply};
use crate::sigv4::Credential;
use crate::spec::Spec;

/// The most shorter sequences tried after proptest's shrinking.
const MINIMIZE_TRIES: usize = 200;

/// Where the checks run.
#[derive(Clone)]
pub enum Target {
    /// A fresh embedded emulator per check, its state reset before every case.
    Embedded(EmulatorConfig),
    /// An endpoint shared by every case; cases clean up after themselves.
    Remote {
        /// Endpoint URL.
        url: String,
    },
}

/// Everything a run needs, fixed before the first check starts.
pub struct Suite {
    /// The runtime the network work runs on (checks themselves run on libtest's threads).
    pub runtime: Handle,
    /// Where the checks run.
    pub target: Target,
    /// Credentials to sign with.
    pub credential: Credential,
    /// Region to sign for.
    pub region: String,
    /// Per-operation requests per second (None: unlimited).
    pub rate: Option<u32>,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// How long to wait for CONNECTING or DISCONNECTING to end.
    pub transition_timeout: Duration,
    /// Where creates are journaled (remote targets).
    pub journal: Option<Arc<Journal>>,
    /// The backends of the target.
    pub fixtures: Arc<Fixtures>,
    /// The model configuration predictions use.
    pub model: ModelConfig,
    /// What generators may draw on.
    pub gen_context: GenContext,
    /// Prefix of every store name the run creates.
    pub prefix: String,
    /// Cases per check.
    pub cases: u32,
    /// The run seed.
    pub seed: u64,
    /// Whether unsettled expectations fail.
    pub strict: bool,
    /// Where shrunk failing sequences are saved and replayed from.
    pub regressions: Option<PathBuf>,
    /// Where every exchange is appended as JSON Lines, if anywhere.
    pub history: Option<Mutex<BufWriter<File>>>,
    /// Sequence numbers, unique across the run's checks.
    pub sequences: AtomicU64,
    /// The real XKS proxies fixture entries point at (embedded runs), serving until the end.
    pub proxies: Option<proxies::RealProxies>,
}

/// An endpoint for a check: the shared remote one, or an embedded emulator of its own.
struct CheckTarget {
    endpoint: Arc<Endpoint>,
    emulator: Option<RunningEmulator>,
}

impl Suite {
    /// Runs one check: saved regressions first, then generated cases; shrinks a failure.
    pub fn run_check(&self, check: &Check) -> CheckReport {
        let started = Instant::now();
        let target = match self.check_target() {
            Ok(t) => t,
            Err(e) => {
                let mut report = self.report(check, 0, Verdict::default(), started);
                let summary = format!("the target could not be reached: {e}");
                report.failure = Some(self.failure(summary, &[], History::default(), 0));
                return report;
            }
        };
        let observed = Mutex::new(Verdict::default());
        let cases = AtomicU32::new(0);
        let requests = AtomicU64::new(0);
        let first_failing_case = Mutex::new(None::<u32>);
        let judge = |steps: &[Step]| -> (History, Verdict) {
            let sequence = self.sequences.fetch_add(1, Ordering::Relaxed);
            let history = self.execute(&target, steps, sequence);
            requests.fetch_add(history.exchanges.len() as u64, Ordering::Relaxed);
            let verdict = (check.oracle)(&self.oracle_context(), &history);
            (history, verdict)
        };
        let failure_of = |verdict: &Verdict| -> Option<String> {
            let lines: Vec<String> = verdict
                .failures(self.strict)
                .map(|f| format!("{} [{}]: {}", f.operation, f.rule, f.message))
                .collect();
            (!lines.is_empty()).then(|| lines.join("\n"))
        };
        let mut failure = None;
        for steps in self.saved_regressions(check) {
            let n = cases.fetch_add(1, Ordering::Relaxed) + 1;
            let (history, verdict) = judge(&steps);
            let summary = failure_of(&verdict);
            observed.lock().expect("not poisoned").absorb(verdict);
            if let Some(summary) = summary {
                let summary = format!("a saved regression fails again:\n{summary}");
                failure = Some(self.failure(summary, &steps, history, n));
                break;
            }
        }
        if failure.is_none() {
            let strategy = proptest::strategy::Union::new(
                check
                    .workloads
                    .iter()
                    .map(|w| generate::workload(*w, &self.gen_context)),
            );
            let mut runner = TestRunner::new_with_rng(
                ProptestConfig {
                    cases: self.cases,
                    failure_persistence: None,
                    max_shrink_iters: 1024,
                    max_shrink_time: 60_000,
                    ..ProptestConfig::default()
                },
                TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(self.seed, check.name)),
            );
            let result = runner.run(&strategy, |steps| {
                let n = cases.fetch_add(1, Ordering::Relaxed) + 1;
                let (_, verdict) = judge(&steps);
                let outcome = failure_of(&verdict);
                observed
                    .lock()
                    .expect("not poisoned")
                    .absorb(keep_non_failures(verdict));
                match outcome {
                    None => Ok(()),
                    Some(summary) => {
                        first_failing_case
                            .lock()
                            .expect("not poisoned")
                            .get_or_insert(n);
                        Err(TestCaseError::fail(summary))
                    }
                }
            });
            let needed = first_failing_case
                .lock()
                .expect("not poisoned")
                .unwrap_or(0);
            failure = match result {
                Ok(()) => None,
                Err(TestError::Fail(_, minimal)) => {
                    // Then drop every step the failure does not need.
                    let minimal = generate::minimize::minimize(minimal, MINIMIZE_TRIES, |s| {
                        failure_of(&judge(s).1).is_some()
                    });
                    let (history, verdict) = judge(&minimal);
                    let summary = failure_of(&verdict).unwrap_or_else(|| {
                        "the shrunk sequence passed when run again: the endpoint is not deterministic"
                            .into()
                    });
                    observed.lock().expect("not poisoned").absorb(verdict);
                    let detail = self.failure(summary, &minimal, history, needed);
                    self.save_regression(check, &detail.steps);
                    Some(detail)
                }
                Err(TestError::Abort(why)) => {
                    let summary = format!("the check was aborted: {why}");
                    Some(self.failure(summary, &[], History::default(), needed))
                }
            };
        }
        if let Some(emulator) = target.emulator {
            self.runtime.block_on(emulator.stop());
        }
        let verdict = observed.into_inner().expect("not poisoned");
        let mut report = self.report(check, cases.into_inner(), verdict, started);
        report.requests = requests.into_inner();
        report.failure = failure;
        report
    }

    /// A failure detail, its steps masked like the history.
    fn failure(
        &self,
        summary: String,
        steps: &[Step],
        history: History,
        cases_needed: u32,
    ) -> FailureDetail {
        FailureDetail {
            summary,
            steps: mask_steps(&self.fixtures, steps),
            history,
            seed: self.seed,
            cases_needed,
            diff: None,
            replay: None,
            reproducer: None,
        }
    }

    fn report(&self, check: &Check, cases: u32, verdict: Verdict, started: Instant) -> CheckReport {
        CheckReport {
            name: check.name.to_string(),
            family: check.family,
            explain: check.explain.to_string(),
            cases,
            requests: 0,
            duration: started.elapsed(),
            verdict,
            failure: None,
            ignored: false,
            metrics: Default::default(),
        }
    }

    /// The context oracles judge with.
    pub fn oracle_context(&self) -> Context<'_> {
        Context {
            spec: Spec::kms(),
            fixtures: &self.fixtures,
            model: &self.model,
            name_prefix: &self.prefix,
        }
    }

    fn check_target(&self) -> Result<CheckTarget, String> {
        self.target_of(&self.target)
    }

    /// Starts (embedded) or connects to (remote) `target`.
    fn target_of(&self, target: &Target) -> Result<CheckTarget, String> {
        let (url, emulator) = match target {
            Target::Embedded(config) => {
                let running = self
                    .runtime
                    .block_on(emulator::start_on_loopback(config.clone()))
                    .map_err(|e| format!("cannot start the embedded emulator: {e}"))?;
                (running.url(), Some(running))
            }
            Target::Remote { url } => (url.clone(), None),
        };
        let client = KmsClient::new(
            &url,
            &self.region,
            self.credential.clone(),
            self.request_timeout,
        )?;
        let endpoint = Endpoint {
            client,
            url,
            rate: self.rate.and_then(Endpoint::rate_limiter),
            retry: RetryPolicy::default(),
            journal: self.journal.clone(),
            fixtures: self.fixtures.clone(),
            transition_timeout: self.transition_timeout,
        };
        Ok(CheckTarget {
            endpoint: Arc::new(endpoint),
            emulator,
        })
    }

    /// Runs one case from a clean slate and returns what it recorded.
    /// The case runs as a task on the shared runtime, where the emulator serves too (as a load
    /// client would): its requests wake no other thread, and the check's thread waits once.
    fn execute(&self, target: &CheckTarget, steps: &[Step], sequence: u64) -> History {
        if let Some(emulator) = &target.emulator {
            emulator.reset();
        }
        let mut session = Session::new(target.endpoint.clone(), &self.prefix, sequence);
        let steps = steps.to_vec();
        let remote = target.emulator.is_none();
        let case = self.runtime.spawn(async move {
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
        let history = match self.runtime.block_on(case) {
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

    fn regression_file(&self, check: &Check) -> Option<PathBuf> {
        self.regressions
            .as_ref()
            .map(|dir| dir.join(format!("{}.json", check.name)))
    }

    /// Sequences saved by earlier failing runs of this check.
    fn saved_regressions(&self, check: &Check) -> Vec<Vec<Step>> {
        let Some(path) = self.regression_file(check) else {
            return Vec::new();
        };
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Vec::new();
        };
        match serde_json::from_str(&text) {
            Ok(saved) => saved,
            Err(e) => {
                eprintln!("ckscheck: ignoring {}: {e}", path.display());
                Vec::new()
            }
        }
    }

    /// Adds a shrunk failing sequence to the check's regression file.
    fn save_regression(&self, check: &Check, steps: &[Step]) {
        let Some(path) = self.regression_file(check) else {
            return;
        };
        let mut saved = self.saved_regressions(check);
        if saved.iter().any(|s| s == steps) {
            return;
        }
        saved.push(steps.to_vec());
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                let text = serde_json::to_string_pretty(&saved).map_err(std::io::Error::other)?;
                std::fs::write(&path, text)
            });
        if let Err(e) = written {
            eprintln!(
                "ckscheck: cannot save the regression to {}: {e}",
                path.display()
            );
        }
    }
}

/// The steps with every secret replaced by a token naming the fixture secret it equals; the
/// session turns tokens back into fixture secrets, so masked steps replay the same.
fn mask_steps(fixtures: &Fixtures, steps: &[Step]) -> Vec<Step> {
    let mask = |operation: &str, body: &serde_json::Value| {
        mask_secrets(Spec::kms(), fixtures, operation, body)
    };
    steps
        .iter()
        .map(|step| step.map_call_bodies(&mask))
        .collect()
}

/// The findings that do not fail a case (warnings, unsettled), and the exercised counts.
fn keep_non_failures(mut verdict: Verdict) -> Verdict {
    verdict.findings.retain(|f| f.severity != Severity::Failure);
    verdict
}

/// A 32-byte proptest seed from the run seed and the check name, so filtering checks does
/// not change the cases of the others.
pub(crate) fn seed_bytes(seed: u64, check: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    hasher.update(check.as_bytes());
    hasher.finalize().into()
}

/// A quick reachability probe: one unsigned-body Describe, for a clear error before any check.
pub async fn probe(client: &KmsClient) -> Result<Reply, String> {
    client
        .call("DescribeCustomKeyStores", &serde_json::json!({}))
        .await
        .map_err(|e| e.to_string())
}
