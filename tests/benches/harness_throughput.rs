//! Requests per second the harness drives against the embedded emulator, next to a plain
//! signed client that replays the harness's own request stream, measured in the same run.
//!
//! Run with `cargo bench --bench harness_throughput`. The target: the harness reaches at least
//! half of the replay's rate. It prints every round, the medians and the ratio, then exits
//! non-zero if the ratio is below the target or the harness run did not pass.
//!
//! The harness side is what `ckscheck run` does with no endpoint: every check (generation,
//! requests, oracles, emulator resets between cases) with `BENCH_CASES` cases per check, the
//! checks spread over `BENCH_JOBS` threads; its rate is the requests it sent (every attempt,
//! page and poll) over its wall time. Its history (every request, in order, per case) is the
//! replay's input: the replay sends the same bodies to the same targets in the same order per
//! case, as many cases at once as the harness had lanes in flight, each case on a fresh
//! emulator state with the same fixtures (and the same reference XKS proxies), signing each
//! request and reading each answer, and nothing else: no generation, no oracle, no masking, no
//! history. Store IDs the harness's emulator issued are mapped to the ones the replay's issues.
//! Settle polls are sent as many times as the harness sent them, without waiting. Both sides
//! thus ask the endpoint for the same work, and the ratio is what the harness adds. Rounds
//! alternate harness, replay, harness, ... A third line per round, for information, is a plain
//! loop sending one pre-signed empty Describe for `BENCH_SECONDS`.
//!
//! Settings (environment variables):
//!   BENCH_CASES    cases per check (default 256, as `ckscheck run`)
//!   BENCH_JOBS     checks run at once and plain-client tasks (default: as `ckscheck run`
//!                  against the embedded emulator, every check at once)
//!   BENCH_LANES    cases of one check in flight at once (default: as `ckscheck run`)
//!   BENCH_SECONDS  measured seconds of each plain-client round (default 3)
//!   BENCH_ROUNDS   rounds (default 3)
//!
//! Run without `--bench` (e.g. by `cargo test --benches`) it does one short round and does not
//! judge the ratio.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ckscheck::emulator::{EmulatorConfig, start_on_loopback};
use ckscheck::history::{Exchange, SECRET_TOKEN, unmask_secret};
use ckscheck::model::{Fixtures, ModelConfig};
use ckscheck::report::CheckReport;
use ckscheck::suite::checks;
use ckscheck::suite::run::{RunOptions, default_jobs, prepare};
use common::{
    Load, SuiteSettings, bench_main, drive, median, presign, print_machine, print_verdict,
    process_cpu,
};
use serde_json::Value;

/// The allocator `ckscheck` itself uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The minimum harness/replay rate ratio.
const TARGET_RATIO: f64 = 0.5;

/// One request of a recorded case: target, body (secrets back in clear or stand-ins of their
/// length), and the store ID a Create's answer issued.
struct Recorded {
    operation: String,
    body: String,
    issued: Option<String>,
}

/// What one harness run did.
struct HarnessRound {
    rps: f64,
    requests: u64,
    seconds: f64,
    /// Process CPU time per request, in microseconds.
    cpu_us_per_request: Option<f64>,
    /// Names of the checks that failed.
    failed: Vec<String>,
    /// Its requests, per case, in the order sent: the replay's input.
    cases: Vec<Vec<Recorded>>,
    /// Cases it had in flight at most (checks at once times lanes).
    in_flight: usize,
    /// The fixtures it ran with (the reference proxies' addresses included).
    fixtures: Arc<Fixtures>,
}

/// One harness run: every check, `jobs` at a time.
fn harness_round(
    s: &SuiteSettings,
    lanes: Option<usize>,
    seed: u64,
    runtime: &tokio::runtime::Runtime,
) -> Result<HarnessRound, String> {
    let history = std::env::temp_dir().join(format!(
        "ckscheck-bench-history-{}-{seed}.jsonl",
        std::process::id()
    ));
    let options = RunOptions {
        cases: Some(s.cases),
        seed: Some(seed),
        lanes,
        history: Some(history.clone()),
        ..RunOptions::default()
    };
    let prepared = prepare(&options, runtime)?;
    let all = checks();
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let cpu_begin = process_cpu();
    let reports: Vec<CheckReport> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..s.concurrency)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    while let Some(check) = all.get(next.fetch_add(1, Ordering::Relaxed)) {
                        mine.push(prepared.suite.run_check(check));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a check panicked"))
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let cpu_end = process_cpu();
    let requests: u64 = reports.iter().map(|r| r.requests).sum();
    let failed = reports
        .iter()
        .filter(|r| !r.failures.is_empty())
        .map(|r| r.name.clone())
        .collect();
    let cpu_us_per_request = match (cpu_begin, cpu_end) {
        (Some(a), Some(b)) if requests > 0 => Some((b - a).as_secs_f64() * 1e6 / requests as f64),
        _ => None,
    };
    if let Some(h) = &prepared.suite.history {
        h.lock()
            .map_err(|_| "the history lock is poisoned")?
            .flush()
            .map_err(|e| format!("writing the history: {e}"))?;
    }
    let fixtures = prepared.suite.fixtures.clone();
    let cases = recorded_cases(&history, &fixtures)?;
    let _ = std::fs::remove_file(&history);
    let lanes = prepared.suite.lanes;
    Ok(HarnessRound {
        rps: requests as f64 / seconds,
        requests,
        seconds,
        cpu_us_per_request,
        failed,
        cases,
        in_flight: s.concurrency.min(all.len()) * lanes,
        fixtures,
    })
}

/// The requests of a history file, per case (its `sequence`), in the order they were sent.
fn recorded_cases(path: &Path, fixtures: &Fixtures) -> Result<Vec<Vec<Recorded>>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reading the history {}: {e}", path.display()))?;
    let mut cases: BTreeMap<u64, Vec<Recorded>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let e: Exchange = serde_json::from_str(line).map_err(|e| format!("a history line: {e}"))?;
        let body = match &e.request {
            Value::String(raw) if e.raw => raw.clone(),
            request => unmasked(request, fixtures).to_string(),
        };
        let issued = (e.operation == "CreateCustomKeyStore")
            .then(|| e.body()["CustomKeyStoreId"].as_str().map(str::to_string))
            .flatten();
        cases.entry(e.sequence).or_default().push(Recorded {
            operation: e.operation,
            body,
            issued,
        });
    }
    Ok(cases.into_values().collect())
}

/// `v` with every secret token turned back into its secret (or a stand-in of its length).
fn unmasked(v: &Value, fixtures: &Fixtures) -> Value {
    match v {
        Value::String(s) if s.starts_with(SECRET_TOKEN) => {
            Value::String(unmask_secret(fixtures, s))
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| unmasked(i, fixtures)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, i)| (k.clone(), unmasked(i, fixtures)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The replay of one harness round: its cases, `in_flight` at once, each on its own fresh
/// emulator state; a plain signed client, every request signed and its answer read.
async fn replay_round(h: &HarnessRound) -> Result<common::Round, String> {
    let config = EmulatorConfig {
        model: ModelConfig {
            // As the harness's embedded emulators.
            connect_delay_ms: 2,
            ..ModelConfig::default()
        },
        fixtures: h.fixtures.clone(),
        ..EmulatorConfig::default()
    };
    let workers = h.in_flight.max(1).min(h.cases.len().max(1));
    let mut emulators = Vec::new();
    for _ in 0..workers {
        emulators.push(Arc::new(
            start_on_loopback(config.clone())
                .await
                .map_err(|e| format!("starting an emulator: {e}"))?,
        ));
    }
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(workers)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let cases: Arc<Vec<Vec<Recorded>>> = Arc::new(
        h.cases
            .iter()
            .map(|c| {
                c.iter()
                    .map(|r| Recorded {
                        operation: r.operation.clone(),
                        body: r.body.clone(),
                        issued: r.issued.clone(),
                    })
                    .collect()
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let cpu_begin = process_cpu();
    let mut tasks = Vec::new();
    for emulator in &emulators {
        let (emulator, client, cases) = (emulator.clone(), client.clone(), cases.clone());
        let (next, sent, failures) = (next.clone(), sent.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let url = emulator.url();
            while let Some(case) = cases.get(next.fetch_add(1, Ordering::Relaxed)) {
                emulator.reset();
                let mut ids: Vec<(String, String)> = Vec::new();
                for r in case {
                    let mut body = r.body.clone();
                    for (old, new) in &ids {
                        body = body.replace(old.as_str(), new);
                    }
                    let Ok(signed) = presign(&r.operation, body.into_bytes()) else {
                        failures.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let answer = client
                        .post(&url)
                        .headers(signed.headers)
                        .body(signed.body)
                        .send()
                        .await;
                    sent.fetch_add(1, Ordering::Relaxed);
                    let Ok(answer) = answer else {
                        failures.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let Ok(bytes) = answer.bytes().await else {
                        failures.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    if let Some(old) = &r.issued
                        && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
                        && let Some(new) = v["CustomKeyStoreId"].as_str()
                    {
                        ids.push((old.clone(), new.to_string()));
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| format!("a replay task panicked: {e}"))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_end = process_cpu();
    for e in emulators {
        if let Ok(e) = Arc::try_unwrap(e) {
            e.stop().await;
        }
    }
    let ok = sent.load(Ordering::Relaxed);
    let errors = failures.load(Ordering::Relaxed);
    Ok(common::Round {
        ok,
        errors,
        first_error: (errors > 0).then(|| format!("{errors} replayed requests got no answer")),
        rps: ok as f64 / seconds,
        cpu_us_per_request: match (cpu_begin, cpu_end) {
            (Some(a), Some(b)) if ok > 0 => Some((b - a).as_secs_f64() * 1e6 / ok as f64),
            _ => None,
        },
    })
}

/// One plain-client round against a fresh, empty embedded emulator.
async fn plain_round(s: &SuiteSettings) -> Result<common::Round, String> {
    let config = EmulatorConfig {
        model: ModelConfig {
            connect_delay_ms: 5,
            ..ModelConfig::default()
        },
        ..EmulatorConfig::default()
    };
    let emulator = start_on_loopback(config)
        .await
        .map_err(|e| format!("starting the emulator: {e}"))?;
    let request = presign("DescribeCustomKeyStores", b"{}".to_vec())?;
    let expected = br#"{"CustomKeyStores":[],"Truncated":false}"#.len();
    let load = Load {
        concurrency: s.concurrency,
        warmup: 0.5,
        seconds: s.seconds,
    };
    let round = drive(&emulator.url(), &request, expected, &load).await;
    emulator.stop().await;
    Ok(round)
}

fn run(
    s: &SuiteSettings,
    lanes: Option<usize>,
    runtime: &tokio::runtime::Runtime,
) -> Result<bool, String> {
    println!(
        "harness_throughput: requests/s of the harness vs a plain client replaying its requests, embedded emulator"
    );
    print_machine();
    println!(
        "settings: cases={} jobs={} lanes={} seconds={} rounds={} mode={}",
        s.cases,
        s.concurrency,
        lanes.map_or("default".to_string(), |n| n.to_string()),
        s.seconds,
        s.rounds,
        if s.judge {
            "bench"
        } else {
            "smoke (no --bench: ratio not judged)"
        }
    );
    println!();
    let (mut harness, mut replay, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    let mut passed = true;
    for round in 1..=s.rounds {
        let h = harness_round(s, lanes, round as u64, runtime)?;
        println!(
            "round {round} harness {:>10.0} req/s  ({} requests in {:.2} s, {} checks failed; {} CPU/request)",
            h.rps,
            h.requests,
            h.seconds,
            h.failed.len(),
            h.cpu_us_per_request
                .map_or("n/a".to_string(), |us| format!("{us:.1} us"))
        );
        if !h.failed.is_empty() {
            println!("  failed checks: {}", h.failed.join(", "));
            passed = false;
        }
        harness.push(h.rps);
        let r = runtime.block_on(replay_round(&h))?;
        println!(
            "round {round} replay  {:>10.0} req/s  ({} requests of {} cases, {} at once; {} CPU/request)",
            r.rps,
            r.ok,
            h.cases.len(),
            h.in_flight,
            r.cpu_us_per_request
                .map_or("n/a".to_string(), |us| format!("{us:.1} us"))
        );
        if let Some(e) = &r.first_error {
            println!("  replay: {e}");
            passed = false;
        }
        replay.push(r.rps);
        let r = runtime.block_on(plain_round(s))?;
        r.print(
            &format!("round {round} empty Describe loop (information)"),
            s.seconds,
        );
        if r.first_error.is_some() {
            passed = false;
        }
        plain.push(r.rps);
    }
    let (h, r, p) = (median(&harness), median(&replay), median(&plain));
    let ratio = if r > 0.0 { h / r } else { 0.0 };
    println!();
    println!("median harness {h:>10.0} req/s");
    println!("median replay  {r:>10.0} req/s");
    println!(
        "median empty-Describe loop {p:>10.0} req/s (information: ratio {:.3})",
        if p > 0.0 { h / p } else { 0.0 }
    );
    println!("ratio harness/replay = {ratio:.3} (target >= {TARGET_RATIO})");
    if !passed {
        println!("FAIL: the harness run, the replay or the plain loop had failures (see above)");
    } else if !s.judge {
        println!("SMOKE: ratio not judged (run `cargo bench --bench harness_throughput`)");
    } else if !print_verdict(
        ratio,
        TARGET_RATIO,
        "the harness",
        "the replay of its requests",
    ) {
        passed = false;
    }
    Ok(passed)
}

fn main() -> ExitCode {
    bench_main("harness_throughput", |runtime| {
        let settings = SuiteSettings::from_env("BENCH_JOBS", default_jobs(true, true))?;
        let lanes = match std::env::var("BENCH_LANES") {
            Ok(v) => Some(
                v.parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("BENCH_LANES must be a number > 0, not {v:?}"))?,
            ),
            Err(_) => None,
        };
        run(&settings, lanes, runtime)
    })
}
