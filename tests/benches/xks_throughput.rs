//! The XKS certification suite's request rate next to a plain signed-request loop on the same
//! embedded reference proxy, measured in the same run, and the proxy's Encrypt rate for 4 KiB
//! plaintexts.
//!
//! Run with `cargo bench --bench xks_throughput`. The target: the suite reaches at least half
//! of the plain loop's rate. It prints every round, the medians and the ratio, and exits
//! non-zero if the ratio is below the target or the suite did not pass.
//!
//! The suite side is what `ckscheck xks run` does with no endpoint: every certification check
//! one after another (generation, signing, requests, judging, shrinking none) with
//! `BENCH_CASES` cases per property; its rate is the requests it sent over its wall time. The
//! plain side sends signed GetKeyMetadata requests back to back from one task, signing each
//! (as the suite does), for `BENCH_SECONDS`. The Encrypt side sends signed 4 KiB Encrypt
//! requests from `BENCH_TASKS` tasks for `BENCH_SECONDS`. Rounds alternate suite, plain loop,
//! Encrypt load.
//!
//! Settings (environment variables):
//!   BENCH_CASES    cases per property (default 256, as `ckscheck xks run`)
//!   BENCH_SECONDS  measured seconds of each plain and Encrypt round (default 3)
//!   BENCH_TASKS    concurrent tasks of the Encrypt load (default 8)
//!   BENCH_ROUNDS   rounds (default 3)
//!
//! Run without `--bench` (e.g. by `cargo test --benches`) it does one short round and does not
//! judge the ratio.

#[allow(dead_code)]
mod common;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ckscheck::proxy::KEY_MAIN;
use ckscheck::xks::checks::{checks, requests};
use ckscheck::xks::run::{RunArgs, prepare};
use common::{SuiteSettings, bench_main, median, print_machine, print_verdict};

/// The allocator `ckscheck` itself uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The minimum suite/plain-loop rate ratio.
const TARGET_RATIO: f64 = 0.5;

/// What one round measured.
struct Round {
    suite_rps: f64,
    plain_rps: f64,
    encrypt_rps: f64,
    failed: Vec<String>,
}

fn round(s: &SuiteSettings, seed: u64, runtime: &tokio::runtime::Runtime) -> Result<Round, String> {
    let args = RunArgs {
        cases: s.cases,
        seed: Some(seed),
        region: "us-east-1".into(),
        ..RunArgs::default()
    };
    let prepared = prepare(&args, runtime)?;
    let started = Instant::now();
    let mut requests = 0;
    let mut failed = Vec::new();
    for check in checks() {
        let report = prepared.run_check(&check);
        requests += report.requests;
        if !report.failures.is_empty() {
            failed.push(report.name);
        }
    }
    let suite_rps = requests as f64 / started.elapsed().as_secs_f64();
    let client = prepared.ctx.client.clone();
    let seconds = Duration::from_secs_f64(s.seconds);
    // The plain loop: one task, a signed GetKeyMetadata per request, back to back.
    let plain = runtime.block_on(async {
        let deadline = Instant::now() + seconds;
        let mut ok = 0u64;
        while Instant::now() < deadline {
            let reply = client
                .call("GetKeyMetadata", Some(KEY_MAIN), &requests::metadata())
                .await;
            if reply.is_ok_and(|r| r.status == 200) {
                ok += 1;
            }
        }
        ok
    });
    let plain_rps = plain as f64 / s.seconds;
    // The Encrypt load: `tasks` tasks of signed 4 KiB Encrypt requests.
    let ok = Arc::new(AtomicU64::new(0));
    let body = requests::encrypt(&vec![7u8; 4096], None, false);
    runtime.block_on(async {
        let deadline = Instant::now() + seconds;
        let tasks: Vec<_> = (0..s.concurrency)
            .map(|_| {
                let (client, ok, body) = (client.clone(), ok.clone(), body.clone());
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let reply = client.call("Encrypt", Some(KEY_MAIN), &body).await;
                        if reply.is_ok_and(|r| r.status == 200) {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    });
    let encrypt_rps = ok.load(Ordering::Relaxed) as f64 / s.seconds;
    if let Some(p) = prepared.proxy {
        runtime.block_on(p.stop());
    }
    Ok(Round {
        suite_rps,
        plain_rps,
        encrypt_rps,
        failed,
    })
}

fn run(s: &SuiteSettings, runtime: &tokio::runtime::Runtime) -> Result<bool, String> {
    println!(
        "xks_throughput: requests/s of `xks run` vs a plain signed loop, embedded reference proxy"
    );
    print_machine();
    println!(
        "settings: cases={} seconds={} tasks={} rounds={} mode={}",
        s.cases,
        s.seconds,
        s.concurrency,
        s.rounds,
        if s.judge {
            "bench"
        } else {
            "smoke (no --bench: ratio not judged)"
        }
    );
    println!();
    let (mut suite, mut plain, mut encrypt) = (Vec::new(), Vec::new(), Vec::new());
    let mut passed = true;
    for n in 1..=s.rounds {
        let r = round(s, n as u64, runtime)?;
        println!(
            "round {n} suite {:>8.0} req/s   plain loop {:>8.0} req/s   Encrypt 4 KiB x{} {:>8.0} req/s",
            r.suite_rps, r.plain_rps, s.concurrency, r.encrypt_rps
        );
        if !r.failed.is_empty() {
            println!("  failed checks: {}", r.failed.join(", "));
            passed = false;
        }
        suite.push(r.suite_rps);
        plain.push(r.plain_rps);
        encrypt.push(r.encrypt_rps);
    }
    let (h, p, e) = (median(&suite), median(&plain), median(&encrypt));
    let ratio = if p > 0.0 { h / p } else { 0.0 };
    println!();
    println!("median suite      {h:>10.0} req/s");
    println!("median plain loop {p:>10.0} req/s");
    println!(
        "median Encrypt of 4 KiB, {} tasks: {e:>10.0} req/s",
        s.concurrency
    );
    println!("ratio suite/plain = {ratio:.3} (target >= {TARGET_RATIO})");
    if !passed {
        println!("FAIL: the suite failed against the reference proxy (see above)");
    } else if !s.judge {
        println!("SMOKE: ratio not judged (run `cargo bench --bench xks_throughput`)");
    } else if !print_verdict(ratio, TARGET_RATIO, "the suite", "the plain signed loop") {
        passed = false;
    }
    Ok(passed)
}

fn main() -> ExitCode {
    bench_main("xks_throughput", |runtime| {
        let settings = SuiteSettings::from_env("BENCH_TASKS", 8)?;
        run(&settings, runtime)
    })
}
