//! The suite: each check is a property — cases drawn from a workload, run against the target,
//! judged by an oracle — run with proptest, which shrinks a failure to its smallest sequence.
//!
//! This is the glue between the parts: it calls the generators, hands steps to the runner,
//! gives the recorded history to the oracle and the outcome to the report. It judges nothing
//! itself.

mod checks;
pub mod cleanup;
pub mod partition;
mod probe;
mod property;
pub mod proxies;
pub mod record;
pub mod regions;
pub mod rejudge;
pub mod run;
pub mod scenarios;
pub mod selftest;
mod shrink;
mod worklist;

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

pub use checks::{Check, checks};
pub use probe::PROBED;
pub use property::MAX_DEVIATIONS;
pub use shrink::{ShrinkBudget, ShrinkStats};

use crate::deviation::Policy;
use crate::emulator::{self, EmulatorConfig, RunningEmulator};
use crate::generate::Step;
use crate::history::{CaseLine, History, Line, Role, mask_secrets, write_line};
use crate::model::Fixtures;
use crate::oracle::{Context, Severity, Verdict, implemented};
use crate::report::{CheckReport, FailureDetail};
use crate::runner::journal::Journal;
use crate::runner::session::{Endpoint, RetryPolicy};
use crate::runner::{KmsClient, Reply};
use crate::sigv4::Credential;
use crate::spec::Spec;

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
    /// The regions trials run in (each one's quota is what predictions and generators use).
    pub regions: regions::Regions,
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
    /// Cases of a check run at once, each on a target of its own (1 against a remote endpoint,
    /// whose quota the cases share).
    pub lanes: usize,
    /// The real XKS proxies fixture entries point at (embedded runs), serving until the end.
    pub proxies: Option<proxies::RealProxies>,
    /// What decides each finding's outcome (strictness, baseline, unimplemented operations).
    pub policy: Policy,
    /// The most distinct deviations one check shrinks and reports.
    pub max_deviations: usize,
    /// What one shrink may spend.
    pub shrink_budget: ShrinkBudget,
    /// Every answer of the run, by operation: whether the endpoint answered it as implemented.
    pub census: Mutex<Census>,
}

/// How an operation was answered over the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answers {
    /// Answers judged (final attempts with a response; raw bodies left out).
    pub total: u64,
    /// Of those, how many were a not-implemented answer.
    pub not_implemented: u64,
}

/// Answers by operation (see [`Answers`]).
pub type Census = std::collections::BTreeMap<String, Answers>;

/// An endpoint for a check: the shared remote one, or an embedded emulator of its own.
struct CheckTarget {
    endpoint: Arc<Endpoint>,
    emulator: Option<RunningEmulator>,
}

impl Suite {
    /// Appends a finished case (its line, then its exchanges) to the history file and counts
    /// its answers in the census.
    fn record(&self, history: &History, case: CaseLine) {
        if let Some(sink) = &self.history {
            let mut out = sink.lock().unwrap_or_else(|p| p.into_inner());
            let written = write_line(&mut *out, &Line::Case { case })
                .and_then(|()| history.write_jsonl(&mut *out));
            if let Err(e) = written {
                eprintln!("ckscheck: cannot write the history: {e}");
            }
        }
        let mut census = self.census.lock().unwrap_or_else(|p| p.into_inner());
        for e in &history.exchanges {
            if e.raw || e.is_unknown() {
                continue;
            }
            let answers = census.entry(e.operation.clone()).or_default();
            answers.total += 1;
            if implemented::not_implemented_answer(e).is_some() {
                answers.not_implemented += 1;
            }
        }
    }

    /// Appends one line (the header, a shrink's end) to the history file, if one is written.
    pub fn record_line(&self, line: &Line) {
        if let Some(sink) = &self.history {
            let mut out = sink.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = write_line(&mut *out, line) {
                eprintln!("ckscheck: cannot write the history: {e}");
            }
        }
    }

    /// The history line of a case of `trial` in `region`: what it was and its masked steps.
    fn case_line(
        &self,
        sequence: u64,
        (trial, role): (&str, Role),
        region: &regions::Region,
        steps: &[Step],
    ) -> CaseLine {
        CaseLine {
            sequence,
            trial: trial.to_string(),
            role,
            region: region.region.clone(),
            quota: region.model.quota,
            steps: mask_steps(&self.fixtures, steps),
        }
    }

    /// A failure detail, its steps masked like the history.
    fn failure(
        &self,
        signature: Option<String>,
        summary: String,
        steps: &[Step],
        history: History,
        cases_needed: u32,
        requests_needed: u64,
    ) -> FailureDetail {
        FailureDetail {
            signature,
            summary,
            steps: mask_steps(&self.fixtures, steps),
            history,
            seed: self.seed,
            cases_needed,
            requests_needed,
            shrink: None,
            diff: None,
            replay: None,
            reproducer: None,
            raw: None,
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
            failures: Vec::new(),
            deviations: Vec::new(),
            capped: None,
            ignored: false,
            metrics: Default::default(),
        }
    }

    /// The context oracles judge a trial in `region` with.
    pub fn oracle_context<'a>(&'a self, region: &'a regions::Region) -> Context<'a> {
        Context {
            spec: Spec::kms(),
            fixtures: &self.fixtures,
            model: &region.model,
            name_prefix: &self.prefix,
        }
    }

    /// The remote endpoint, signing for `region` (Err for the embedded emulator).
    fn endpoint_in(&self, region: &str) -> Result<Arc<Endpoint>, String> {
        match &self.target {
            Target::Remote { .. } => Ok(self.target_of(&self.target, region)?.endpoint),
            Target::Embedded(_) => Err("the embedded emulator has no regions to probe".into()),
        }
    }

    /// Starts (embedded) or connects to (remote) `target`, signing for `region`.
    fn target_of(&self, target: &Target, region: &str) -> Result<CheckTarget, String> {
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
        let client = KmsClient::new(&url, region, self.credential.clone(), self.request_timeout)?;
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
pub(crate) fn mask_steps(fixtures: &Fixtures, steps: &[Step]) -> Vec<Step> {
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
