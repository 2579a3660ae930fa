//! How long the default remote run takes: `ckscheck serve` as a separate process with KMS-like
//! transitions (300 ms), and `ckscheck run --endpoint-url` against it with its defaults (16
//! cases per check, the scenarios), timed from start to exit.
//!
//! Run with `cargo bench --bench remote_run`. The budget: the run ends within
//! `BENCH_BUDGET_SECONDS` (default 45) and passes (a clean endpoint). It prints the wall time,
//! each check's requests and seconds from the run's JSON report, and the verdict; it exits
//! non-zero when the run is over budget or did not pass.
//!
//! Settings (environment variables):
//!   BENCH_BUDGET_SECONDS  the budget (default 45)
//!   BENCH_SEED            the run's seed (default 1)
//!   BENCH_FAULTS          faults to plant in `ckscheck serve`, comma-separated (then the run
//!                         must fail: it shows what the faults cost the run, shrinking included)
//!
//! Run without `--bench` (e.g. by `cargo test --benches`) it only reports, without judging.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| format!("{name}={text:?} is not a valid value")),
        Err(_) => Ok(default),
    }
}

/// `ckscheck serve` on a free loopback port; killed when dropped.
struct Served {
    child: std::process::Child,
    url: String,
}

impl Served {
    fn start(faults: &[String]) -> Result<Served, String> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ckscheck"));
        command.args(["serve", "--port", "0", "--connect-delay-ms", "300"]);
        for f in faults {
            command.args(["--fault", f]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting ckscheck serve: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("ckscheck emulator listening on ") {
                        break url.trim().to_string();
                    }
                }
                _ => {
                    let _ = child.kill();
                    return Err("ckscheck serve did not print its URL".into());
                }
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Served { child, url })
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run() -> Result<bool, String> {
    let judge = std::env::args().any(|a| a == "--bench");
    let budget = Duration::from_secs_f64(env_or("BENCH_BUDGET_SECONDS", 45.0)?);
    let seed: u64 = env_or("BENCH_SEED", 1)?;
    let faults: Vec<String> = std::env::var("BENCH_FAULTS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    let served = Served::start(&faults)?;
    let dir = std::env::temp_dir().join(format!("ckscheck-remote-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    println!(
        "remote_run: the default `ckscheck run --endpoint-url` against `ckscheck serve` (300 ms transitions{})",
        if faults.is_empty() {
            String::new()
        } else {
            format!(", faults {}", faults.join(", "))
        }
    );
    let seed_text = seed.to_string();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_ckscheck"))
        .args([
            "run",
            "--endpoint-url",
            &served.url,
            "--region",
            "us-east-1",
        ])
        .args(["--seed", &seed_text, "--json", "report.json"])
        .current_dir(&dir)
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCHREMOTERUN")
        .env("AWS_SECRET_ACCESS_KEY", "benchRemoteRunSecret0123456789")
        .env("CI", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_KMS")
        .output()
        .map_err(|e| format!("running ckscheck run: {e}"))?;
    let wall = started.elapsed();
    let report: Value = std::fs::read_to_string(dir.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let _ = std::fs::remove_dir_all(&dir);
    let mut total = 0;
    println!("{:<44} {:>9} {:>9}", "trial", "requests", "seconds");
    let mut scenarios = (0u64, 0u64, 0usize);
    for c in report["checks"].as_array().into_iter().flatten() {
        let name = c["name"].as_str().unwrap_or("?");
        let requests = c["requests"].as_u64().unwrap_or(0);
        let ms = c["duration_ms"].as_u64().unwrap_or(0);
        total += requests;
        if name.starts_with("snapshot::") {
            scenarios = (scenarios.0 + requests, scenarios.1 + ms, scenarios.2 + 1);
        } else {
            println!("{name:<44} {requests:>9} {:>9.1}", ms as f64 / 1000.0);
        }
    }
    println!(
        "{:<44} {:>9} {:>9.1}",
        format!("{} scenarios", scenarios.2),
        scenarios.0,
        scenarios.1 as f64 / 1000.0
    );
    println!(
        "run: exit {:?}, {total} requests in {:.1} s ({:.0} requests/s); budget {:.0} s",
        out.status.code(),
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64(),
        budget.as_secs_f64()
    );
    let expected = if faults.is_empty() { 0 } else { 1 };
    if out.status.code() != Some(expected) {
        println!(
            "FAIL: the run exited {:?}, expected {expected}:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout)
        );
        return Ok(false);
    }
    if !judge {
        println!("SMOKE: the budget is not judged (run `cargo bench --bench remote_run`)");
        return Ok(true);
    }
    let within = wall <= budget;
    println!(
        "{}: the run took {:.0}% of its budget",
        if within { "PASS" } else { "FAIL" },
        100.0 * wall.as_secs_f64() / budget.as_secs_f64()
    );
    Ok(within)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("remote_run: {e}");
            ExitCode::from(2)
        }
    }
}
