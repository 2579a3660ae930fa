//! The conformance suite against the embedded emulator, and the planted-fault proof that the
//! checks catch what they are for (a libtest-mimic harness: `cargo test --test conformance`).
//!
//! - `clean::CHECK`: the check passes against a correct emulator.
//! - `fault::NAME`: with the fault planted, a check meant to catch it fails (a warning-only
//!   fault must fail no check at all).
//! - `lanes::FAULT-CHECK-as-one-at-a-time`: with cases run several at once, a seed finds the
//!   same first failing case, shrunk to the same length, as with one case at a time.
//!
//! Cases per check: `CKSCHECK_TEST_CASES` (default 128); seed: `CKSCHECK_TEST_SEED` (default
//! fixed, so CI is deterministic; set it to explore other cases).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ckscheck::emulator::Fault;
use ckscheck::suite::checks;
use ckscheck::suite::run::{EMBEDDED_LANES, RunOptions, prepare};
use ckscheck::suite::selftest::{Row, meant_to_catch, row};
use libtest_mimic::{Arguments, Failed, Trial};

const DEFAULT_CASES: u32 = 128;
const DEFAULT_SEED: u64 = 20261125;

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// What went wrong in a row, for the trial's failure message.
fn explain(row: &Row, wanted: &str) -> String {
    let mut text = format!("{wanted}; caught by: ");
    if row.caught_by.is_empty() {
        text.push_str("nothing");
    }
    for (check, needed, steps) in &row.caught_by {
        text.push_str(&format!(
            "\n  {check} (after {needed} cases, shrunk to {steps} steps)"
        ));
    }
    for (check, summary) in &row.summaries {
        text.push_str(&format!("\n{check}: {summary}"));
    }
    text
}

/// The check's failure with `fault` planted and `lanes` cases at once: (number of the first
/// failing case, length of the shrunk sequence).
fn first_failure(
    fault: Fault,
    check: &str,
    lanes: usize,
    cases: u32,
    seed: u64,
    runtime: &tokio::runtime::Runtime,
) -> Result<Option<(u32, usize)>, Failed> {
    let options = RunOptions {
        cases: Some(cases),
        seed: Some(seed),
        faults: vec![fault],
        simulated_proxies: true,
        lanes: Some(lanes),
        transition_timeout: Duration::from_secs(10),
        ..RunOptions::default()
    };
    let prepared = prepare(&options, runtime)?;
    let check = checks()
        .into_iter()
        .find(|c| c.name == check)
        .ok_or(format!("no check {check}"))?;
    let report = prepared.suite.run_check(&check);
    Ok(report.failure.map(|f| (f.cases_needed, f.steps.len())))
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let cases = env_number("CKSCHECK_TEST_CASES", DEFAULT_CASES);
    let seed = env_number("CKSCHECK_TEST_SEED", DEFAULT_SEED);
    ckscheck::runner::install_crypto_provider();
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("the tokio runtime builds"),
    );
    let mut trials = Vec::new();
    for check in checks() {
        let runtime = runtime.clone();
        let name = check.name;
        trials.push(Trial::test(format!("clean::{name}"), move || {
            let row = row(None, cases, seed, |c| c == name, &runtime).map_err(Failed::from)?;
            if row.ok {
                Ok(())
            } else {
                let wanted = format!("expected {name} to pass against a correct emulator");
                Err(explain(&row, &wanted).into())
            }
        }));
    }
    for fault in Fault::ALL {
        let runtime = runtime.clone();
        trials.push(Trial::test(format!("fault::{}", fault.name()), move || {
            let meant = meant_to_catch(fault);
            // A warning-only fault runs every check: none may fail.
            let which = |c: &str| meant.is_empty() || meant.contains(&c);
            let row = row(Some(fault), cases, seed, which, &runtime).map_err(Failed::from)?;
            if row.ok {
                Ok(())
            } else if meant.is_empty() {
                Err(explain(&row, "expected no check to fail (warning only)").into())
            } else {
                let wanted = format!("expected {} to fail", meant.join(" or "));
                Err(explain(&row, &wanted).into())
            }
        }));
    }
    // Faults that many cases of the check catch: several failing cases are in flight at once.
    for (fault, check) in [
        (Fault::WrongErrorType, "errors"),
        (Fault::DeleteWhileConnected, "states"),
    ] {
        let runtime = runtime.clone();
        let name = format!("lanes::{}-{check}-as-one-at-a-time", fault.name());
        trials.push(Trial::test(name, move || {
            let one = first_failure(fault, check, 1, cases, seed, &runtime)?;
            let lanes = first_failure(fault, check, EMBEDDED_LANES, cases, seed, &runtime)?;
            match (one, lanes) {
                (None, _) => Err(format!("{check} did not catch {}", fault.name()).into()),
                (Some(a), Some(b)) if a == b => Ok(()),
                (a, b) => Err(format!(
                    "one lane: first failing case, shrunk length {a:?}; {EMBEDDED_LANES} lanes: {b:?}"
                )
                .into()),
            }
        }));
    }
    libtest_mimic::run(&args, trials).exit_code()
}
