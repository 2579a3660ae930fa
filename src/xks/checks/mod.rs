//! The XKS certification checks (`ckscheck xks run`), each its own trial: what it sends, and
//! how what comes back is judged (status, error body and values, never substrings).

pub mod auth;
pub mod concurrency;
pub mod health;
pub mod keys;
pub mod metadata;
pub mod probe;
pub mod property;
pub mod requests;
pub mod round_trip;
pub mod shape;
pub mod tamper;
pub mod validation;

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use crate::oracle::{Family, Verdict};
use crate::report::{CheckReport, FailureDetail, RawReproduction};
use crate::sigv4::Credential;
use crate::spec::Spec;
use crate::xks::client::{RawRequest, SendError, XksClient, XksReply};
use probe::{Exchange, Probe};

/// The proxy's keys the checks use.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// An enabled AES-256 key allowed to encrypt and decrypt.
    pub main: String,
    /// A key allowed only to encrypt.
    pub encrypt_only: Option<String>,
    /// A key allowed only to decrypt.
    pub decrypt_only: Option<String>,
    /// A key allowed neither to encrypt nor to decrypt (the test client's "impotent key").
    pub no_usage: Option<String>,
    /// A disabled key.
    pub disabled: Option<String>,
}

/// What every check gets.
pub struct Ctx {
    /// The signing client for the proxy under test.
    pub client: XksClient,
    /// The runtime requests run on.
    pub runtime: tokio::runtime::Handle,
    /// The keys to use.
    pub keys: Keys,
    /// Generated cases per property.
    pub cases: u32,
    /// The run seed.
    pub seed: u64,
    /// SHOULD-level and inferred findings fail too.
    pub strict: bool,
    /// The XKS spec.
    pub spec: &'static Spec,
    /// A second credential for the same URI path (rotation), when known.
    pub rotated: Option<Credential>,
    /// Every (key, IV) Encrypt returned this run.
    pub ivs: Mutex<HashSet<(String, Vec<u8>)>>,
    /// Requests sent.
    pub requests: AtomicU64,
    /// Timeouts in a row: past [`HUNG_AFTER`] the proxy counts as hung.
    pub timeouts: std::sync::atomic::AtomicU32,
}

/// Timeouts in a row after which requests are no longer sent: a hung proxy fails every check
/// at once instead of costing a timeout per request.
pub const HUNG_AFTER: u32 = 3;

impl Ctx {
    /// Runs a future to completion from a check's thread.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Sends `request` unless the proxy has stopped answering (then fails at once), counting
    /// it and keeping track of timeouts in a row.
    pub async fn send(&self, request: &RawRequest) -> Result<XksReply, SendError> {
        use std::sync::atomic::Ordering;
        if self.timeouts.load(Ordering::Relaxed) >= HUNG_AFTER {
            return Err(SendError::Timeout(self.client.target.timeout));
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let reply = self.client.send(request).await;
        if matches!(reply, Err(SendError::Timeout(_))) {
            self.timeouts.fetch_add(1, Ordering::Relaxed);
        } else {
            self.timeouts.store(0, Ordering::Relaxed);
        }
        reply
    }

    /// Records an IV Encrypt returned for `key`; false if the run saw it before.
    pub fn fresh_iv(&self, key: &str, iv: &[u8]) -> bool {
        self.ivs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((key.to_string(), iv.to_vec()))
    }
}

/// The smallest failing input of a check and what it got back.
#[derive(Debug, Clone)]
pub struct Counterexample {
    /// The input, in words.
    pub input: String,
    /// The exchanges of the failing case.
    pub exchanges: Vec<Exchange>,
    /// Cases run up to and including the first failing one.
    pub cases_needed: u32,
}

/// What a check found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Findings of every case.
    pub verdict: Verdict,
    /// Cases run.
    pub cases: u32,
    /// The counterexample, when a case failed.
    pub failure: Option<Counterexample>,
    /// Measurements to report (latency percentiles).
    pub metrics: BTreeMap<String, String>,
}

/// One certification check.
pub struct XksCheck {
    /// Trial name, e.g. `xks-round-trip`.
    pub name: &'static str,
    /// The report column it belongs to.
    pub family: Family,
    /// One line: what it enforces.
    pub explain: &'static str,
    /// Why it cannot run against this target (e.g. a key it needs was not given).
    pub needs: fn(&Ctx) -> Option<String>,
    /// The check.
    pub run: fn(&Ctx) -> Outcome,
}

fn always(_: &Ctx) -> Option<String> {
    None
}

/// Every check, in run order.
pub fn checks() -> Vec<XksCheck> {
    vec![
        XksCheck {
            name: "xks-health",
            family: Family::FieldPresence,
            explain: "GetHealthStatus: 200 with every member, fleet size > 0, 1-10 fleet entries with a valid healthStatus, for each kmsOperation KMS sends",
            needs: always,
            run: health::run,
        },
        XksCheck {
            name: "xks-metadata",
            family: Family::FieldPresence,
            explain: "GetKeyMetadata: keySpec AES_256, keyUsage with ENCRYPT and DECRYPT, keyStatus in its enum, for the v1.0.3 and the older request shape; an unknown key is 404 KeyNotFoundException",
            needs: always,
            run: metadata::run,
        },
        XksCheck {
            name: "xks-round-trip",
            family: Family::Crypto,
            explain: "Encrypt then Decrypt of 1-4300 byte plaintexts with AAD absent, empty, random or 8192 bytes: the same plaintext back, exact sizes, a correct integrity value, no IV twice",
            needs: always,
            run: round_trip::run,
        },
        XksCheck {
            name: "xks-tamper",
            family: Family::Crypto,
            explain: "any bit flipped in ciphertext, IV, tag, AAD or ciphertextMetadata, or AAD and metadata swapped: 400 InvalidCiphertextException, never a plaintext, never a 5xx",
            needs: always,
            run: tamper::run,
        },
        XksCheck {
            name: "xks-validation",
            family: Family::Validation,
            explain: "each required member missing, a wrong JSON type, bad or URL-safe base64, an unknown algorithm, malformed JSON: 400 ValidationException; unknown kmsOperation values and extra members accepted",
            needs: always,
            run: validation::run,
        },
        XksCheck {
            name: "xks-key-usage",
            family: Family::States,
            explain: "encrypt-only and decrypt-only keys refuse the other operation, and a key with no usage refuses both, with 400 InvalidKeyUsageException (a CDIV on an encrypt-only key too: SHOULD, inferred); a disabled key reports DISABLED and refuses both with 400 InvalidStateException",
            needs: keys::needs,
            run: keys::run,
        },
        XksCheck {
            name: "xks-authentication",
            family: Family::Authentication,
            explain: "a wrong secret, an unknown access key, another service or region, a body changed after signing, a clock 6 minutes off, no Authorization: 401 AuthenticationFailedException; long credentials and rotation work; an unknown path is 404 InvalidUriPathException; GET is 405",
            needs: always,
            run: auth::run,
        },
        XksCheck {
            name: "xks-latency",
            family: Family::Latency,
            explain: "p50 and p99 per operation over sequential calls; a p99 over KMS's 250 ms budget fails",
            needs: always,
            run: concurrency::latency,
        },
        XksCheck {
            name: "xks-concurrency",
            family: Family::Concurrency,
            explain: "bursts of parallel Encrypt and Decrypt calls all succeed and round-trip",
            needs: always,
            run: concurrency::burst,
        },
    ]
}

/// Runs one case that is the whole check (fixed requests, no generation). Its counterexample
/// keeps only the exchanges a failing finding points at (and the Encrypt a failing Decrypt
/// decrypted); the findings' exchange numbers are renumbered to match.
pub fn single(ctx: &Ctx, input: &str, case: impl FnOnce(&mut Probe)) -> Outcome {
    let mut probe = Probe::new(ctx);
    case(&mut probe);
    let failure = probe.failed().then(|| {
        let mut keep: Vec<usize> = Vec::new();
        for i in probe
            .verdict
            .failures(ctx.strict)
            .filter_map(|f| f.exchange)
        {
            let needs_encrypt = i > 0
                && probe.exchanges[i].operation == "Decrypt"
                && probe.exchanges[i - 1].operation == "Encrypt";
            if needs_encrypt {
                keep.push(i - 1);
            }
            keep.push(i);
        }
        keep.sort_unstable();
        keep.dedup();
        for f in &mut probe.verdict.findings {
            f.exchange = f.exchange.and_then(|i| keep.iter().position(|k| *k == i));
        }
        Counterexample {
            input: input.to_string(),
            exchanges: keep.iter().map(|i| probe.exchanges[*i].clone()).collect(),
            cases_needed: 1,
        }
    });
    Outcome {
        cases: 1,
        failure,
        verdict: probe.verdict,
        metrics: BTreeMap::new(),
    }
}

/// Turns a check's outcome into its report, its deviations decided (`strict`: unsettled ones
/// fail). The one counterexample shows every failing finding of the shrunk case, so it names
/// no single signature.
pub fn report(
    check: &XksCheck,
    outcome: Outcome,
    started: Instant,
    requests: u64,
    render: impl Fn(&Counterexample) -> (String, String, RawReproduction),
    seed: u64,
    strict: bool,
) -> CheckReport {
    let failure = outcome.failure.as_ref().map(|c| {
        let summary = outcome
            .verdict
            .failures(strict)
            .map(|f| format!("{} [{}]: {}", f.operation, f.rule, f.message))
            .collect::<Vec<_>>()
            .join("\n");
        let (reproducer, replay, raw) = render(c);
        FailureDetail {
            signature: None,
            summary,
            steps: Vec::new(),
            history: Default::default(),
            seed,
            cases_needed: c.cases_needed,
            requests_needed: 0,
            shrink: None,
            diff: None,
            replay: Some(replay),
            reproducer: Some(reproducer),
            raw: Some(raw),
        }
    });
    let mut report = CheckReport {
        name: check.name.to_string(),
        family: check.family,
        explain: check.explain.to_string(),
        cases: outcome.cases,
        requests,
        duration: started.elapsed(),
        verdict: outcome.verdict,
        failures: failure.into_iter().collect(),
        deviations: Vec::new(),
        capped: None,
        ignored: false,
        metrics: outcome.metrics,
    };
    crate::deviation::Policy {
        strict,
        ..Default::default()
    }
    .resolve(&mut report);
    report
}

/// A percentile of sorted durations, in milliseconds with one decimal.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}
