//! What the throughput benches share: a pre-signed request, a load loop, medians, the settings
//! of a bench that runs a whole suite.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use ckscheck::sigv4::{Credential, Signer};
use ckscheck::spec::Spec;
use http::{HeaderValue, StatusCode};

/// The Host header every pre-signed request carries.
pub const HOST: &str = "kms.bench.localhost";
/// The region requests are signed for.
pub const REGION: &str = "us-east-1";

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| format!("{name}={text:?} is not a valid value")),
        Err(_) => Ok(default),
    }
}

/// The bench's own credential (the emulator checks it only with BENCH_VERIFY_SIGV4=1).
pub fn credential() -> Credential {
    Credential::new(
        "AKIABENCHAAAAAAAAAAA",
        "benchSecretAccessKeyAAAAAAAAAAAAAAAAAAAAAAA",
    )
}

/// The one DescribeCustomKeyStores request every client task sends, signed once.
pub struct PreSigned {
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// A signed awsJson1_1 request for `operation` with `body` (Host: [`HOST`], path `/`).
pub fn presign(operation: &str, body: Vec<u8>) -> Result<PreSigned, String> {
    let credential = credential();
    let signer = Signer {
        credential: &credential,
        region: REGION,
        service: &Spec::kms().service.signing_name,
        time: SystemTime::now(),
    };
    let signed = signer.json_post(HOST, "/", operation, &body)?;
    let mut headers = http::HeaderMap::new();
    for (k, v) in signed {
        let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
        headers.insert(name, HeaderValue::from_str(&v).map_err(|e| e.to_string())?);
    }
    Ok(PreSigned {
        headers,
        body: Bytes::from(body),
    })
}

/// What one round measured.
pub struct Round {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub rps: f64,
    /// Process CPU time (client + server, all threads) per counted request, in microseconds.
    pub cpu_us_per_request: Option<f64>,
}

/// CPU time this process has used (user + system, all threads), from `/proc/self/stat`.
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux configuration Rust supports.
    Some(Duration::from_millis(ticks * 10))
}

/// How hard and how long [`drive`] loads a server.
pub struct Load {
    /// Concurrent client tasks.
    pub concurrency: usize,
    /// Unmeasured seconds first.
    pub warmup: f64,
    /// Measured seconds.
    pub seconds: f64,
}

/// Drives `url` with `concurrency` tasks for warm-up + measured time; counts 200s in the window.
pub async fn drive(url: &str, request: &PreSigned, expect_len: usize, s: &Load) -> Round {
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(s.concurrency)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("the reqwest client builds");
    let template = client
        .post(url)
        .headers(request.headers.clone())
        .body(request.body.clone())
        .build()
        .expect("the request builds");
    let template = Arc::new(template);
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let begin = Instant::now() + Duration::from_secs_f64(s.warmup);
    let end = begin + Duration::from_secs_f64(s.seconds);
    let mut tasks = Vec::new();
    for _ in 0..s.concurrency {
        let (client, template) = (client.clone(), template.clone());
        let (ok, errors, first_error) = (ok.clone(), errors.clone(), first_error.clone());
        tasks.push(tokio::spawn(async move {
            let (mut my_ok, mut my_errors) = (0u64, 0u64);
            loop {
                let request = template.try_clone().expect("a byte body clones");
                let outcome = match client.execute(request).await {
                    Ok(response) => {
                        let status = response.status();
                        match response.bytes().await {
                            Ok(b) if status == StatusCode::OK && b.len() == expect_len => Ok(()),
                            Ok(b) => Err(format!(
                                "status {status}, {} body bytes (expected 200, {expect_len}): {}",
                                b.len(),
                                String::from_utf8_lossy(&b[..b.len().min(300)])
                            )),
                            Err(e) => Err(format!("reading the body: {e}")),
                        }
                    }
                    Err(e) => Err(format!("transport error: {e}")),
                };
                let now = Instant::now();
                if now >= end {
                    break;
                }
                match outcome {
                    Ok(()) if now >= begin => my_ok += 1,
                    Ok(()) => {}
                    Err(e) => {
                        // Errors count during warm-up too: any non-200 fails the bench.
                        my_errors += 1;
                        first_error.lock().unwrap().get_or_insert(e);
                    }
                }
            }
            ok.fetch_add(my_ok, Ordering::Relaxed);
            errors.fetch_add(my_errors, Ordering::Relaxed);
        }));
    }
    tokio::time::sleep_until(begin.into()).await;
    let cpu_begin = process_cpu();
    tokio::time::sleep_until(end.into()).await;
    let cpu_end = process_cpu();
    for t in tasks {
        t.await.expect("a client task panicked");
    }
    let ok = ok.load(Ordering::Relaxed);
    let cpu_us_per_request = match (cpu_begin, cpu_end) {
        (Some(a), Some(b)) if ok > 0 => Some((b - a).as_secs_f64() * 1e6 / ok as f64),
        _ => None,
    };
    let first_error = first_error.lock().unwrap().take();
    Round {
        ok,
        errors: errors.load(Ordering::Relaxed),
        first_error,
        rps: ok as f64 / s.seconds,
        cpu_us_per_request,
    }
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Prints the machine line every bench starts with.
pub fn print_machine() {
    println!(
        "machine: {} cores (available parallelism), {} {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
}

impl Round {
    /// Prints the round as one line, `label` naming it, and its first error if any.
    pub fn print(&self, label: &str, seconds: f64) {
        println!(
            "{label} {:>10.0} req/s  ({} ok in {seconds} s, {} errors; {} CPU/request)",
            self.rps,
            self.ok,
            self.errors,
            self.cpu_us_per_request
                .map_or("n/a".to_string(), |us| format!("{us:.1} us"))
        );
        if let Some(e) = &self.first_error {
            println!("  first error: {e}");
        }
    }
}

/// Prints whether `ratio` of `subject` to `baseline` meets `target`; true when it does.
pub fn print_verdict(ratio: f64, target: f64, subject: &str, baseline: &str) -> bool {
    let passed = ratio >= target;
    println!(
        "{}: {subject} reaches {:.0}% of {baseline} (target {:.0}%)",
        if passed { "PASS" } else { "FAIL" },
        ratio * 100.0,
        target * 100.0
    );
    passed
}

/// A bench's `main`: installs the TLS provider, builds the runtime, runs `body`; exit code 0
/// when it passed, 1 when it failed, 2 on a setting or set-up error (printed as `name: error`).
pub fn bench_main(
    name: &str,
    body: impl FnOnce(&tokio::runtime::Runtime) -> Result<bool, String>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    ckscheck::runner::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime builds");
    match body(&runtime) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::from(2)
        }
    }
}

/// The settings of a bench that runs a whole suite next to a plain loop, from the environment:
/// `BENCH_CASES` cases per check, `BENCH_SECONDS` of each plain round, `BENCH_ROUNDS` rounds,
/// and a concurrency named by the bench. Without `--bench` (e.g. under `cargo test --benches`)
/// one short round, not judged.
pub struct SuiteSettings {
    pub cases: u32,
    pub concurrency: usize,
    pub seconds: f64,
    pub rounds: usize,
    /// False when run as a smoke test: the ratio is not judged.
    pub judge: bool,
}

impl SuiteSettings {
    /// Reads the settings; the concurrency from `concurrency_var`, else `default_concurrency`.
    pub fn from_env(
        concurrency_var: &str,
        default_concurrency: usize,
    ) -> Result<SuiteSettings, String> {
        let judge = std::env::args().any(|a| a == "--bench");
        let (cases, seconds, rounds) = if judge { (256, 3.0, 3) } else { (16, 0.3, 1) };
        let s = SuiteSettings {
            cases: env_or("BENCH_CASES", cases)?,
            concurrency: env_or(concurrency_var, default_concurrency)?,
            seconds: env_or("BENCH_SECONDS", seconds)?,
            rounds: env_or("BENCH_ROUNDS", rounds)?,
            judge,
        };
        if s.cases == 0
            || s.concurrency == 0
            || s.rounds == 0
            || s.seconds.is_nan()
            || s.seconds <= 0.0
        {
            return Err(format!(
                "BENCH_CASES, {concurrency_var}, BENCH_ROUNDS and BENCH_SECONDS must be > 0"
            ));
        }
        Ok(s)
    }
}
