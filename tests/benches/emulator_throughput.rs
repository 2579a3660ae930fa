//! DescribeCustomKeyStores throughput of the embedded emulator on loopback, next to a trivial
//! hyper handler that answers a constant body of the same size, measured in the same run.
//!
//! Run with `cargo bench --bench emulator_throughput`. The target: the emulator reaches at least
//! half of the baseline's requests per second. The bench prints every round, the medians and the
//! ratio, then exits non-zero if the ratio is below the target or any answer was not a 200.
//!
//! Both servers use the same HTTP layer, `ckscheck::server` (only the handler
//! differs), and both get the same load: `BENCH_CONCURRENCY` tasks sharing one reqwest client
//! (HTTP/1.1 keep-alive), each sending the same pre-signed request bytes back to back.
//! Rounds alternate baseline, emulator, baseline, emulator... so drift affects both.
//!
//! Settings (environment variables):
//!   BENCH_SECONDS         measured seconds per round (default 3)
//!   BENCH_WARMUP_SECONDS  unmeasured warm-up per round (default 0.5)
//!   BENCH_CONCURRENCY     concurrent client tasks (default 16)
//!   BENCH_ROUNDS          rounds per target (default 3)
//!   BENCH_STORES          stores created before measuring (default 5, at most the quota of 10)
//!   BENCH_VERIFY_SIGV4    1 = the emulator verifies every signature (default 0, as `serve` does)
//!   BENCH_ONLY            baseline | emulator: drive only that target, e.g. under a profiler
//!                         (the ratio is then not judged)
//!
//! Run without `--bench` (e.g. by `cargo test --benches`) it does one short smoke round per
//! target and does not judge the ratio.

#[allow(dead_code)]
mod common;

use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use ckscheck::emulator::{EmulatorConfig, RunningEmulator, start_on_loopback};
use ckscheck::generate::backends::{self, Backend};
use ckscheck::model::Fixtures;
use ckscheck::server::{Handler, Limits, read_body, serve};
use common::{
    Load, bench_main, credential, drive, env_or, median, presign, print_machine, print_verdict,
};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The allocator `ckscheck serve` uses, so the emulator is measured as it ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The minimum emulator/baseline throughput ratio.
const TARGET_RATIO: f64 = 0.5;

struct Settings {
    seconds: f64,
    warmup: f64,
    concurrency: usize,
    rounds: usize,
    stores: usize,
    verify_sigv4: bool,
    /// `baseline` or `emulator` to drive only that target (for profiling); the ratio is not judged.
    only: Option<String>,
    /// False when run as a smoke test (no `--bench` argument): the ratio is not judged.
    judge: bool,
}

impl Settings {
    fn from_env() -> Result<Settings, String> {
        let judge = std::env::args().any(|a| a == "--bench");
        let (seconds, warmup, rounds) = if judge { (3.0, 0.5, 3) } else { (0.3, 0.1, 1) };
        let settings = Settings {
            seconds: env_or("BENCH_SECONDS", seconds)?,
            warmup: env_or("BENCH_WARMUP_SECONDS", warmup)?,
            concurrency: env_or("BENCH_CONCURRENCY", 16)?,
            rounds: env_or("BENCH_ROUNDS", rounds)?,
            stores: env_or("BENCH_STORES", 5)?,
            verify_sigv4: env_or::<u8>("BENCH_VERIFY_SIGV4", 0)? == 1,
            only: std::env::var("BENCH_ONLY").ok().filter(|o| !o.is_empty()),
            judge,
        };
        if settings.seconds.is_nan()
            || settings.seconds <= 0.0
            || settings.warmup.is_nan()
            || settings.warmup < 0.0
        {
            return Err("BENCH_SECONDS must be > 0 and BENCH_WARMUP_SECONDS >= 0".into());
        }
        if let Some(o) = settings
            .only
            .as_deref()
            .filter(|o| !["baseline", "emulator"].contains(o))
        {
            return Err(format!("BENCH_ONLY={o:?}: expected baseline or emulator"));
        }
        if settings.concurrency == 0 || settings.rounds == 0 {
            return Err("BENCH_CONCURRENCY and BENCH_ROUNDS must be at least 1".into());
        }
        Ok(settings)
    }
}

/// Create requests for `n` distinct stores, from the built-in fixtures: the generator's own
/// creatable backends (CloudHSM clusters that accept a Create, one per backup lineage; proxies
/// that pass the Create check, over the public endpoint), with their own values.
fn store_requests(fixtures: &Fixtures, n: usize) -> Result<Vec<Value>, String> {
    let (cloudhsm, external): (Vec<Backend>, Vec<Backend>) = backends::creatable(fixtures)
        .into_iter()
        .filter(|b| !matches!(b, Backend::Proxy { vpc: true, .. }))
        .partition(|b| matches!(b, Backend::Cluster(_)));
    // Interleave the kinds so a small N still shows both entry shapes.
    let (mut cloudhsm, mut external) = (cloudhsm.into_iter(), external.into_iter());
    let mut out = Vec::new();
    while out.len() < n {
        let pair = [cloudhsm.next(), external.next()];
        if pair.iter().all(Option::is_none) {
            return Err(format!(
                "the fixtures allow only {} distinct stores, BENCH_STORES={n}",
                out.len()
            ));
        }
        for backend in pair.into_iter().flatten().take(n - out.len()) {
            let name = format!("bench-store-{}", out.len() + 1);
            out.push(backends::create_body(fixtures, backend, &name, true));
        }
    }
    Ok(out)
}

/// A trivial handler: answers every request with the same status, headers and body.
struct Constant {
    body: Bytes,
    content_type: HeaderValue,
    request_id: HeaderValue,
}

impl Handler for Constant {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Full<Bytes>> {
        // Read the request body, as any real handler must.
        let (parts, body) = request.into_parts();
        let _ = read_body(&parts.headers, body, &Limits::default()).await;
        let mut response = Response::new(Full::new(self.body.clone()));
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert("content-type", self.content_type.clone());
        headers.insert("x-amzn-requestid", self.request_id.clone());
        response
    }
}

/// A trivial server on the emulator's HTTP layer (`ckscheck::server`, same limits): only the
/// handler differs.
async fn serve_constant(
    listener: TcpListener,
    body: Bytes,
    content_type: HeaderValue,
    request_id: HeaderValue,
    shutdown: oneshot::Receiver<()>,
) {
    let handler = Arc::new(Constant {
        body,
        content_type,
        request_id,
    });
    serve(listener, None, Limits::default(), handler, async {
        let _ = shutdown.await;
    })
    .await;
}

async fn setup_emulator(s: &Settings) -> Result<RunningEmulator, String> {
    let mut config = EmulatorConfig::default();
    if s.verify_sigv4 {
        config.verify_sigv4 = Some(vec![credential()]);
    }
    let creates = store_requests(&config.fixtures, s.stores)?;
    let emulator = start_on_loopback(config)
        .await
        .map_err(|e| format!("starting the emulator: {e}"))?;
    let client = reqwest::Client::new();
    for body in &creates {
        let request = presign("CreateCustomKeyStore", body.to_string().into_bytes())?;
        let response = client
            .post(emulator.url())
            .headers(request.headers)
            .body(request.body)
            .send()
            .await
            .map_err(|e| format!("CreateCustomKeyStore: {e}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status != StatusCode::OK {
            return Err(format!("CreateCustomKeyStore answered {status}: {text}"));
        }
    }
    Ok(emulator)
}

async fn run(s: &Settings) -> Result<bool, String> {
    println!(
        "emulator_throughput: DescribeCustomKeyStores on loopback, emulator vs constant-body hyper baseline"
    );
    print_machine();
    println!(
        "settings: concurrency={} seconds={} warmup={} rounds={} stores={} verify_sigv4={} mode={}",
        s.concurrency,
        s.seconds,
        s.warmup,
        s.rounds,
        s.stores,
        s.verify_sigv4,
        match (&s.only, s.judge) {
            (Some(_), _) => "only one target (BENCH_ONLY: ratio not judged)",
            (None, true) => "bench",
            (None, false) => "smoke (no --bench: ratio not judged)",
        }
    );
    if let Some(o) = &s.only {
        println!("BENCH_ONLY={o}");
    }
    println!(
        "client: reqwest, HTTP/1.1 keep-alive, one pre-signed request (identical bytes to both servers)"
    );

    let emulator = setup_emulator(s).await?;
    let request = presign("DescribeCustomKeyStores", b"{}".to_vec())?;

    // One Describe to learn the answer the baseline will mimic.
    let probe = reqwest::Client::builder()
        .http1_only()
        .build()
        .map_err(|e| e.to_string())?;
    let response = probe
        .post(emulator.url())
        .headers(request.headers.clone())
        .body(request.body.clone())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .cloned()
        .ok_or("the emulator's answer has no content type")?;
    let request_id = response
        .headers()
        .get("x-amzn-requestid")
        .cloned()
        .unwrap_or(HeaderValue::from_static(
            "00000000-0000-0000-0000-000000000000",
        ));
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if status != StatusCode::OK {
        return Err(format!(
            "DescribeCustomKeyStores answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let listed = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["CustomKeyStores"].as_array().map(Vec::len))
        .unwrap_or(0);
    println!(
        "response: 200, {} body bytes, {listed} stores listed, content-type {}",
        body.len(),
        content_type.to_str().unwrap_or("?")
    );

    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| format!("binding the baseline: {e}"))?;
    let baseline_url = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let (stop_baseline, stopped) = oneshot::channel();
    let baseline = tokio::spawn(serve_constant(
        listener,
        body.clone(),
        content_type,
        request_id,
        stopped,
    ));
    println!("emulator at {}, baseline at {baseline_url}", emulator.url());
    println!();

    let (mut base_rps, mut emu_rps) = (Vec::new(), Vec::new());
    let (mut base_cpu, mut emu_cpu) = (Vec::new(), Vec::new());
    let mut errors = 0u64;
    for round in 1..=s.rounds {
        for (name, url, out) in [
            (
                "baseline",
                baseline_url.clone(),
                (&mut base_rps, &mut base_cpu),
            ),
            ("emulator", emulator.url(), (&mut emu_rps, &mut emu_cpu)),
        ] {
            if s.only.as_deref().is_some_and(|o| o != name) {
                continue;
            }
            let load = Load {
                concurrency: s.concurrency,
                warmup: s.warmup,
                seconds: s.seconds,
            };
            let r = drive(&url, &request, body.len(), &load).await;
            r.print(&format!("round {round} {name:<8}"), s.seconds);
            errors += r.errors;
            out.0.push(r.rps);
            out.1.extend(r.cpu_us_per_request);
        }
    }
    let _ = stop_baseline.send(());
    let _ = baseline.await;
    emulator.stop().await;

    let median = |v: &[f64]| if v.is_empty() { 0.0 } else { median(v) };
    let (b, e) = (median(&base_rps), median(&emu_rps));
    let ratio = if b > 0.0 { e / b } else { 0.0 };
    println!();
    println!("median baseline {b:>10.0} req/s");
    println!("median emulator {e:>10.0} req/s");
    if !base_cpu.is_empty() && !emu_cpu.is_empty() {
        let (bc, ec) = (median(&base_cpu), median(&emu_cpu));
        println!(
            "median CPU per request (client + server, whole process): baseline {bc:.1} us, emulator {ec:.1} us, emulator handler extra {:.1} us",
            ec - bc
        );
    }
    println!("ratio emulator/baseline = {ratio:.3} (target >= {TARGET_RATIO})");
    let mut passed = true;
    if errors > 0 {
        println!("FAIL: {errors} requests did not get a 200 with the expected body");
        passed = false;
    }
    if s.only.is_some() {
        println!("ONE TARGET: ratio not judged (unset BENCH_ONLY)");
    } else if !s.judge {
        println!("SMOKE: ratio not judged (run `cargo bench --bench emulator_throughput`)");
    } else if !print_verdict(ratio, TARGET_RATIO, "the emulator", "the baseline") {
        passed = false;
    }
    Ok(passed)
}

fn main() -> ExitCode {
    bench_main("emulator_throughput", |runtime| {
        let settings = Settings::from_env()?;
        runtime.block_on(run(&settings))
    })
}
