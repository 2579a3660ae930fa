//! Requests per second the harness drives against the embedded emulator, next to a plain load
//! client sending one pre-signed DescribeCustomKeyStores request, measured in the same run.
//!
//! Run with `cargo bench --bench harness_throughput`. The target: the harness reaches at least
//! half of the plain client's rate. It prints every round, the medians and the ratio, then
//! exits non-zero if the ratio is below the target or the harness run did not pass.
//!
//! The harness side is what `ckscheck run` does with no endpoint: every check (generation,
//! requests, oracles, emulator resets between cases) with `BENCH_CASES` cases per check, the
//! checks spread over `BENCH_JOBS` threads; its rate is the requests it sent (every attempt,
//! page and poll) over its wall time. The plain side is the same number of concurrent tasks
//! sending the same signed Describe back to back to an empty embedded emulator, for
//! `BENCH_SECONDS`. Rounds alternate harness, plain client, harness, ...
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

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ckscheck::emulator::{EmulatorConfig, start_on_loopback};
use ckscheck::model::ModelConfig;
use ckscheck::report::CheckReport;
use ckscheck::suite::checks;
use ckscheck::suite::run::{RunOptions, default_jobs, prepare};
use common::{
    Load, SuiteSettings, bench_main, drive, median, presign, print_machine, print_verdict,
    process_cpu,
};

/// The allocator `ckscheck` itself uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The minimum harness/plain-client rate ratio.
const TARGET_RATIO: f64 = 0.5;

/// What one harness run did.
struct HarnessRound {
    rps: f64,
    requests: u64,
    seconds: f64,
    /// Process CPU time per request, in microseconds.
    cpu_us_per_request: Option<f64>,
    /// Names of the checks that failed.
    failed: Vec<String>,
}

/// One harness run: every check, `jobs` at a time.
fn harness_round(
    s: &SuiteSettings,
    lanes: Option<usize>,
    seed: u64,
    runtime: &tokio::runtime::Runtime,
) -> Result<HarnessRound, String> {
    let options = RunOptions {
        cases: Some(s.cases),
        seed: Some(seed),
        lanes,
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
    Ok(HarnessRound {
        rps: requests as f64 / seconds,
        requests,
        seconds,
        cpu_us_per_request,
        failed,
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
    println!("harness_throughput: requests/s of the harness vs a plain client, embedded emulator");
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
    let (mut harness, mut plain) = (Vec::new(), Vec::new());
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
        let r = runtime.block_on(plain_round(s))?;
        r.print(&format!("round {round} plain  "), s.seconds);
        if r.first_error.is_some() {
            passed = false;
        }
        plain.push(r.rps);
    }
    let (h, p) = (median(&harness), median(&plain));
    let ratio = if p > 0.0 { h / p } else { 0.0 };
    println!();
    println!("median harness {h:>10.0} req/s");
    println!("median plain   {p:>10.0} req/s");
    println!("ratio harness/plain = {ratio:.3} (target >= {TARGET_RATIO})");
    if !passed {
        println!("FAIL: the harness run or the plain client had failures (see above)");
    } else if !s.judge {
        println!("SMOKE: ratio not judged (run `cargo bench --bench harness_throughput`)");
    } else if !print_verdict(ratio, TARGET_RATIO, "the harness", "the plain client") {
        passed = false;
    }
    Ok(passed)
}

fn main() -> ExitCode {
    bench_main("harness_throughput", |runtime| {
        let settings = SuiteSettings::from_env("BENCH_JOBS", default_jobs(true))?;
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
