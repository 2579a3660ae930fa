//! The emulator under load: 64 concurrent SigV4-signed clients send a fixed number of random
//! valid custom key store requests (Create, Describe, Update, Connect, Disconnect, Delete on
//! CloudHSM and external key stores, names from a small pool so they collide) to the embedded
//! emulator on loopback, after a warm-up; then the final state is held to the model's
//! invariants through a full paginated listing (`tests/common/soak.rs`).
//!
//! Run with `cargo bench --bench soak`. It prints the request rate, p50/p99 latency, resident
//! memory (VmRSS of this process: emulator and clients) after the warm-up and after the soak,
//! and their ratio, and exits non-zero if any request got a 5xx, no answer or an error KMS
//! would not give, if any invariant broke, or if the ratio exceeds 1.5.
//!
//! Settings (environment variables):
//!   SOAK_CLIENTS           concurrent clients (default 64)
//!   SOAK_WARMUP            warm-up requests in all (default 10000)
//!   SOAK_REQUESTS          measured requests in all (default 128000)
//!   SOAK_NAMES             size of the store name pool (default 12; the quota is 10)
//!   SOAK_CONNECT_DELAY_MS  how long CONNECTING/DISCONNECTING last (default 20)
//!   SOAK_SEED              seed of the clients' sequences (default: drawn and printed)
//!
//! Run without `--bench` (e.g. by `cargo test --benches`) it does a small smoke soak and judges
//! everything but the memory ratio.

#[allow(dead_code)]
mod common;
#[path = "../common/soak.rs"]
#[allow(dead_code)]
mod soak;

use std::process::ExitCode;

use common::{bench_main, env_or, print_machine};
use soak::{SoakConfig, run};

/// The allocator `ckscheck serve` uses, so the emulator is measured as it ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The largest allowed RSS after the soak over RSS after the warm-up.
const MAX_RSS_RATIO: f64 = 1.5;

fn settings() -> Result<(SoakConfig, bool), String> {
    let judge = std::env::args().any(|a| a == "--bench");
    let (warmup, requests) = if judge {
        (10_000, 128_000)
    } else {
        (640, 1_280)
    };
    let clients: usize = env_or("SOAK_CLIENTS", 64)?;
    let warmup: usize = env_or("SOAK_WARMUP", warmup)?;
    let requests: usize = env_or("SOAK_REQUESTS", requests)?;
    if clients == 0 || requests == 0 {
        return Err("SOAK_CLIENTS and SOAK_REQUESTS must be at least 1".into());
    }
    let config = SoakConfig {
        clients,
        warmup_per_client: warmup.div_ceil(clients),
        soak_per_client: requests.div_ceil(clients),
        names: env_or("SOAK_NAMES", 12)?,
        seed: env_or("SOAK_SEED", rand::random::<u64>() >> 12)?,
        connect_delay_ms: env_or("SOAK_CONNECT_DELAY_MS", 20)?,
        faults: Vec::new(),
    };
    Ok((config, judge))
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn main() -> ExitCode {
    bench_main("soak", |runtime| {
        let (config, judge) = settings()?;
        println!("soak: the embedded emulator under concurrent signed clients, on loopback");
        print_machine();
        println!(
            "settings: clients={} warmup={} requests={} names={} connect_delay_ms={} seed={} mode={}",
            config.clients,
            config.clients * config.warmup_per_client,
            config.clients * config.soak_per_client,
            config.names,
            config.connect_delay_ms,
            config.seed,
            if judge {
                "bench"
            } else {
                "smoke (no --bench: memory ratio not judged)"
            }
        );
        let report = runtime.block_on(run(&config))?;
        let (w, s) = (&report.warmup, &report.soak);
        println!(
            "warm-up: {} requests in {:.2} s, {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
            w.requests,
            w.elapsed.as_secs_f64(),
            w.rate(),
            w.p50.as_secs_f64() * 1e3,
            w.p99.as_secs_f64() * 1e3
        );
        println!(
            "soak:    {} requests in {:.2} s, {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
            s.requests,
            s.elapsed.as_secs_f64(),
            s.rate(),
            s.p50.as_secs_f64() * 1e3,
            s.p99.as_secs_f64() * 1e3
        );
        println!(
            "RSS after warm-up {}, after soak {}, ratio {} (limit {MAX_RSS_RATIO})",
            mib(report.rss_after_warmup_kib),
            mib(report.rss_after_soak_kib),
            report
                .rss_ratio()
                .map_or("n/a".into(), |r| format!("{r:.3}"))
        );
        print!("{}", report.summary());
        let mut passed = report.clean();
        if !report.clean() {
            println!(
                "FAIL: request failures or broken invariants (replay with SOAK_SEED={})",
                config.seed
            );
        }
        match report.rss_ratio() {
            Some(r) if r > MAX_RSS_RATIO && judge => {
                println!(
                    "FAIL: resident memory grew {r:.3}x during the soak (limit {MAX_RSS_RATIO}x)"
                );
                passed = false;
            }
            None if judge => {
                println!("FAIL: no resident memory reading (/proc/self/status)");
                passed = false;
            }
            _ => {}
        }
        if passed {
            println!("PASS");
        }
        Ok(passed)
    })
}
